"""What the fleet summary said after each of converge.yml's three runs, and what the units look like now.

Each run's summary (the fleet_status callback's fleet-summary.json) must state each unit's status from what happened
to it in that run: a failure names the role and the reason, a unit the run did not reach is never called ready.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))


def summary(run):
    path = EPHEMERAL / run / "fleet-summary.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing: run `molecule converge -s fleet` first")
    return json.loads(path.read_text())


def rows(run):
    return {row["unit"]: row for row in summary(run)["units"]}


def limit_file(run):
    return (EPHEMERAL / run / "not-ready.limit").read_text().split()


# --- run "canary": the first wave fails, the rollout stops ------------------------------------------------------------
def test_canary_failure_stops_the_rollout():
    units = rows("canary")
    assert units["thor-m1"]["status"] == "failed"
    assert "role docker_runtime" in units["thor-m1"]["what_happened"]
    for unit in ("thor-m2", "thor-m3", "thor-m4"):
        assert units[unit]["status"] == "not reached", units[unit]
        assert "Runtime" in units[unit]["what_happened"]
    data = summary("canary")
    assert data["stopped_early"] is True
    assert data["ready"] == 0
    assert limit_file("canary") == ["thor-m1", "thor-m2", "thor-m3", "thor-m4"]


def test_canary_restart_failure_restores_the_old_file_and_docker():
    message = rows("canary")["thor-m1"]["what_happened"]
    assert "Docker did not come back after the restart" in message
    assert "The previous file was put back from /etc/docker/daemon.json." in message
    assert "Docker runs again with it" in message


@pytest.mark.parametrize("name", ["thor-m2", "thor-m3", "thor-m4"])
def test_units_after_a_stopped_rollout_are_untouched(name):
    # The twin's start state: the nvidia runtime declared, not the default (what the workshop asks to fix).
    config = json.loads((EPHEMERAL / "canary" / f"{name}-daemon.json").read_text())
    assert "default-runtime" not in config
    assert "nvidia" in config["runtimes"]


# --- run "faults": a failure in each role, next to a unit that converges ------------------------------------------------
def test_hung_dockerd_is_named_with_the_cause_and_the_run_goes_on():
    units = rows("faults")
    m1 = units["thor-m1"]
    assert m1["status"] == "failed"
    assert "role preflight" in m1["what_happened"]
    assert "docker info did not answer within 10 s" in m1["what_happened"]
    assert units["thor-m4"]["status"] in ("changed", "converged")


def test_each_role_failure_is_named():
    units = rows("faults")
    assert units["thor-m2"]["status"] == "failed"
    assert "role docker_runtime" in units["thor-m2"]["what_happened"]
    assert "no-such-option" in units["thor-m2"]["what_happened"] or "put back" in units["thor-m2"]["what_happened"]
    assert units["thor-m3"]["status"] == "failed"
    assert "role gpu_memory" in units["thor-m3"]["what_happened"]
    assert "not enough free GPU memory for vLLM" in units["thor-m3"]["what_happened"]


def test_faults_summary_counts_only_the_ready_unit():
    data = summary("faults")
    assert (data["ready"], data["total"]) == (1, 4)
    assert data["not_ready"] == ["thor-m1", "thor-m2", "thor-m3"]
    assert limit_file("faults") == ["thor-m1", "thor-m2", "thor-m3"]
    assert "--limit @" in data["rerun"] and "not-ready.limit,organizer" in data["rerun"]
    # The summary play ran, so the ready unit has its details; they are labelled simulated.
    details = rows("faults")["thor-m4"]["details"]
    assert details["simulated"] is True
    assert details["default_runtime"] == "nvidia"
    assert details["runtime_verified"] is True


def test_a_start_limit_spent_before_the_run_does_not_stop_the_restart():
    # thor-m4's Docker was restarted three times just before run "faults"; the role's restart (for the NVIDIA fix)
    # is the fourth within a minute, which systemd refuses unless the start limit is reset.
    m4 = rows("faults")["thor-m4"]
    assert m4["status"] == "changed"
    assert m4["details"]["default_runtime"] == "nvidia"


# --- run "turn": recovery, unreachable, power mode ----------------------------------------------------------------------
def test_turn_run_states_each_unit_from_this_run():
    units = rows("turn")
    assert units["thor-m1"]["status"] in ("changed", "converged"), units["thor-m1"]
    assert units["thor-m2"]["status"] == "unreachable"
    assert "Failed to connect" in units["thor-m2"]["what_happened"] or "port 2" in units["thor-m2"]["what_happened"]
    assert units["thor-m3"]["status"] == "failed"
    assert "role gpu_memory" in units["thor-m3"]["what_happened"]
    assert units["thor-m4"]["status"] == "failed"
    assert "role power_mode" in units["thor-m4"]["what_happened"]
    assert "nvpmodel" in units["thor-m4"]["what_happened"]
    # The unreachable unit has no details from this run, although an earlier run recorded some.
    assert units["thor-m2"]["details"] == {} or all(v is None for v in units["thor-m2"]["details"].values())


# --- the units as they are now ------------------------------------------------------------------------------------------
def test_docker_runs_on_every_reachable_unit(host, unit):
    if unit == "thor-m2":
        pytest.skip("unreachable by design in the last run; checked below over its real port")
    assert host.service("docker").is_running


def test_rejected_setting_left_docker_running_with_the_old_file(host, unit):
    if unit != "thor-m2":
        pytest.skip("thor-m2 only")
    with host.sudo():
        config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert "no-such-option" not in config
    assert host.service("docker").is_running
