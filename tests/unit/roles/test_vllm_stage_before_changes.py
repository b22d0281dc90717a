"""playbooks/serve.yml for real, on the controller, against two stand-in units (local connection, an empty or partial
content root): the paths that end before anything would change on a unit (no Docker needed). The name check, the
skip without content, the content check with its hint, and the fleet summary's stage columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ENCODINGS = {"o200k_base.tiktoken", "cl100k_base.tiktoken"}


def inventory(tmp_path):
    hosts = {}
    for unit in ("unit1", "unit2"):
        hosts[unit] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                       "workshop_data_root": str(tmp_path / unit), "ansible_become": False}
    data = {"all": {"children": {
        "thor": {"hosts": hosts},
        "organizers": {"hosts": {"organizer": {"ansible_connection": "local",
                                               "ansible_python_interpreter": sys.executable}}},
    }}}
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(data))
    return path


def serve(tmp_path, *extra):
    reports = tmp_path / "reports"
    # From a checkout (collections/ holds the link) or from ansible-test's tree (<root>/ansible_collections/jetson_thor/workshop).
    collections = REPO / "collections" if (REPO / "collections").is_dir() else REPO.parents[2]
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CALLBACKS_ENABLED": "jetson_thor.workshop.fleet_status", "JETSON_THOR_REPORT_DIR": str(reports)}
    env.pop("ANSIBLE_CONFIG", None)
    if (REPO / "ansible.cfg").is_file():
        env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    argv = [sys.executable, "-m", "ansible.cli.playbook", "-i", str(inventory(tmp_path)), "playbooks/serve.yml",
            "-e", '{"workshop_rollout_waves": ["100%"]}',
            # Never this machine's Docker, should a test ever get past the content check: no such image or container.
            "-e", "vllm_stage_container_name=jetson-thor-unit-test-never-started",
            "-e", "vllm_stage_image=jetson-thor-unit-test/none:never"]
    for item in extra:
        argv += ["-e", item]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False)
    summary = json.loads((reports / "fleet-summary.json").read_text())
    return proc, {row["unit"]: row for row in summary["units"]}


def test_unknown_stage_fails_every_unit_with_the_list(tmp_path):
    proc, rows = serve(tmp_path, "vllm_stage=fp5")
    assert proc.returncode == 2
    for unit in ("unit1", "unit2"):
        assert rows[unit]["status"] == "failed"
        what = rows[unit]["what_happened"]
        assert "task 'Assert the stage is in the catalog'" in what
        assert "Unknown stage 'fp5' (vllm_stage). The stages are: gpt-oss-120b, fp16, fp8, fp4, fp4_eagle3" in what
    assert not (tmp_path / "unit1").exists()


def test_extra_stage_joins_the_catalog_and_a_clash_is_refused(tmp_path):
    extra = json.dumps({"workshop_stages_extra": [{"name": "fp4", "model": "a/b"}]})
    proc, rows = serve(tmp_path, "vllm_stage=fp4", extra)
    assert proc.returncode != 0
    assert "stage name 'fp4' is already in the catalog" in proc.stdout + proc.stderr
    assert rows["unit1"]["status"] == "failed"


def test_without_content_the_stage_is_skipped_with_a_message(tmp_path):
    proc, rows = serve(tmp_path, "vllm_stage=fp8", "vllm_stage_without_content=skip")
    assert proc.returncode == 0, proc.stdout
    assert "serving stage fp8 is skipped (vllm_stage_without_content=skip)" in " ".join(proc.stdout.split())
    for unit in ("unit1", "unit2"):
        assert rows[unit]["status"] == "converged"
        details = rows[unit]["details"]
        assert details["stage"] == "fp8 (skipped)"
        assert details["stage_ready"] is None
        assert details["stage_hint"].startswith("content: ")


@pytest.mark.parametrize(
    ("encodings", "kind", "needle"),
    [
        (set(), "model", "lacks openai/gpt-oss-120b"),
        ({"o200k_base.tiktoken"}, "model", "cl100k_base.tiktoken is missing"),
    ],
)
def test_missing_content_fails_the_unit_with_its_hint(tmp_path, encodings, kind, needle):
    for name in encodings:
        path = tmp_path / "unit1" / "encodings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not the encodings\n")
    proc, rows = serve(tmp_path, "vllm_stage=gpt-oss-120b")
    what = rows["unit1"]["what_happened"]
    assert rows["unit1"]["status"] == "failed"
    assert f"stage gpt-oss-120b is not served. Hint ({kind}):" in what
    assert "playbooks/content.yml" in what
    assert needle in proc.stdout.replace("\n", " ") or needle in " ".join(proc.stdout.split())


def test_missing_encodings_alone_gives_the_tiktoken_hint(tmp_path):
    """With the model in the cache (a minimal hub entry) and corrupt encodings, the hint is the encodings'."""
    if not (REPO / "twin" / "content" / "make_hf_cache.py").is_file():
        pytest.skip("the twin content generator is checkout-only")
    hub = tmp_path / "unit1" / "models" / "huggingface" / "hub"
    subprocess.run([sys.executable, str(REPO / "twin" / "content" / "make_hf_cache.py"), "--hub-dir", str(hub),
                    "--models", "gpt-oss-120b"], check=True, capture_output=True, timeout=300)
    enc = tmp_path / "unit1" / "encodings"
    enc.mkdir(parents=True)
    for name in ENCODINGS:
        (enc / name).write_text("not the encodings\n")
    proc, rows = serve(tmp_path, "vllm_stage=gpt-oss-120b")
    what = rows["unit1"]["what_happened"]
    assert "Hint (encodings):" in what, what
    assert "has sha256" in " ".join(proc.stdout.split())
    assert rows["unit2"]["status"] == "failed"
