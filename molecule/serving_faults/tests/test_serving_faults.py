"""What converge.yml's fault steps left: steps/<step>/fleet-summary.json, run.log and container-<unit>.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
STAGES = "gpt-oss-120b, fp16, fp8, fp4, fp4_eagle3"


def summary(step):
    path = EPHEMERAL / "steps" / step / "fleet-summary.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing; the run said: {(path.parent / 'run.log').read_text()[-3000:]}")
    return json.loads(path.read_text())


def row(step, unit):
    return next(r for r in summary(step)["units"] if r["unit"] == unit)


def container(step, unit):
    data = json.loads((EPHEMERAL / "steps" / step / f"container-{unit}.json").read_text())
    return data[0] if data else None


def test_baseline_both_units_serve_fp4():
    for unit in ("thor-m1", "thor-m2"):
        r = row("00-fp4", unit)
        assert r["status"] == "changed", r["what_happened"]
        assert r["details"]["stage"] == "fp4" and r["details"]["stage_ready"] is True


def test_unknown_stage_fails_every_unit_before_any_change():
    s = summary("01-unknown")
    for unit in ("thor-m1", "thor-m2"):
        r = row("01-unknown", unit)
        assert r["status"] in ("failed", "not reached")
        # Same container, same start: nothing changed.
        before, after = container("00-fp4", unit), container("01-unknown", unit)
        assert after["Id"] == before["Id"] and after["State"]["StartedAt"] == before["State"]["StartedAt"]
        assert after["State"]["Running"] is True
    failed = [r for r in s["units"] if r["status"] == "failed"]
    assert failed, s
    for r in failed:
        assert "Unknown stage 'fp5'" in r["what_happened"]
        assert f"The stages are: {STAGES}" in r["what_happened"]
        assert "Nothing was changed on any unit" in r["what_happened"]


@pytest.mark.parametrize(
    ("step", "stage", "kind", "needles"),
    [
        ("02-missing-model", "fp8", "model", ["nvidia/Llama-3.1-8B-Instruct-FP8", "playbooks/content.yml"]),
        ("03-missing-encodings", "gpt-oss-120b", "encodings", ["o200k_base.tiktoken", "tiktoken"]),
        ("04-no-runtime", "fp16", "runtime", ["playbooks/runtime.yml", "runtime"]),
        ("05-nvml", "fp8", "runtime", ["playbooks/runtime.yml", "failed to be inspected"]),
        ("06-memory", "fp4", "memory", ["gpu_memory", "not enough free"]),
    ],
)
def test_fault_fails_only_its_unit_with_the_right_hint(step, stage, kind, needles):
    bad, good = row(step, "thor-m1"), row(step, "thor-m2")
    assert bad["status"] == "failed"
    assert f"stage {stage} is not served. Hint ({kind}):" in bad["what_happened"]
    for needle in needles:
        assert needle in bad["what_happened"], bad["what_happened"]
    assert bad["details"]["stage"] == stage
    assert bad["details"]["stage_ready"] is False
    assert bad["details"]["stage_hint"].startswith(f"{kind}: ")
    # The fleet goes on.
    assert good["status"] in ("changed", "converged"), good["what_happened"]
    assert good["details"]["stage"] == stage and good["details"]["stage_ready"] is True


@pytest.mark.parametrize("step", ["02-missing-model", "03-missing-encodings"])
def test_content_faults_leave_the_running_stage_untouched(step):
    """The content check comes before anything changes: thor-m1 still serves fp4 from step 00."""
    before, after = container("00-fp4", "thor-m1"), container(step, "thor-m1")
    assert after["Id"] == before["Id"] and after["State"]["Running"] is True
    assert after["Config"]["Labels"]["org.jetson-thor.workshop.stage"] == "fp4"


def test_nvml_failure_returns_the_log():
    log = (EPHEMERAL / "steps" / "05-nvml" / "run.log").read_text()
    assert "Last log lines:" in log
    assert "pydantic_core._pydantic_core.ValidationError" in log or "failed to be inspected" in log


def test_recovery_serves_again_and_leaves_the_healthy_unit_alone():
    bad, good = row("07-recover", "thor-m1"), row("07-recover", "thor-m2")
    assert bad["status"] == "changed" and bad["details"]["stage_ready"] is True, bad["what_happened"]
    assert bad["details"]["stage"] == "fp4"
    # thor-m1 compiled fp4 at step 00: its compile cache is still there.
    assert "(from cache)" in bad["details"]["startup"]
    assert good["status"] == "converged", good["what_happened"]
    assert container("07-recover", "thor-m2")["Id"] == container("06-memory", "thor-m2")["Id"]
