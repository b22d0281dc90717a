"""The faulty fleet after one run of playbooks/runtime.yml: who failed, with which message, and what each unit looks like."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[1] / "files"
RESULT = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "runtime-result.json"
FAILING = {"invalid_json", "memory_unfixable"}


@pytest.fixture(scope="session")
def run():
    if not RESULT.is_file():
        pytest.skip(f"{RESULT} is missing: run `molecule converge -s runtime_faults` first")
    return json.loads(RESULT.read_text())


def failures(run, name):
    """(task name, result) of every failed task of one host in the ansible.posix.json result."""
    return [
        (task["task"]["name"], task["hosts"][name])
        for play in run["plays"]
        for task in play["tasks"]
        if name in task["hosts"] and task["hosts"][name].get("failed") and not task["hosts"][name].get("ignore_errors")
    ]


def results(run, name, task_name):
    return [
        task["hosts"][name]
        for play in run["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith(task_name) and name in task["hosts"]
    ]


def read_json(host, path):
    with host.sudo():
        return json.loads(host.file(path).content_string)


def test_only_the_faulty_units_failed_and_none_was_unreachable(run, unit, case):
    stats = run["stats"][unit]
    assert stats["unreachable"] == 0
    assert stats["failures"] == (1 if case in FAILING else 0), failures(run, unit)


def test_invalid_json_is_reported_with_the_parse_error(run, unit, case):
    if case != "invalid_json":
        pytest.skip("thor-m1 only")
    [(task, result)] = failures(run, unit)
    assert task.endswith("docker_runtime : Declare the runtimes and the default runtime in daemon.json, keeping every other key")
    assert result["error"] == {"reason": "Expecting ',' delimiter", "line": 8, "column": 5}
    for text in ("/etc/docker/daemon.json", "Expecting ',' delimiter at line 8, column 5", "left untouched", "json.tool"):
        assert text in result["msg"]


def test_invalid_json_is_byte_for_byte_unchanged(host, case):
    if case != "invalid_json":
        pytest.skip("thor-m1 only")
    with host.sudo():
        content = host.file("/etc/docker/daemon.json").content
        listing = host.check_output("ls -1 /etc/docker").split()
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256((FILES / "daemon-invalid.json").read_bytes()).hexdigest()
    assert [n for n in listing if n.startswith("daemon.json.")] == []
    # Docker was not restarted onto a file it would reject: it still runs, with the default it started with.
    assert host.check_output("docker info --format '{{.DefaultRuntime}}'") == "runc"


def test_unfixable_memory_is_reported_in_vllms_terms(run, unit, case):
    if case != "memory_unfixable":
        pytest.skip("thor-m2 only")
    [(task, result)] = failures(run, unit)
    assert task.endswith("gpu_memory : Assert vLLM will find enough free memory")
    msg = result["msg"]
    assert "after drop_caches, stop_containers, restart_docker, reboot:" in msg
    assert re.search(r"free \d+\.\d\d/122\.82 GiB, need 110\.54 GiB \(0\.9 \u00d7 total\)", msg), msg
    assert "Free memory on device (" in msg and "desired GPU memory utilization (0.9, 110.54 GiB)" in msg


def test_memory_fact(host, case):
    if case not in ("memory_unfixable", "memory_until_reboot"):
        pytest.skip("the memory units only")
    fact = read_json(host, "/etc/ansible/facts.d/thor_memory.fact")
    assert fact["last_remediation"]["rungs"] == ["drop_caches", "stop_containers", "restart_docker", "reboot"]
    assert fact["fits"] is (case == "memory_until_reboot")


def test_nvml_unit_was_rebooted_once_and_verified(run, unit, host, case):
    if case != "nvml_until_reboot":
        pytest.skip("thor-m3 only")
    reboots = results(run, unit, "Reboot the unit, as the workshop advises when runtime errors persist")
    assert [r["changed"] for r in reboots] == [True]
    assert read_json(host, "/etc/ansible/facts.d/thor_runtime.fact")["verified"] is True


def test_units_that_got_past_docker_runtime_have_a_working_default_runtime(host, hostvars, case):
    if case == "invalid_json":
        pytest.skip("thor-m1 stopped at its daemon.json")
    assert host.check_output("docker info --format '{{.DefaultRuntime}}'") == "nvidia"
    result = host.run("docker run --rm %s nvidia-smi", hostvars["workshop_cuda_test_image"])
    assert result.rc == 0, result.stdout + result.stderr
    assert "NVIDIA Thor" in result.stdout
