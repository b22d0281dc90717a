#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: open_webui_api
short_description: Sign in to Open WebUI as its admin, keep its admin settings as given, and check its model list
version_added: 0.4.0
description:
  - Waits, bounded by O(wait_timeout), until Open WebUI's C(/health) reports its status as true, then signs in through
    C(POST /api/v1/auths/signin) with O(email) and O(password).
  - With O(settings), reads the admin settings through Open WebUI's admin API (C(/openai/config), C(/ollama/config),
    C(/api/v1/auths/admin/config)) and writes back only the groups in which a value differs. Open WebUI keeps these
    settings in its database or in memory, where they can drift from the environment the container was started with
    (an organizer's change in the admin panel, or Open WebUI's own switch of C(ENABLE_SIGNUP) after it creates the
    admin account); this brings them back to the given values.
  - Lists the models the admin may use (C(GET /api/models)) and, with O(expected_model), waits until that model is
    listed, bounded by O(wait_timeout). A model that does not appear fails the module with the models that are listed.
  - Talks to Open WebUI only; every request is bounded by O(timeout). Standard library only.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details: In check mode the module signs in and reads, and reports which settings it would write, without writing.
  diff_mode:
    support: full
    details: The diff shows the settings in O(settings) before and after; API keys are shown only as set or empty.
  idempotent:
    support: full
options:
  url:
    description: Open WebUI's base URL, as seen from where the module runs (the unit itself).
    type: str
    default: http://127.0.0.1:8080
  email:
    description: The admin account's email address.
    type: str
    required: true
  password:
    description: The admin account's password.
    type: str
    required: true
  settings:
    description:
      - Admin settings to keep, by the names Open WebUI's admin API uses, for example C(ENABLE_OPENAI_API),
        C(OPENAI_API_BASE_URLS), C(ENABLE_OLLAMA_API), C(ENABLE_SIGNUP), C(DEFAULT_USER_ROLE). Settings not named here
        are left as they are.
      - The API keys of the OpenAI connections go in O(openai_api_keys), never here.
    type: dict
    default: {}
  openai_api_keys:
    description:
      - The key of each OpenAI-compatible connection (C(OPENAI_API_KEYS)), one per entry of C(OPENAI_API_BASE_URLS),
        an empty string for a connection without a key. Omit to leave the keys alone.
    type: list
    elements: str
  expected_model:
    description:
      - A model id that must be in C(/api/models) for the admin; the module waits for it up to O(wait_timeout).
    type: str
  wait_timeout:
    description:
      - Seconds to wait, in all, for C(/health) to answer, for the sign-in to go through while Open WebUI starts, and for
        O(expected_model) to be listed.
    type: int
    default: 120
  timeout:
    description: Seconds any one HTTP request may take.
    type: int
    default: 30
requirements:
  - Open WebUI 0.12 or later (the admin account from C(WEBUI_ADMIN_EMAIL) and C(WEBUI_ADMIN_PASSWORD), the admin API above).
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - name: Open WebUI environment configuration
    description: Which settings are kept in the database (PersistentConfig) and ENABLE_PERSISTENT_CONFIG.
    link: https://docs.openwebui.com/reference/env-configuration
