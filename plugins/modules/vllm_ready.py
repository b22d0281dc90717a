#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vllm_ready
short_description: Wait until a vLLM container serves its model, and read its start-up phases from the log
version_added: 0.4.0
description:
  - Waits, bounded by O(timeout), until the vLLM server in a container is ready, in the order the workshop checks it,
    C(GET /health) answers 200, C(GET /v1/models) lists O(served_name), and a one-token completion
    (C(POST /v1/completions) with C(max_tokens=1)) answers 200.
  - Stops waiting as soon as the container is no longer running (vLLM exits on a failed start-up).
  - Reads the container's log (C(docker logs --timestamps), stdout and stderr merged in time order, only the current
    run of the container) and returns the start-up phases vLLM logs, loading the model (C(Model loading took)),
    torch.compile (C(torch.compile takes)), CUDA graph capture (C(Graph capturing finished in)), engine init, and the
    total from the container's start to C(Application startup complete.). It says whether the compile was done, loaded
    from the compile cache (C(Directly load the compiled graph(s))) or off (compilation level 0 or eager mode).
  - When vLLM is not ready it returns the failure's kind and hint (NVML or no NVIDIA runtime, memory, tiktoken
    encodings, a model missing from the cache, the port in use, a timeout), the exception lines and the last lines of
    the log. It does not fail for that; the caller decides (see RV(ready)).
  - Never changes anything.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
  - jetson_thor.workshop._attributes.INFO_MODULE
options:
  container:
    description:
      - The name or ID of the vLLM container, on the host's Docker engine.
    type: str
    required: true
  served_name:
    description:
      - The model ID C(/v1/models) must list (the C(vllm serve) model, or C(--served-model-name)).
    type: str
    required: true
  url:
    description:
      - The server's base URL, without C(/v1).
    type: str
    default: http://127.0.0.1:8000
  api_key:
    description:
      - The server's API key (C(--api-key)), sent as C(Authorization Bearer) to C(/v1/models) and C(/v1/completions).
    type: str
  timeout:
    description:
      - Seconds to wait for readiness; V(0) probes once.
    type: int
    default: 600
  interval:
    description:
      - Seconds between two probes.
    type: float
    default: 2.0
  request_timeout:
    description:
      - Seconds one HTTP request or one C(docker) command may take.
    type: int
    default: 30
  log_lines:
    description:
      - How many of the log's last lines to return in RV(log_tail).
    type: int
    default: 20
  docker:
    description:
      - The C(docker) command. Defaults to the one on the C(PATH).
    type: path
requirements:
  - The C(docker) command on the managed host, and access to its engine (run as root).
  - Python 3 standard library on the managed host.
notes:
  - The log phases are those of vLLM 0.10.1 (C(nvcr.io/nvidia/vllm:25.09-py3)); the vLLM twin prints the same lines.
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - module: community.docker.docker_container
  - name: vLLM OpenAI-compatible server
    description: The C(/health), C(/v1/models) and C(/v1/completions) endpoints.
    link: https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html
"""

EXAMPLES = r"""
- name: Wait until the stage is served, at most 10 minutes
  jetson_thor.workshop.vllm_ready:
    container: vllm
    served_name: nvidia/Llama-3.1-8B-Instruct-FP8
    timeout: 600
  register: __vllm_ready

- name: Fail with the hint and the log when it is not ready
  ansible.builtin.assert:
    that: __vllm_ready.ready
    fail_msg: >-
      {{ __vllm_ready.reason }}. Hint: {{ __vllm_ready.failure.hint }}.
      Log: {{ __vllm_ready.log_tail[-5:] | join(' / ') }}

- name: Probe once (is the running stage still ready?)
  jetson_thor.workshop.vllm_ready:
    container: vllm
    served_name: openai/gpt-oss-120b
    api_key: "{{ vllm_stage_api_key }}"
    timeout: 0
  register: __vllm_now
"""

RETURN = r"""
ready:
  description: Whether C(/health), C(/v1/models) and the one-token completion all answered as expected.
  returned: always
  type: bool
  sample: true
