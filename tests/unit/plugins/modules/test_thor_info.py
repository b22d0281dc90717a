from __future__ import annotations

import importlib.util
import json

import pytest

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


@pytest.fixture
def unit(monkeypatch, tmp_path):
    calls = []

    def fake_read(path):
        return FILES.get(path)

    def fake_bin(self, name, required=False, opt_dirs=None):
        return "/usr/bin/" + name if name in COMMANDS else None

    def fake_run(self, argv, **kwargs):
        calls.append(argv)
        return COMMANDS[argv[0].rsplit("/", 1)[-1]]

    monkeypatch.setattr(thor_info, "_read", fake_read)
    monkeypatch.setattr(thor_info.AnsibleModule, "get_bin_path", fake_bin)
    monkeypatch.setattr(thor_info.AnsibleModule, "run_command", fake_run)
    return calls


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
    assert ["/usr/bin/nvpmodel", "-q"] in unit


def test_missing_tools_are_null_not_failures(run_module, unit, monkeypatch):
    monkeypatch.setattr(thor_info.AnsibleModule, "get_bin_path", lambda *a, **k: None)
    monkeypatch.setattr(thor_info, "_read", lambda path: None)
    result = run_module(thor_info.main, {"user": "no-such-user-here"})
    thor = result["thor"]
    assert result.get("failed") is not True
    assert thor["l4t"] is None
    assert thor["power_mode"] is None
    assert thor["clocks"] is None
    assert thor["docker"] == {"installed": False, "running": False, "error": None}
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
