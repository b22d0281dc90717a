"""What a converged twin unit looks like from a participant's SSH session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def test_reached_over_ssh_as_the_workshop_user(host):
    assert host.backend.NAME == "paramiko"
    assert host.user().name == "workshop"
    assert "docker" in host.user().groups


def test_systemd_booted(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), host.run("systemctl --failed --no-pager").stdout


def test_inner_docker_engine_serves_the_workshop_user(host):
    assert host.service("docker").is_running
    info = host.run("docker info --format '{{json .}}'")
    assert info.rc == 0, info.stderr
    data = json.loads(info.stdout)
    assert "nvidia" in data["Runtimes"]
    assert data["Driver"] == "overlay2"


def test_workshop_images_are_present(host):
    for image in ("thor-twin/vllm:25.09-py3", "thor-twin/cuda:13.0.0-runtime-ubuntu24.04"):
        assert host.run("docker image inspect %s", image).rc == 0, image


def test_open_webui_runs_with_its_key_kept_on_the_unit(host):
    """workshop.yml ends with webui.yml: Open WebUI on the host network, restart always, its data volume, healthy;
    the secret key in a root-only file on the unit. (No content was distributed here, so no stage is served.)"""
    inspect = host.run("docker inspect open-webui")
    assert inspect.rc == 0, inspect.stderr
    container = json.loads(inspect.stdout)[0]
    assert container["State"]["Running"] is True
    assert container["HostConfig"]["NetworkMode"] == "host"
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert [m["Name"] for m in container["Mounts"] if m["Type"] == "volume"] == ["open-webui"]
    health = host.run("curl -fsS http://127.0.0.1:8080/health")
    assert health.rc == 0 and json.loads(health.stdout) == {"status": True}, health.stderr
    with host.sudo():
        key = host.file("/etc/open-webui/webui-secret-key.env")
        assert (key.user, key.mode) == ("root", 0o600)


def test_thor_release_and_memory_model(host):
    release = host.file("/etc/nv_tegra_release").content_string
    assert release.startswith("# R38 (release), REVISION: ")
    # The twin's /proc/meminfo is its unified-memory model: 122.82 GiB, as CUDA reports on Thor.
    assert host.run("awk '/^MemTotal:/ {print $2}' /proc/meminfo").stdout.strip() == "128790528"


def test_preflight_exported_stable_facts(host):
    fact = json.loads(host.file("/etc/ansible/facts.d/thor.fact").content_string)
    assert fact["simulated"] is True
    assert fact["l4t"]["major"] == 38
    assert fact["l4t"]["jetpack_major"] == 7
    assert fact["memory_total_bytes"] == 128790528 * 1024
    assert fact["power_mode"]["name"]


def test_fleet_summary_of_the_last_run_calls_every_unit_converged():
    """After molecule's idempotence run, the fleet_status callback's summary says every unit converged."""
    path = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports" / "fleet-summary.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing: run molecule converge -s default first")
    summary = json.loads(path.read_text())
    assert {row["status"] for row in summary["units"]} == {"converged"}, summary["units"]
    assert (summary["ready"], summary["total"]) == (4, 4)
    assert summary["rerun"] is None
    assert all(row["details"]["simulated"] is True for row in summary["units"])
