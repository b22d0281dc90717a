"""The stage filters as playbooks use them: the catalog from stages.yml through Ansible's templating."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.jetson_thor.workshop.plugins.filter import vllm_stage as f

REPO = Path(__file__).resolve().parents[4]


def builtin():
    return yaml.safe_load((REPO / "playbooks" / "vars" / "stages.yml").read_text())["workshop_stages_builtin"]


def test_filters_are_registered():
    assert set(f.FilterModule().filters()) == {"stage_catalog", "vllm_serve_args", "vllm_failure_hint"}


def test_stage_catalog_clash_is_a_filter_error_naming_the_stage():
    with pytest.raises(AnsibleFilterError, match="stage catalog: workshop_stages_extra: stage name 'fp4'"):
        f.stage_catalog(builtin(), [{"name": "fp4", "model": "a/b"}])


def test_stage_catalog_without_extra():
    assert len(f.stage_catalog(builtin(), None)) == 5


def test_serve_args_filter():
    stage = f.stage_catalog(builtin())[1]
    assert f.vllm_serve_args(stage, {"max_model_len": 4096}) == ["--max-model-len", "4096"]
    with pytest.raises(AnsibleFilterError, match="unknown serve options"):
        f.vllm_serve_args(stage, {"bogus": 1})
    with pytest.raises(AnsibleFilterError, match="has no 'model'"):
        f.vllm_serve_args({"name": "x", "served_name": "y"}, {})


def test_failure_hint_filter():
    found = f.vllm_failure_hint("Error response from daemon: Unknown runtime specified nvidia")
    assert found["kind"] == "runtime" and "playbooks/runtime.yml" in found["hint"]
    assert f.vllm_failure_hint(["all good"]) == {"kind": None, "hint": None, "evidence": None}


def adhoc(extra, tmp):
    """The catalog of stages.yml as a play evaluates it (vars_files, the extra stages from -e): a play on localhost
    writes workshop_stages to a file. Returns (the catalog or None, the run's output)."""
    playbook = tmp / "catalog.yml"
    out = tmp / "catalog.json"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(REPO / "playbooks" / "vars" / "stages.yml")],
        "tasks": [{"ansible.builtin.copy": {"content": "{{ workshop_stages | to_json }}", "dest": str(out)}}],
    }]))
    # From a checkout (collections/ holds the link) or from ansible-test's tree (<root>/ansible_collections/jetson_thor/workshop).
    collections = REPO / "collections" if (REPO / "collections").is_dir() else REPO.parents[2]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", JETSON_THOR_REPORT_DIR=str(tmp))
    env.pop("ANSIBLE_CONFIG", None)
    if (REPO / "ansible.cfg").is_file():
        env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    argv = [sys.executable, "-m", "ansible.cli.playbook", "-i", "localhost,", "-c", "local", str(playbook),
            "-e", json.dumps({"workshop_stages_extra": extra, "ansible_python_interpreter": sys.executable})]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    return (json.loads(out.read_text()) if out.is_file() else None), done.stdout + done.stderr


def test_stages_yml_appends_workshop_stages_extra_through_ansible(tmp_path):
    result = adhoc([{"name": "fp8_short", "model": "nvidia/Llama-3.1-8B-Instruct-FP8", "served_name": "fp8-short",
                     "args": ["--max-model-len", "2048"]}], tmp_path)
    stages, output = result
    assert stages is not None, output
    assert [s["name"] for s in stages] == ["gpt-oss-120b", "fp16", "fp8", "fp4", "fp4_eagle3", "fp8_short"]
    assert stages[-1]["served_name"] == "fp8-short"
    assert stages[-1]["requires"]["models"] == ["nvidia/Llama-3.1-8B-Instruct-FP8"]


def test_stages_yml_name_clash_fails_with_the_stage_named(tmp_path):
    stages, output = adhoc([{"name": "fp16", "model": "a/b"}], tmp_path)
    assert stages is None
    # ansible-core 2.17 and 2.18 print the message as a YAML single-quoted scalar, which doubles the quotes.
    assert "stage name 'fp16' is already in the catalog" in " ".join(output.replace("''", "'").split())
