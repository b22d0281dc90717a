from __future__ import annotations

import json
import os
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.jetson_thor.workshop.plugins.modules import docker_restart

# systemctl as a small state machine in a JSON file. `limit_hit: true` makes every start fail with
# start-limit-hit until `reset-failed` (systemd's StartLimitBurst reached); `broken: true` makes every start fail.
FAKE_SYSTEMCTL = """#!{python}
import json, sys

STATE = {state!r}
with open(STATE) as handle:
    state = json.load(handle)
args = sys.argv[1:]
state["calls"].append(args)
out, err, rc = "", "", 0
if args[0] == "show":
    out = "ActiveState={{ActiveState}}\\nResult={{Result}}\\nNRestarts={{NRestarts}}\\n".format(**state)
elif args[0] in ("restart", "start"):
    if state.get("hang"):
        import time
        time.sleep(60)
    if state.get("crashes"):
        # Starts, then dockerd exits (a daemon.json it rejects at start, for example).
        state["ActiveState"], state["Result"] = "failed", "exit-code"
    elif state.get("limit_hit") or state.get("broken"):
        state["ActiveState"] = "failed"
        state["Result"] = "start-limit-hit" if state.get("limit_hit") else "exit-code"
        err = "Job for docker.service failed.\\nSee \\"systemctl status docker.service\\" for details.\\n"
        rc = 1
    else:
        state["ActiveState"], state["Result"] = "active", "success"
elif args[0] == "reset-failed":
    state["limit_hit"] = False
    if state["ActiveState"] == "failed":
        state["ActiveState"] = "inactive"
    state["Result"] = "success"
with open(STATE, "w") as handle:
    json.dump(state, handle)
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
"""

FAKE_JOURNALCTL = """#!{python}
import sys
args = sys.argv[1:]
lines = int(args[args.index("-n") + 1])
for i in range(1, lines + 1):
    print(f"dockerd line {{i}}")
"""


class FakeSystemd:
    def __init__(self, path):
        self.path = path

    def read(self):
        return json.loads(self.path.read_text())

    def set(self, **values):
        state = self.read()
        state.update(values)
        self.path.write_text(json.dumps(state))

    @property
    def calls(self):
        return list(self.read()["calls"])

    def changes(self):
        return [c for c in self.calls if c[0] != "show"]


@pytest.fixture
def systemd(monkeypatch, tmp_path_factory):
    bindir = tmp_path_factory.mktemp("bin")
    state = tmp_path_factory.mktemp("state") / "systemd.json"
    state.write_text(json.dumps({"ActiveState": "active", "Result": "success", "NRestarts": 0, "calls": []}))
    for name, template in (("systemctl", FAKE_SYSTEMCTL), ("journalctl", FAKE_JOURNALCTL)):
        script = bindir / name
        script.write_text(template.format(python=sys.executable, state=str(state)))
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    real = docker_restart.AnsibleModule.get_bin_path

    def only_fakes(self, arg, required=False, opt_dirs=None):
        # Never the unit's real systemctl: only the fakes are found.
        if arg in ("systemctl", "journalctl"):
            return str(bindir / arg)
        return real(self, arg, required=required, opt_dirs=opt_dirs)

    monkeypatch.setattr(docker_restart.AnsibleModule, "get_bin_path", only_fakes)
    return FakeSystemd(state)


class _EngineHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        up = self.server.systemd.read()["ActiveState"] == "active"
        if not up:
            self.send_error(503)
            return
        self.server.requests.append(self.path)
        if self.path == "/_ping":
            body, kind = b"OK", "text/plain"
        elif self.path == "/version":
            body, kind = json.dumps({"Version": "28.2.2", "ApiVersion": "1.50"}).encode(), "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

    def address_string(self):
        return "unix"


class _EngineServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine(systemd, tmp_path_factory):
    """A fake Docker engine on a unix socket that answers while the fake service is active."""
    path = str(tmp_path_factory.mktemp("run") / "docker.sock")
    server = _EngineServer(path, _EngineHandler)
    server.systemd = systemd
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server, f"unix://{path}"
    server.shutdown()
    server.server_close()


def _args(host, **extra):
    args = {"docker_host": host, "delay": 0, "timeout": 20}
    args.update(extra)
    return args


def test_normal_restart(run_module, systemd, engine):
    server, host = engine
    result = run_module(docker_restart.main, _args(host))
    assert result["_rc"] == 0
    assert result["changed"] is True
    assert result["running"] is True
    assert result["attempts"] == 1
    assert result["start_limit_reset"] is True
    assert result["server_version"] == "28.2.2"
    assert result["before"] == {"active_state": "active", "result": "success", "n_restarts": 0}
    assert 0 <= result["elapsed"] < 20
    assert systemd.calls == [
        ["show", "-p", "ActiveState,Result,NRestarts", "docker"],
        ["reset-failed", "docker", "docker.socket"],
        ["restart", "docker"],
    ]
    assert "/_ping" in server.requests


def test_start_limit_hit_then_success_after_reset_failed(run_module, systemd, engine):
    _server, host = engine
    # Three restarts by hand just before: the unit is active, but the next start is refused until reset-failed.
    systemd.set(limit_hit=True)
    result = run_module(docker_restart.main, _args(host))
    assert result["_rc"] == 0
    assert result["attempts"] == 1
    assert result["start_limit_reset"] is True
    assert result["running"] is True
    assert systemd.changes() == [["reset-failed", "docker", "docker.socket"], ["restart", "docker"]]