reason:
  description: Why it is not ready (V(null) when it is).
  returned: always
  type: str
  sample: the container exited (exit code 1) before vLLM was ready
checks:
  description: The last probe's results.
  returned: always
  type: dict
  contains:
    health:
      description: The HTTP status of C(/health), or V(null) when the server did not answer.
      type: int
    models:
      description: Whether C(/v1/models) listed O(served_name).
      type: bool
    completion:
      description: Whether the one-token completion answered 200 with a choice.
      type: bool
  sample: {health: 200, models: true, completion: true}
models:
  description: The model IDs C(/v1/models) listed.
  returned: always
  type: list
  elements: str
  sample: [nvidia/Llama-3.1-8B-Instruct-FP8]
container:
  description: The container as C(docker inspect) saw it at the end (V(null) when it does not exist).
  returned: always
  type: dict
  sample: {id: 3f2a..., status: running, running: true, exit_code: 0, started_at: "2026-12-02T14:01:02.123456789Z",
           image: "nvcr.io/nvidia/vllm:25.09-py3"}
phases:
  description: Start-up phases from the log, in seconds (V(null) when the log does not show one).
  returned: always
  type: dict
  contains:
    load_s:
      description: Loading the model (and the EAGLE3 draft), C(Model loading took).
      type: float
    compile_s:
      description: torch.compile, summed over the compiled modules.
      type: float
    graphs_s:
      description: CUDA graph capture.
      type: float
    engine_init_s:
      description: Engine init (profile, KV cache, warm-up; includes compile and graphs).
      type: float
    total_s:
      description: From the container's start to C(Application startup complete.).
      type: float
    compile:
      description: V(compiled) (compiled now), V(from_cache) (loaded from the compile cache) or V(off) (no torch.compile).
      type: str
    compile_skipped:
      description: Whether no graph was compiled (loaded from the cache, or compile off).
      type: bool
    startup_complete:
      description: Whether the log shows C(Application startup complete.).
      type: bool
  sample: {load_s: 24.7, compile_s: 5.1, graphs_s: 21.0, engine_init_s: 31.2, total_s: 62.3, compile: from_cache,
           compile_skipped: true, startup_complete: true}
phases_text:
  description: The phases in one line, for reports.
  returned: always
  type: str
  sample: load 24.7 s, compile 5.1 s (from cache), graphs 21 s, total 62.3 s
