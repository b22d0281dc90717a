# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: a small client for Open WebUI's HTTP API (health, sign-in, models, admin settings).
# Standard library only: this code runs on the units, which have no pip.
#
# Endpoints, as Open WebUI 0.12 serves them (open_webui/main.py, routers/auths.py, routers/openai.py, routers/ollama.py):
#   GET  /health                          {"status": true}
#   GET  /api/version                     {"version": "0.12.4", ...}
#   POST /api/v1/auths/signin             {email, password} -> {token, token_type, id, email, name, role, ...}
#   GET  /api/models                      {"data": [{"id": ..., ...}]}, filtered by the caller's model access
#   GET  /openai/config                   {ENABLE_OPENAI_API, OPENAI_API_BASE_URLS, OPENAI_API_KEYS, OPENAI_API_CONFIGS}
#   POST /openai/config/update            the same four fields
#   GET  /ollama/config                   {ENABLE_OLLAMA_API, OLLAMA_BASE_URLS, OLLAMA_API_CONFIGS}
#   POST /ollama/config/update            the same three fields
#   GET  /api/v1/auths/admin/config       {ENABLE_SIGNUP, DEFAULT_USER_ROLE, ...}
#   POST /api/v1/auths/admin/config       the whole form (unset fields keep their defaults)

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

# Settings the admin API reads and writes, by group. Any other key is an admin setting (/api/v1/auths/admin/config).
SETTING_GROUPS = {
    "openai": {
        "read": "/openai/config",
        "write": "/openai/config/update",
        "keys": ("ENABLE_OPENAI_API", "OPENAI_API_BASE_URLS", "OPENAI_API_KEYS", "OPENAI_API_CONFIGS"),
    },
    "ollama": {
        "read": "/ollama/config",
        "write": "/ollama/config/update",
        "keys": ("ENABLE_OLLAMA_API", "OLLAMA_BASE_URLS", "OLLAMA_API_CONFIGS"),
    },
    "admin": {
        "read": "/api/v1/auths/admin/config",
        "write": "/api/v1/auths/admin/config",
        "keys": None,
    },
}

# Values Open WebUI accepts for a setting; a value outside them it silently drops (routers/auths.py), so reject it here.
SETTING_CHOICES = {"DEFAULT_USER_ROLE": ("pending", "user", "admin")}

# Settings whose values are secrets: never returned, only whether each is set.
SECRET_SETTINGS = ("OPENAI_API_KEYS",)

INVALID_CREDENTIALS_HINT = (
    "Open WebUI creates the admin account from WEBUI_ADMIN_EMAIL and WEBUI_ADMIN_PASSWORD only on its first start, "
    "with no users in its database; a password changed in the inventory later does not change the account. "
    "Sign in with the old password and change it in Settings > Account, or remove the data volume to start over"
)


class OpenWebUIError(Exception):
    """A request that failed: the reason, and the HTTP status when there was an answer."""

    def __init__(self, msg, status=None, detail=None):
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.detail = detail


def group_of(key):
    for name, group in SETTING_GROUPS.items():
        if group["keys"] and key in group["keys"]:
            return name
    return "admin"


def masked(key, value):
    """A setting's value as it may be shown: secrets become '(set)' / '(empty)'."""
    if key in SECRET_SETTINGS:
        if isinstance(value, list):
            return ["(set)" if item else "(empty)" for item in value]
        return "(set)" if value else "(empty)"
    return value


def masked_settings(values):
    return {key: masked(key, value) for key, value in sorted(values.items())}


def check_setting_values(settings):
    """Problems with desired settings that Open WebUI would not report itself (it drops such values silently)."""
    problems = []
    for key, choices in SETTING_CHOICES.items():
        if key in settings and settings[key] not in choices:
            problems.append(f"{key} must be one of {', '.join(choices)} (got {settings[key]!r})")
    for key in ("OPENAI_API_BASE_URLS", "OPENAI_API_KEYS", "OLLAMA_BASE_URLS"):
        if key in settings and not isinstance(settings[key], list):
            problems.append(f"{key} must be a list (got {type(settings[key]).__name__})")
    return problems


def settings_diff(current, desired):
    """The keys of desired whose value differs from current (a missing key differs)."""
    return sorted(key for key, value in desired.items() if key not in current or current[key] != value)


