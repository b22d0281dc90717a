from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import CommandResult
from ansible_collections.jetson_thor.workshop.plugins.modules import thor_info

FILES = {
    "/etc/nv_tegra_release": "# R38 (release), REVISION: 2.2, GCID: 42, BOARD: generic, EABI: aarch64, DATE: x\n",
    "/proc/device-tree/model": "NVIDIA Jetson AGX Thor Developer Kit\x00",
    "/proc/meminfo": "MemTotal: 128790528 kB\nMemFree: 120000000 kB\nMemAvailable: 121000000 kB\n",
}

COMMANDS = {
    "dpkg-query": (0, "38.2.2-20250925153837", ""),
    "nvpmodel": (0, "NV Power Mode: MAXN\n0\n", ""),
    "jetson_clocks": (0, "GPU MinFreq=1575000000 MaxFreq=1575000000 CurrentFreq=1575000000\n", ""),
    "docker": (
        0,
        json.dumps({"ServerVersion": "28.2.2", "DefaultRuntime": "nvidia", "Runtimes": {"nvidia": {}, "runc": {}}}),
        "",
    ),
}


TIMED_OUT = "timed out"


@pytest.fixture
def unit(monkeypatch, tmp_path):
    calls = []
    timeouts = []

    def fake_read(path):
        return FILES.get(path)

    def fake_bin(self, name, required=False, opt_dirs=None):
        return "/usr/bin/" + name if name in COMMANDS else None

    def fake_run(module, argv, timeout, data=None):
        calls.append(argv)
        timeouts.append(timeout)
        answer = COMMANDS[argv[0].rsplit("/", 1)[-1]]
        if answer == TIMED_OUT:
            return CommandResult(None, "", "", True, float(timeout), argv)
        return CommandResult(*answer, False, 0.1, argv)

    monkeypatch.setattr(thor_info, "_read", fake_read)
    monkeypatch.setattr(thor_info.AnsibleModule, "get_bin_path", fake_bin)
    monkeypatch.setattr(thor_info, "run_bounded", fake_run)
    return SimpleNamespace(calls=calls, timeouts=timeouts)


def test_reports_a_healthy_unit(run_module, unit, tmp_path):
    result = run_module(thor_info.main, {"data_path": str(tmp_path / "missing" / "data"), "user": "root"})
    thor = result["thor"]
    assert result["changed"] is False
    assert thor["l4t"]["version"] == "38.2.2"
    assert thor["l4t_core_version"] == "38.2.2-20250925153837"
    assert thor["model"] == "NVIDIA Jetson AGX Thor Developer Kit"
    assert thor["memory"]["total_gib"] == 122.82
    assert thor["power_mode"] == {"name": "MAXN", "id": 0}
    assert thor["clocks"]["pinned"] is True
    assert thor["docker"]["default_runtime"] == "nvidia"
    assert thor["docker"]["running"] is True
    # The disk probe climbs to the nearest existing parent of a missing content path.
    assert thor["disk"]["measured_path"] == str(tmp_path)
    assert thor["python_requests"] is (importlib.util.find_spec("requests") is not None)
    assert thor["user"]["exists"] is True
    assert "root" in thor["user"]["groups"]
    assert ["/usr/bin/nvpmodel", "-q"] in unit.calls
    assert set(unit.timeouts) == {30}
    assert thor["probe_errors"] == []
    assert thor["docker"]["timed_out"] is False


def test_missing_tools_are_null_not_failures(run_module, unit, monkeypatch):
    monkeypatch.setattr(thor_info.AnsibleModule, "get_bin_path", lambda *a, **k: None)
    monkeypatch.setattr(thor_info, "_read", lambda path: None)
    result = run_module(thor_info.main, {"user": "no-such-user-here"})
    thor = result["thor"]
    assert result.get("failed") is not True
    assert thor["l4t"] is None
    assert thor["power_mode"] is None
    assert thor["clocks"] is None
    assert thor["docker"]["installed"] is False
    assert thor["docker"]["running"] is False
    assert thor["docker"]["error"] is None
    assert thor["probe_errors"] == []
    assert thor["user"] == {"name": "no-such-user-here", "exists": False, "groups": []}


