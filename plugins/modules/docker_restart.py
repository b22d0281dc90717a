#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_restart
short_description: Restart the Docker engine through systemd and wait until it answers
version_added: 0.2.0
description:
  - Restart the Docker engine through systemd and wait until it answers; clears systemd's start limit; bounded in time.
  - Reads the service's state with C(systemctl show -p ActiveState,Result,NRestarts). Before each start attempt it runs
    C(systemctl reset-failed) on the service and O(socket), which clears a failed state and systemd's count of recent
    starts. On Debian and Ubuntu C(docker.service) allows three starts in 60 seconds (C(StartLimitBurst=3),
    C(StartLimitIntervalSec=60s)), so a few restarts by hand just before would make the next one fail with
    C(Start request repeated too quickly), although the service looks C(active) until then.
  - Runs C(systemctl restart) (or C(systemctl start), see O(state)), then asks the engine C(GET /_ping) on O(docker_host)
    until it answers C(OK), and reads its version from C(GET /version). A start that fails is tried again, up to
    O(attempts) times, O(delay) seconds apart.
  - The whole operation is bounded by O(timeout). Every command runs with the time that is left and is killed with its
    whole process group when that runs out.
  - >-
    When the engine does not come back the module fails, saying what happened (for example
    C(docker.service did not start: start-limit-hit) or C(the engine did not answer /_ping within 120 s)), with the last
    lines of the service's journal in RV(journal) and the way back
    (C(sudo systemctl reset-failed docker; sudo systemctl start docker; journalctl -u docker)).
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module only reads the service's state (C(systemctl show)) and asks the engine C(/_ping) once.
        It reports C(changed=true) for O(state=restarted), and for O(state=started) when the service is not active.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: O(state=started) is idempotent; O(state=restarted) restarts the engine on every run.