def update_bodies(current_by_group, desired):
    """For each group with a difference, the body to POST: what Open WebUI has now, with the desired values on top.

    Fields Open WebUI reports as null are left out of the body, so that they keep their defaults (its forms reject an
    explicit null for some of them).
    """
    bodies = {}
    for name, current in current_by_group.items():
        wanted = {key: value for key, value in desired.items() if group_of(key) == name}
        if not settings_diff(current, wanted):
            continue
        body = {key: value for key, value in current.items() if value is not None}
        body.update(wanted)
        if name == "openai":
            body.setdefault("OPENAI_API_CONFIGS", {})
            body.setdefault("OPENAI_API_KEYS", [""] * len(body.get("OPENAI_API_BASE_URLS", [])))
        if name == "ollama":
            body.setdefault("OLLAMA_API_CONFIGS", {})
            body.setdefault("OLLAMA_BASE_URLS", [])
        bodies[name] = body
    return bodies


def _detail(payload):
    if isinstance(payload, dict):
        detail = payload.get("detail", payload.get("error", payload))
        if isinstance(detail, list):  # FastAPI's validation errors
            return "; ".join(
                f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg')}" if isinstance(item, dict) else str(item)
                for item in detail
            )
        if isinstance(detail, dict):
            return detail.get("message") or json.dumps(detail, sort_keys=True)
        return str(detail)
    return str(payload)[:300]


class Client:
    """Open WebUI's API at url (for example http://127.0.0.1:8080), each request bounded by timeout seconds."""

    def __init__(self, url, timeout, opener=None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token = None
        # Only the unit's own service is reached: no proxy from the environment applies.
        self._opener = opener or urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method, path, body=None, token=None):
        """(status, payload): payload is the decoded JSON answer, or the text when it is not JSON."""
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        token = token or self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OpenWebUIError(f"{method} {self.url}{path}: {reason}") from None
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def call(self, method, path, body=None, token=None):
        """The decoded answer of a request that must succeed (2xx); anything else raises OpenWebUIError."""
        status, payload = self.request(method, path, body=body, token=token)
        if not 200 <= status < 300:
            raise OpenWebUIError(f"{method} {path} answered {status}: {_detail(payload)}", status=status, detail=_detail(payload))
        return payload

    def healthy(self):
        """(True, None) when /health says {"status": true}, else (False, the reason)."""
        try:
            status, payload = self.request("GET", "/health")
        except OpenWebUIError as exc:
            return False, exc.msg
        if status == 200 and isinstance(payload, dict) and payload.get("status") is True:
            return True, None
        return False, f"GET /health answered {status}: {str(payload)[:200]}"

    def wait_healthy(self, deadline, interval=1.0, clock=time.monotonic, sleep=time.sleep):
        """Poll /health until it is healthy or the deadline passes; returns the last reason when it never was."""
        while True:
            ok, reason = self.healthy()
            if ok:
                return None
            if clock() + interval > deadline:
                return reason
            sleep(interval)

    def signin(self, email, password):
        user = self.call("POST", "/api/v1/auths/signin", {"email": email, "password": password})
        if not isinstance(user, dict) or not user.get("token"):
            raise OpenWebUIError(f"POST /api/v1/auths/signin answered without a token: {str(user)[:200]}")
        self.token = user["token"]
        return {key: user.get(key) for key in ("id", "email", "name", "role")}

    def version(self):
        try:
            payload = self.call("GET", "/api/version")
        except OpenWebUIError:
            return None
        return payload.get("version") if isinstance(payload, dict) else None

    def models(self, refresh=True):
        """The ids of the models the signed-in user may use, as Open WebUI lists them."""
        path = "/api/models" + ("?" + urllib.parse.urlencode({"refresh": "true"}) if refresh else "")
        payload = self.call("GET", path)
        data = payload.get("data") if isinstance(payload, dict) else payload
        if not isinstance(data, list):
            raise OpenWebUIError(f"GET /api/models answered without a model list: {str(payload)[:200]}")
        return [item.get("id") for item in data if isinstance(item, dict)]

    def read_group(self, name):
        payload = self.call("GET", SETTING_GROUPS[name]["read"])
        if not isinstance(payload, dict):
            raise OpenWebUIError(f"GET {SETTING_GROUPS[name]['read']} answered with {type(payload).__name__}, not settings")
        return payload

    def write_group(self, name, body):
        return self.call("POST", SETTING_GROUPS[name]["write"], body)