def test_a_unit_already_at_its_start_limit_is_reset_first(run_module, systemd, engine):
    _server, host = engine
    systemd.set(ActiveState="failed", Result="start-limit-hit", limit_hit=True)
    result = run_module(docker_restart.main, _args(host, socket=""))
    assert result["attempts"] == 1
    assert result["start_limit_reset"] is True
    assert result["before"]["result"] == "start-limit-hit"
    assert systemd.changes() == [["reset-failed", "docker"], ["restart", "docker"]]


def test_a_service_that_never_starts_fails_with_the_reason_journal_and_way_back(run_module, systemd, engine):
    _server, host = engine
    systemd.set(broken=True)
    result = run_module(docker_restart.main, _args(host, attempts=2))
    assert result["failed"] is True
    assert result["msg"].startswith("docker.service did not start: exit-code")
    assert "(2 attempts," in result["msg"]
    assert "sudo systemctl reset-failed docker; sudo systemctl start docker; journalctl -u docker" in result["msg"]
    assert result["journal"] == [f"dockerd line {i}" for i in range(1, 21)]
    assert result["running"] is False
    assert result["attempts"] == 2
    # Each attempt resets the unit first.
    assert systemd.changes() == [["reset-failed", "docker", "docker.socket"], ["restart", "docker"]] * 2


def test_start_limit_hit_on_every_attempt_is_named(run_module, systemd, engine, monkeypatch):
    _server, host = engine
    systemd.set(limit_hit=True)
    # reset-failed that does not help (something else keeps restarting Docker and hitting the limit).
    monkeypatch.setattr(docker_restart.Restart, "systemctl_run", _keep_limit(docker_restart.Restart.systemctl_run, systemd))
    result = run_module(docker_restart.main, _args(host, attempts=3))
    assert result["failed"] is True
    assert result["msg"].startswith("docker.service did not start: start-limit-hit")
    assert result["attempts"] == 3


def _keep_limit(run, systemd):
    def wrapper(self, *args, **kwargs):
        answer = run(self, *args, **kwargs)
        if args and args[0] == "reset-failed":
            systemd.set(limit_hit=True)
        return answer

    return wrapper


def test_a_service_that_dies_while_waiting_is_retried_then_named(run_module, systemd, engine, monkeypatch):
    _server, host = engine
    monkeypatch.setattr(docker_restart, "_STATE_EVERY", 0.2)
    systemd.set(crashes=True)
    start = time.monotonic()
    result = run_module(docker_restart.main, _args(host, attempts=2))
    assert time.monotonic() - start < 10
    assert result["failed"] is True
    assert result["msg"].startswith("docker.service did not stay up: failed (exit-code)")
    assert result["attempts"] == 2
    assert systemd.changes() == [["reset-failed", "docker", "docker.socket"], ["restart", "docker"]] * 2


def test_engine_never_answers(run_module, systemd, tmp_path):
    host = f"unix://{tmp_path / 'nobody-listens.sock'}"
    start = time.monotonic()
    result = run_module(docker_restart.main, _args(host, timeout=2))
    took = time.monotonic() - start
    assert result["failed"] is True
    assert result["msg"].startswith("the engine did not answer /_ping within 2 s")
    assert "journalctl -u docker" in result["msg"]
    assert len(result["journal"]) == 20
    assert result["running"] is False
    assert result["server_version"] is None
    assert 2 <= took < 10


def test_a_hanging_systemctl_is_bounded(run_module, systemd, engine):
    _server, host = engine
    systemd.set(hang=True)
    start = time.monotonic()
    result = run_module(docker_restart.main, _args(host, timeout=2))
    assert time.monotonic() - start < 10
    assert result["failed"] is True
    assert result["msg"].startswith("`systemctl restart docker` did not finish within 2 s")


@pytest.mark.parametrize(
    ("state", "active", "changed"),
    [("restarted", "active", True), ("started", "active", False), ("started", "inactive", True), ("restarted", "failed", True)],
)
def test_check_mode_runs_nothing(run_module, systemd, engine, state, active, changed):
    _server, host = engine
    systemd.set(ActiveState=active)
    result = run_module(docker_restart.main, _args(host, state=state, _ansible_check_mode=True))
    assert result["changed"] is changed
    assert result["attempts"] == 0
    assert result["running"] is (active == "active")
    assert systemd.changes() == []


def test_started_starts_only_when_not_active(run_module, systemd, engine):
    _server, host = engine
    result = run_module(docker_restart.main, _args(host, state="started"))
    assert result["changed"] is False
    assert result["running"] is True
    assert result["server_version"] == "28.2.2"
    assert systemd.changes() == []
    systemd.set(ActiveState="inactive", Result="success")
    result = run_module(docker_restart.main, _args(host, state="started"))
    assert result["changed"] is True
    assert result["attempts"] == 1
    assert systemd.changes() == [["reset-failed", "docker", "docker.socket"], ["start", "docker"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"timeout": 0}, "timeout must be at least 1"),
        ({"attempts": 0}, "attempts must be at least 1"),
        ({"docker_host": "ssh://thor-01"}, "neither unix:///path nor tcp://host:port"),
    ],
)
def test_bad_options_fail_before_anything_runs(run_module, systemd, args, message):
    result = run_module(docker_restart.main, {"delay": 0, **args})
    assert result["failed"] is True
    assert message in result["msg"]
    assert systemd.calls == []