"""

EXAMPLES = r"""
- name: Keep the admin settings and check that the stage's model is listed
  jetson_thor.workshop.open_webui_api:
    url: http://127.0.0.1:8080
    email: admin@workshop.local
    password: "{{ vault_open_webui_admin_password }}"
    settings:
      ENABLE_OPENAI_API: true
      OPENAI_API_BASE_URLS: [http://127.0.0.1:8000/v1]
      ENABLE_OLLAMA_API: false
      ENABLE_SIGNUP: true
      DEFAULT_USER_ROLE: user
    openai_api_keys: [""]
    expected_model: meta-llama/Llama-3.1-8B-Instruct
    wait_timeout: 180
  register: __webui
"""

RETURN = r"""
url:
  description: The Open WebUI base URL used.
  returned: always
  type: str
  sample: http://127.0.0.1:8080
version:
  description: The version C(/api/version) reports, or null when it does not answer.
  returned: success
  type: str
  sample: 0.12.4
user:
  description: The signed-in account.
  returned: success
  type: dict
  sample: {id: 6f1c, email: admin@workshop.local, name: Admin, role: admin}
models:
  description: The ids of the models C(/api/models) lists for the admin.
  returned: success
  type: list
  elements: str
  sample: [meta-llama/Llama-3.1-8B-Instruct]
expected_model_listed:
  description: Whether O(expected_model) is listed (null when none was given).
  returned: success
  type: bool
  sample: true
settings:
  description: The settings named in O(settings) (and C(OPENAI_API_KEYS) as set or empty) as Open WebUI has them afterwards.
  returned: success
  type: dict
  sample: {ENABLE_SIGNUP: true, DEFAULT_USER_ROLE: user, OPENAI_API_KEYS: ["(set)"]}
updated:
  description: The settings that were written (in check mode, that would be written).
  returned: success
  type: list
  elements: str
  sample: [ENABLE_SIGNUP]
waited:
  description: Seconds spent waiting for Open WebUI to become healthy, for the sign-in and for the model.
  returned: success
  type: float
  sample: 3.2
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils._open_webui import (
    INVALID_CREDENTIALS_HINT,
    Client,
    OpenWebUIError,
    check_setting_values,
    group_of,
    masked_settings,
    settings_diff,
    update_bodies,
)

_POLL_SECONDS = 1.0


class Checker:
    def __init__(self, module, client, clock=time.monotonic, sleep=time.sleep):
        self.module = module
        self.client = client
        self.clock = clock
        self.sleep = sleep
        self.start = clock()
        self.deadline = self.start + module.params["wait_timeout"]

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, url=self.client.url, waited=round(self.clock() - self.start, 1), **kwargs)

    def wait_healthy(self):
        reason = self.client.wait_healthy(self.deadline, interval=_POLL_SECONDS, clock=self.clock, sleep=self.sleep)
        if reason:
            self.fail(
                f"Open WebUI at {self.client.url} did not answer /health within {self.module.params['wait_timeout']} s "
                f"(wait_timeout): {reason}. Look at the container's log (docker logs open-webui)."
            )

    def signin(self):
        email = self.module.params["email"]
        while True:
            try:
                return self.client.signin(email, self.module.params["password"])
            except OpenWebUIError as exc:
                if exc.status == 400:
                    self.fail(f"Open WebUI refused the sign-in as {email}: {exc.detail}. {INVALID_CREDENTIALS_HINT}.")
                if exc.status == 429:
                    self.fail(
                        f"Open WebUI refused the sign-in as {email}: {exc.detail}. It allows 15 sign-ins per account in "
                        "3 minutes (failed ones included); wait 3 minutes and run again."
                    )
                if exc.status in (401, 403):
                    self.fail(f"Open WebUI refused the sign-in as {email} ({exc.msg}): is password sign-in disabled?")
                # Not up yet (connection refused, 5xx while it starts): try again until the deadline.
                if self.clock() + _POLL_SECONDS > self.deadline:
                    self.fail(f"Could not sign in to Open WebUI as {email} within the wait_timeout: {exc.msg}")
                self.sleep(_POLL_SECONDS)

    def reconcile(self, desired, check_mode):
        groups = sorted({group_of(key) for key in desired})
        current = {}
        for name in groups:
            current[name] = self.client.read_group(name)
        before = {}
        for name in groups:
            before.update(current[name])
        updated = settings_diff(before, desired)
        if updated and not check_mode:
            for name, body in update_bodies(current, desired).items():
                self.client.write_group(name, body)
            after_all = {}
            for name in groups:
                after_all.update(self.client.read_group(name))
            still = settings_diff(after_all, desired)
            if still:
                self.fail(
                    f"Open WebUI did not keep {', '.join(still)} after the update through its admin API "
                    f"(it has {masked_settings({k: after_all.get(k) for k in still})}).",
                    updated=updated,
                )
        else:
            after_all = dict(before)
            after_all.update(desired)
        keys = sorted(desired)
        return (
            updated,
            masked_settings({key: before.get(key) for key in keys}),
            masked_settings({key: after_all.get(key) for key in keys}),
        )

    def wait_model(self, expected):
        while True:
            models = self.client.models()
            if expected is None or expected in models:
                return models
            if self.clock() + _POLL_SECONDS > self.deadline:
                listed = ", ".join(m for m in models if m) or "none"
                self.fail(
                    f"Model {expected} is not among the models Open WebUI lists for {self.module.params['email']} "
                    f"(listed: {listed}) after {self.module.params['wait_timeout']} s. Check that vLLM serves it under "
                    "that name (curl <vLLM URL>/models, with its API key), that OPENAI_API_BASE_URLS points at it, and "
                    "that the API key matches vLLM's --api-key.",
                    models=models,
                )
            self.sleep(_POLL_SECONDS)


def run(module, client, clock=time.monotonic, sleep=time.sleep):
    params = module.params
    desired = dict(params["settings"] or {})
    if "OPENAI_API_KEYS" in desired:
        module.fail_json(msg="Give the API keys in openai_api_keys (not logged), not in settings.OPENAI_API_KEYS.")
    if params["openai_api_keys"] is not None:
        desired["OPENAI_API_KEYS"] = list(params["openai_api_keys"])
    problems = check_setting_values(desired)
    if problems:
        module.fail_json(msg="Invalid settings: " + "; ".join(problems) + ".")

    checker = Checker(module, client, clock=clock, sleep=sleep)
    try:
        result = _check(module, checker, client, desired)
    except OpenWebUIError as exc:
        checker.fail(f"Open WebUI at {client.url}: {exc.msg}")
        return
    result["waited"] = round(clock() - checker.start, 1)
    module.exit_json(**result)


def _check(module, checker, client, desired):
    params = module.params
    checker.wait_healthy()
    user = checker.signin()
    if desired and user.get("role") != "admin":
        checker.fail(f"{params['email']} signed in with role {user.get('role')}, not admin: it cannot read or change settings.")
    updated, before, after = checker.reconcile(desired, module.check_mode) if desired else ([], {}, {})
    models = checker.wait_model(params["expected_model"])
    result = {
        "changed": bool(updated),
        "url": client.url,
        "version": client.version(),
        "user": user,
        "models": models,
        "expected_model_listed": None if params["expected_model"] is None else params["expected_model"] in models,
        "settings": after,
        "updated": updated,
    }
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", default="http://127.0.0.1:8080"),
            email=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            settings=dict(type="dict", default={}),
            openai_api_keys=dict(type="list", elements="str", no_log=True),
            expected_model=dict(type="str"),
            wait_timeout=dict(type="int", default=120),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    for name in ("wait_timeout", "timeout"):
        if module.params[name] < 1:
            module.fail_json(msg=f"{name} must be at least 1 second (got {module.params[name]}).")
    run(module, Client(module.params["url"], module.params["timeout"]))


if __name__ == "__main__":
    main()