failure:
  description: What the failure is when not ready, V(null) otherwise.
  returned: always
  type: dict
  contains:
    kind:
      description: V(runtime), V(memory), V(encodings), V(model), V(port), V(image), V(timeout), V(exited) or V(missing).
      type: str
    hint:
      description: What to do about it.
      type: str
    evidence:
      description: The log line that shows it (V(null) when the kind comes from the container's state).
      type: str
errors:
  description: The last exception lines of the log (C(SomethingError... text)), prefixes removed.
  returned: always
  type: list
  elements: str
log_tail:
  description: The last O(log_lines) lines of the log (current run), ANSI codes removed.
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the module waited.
  returned: always
  type: float
"""

import json
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _vllm_stage as vs
from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import run_bounded

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(url, timeout, api_key=None, body=None):
    """(status or None, parsed JSON body or None)."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return None, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def probe(params):
    base = params["url"].rstrip("/")
    timeout = params["request_timeout"]
    checks = {"health": None, "models": False, "completion": False}
    checks["health"] = http(base + "/health", timeout)[0]
    models = []
    if checks["health"] == 200:
        status, body = http(base + "/v1/models", timeout, params["api_key"])
        if status == 200 and isinstance(body, dict):
            models = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
        checks["models"] = params["served_name"] in models
    if checks["models"]:
        status, body = http(
            base + "/v1/completions",
            timeout,
            params["api_key"],
            {"model": params["served_name"], "prompt": "Hello", "max_tokens": 1, "temperature": 0},
        )
        checks["completion"] = status == 200 and isinstance(body, dict) and bool(body.get("choices"))
    return checks, models


def inspect(module, docker, name, timeout):
    result = run_bounded(module, [docker, "inspect", "--type", "container", name], timeout)
    if not result.ok:
        if "No such" in result.output or "no such" in result.output:
            return None, None
        return None, result.describe(timeout)
    try:
        data = json.loads(result.stdout)[0]
    except (ValueError, IndexError):
        return None, f"docker inspect {name} printed no container"
    state = data.get("State") or {}
    return {
        "id": data.get("Id"),
        "name": (data.get("Name") or "").lstrip("/"),
        "status": state.get("Status"),
        "running": bool(state.get("Running")) and not state.get("Restarting"),
        "exit_code": state.get("ExitCode"),
        "started_at": state.get("StartedAt"),
        "finished_at": state.get("FinishedAt"),
        "image": (data.get("Config") or {}).get("Image"),
    }, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            served_name=dict(type="str", required=True),
            url=dict(type="str", default="http://127.0.0.1:8000"),
            api_key=dict(type="str", no_log=True),
            timeout=dict(type="int", default=600),
            interval=dict(type="float", default=2.0),
            request_timeout=dict(type="int", default=30),
            log_lines=dict(type="int", default=20),
            docker=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for key in ("timeout", "log_lines"):
        if p[key] < 0:
            module.fail_json(msg=f"{key} must be 0 or more, got {p[key]}.")
    if p["interval"] <= 0 or p["request_timeout"] <= 0:
        module.fail_json(msg="interval and request_timeout must be more than 0.")
    docker = p["docker"] or module.get_bin_path("docker", required=True)
    name = p["container"]

    start = time.monotonic()
    deadline = start + p["timeout"]
    ready, reason, kind = False, None, None
    checks, models, container = {"health": None, "models": False, "completion": False}, [], None
    while True:
        container, error = inspect(module, docker, name, p["request_timeout"])
        if error:
            reason, kind = f"cannot read the container {name}: {error}", "exited"
            break
        if container is None:
            reason, kind = f"there is no container {name}", "missing"
            break
        if not container["running"]:
            reason = f"the container {name} exited (exit code {container['exit_code']}) before vLLM was ready"
            kind = "exited"
            break
        checks, models = probe(p)
        if checks["health"] == 200 and checks["models"] and checks["completion"]:
            ready = True
            break
        if time.monotonic() >= deadline:
            if checks["health"] != 200:
                last = f"/health answered {checks['health']}" if checks["health"] else "the server did not answer"
            elif not checks["models"]:
                last = f"/v1/models lists {', '.join(map(str, models)) or 'nothing'}, not {p['served_name']}"
            else:
                last = "the one-token completion failed"
            reason = f"vLLM was not ready within {p['timeout']} s ({last})"
            kind = "timeout"
            break
        time.sleep(max(0.0, min(p["interval"], deadline - time.monotonic())))
    elapsed = round(time.monotonic() - start, 2)

    lines = []
    started = vs.parse_time(container["started_at"]) if container else None
    if container:
        argv = [docker, "logs", "--timestamps"]
        if container.get("started_at"):
            argv += ["--since", container["started_at"]]
        logs = run_bounded(module, [*argv, name], p["request_timeout"])
        if logs.rc == 0:
            lines = vs.merge_logs(logs.stdout, logs.stderr)
    texts = [text for _when, text in lines if text.strip()]
    phases = vs.phases(lines, started)

    failure = None
    if not ready:
        found, evidence = vs.classify(texts)
        if found is None and reason:
            found, evidence = vs.classify(reason)
        failure = {"kind": found or kind, "hint": vs.hint(found or kind), "evidence": evidence}
    module.exit_json(
        changed=False,
        ready=ready,
        reason=reason,
        checks=checks,
        models=[m for m in models if m is not None],
        container=container,
        phases=phases,
        phases_text=vs.describe_phases(phases),
        failure=failure,
        errors=vs.error_lines(texts),
        log_tail=texts[-p["log_lines"] :] if p["log_lines"] else [],
        elapsed=elapsed,
    )


if __name__ == "__main__":
    main()
