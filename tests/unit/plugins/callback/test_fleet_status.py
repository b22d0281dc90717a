"""The fleet_status callback, end to end: real ansible-playbook runs on local 'units' whose fates are set by the inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FILES = Path(__file__).parent / "files"
COLLECTIONS = Path(__file__).resolve().parents[4] / "collections"


def _run(tmp_path, *extra):
    report_dir = tmp_path / "reports"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(FILES / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("ANSIBLE_COLLECTIONS_PATH")])),
        "ANSIBLE_CALLBACKS_ENABLED": "jetson_thor.workshop.fleet_status",
        "ANSIBLE_ROLES_PATH": str(FILES / "roles"),
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_TIMEOUT": "5",
        "ANSIBLE_NOCOLOR": "1",
        "JETSON_THOR_REPORT_DIR": str(report_dir),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ansible.cli.playbook", "-i", str(FILES / "hosts.yml"), str(FILES / "site.yml"), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    summary = json.loads((report_dir / "fleet-summary.json").read_text())
    return proc, summary, report_dir


def _by_unit(summary):
    return {row["unit"]: row for row in summary["units"]}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("full"))


def test_each_unit_gets_what_happened_to_it(full_run):
    proc, summary = full_run[:2]
    rows = _by_unit(summary)
    assert proc.returncode == 4, proc.stdout  # a failed and an unreachable host
    assert rows["u-converged"]["status"] == "converged"
    assert rows["u-changed"]["status"] == "changed"
    assert rows["u-failed"]["status"] == "failed"
    assert "role unit_step, task 'Step that may change or fail'" in rows["u-failed"]["what_happened"]
    assert rows["u-unreachable"]["status"] == "unreachable"
    assert "Step that may change or fail" in rows["u-unreachable"]["what_happened"]
    assert summary["ready"] == 3 and summary["total"] == 5
    assert summary["not_ready"] == ["u-failed", "u-unreachable"]


def test_details_come_only_from_the_summary_play(full_run):
    summary, report_dir = full_run[1:]
    rows = _by_unit(summary)
    assert rows["u-converged"]["details"] == {"l4t": "38.2.2", "simulated": True}
    assert rows["u-failed"]["details"] == {}
    table = (report_dir / "fleet-summary.md").read_text()
    assert "3 of 5 units ready." in table
    assert "| u-failed | failed |" in table
    assert "| u-converged | converged | 1 task(s) ok, nothing changed | 38.2.2 |" in table


def test_rerun_command_names_only_the_units_not_ready(full_run):
    proc, summary, report_dir = full_run
    limit = report_dir / "not-ready.limit"
    assert limit.read_text().split() == ["u-failed", "u-unreachable"]
    assert f"--limit @{limit},organizer" in summary["rerun"]
    assert summary["rerun"] in proc.stdout
    assert "FLEET SUMMARY" in proc.stdout


def test_a_stopped_rollout_leaves_later_waves_not_reached(tmp_path):
    # The first wave is u-converged alone, the second u-changed and u-failed: half of it fails, above the 10% limit,
    # so the play stops and neither u-unreachable nor u-late is reached; the summary play never runs.
    proc, summary = _run(tmp_path, "-e", '{"waves": [1, 2, 2]}', "-e", "max_fail=10")[:2]
    assert proc.returncode == 2, proc.stdout
    rows = _by_unit(summary)
    assert rows["u-converged"]["status"] == "converged"
    assert rows["u-failed"]["status"] == "failed"
    assert rows["u-unreachable"]["status"] == "not reached"
    assert rows["u-late"]["status"] == "not reached"
    assert "the run stopped in play 'Units'" in rows["u-late"]["what_happened"]
    assert summary["stopped_early"] is True
    assert summary["details_recorded"] is False
    assert summary["not_ready"] == ["u-failed", "u-unreachable", "u-late"]


def test_check_mode_says_would_change(tmp_path):
    summary, report_dir = _run(tmp_path, "--check", "--limit", "u-changed,organizer")[1:]
    assert "1 of 1 units would be ready. Check mode: nothing was changed" in (report_dir / "fleet-summary.md").read_text()
    rows = _by_unit(summary)
    assert list(rows) == ["u-changed"]
    assert rows["u-changed"]["status"] == "would change"
    assert summary["check_mode"] is True


def test_json_stdout_stays_json(tmp_path, monkeypatch):
    pytest.importorskip("ansible_collections.ansible.posix.plugins.callback.json")
    monkeypatch.setenv("ANSIBLE_STDOUT_CALLBACK", "ansible.posix.json")
    proc, summary = _run(tmp_path)[:2]
    assert json.loads(proc.stdout)["stats"]["u-failed"]["failures"] == 1
    assert summary["not_ready"] == ["u-failed", "u-unreachable"]


def test_stage_details_are_rendered():
    """The serving role's columns: stage, ready or not, start-up phases, hint; '-' where a unit has none."""
    from ansible_collections.jetson_thor.workshop.plugins.plugin_utils import _fleet_report as report

    summary = {
        "check_mode": False, "stopped_early": False, "details_recorded": True, "ready": 1, "total": 2, "rerun": None,
        "plays_run": ["Serve"],
        "units": [
            {"unit": "thor-01", "status": "changed", "what_happened": "3 task(s) changed, 20 ok",
             "details": {"stage": "fp8", "stage_ready": True, "startup": "load 9 s, compile 5 s (from cache), total 40 s"}},
            {"unit": "thor-02", "status": "failed", "what_happened": "failed in role vllm_stage",
             "details": {"stage": "fp8", "stage_ready": False, "stage_hint": "memory: run the memory hygiene"}},
        ],
    }
    markdown = report.render_markdown(summary)
    assert "| stage | stage ready | start-up | stage hint |" in markdown
    assert "| fp8 | True | load 9 s, compile 5 s (from cache), total 40 s | - |" in markdown
    assert "| fp8 | False | - | memory: run the memory hygiene |" in markdown
    console = report.render_console(summary)
    assert "stage fp8 ready (load 9 s, compile 5 s (from cache), total 40 s)" in console
    assert "stage fp8 not ready" in console