def test_docker_down_reports_the_error(run_module, unit, monkeypatch):
    monkeypatch.setitem(COMMANDS, "docker", (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."))
    thor = run_module(thor_info.main, {})["thor"]
    assert thor["docker"]["running"] is False
    assert "Cannot connect" in thor["docker"]["error"]


def test_reports_missing_python_requests(run_module, unit, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        thor_info.importlib.util, "find_spec", lambda name, *a: None if name == "requests" else real_find_spec(name, *a)
    )
    assert run_module(thor_info.main, {})["thor"]["python_requests"] is False


def test_docker_info_that_hangs_is_reported_not_waited_for(run_module, unit, monkeypatch):
    monkeypatch.setitem(COMMANDS, "docker", TIMED_OUT)
    thor = run_module(thor_info.main, {"timeout": 7})["thor"]
    assert thor["docker"]["running"] is False
    assert thor["docker"]["timed_out"] is True
    assert thor["docker"]["error"] == "docker info did not answer within 7 s"
    assert set(unit.timeouts) == {7}
    # The other probes still answered.
    assert thor["power_mode"] == {"name": "MAXN", "id": 0}
    assert thor["probe_errors"] == []


def test_probes_that_hang_or_fail_are_null_with_a_reason(run_module, unit, monkeypatch):
    monkeypatch.setitem(COMMANDS, "nvpmodel", TIMED_OUT)
    monkeypatch.setitem(COMMANDS, "jetson_clocks", (1, "", "jetson_clocks: must be run as root\n"))
    thor = run_module(thor_info.main, {})["thor"]
    assert thor["power_mode"] is None
    assert thor["clocks"] is None
    assert thor["l4t_core_version"] == "38.2.2-20250925153837"
    assert thor["probe_errors"] == [
        "`nvpmodel -q` did not answer within 30 s (killed)",
        "`jetson_clocks --show` failed (rc 1): jetson_clocks: must be run as root",
    ]


def test_commands_really_are_bounded(run_module, monkeypatch, tmp_path):
    """The real runner kills a probe that hangs (no fakes below thor_info's own lookups)."""
    slow = tmp_path / "nvpmodel"
    slow.write_text("#!/bin/sh\n/bin/sleep 60\n")
    slow.chmod(0o755)
    monkeypatch.setattr(thor_info, "_OPT_DIRS", [str(tmp_path)])
    monkeypatch.setenv("PATH", str(tmp_path))
    thor = run_module(thor_info.main, {"timeout": 1, "probe_docker": False})["thor"]
    assert thor["power_mode"] is None
    assert thor["probe_errors"] == ["`nvpmodel -q` did not answer within 1 s (killed)"]
    assert thor["docker"] is None


def test_primary_group_without_a_group_entry(run_module, unit, monkeypatch):
    entry = SimpleNamespace(pw_name="ghost", pw_gid=4242)
    monkeypatch.setattr(thor_info.pwd, "getpwnam", lambda name: entry)
    monkeypatch.setattr(thor_info.grp, "getgrall", lambda: [SimpleNamespace(gr_name="docker", gr_mem=["ghost"])])

    def no_group(gid):
        raise KeyError(f"getgrgid(): gid not found: {gid}")

    monkeypatch.setattr(thor_info.grp, "getgrgid", no_group)
    user = run_module(thor_info.main, {"user": "ghost"})["thor"]["user"]
    assert user == {"name": "ghost", "exists": True, "groups": ["4242", "docker"]}


@pytest.mark.parametrize(
    ("content", "valid", "error"),
    [
        (None, None, None),
        ('{"default-runtime": "nvidia", "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}', True, None),
        ("", True, None),
        ('{\n    "runtimes": {}\n    "default-runtime": "runc"\n}\n', False, "Expecting ',' delimiter at line 3, column 5"),
        ('{"default-runtime": "nvidia"}', False, '"default-runtime" is "nvidia" but "runtimes" does not declare it'),
        ('{"runtimes": ["nvidia"]}', False, '"runtimes" is a JSON list'),
        ("[]", False, "the top level is a JSON list"),
    ],
)
def test_daemon_json_is_checked_before_anything_changes(run_module, unit, tmp_path, content, valid, error):
    path = tmp_path / "daemon.json"
    if content is not None:
        path.write_text(content)
    state = run_module(thor_info.main, {"daemon_json_path": str(path)})["thor"]["docker"]["daemon_json"]
    assert state["path"] == str(path)
    assert state["exists"] is (content is not None)
    assert state["valid"] is valid
    if error is None:
        assert state["error"] is None
    else:
        assert state["error"].startswith(error)


def test_daemon_json_through_a_dangling_link_is_absent(run_module, unit, tmp_path):
    path = tmp_path / "daemon.json"
    path.symlink_to(tmp_path / "nowhere.json")
    state = run_module(thor_info.main, {"daemon_json_path": str(path)})["thor"]["docker"]["daemon_json"]
    assert (state["exists"], state["valid"], state["error"]) == (False, None, None)
