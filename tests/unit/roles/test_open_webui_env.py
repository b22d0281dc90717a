"""The open_webui role's inputs and rendered environment, run for real on the controller
(tests/unit/roles/files/open_webui_render_env.yml).

The same playbook gives the browser test its environment, so what is asserted here is what the real Open WebUI gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).parent / "files" / "open_webui_render_env.yml"
PASSWORD = "unit-test-admin-pw"


def _render(tmp_path, extra):
    dest = tmp_path / "env.json"
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    argv = [sys.executable, "-m", "ansible.cli.playbook", "-i", "localhost,", str(PLAYBOOK), "-e", f"render_env_dest={dest}"]
    argv += ["-e", json.dumps(extra)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    return proc, (json.loads(dest.read_text()) if dest.exists() else None)


def test_the_rendered_environment(tmp_path):
    proc, out = _render(tmp_path, {"open_webui_admin_password": PASSWORD, "open_webui_vllm_api_key": "k-1"})
    assert proc.returncode == 0, proc.stdout
    env = out["env"]
    assert env["OPENAI_API_BASE_URLS"] == "http://127.0.0.1:8000/v1" and env["OPENAI_API_KEYS"] == "k-1"
    assert (env["ENABLE_OLLAMA_API"], env["ENABLE_OPENAI_API"], env["WEBUI_AUTH"]) == ("False", "True", "True")
    assert (env["ENABLE_PERSISTENT_CONFIG"], env["BYPASS_MODEL_ACCESS_CONTROL"]) == ("False", "True")
    assert (env["ENABLE_SIGNUP"], env["DEFAULT_USER_ROLE"], env["OFFLINE_MODE"]) == ("True", "user", "True")
    assert env["WEBUI_ADMIN_PASSWORD"] == PASSWORD and env["RAG_EMBEDDING_MODEL"] == "" and env["PORT"] == "8080"
    assert "WEBUI_SECRET_KEY" not in env  # kept on the unit, passed with env_file
    assert all(isinstance(v, str) for v in env.values())
    assert out["settings"]["OPENAI_API_BASE_URLS"] == ["http://127.0.0.1:8000/v1"] and out["settings"]["ENABLE_SIGNUP"] is True
    # The password never reaches the output.
    assert PASSWORD not in proc.stdout and "k-1" not in proc.stdout
    assert out["expected_model"] == ""


def test_the_expected_model_follows_the_ready_stage(tmp_path):
    stage = {"served_name": "nvidia/Llama-3.1-8B-Instruct-FP8", "ready": True}
    proc, out = _render(tmp_path, {"open_webui_admin_password": PASSWORD, "vllm_stage_state": stage})
    assert proc.returncode == 0, proc.stdout
    assert out["expected_model"] == "nvidia/Llama-3.1-8B-Instruct-FP8"
    proc, out = _render(tmp_path, {"open_webui_admin_password": PASSWORD, "vllm_stage_state": dict(stage, ready=False)})
    assert out["expected_model"] == ""


def test_settings_and_extra_env(tmp_path):
    extra = {
        "open_webui_admin_password": PASSWORD,
        "open_webui_enable_signup": "false",
        "open_webui_default_user_role": "pending",
        "open_webui_local_embedding": True,
        "open_webui_extra_env": {"AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST": "5"},
    }
    proc, out = _render(tmp_path, extra)
    assert proc.returncode == 0, proc.stdout
    assert (out["env"]["ENABLE_SIGNUP"], out["settings"]["ENABLE_SIGNUP"]) == ("False", False)
    assert out["env"]["DEFAULT_USER_ROLE"] == "pending" and "RAG_EMBEDDING_MODEL" not in out["env"]
    assert out["env"]["AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST"] == "5"


def test_a_missing_admin_password_stops_with_the_fix(tmp_path):
    proc, out = _render(tmp_path, {})
    assert proc.returncode == 2 and out is None
    assert "open_webui_admin_password is not set" in proc.stdout and "ansible-vault encrypt_string" in proc.stdout


def test_bad_inputs_are_named(tmp_path):
    bad = {
        "open_webui_admin_password": PASSWORD,
        "open_webui_image": "ghcr.io/open-webui/open-webui:main",
        "open_webui_extra_env": {"OPENAI_API_KEYS": "x"},
    }
    proc = _render(tmp_path, bad)[0]
    assert proc.returncode == 2
    assert "not a moving tag like :main" in proc.stdout and "(OPENAI_API_KEYS)" in proc.stdout


def test_a_registry_port_is_not_a_tag(tmp_path):
    proc = _render(tmp_path, {"open_webui_admin_password": PASSWORD, "open_webui_image": "registry.local:5000/open-webui"})[0]
    assert proc.returncode == 2 and "open_webui_image must name a version tag" in proc.stdout
    image = "registry.local:5000/open-webui/open-webui:v0.12.4"
    proc = _render(tmp_path, {"open_webui_admin_password": PASSWORD, "open_webui_image": image})[0]
    assert proc.returncode == 0, proc.stdout