options:
  service:
    description:
      - The systemd service that runs dockerd.
    type: str
    default: docker
  socket:
    description:
      - The socket unit that activates O(service); its failed state is reset together with the service's.
      - An empty string skips it.
    type: str
    default: docker.socket
  state:
    description:
      - V(restarted) restarts the service whatever its state.
      - V(started) starts it only when it is not active. Either way the module waits until the engine answers.
    type: str
    choices: [restarted, started]
    default: restarted
  timeout:
    description:
      - Seconds the whole operation may take (every attempt, the delays and the wait for the engine), at least 1.
      - Reading the journal after a failure may take up to 10 seconds more.
    type: int
    default: 120
  attempts:
    description:
      - How many times to start the service before giving up, at least 1.
    type: int
    default: 3
  delay:
    description:
      - Seconds to wait between attempts.
    type: int
    default: 5
  docker_host:
    description:
      - Where the engine listens, as in C(DOCKER_HOST). V(unix:///path) or V(tcp://host:port) (plain HTTP, no TLS).
    type: str
    default: unix:///var/run/docker.sock
requirements:
  - systemd (C(systemctl), and C(journalctl) for the journal on failure) on the managed host. Run as root.
  - Python 3 standard library on the managed host.
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - module: jetson_thor.workshop.docker_daemon_json
  - module: ansible.builtin.systemd_service
  - name: systemd.unit, StartLimitIntervalSec= and StartLimitBurst=
    description: The start rate limit that C(systemctl reset-failed) clears.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.unit.html#StartLimitIntervalSec=interval
"""

EXAMPLES = r"""
- name: Restart Docker after a daemon.json change and wait until it answers
  jetson_thor.workshop.docker_restart:
    timeout: 120
  register: __docker_restart

- name: After a reboot, make sure the engine runs and answers (start it only if it is not active)
  jetson_thor.workshop.docker_restart:
    state: started
    timeout: 300

- name: Restart, judging the result in a later task
  jetson_thor.workshop.docker_restart:
    attempts: 2
    delay: 10
  register: __docker_restart
  failed_when: false

- name: Show the journal when Docker did not come back
  ansible.builtin.debug:
    var: __docker_restart.journal
  when: not __docker_restart.running
"""

RETURN = r"""
running:
  description: Whether the engine answered C(/_ping) at the end (in check mode, whether it answers now).
  returned: always
  type: bool
  sample: true
attempts:
  description: How many start attempts were made (V(0) when none was needed, and in check mode).
  returned: always
  type: int
  sample: 1
start_limit_reset:
  description: Whether C(systemctl reset-failed) ran (before every start attempt; V(false) when no start was needed).
  returned: always
  type: bool
  sample: false
elapsed:
  description: Seconds the operation took.
  returned: always
  type: float
  sample: 3.2
server_version:
  description: The engine's version from C(GET /version), or V(null) when the engine did not answer.
  returned: always
  type: str
  sample: "28.2.2"
before:
  description: The service's state before the module, from C(systemctl show).
  returned: always
  type: dict
  sample: {active_state: active, result: success, n_restarts: 0}
  contains:
    active_state:
      description: C(ActiveState), for example V(active), V(inactive) or V(failed).
      type: str
      sample: active
    result:
      description: C(Result), for example V(success), V(exit-code) or V(start-limit-hit).
      type: str
      sample: success
    n_restarts:
      description: C(NRestarts), how often systemd restarted the service by itself.
      type: int
      sample: 0
journal:
  description: The last 20 lines of the service's journal (C(journalctl -u <service> -n 20 -o cat)).
  returned: failure
  type: list
  elements: str
  sample: ["failed to start daemon: Error initializing network controller", "docker.service: Failed with result 'exit-code'."]
"""

import http.client
import json
import re
import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import format_seconds, run_bounded

JOURNAL_LINES = 20
JOURNAL_SECONDS = 10
# How long one HTTP request to the engine may take, and the pause between two /_ping.
_REQUEST_SECONDS = 5
_PING_PAUSE = 0.5
# How often systemd is asked, while waiting for /_ping, whether the service is still up.
_STATE_EVERY = 2.0
_HOST_RE = re.compile(r"^(?:(?P<unix>unix://)(?P<path>/.+)|(?:tcp|http)://(?P<host>[^:/]+)(?::(?P<port>\d+))?/?)$")


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (what the docker CLI does with unix:///var/run/docker.sock)."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Engine:
    """The Docker engine's HTTP API at docker_host."""

    def __init__(self, docker_host):
        match = _HOST_RE.match(docker_host)
        if not match:
            raise ValueError(docker_host)
        self.path = match.group("path")
        self.host = match.group("host")
        self.port = int(match.group("port") or 2375)

    def get(self, path, timeout):
        if self.path:
            conn = _UnixHTTPConnection(self.path, timeout)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read(65536)
        finally:
            conn.close()

    def ping(self, timeout):
        try:
            status, body = self.get("/_ping", timeout)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200 and body.strip() == b"OK"

    def version(self, timeout):
        try:
            status, body = self.get("/version", timeout)
            return json.loads(body).get("Version") if status == 200 else None
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            return None


class Restart:
    def __init__(self, module):
        self.module = module
        params = module.params
        self.service = params["service"]
        self.unit = self.service if "." in self.service else self.service + ".service"
        self.socket = params["socket"]
        self.timeout = params["timeout"]
        self.start = time.monotonic()
        self.deadline = self.start + self.timeout
        self.engine = Engine(params["docker_host"])
        self.systemctl = module.get_bin_path("systemctl", required=True)
        self.attempts = 0
        self.start_limit_reset = False

    def remaining(self):
        return self.deadline - time.monotonic()

    def elapsed(self):
        return round(time.monotonic() - self.start, 1)

    def systemctl_run(self, *args, bound=None):
        bound = max(self.remaining(), 1.0) if bound is None else bound
        return run_bounded(self.module, [self.systemctl, *args], bound)

    def show(self):
        result = self.systemctl_run("show", "-p", "ActiveState,Result,NRestarts", self.service)
        values = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
        restarts = values.get("NRestarts", "")
        return {
            "active_state": values.get("ActiveState") or None,
            "result": values.get("Result") or None,
            "n_restarts": int(restarts) if restarts.isdigit() else None,
        }

    def sleep(self, seconds):
        time.sleep(max(0.0, min(seconds, self.remaining())))

    def wait_for_engine(self):
        """Poll /_ping until OK (True), the service stops being up (its state), or the time is up (None)."""
        last_state_check = time.monotonic()
        while True:
            left = self.remaining()
            if left <= 0:
                return None
            if self.engine.ping(min(left, _REQUEST_SECONDS)):
                return True
            if time.monotonic() - last_state_check >= _STATE_EVERY:
                last_state_check = time.monotonic()
                state = self.show()
                if state["active_state"] in ("failed", "inactive"):
                    return state
            self.sleep(_PING_PAUSE)

    def journal(self):
        binary = self.module.get_bin_path("journalctl")
        if binary is None:
            return []
        argv = [binary, "-u", self.service, "--no-pager", "-n", str(JOURNAL_LINES), "-o", "cat"]
        result = run_bounded(self.module, argv, JOURNAL_SECONDS)
        return result.stdout.splitlines()[-JOURNAL_LINES:]

    def run(self, verb, attempts, delay):
        """Start the service up to ``attempts`` times; return None on success, else what happened."""
        problem = None
        for attempt in range(1, attempts + 1):
            if self.remaining() <= 0:
                break
            self.attempts = attempt
            # Always: a unit that is active can still have spent its start budget (three restarts by hand in the
            # last minute), and `systemctl show` does not tell; reset-failed clears the count and a failed state.
            units = [self.service, self.socket] if self.socket else [self.service]
            self.systemctl_run("reset-failed", *units)
            self.start_limit_reset = True
            result = self.systemctl_run(verb, self.service)
            if result.timed_out:
                return (
                    f"`systemctl {verb} {self.service}` did not finish within {format_seconds(self.timeout)} s "
                    "(the timeout option bounds the whole operation)"
                )
            if result.rc != 0:
                after = self.show()
                reason = after["result"] if after["result"] not in (None, "success") else f"systemctl rc {result.rc}"
                said = " ".join(result.output.split())
                problem = f"{self.unit} did not start: {reason}" + (f" (systemctl: {said})" if said else "")
                if attempt < attempts:
                    self.sleep(delay)
                continue
            answer = self.wait_for_engine()
            if answer is True:
                return None
            if answer is None:
                return f"the engine did not answer /_ping within {format_seconds(self.timeout)} s"
            problem = f"{self.unit} did not stay up: {answer['active_state']} ({answer['result']})"
            if attempt < attempts:
                self.sleep(delay)
        if problem is None:
            problem = f"no time was left to start {self.unit} within {format_seconds(self.timeout)} s"
        return problem


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type="str", default="docker"),
            socket=dict(type="str", default="docker.socket"),
            state=dict(type="str", choices=["restarted", "started"], default="restarted"),
            timeout=dict(type="int", default=120),
            attempts=dict(type="int", default=3),
            delay=dict(type="int", default=5),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for name, low in (("timeout", 1), ("attempts", 1), ("delay", 0)):
        if params[name] < low:
            module.fail_json(msg=f"{name} must be at least {low}, got {params[name]}.")
    if not params["service"]:
        module.fail_json(msg="service must name a systemd service.")
    try:
        restart = Restart(module)
    except ValueError:
        module.fail_json(msg=f"docker_host {params['docker_host']!r} is neither unix:///path nor tcp://host:port.")

    before = restart.show()
    active = before["active_state"] == "active"
    result = {
        "changed": False,
        "running": False,
        "attempts": 0,
        "start_limit_reset": False,
        "elapsed": 0.0,
        "server_version": None,
        "before": before,
    }

    if module.check_mode:
        result["changed"] = params["state"] == "restarted" or not active
        result["running"] = restart.engine.ping(min(2.0, max(restart.remaining(), 0.1)))
        if result["running"]:
            result["server_version"] = restart.engine.version(min(2.0, max(restart.remaining(), 0.1)))
        result["elapsed"] = restart.elapsed()
        module.exit_json(**result)

    if params["state"] == "started" and active:
        answer = restart.wait_for_engine()
        problem = None if answer is True else f"the engine did not answer /_ping within {format_seconds(restart.timeout)} s"
        if answer not in (True, None):
            problem = f"{restart.unit} did not stay up: {answer['active_state']} ({answer['result']})"
    else:
        result["changed"] = True
        verb = "restart" if params["state"] == "restarted" else "start"
        problem = restart.run(verb, params["attempts"], params["delay"])

    result.update(attempts=restart.attempts, start_limit_reset=restart.start_limit_reset)
    if problem is None:
        result["running"] = True
        result["server_version"] = restart.engine.version(max(min(restart.remaining(), _REQUEST_SECONDS), 1.0))
        result["elapsed"] = restart.elapsed()
        module.exit_json(**result)

    result["elapsed"] = restart.elapsed()
    service = params["service"]
    tries = f"{restart.attempts} attempt{'s' if restart.attempts != 1 else ''}"
    module.fail_json(
        msg=(
            f"{problem} ({tries}, {result['elapsed']:g} s). The way back on the unit: "
            f"sudo systemctl reset-failed {service}; sudo systemctl start {service}; journalctl -u {service}"
        ),
        journal=restart.journal(),
        **result,
    )


if __name__ == "__main__":
    main()
