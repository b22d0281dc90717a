"""The end state of the webui scenario, checked from outside: on the unit (testinfra over SSH) and over the molecule
network from the controller, as a participant's browser would reach the unit's Open WebUI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

ADMIN_EMAIL = "admin@workshop.local"


def _call(hostvars, method, path, body=None, token=None, port=8080):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"http://{hostvars['ansible_host']}:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method=method,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@pytest.fixture(scope="module")
def admin_token(hostvars):
    status, body = _call(
        hostvars, "POST", "/api/v1/auths/signin", {"email": ADMIN_EMAIL, "password": hostvars["molecule_webui_admin_password"]}
    )
    assert status == 200, body
    assert body["role"] == "admin"
    return body["token"]


def test_the_container_runs_as_the_workshop_runs_it(host):
    info = json.loads(host.check_output("sudo docker inspect open-webui"))[0]
    assert info["State"]["Running"]
    assert info["Config"]["Image"] == "thor-twin/open-webui:v0.12.4"
    assert info["HostConfig"]["NetworkMode"] == "host"
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert any(
        m["Type"] == "volume" and m["Name"] == "open-webui" and m["Destination"] == "/app/backend/data" for m in info["Mounts"]
    )
    env = dict(item.split("=", 1) for item in info["Config"]["Env"])
    assert env["ENABLE_OLLAMA_API"] == "False" and env["ENABLE_PERSISTENT_CONFIG"] == "False"
    assert env["OPENAI_API_BASE_URLS"] == "http://127.0.0.1:8000/v1" and env["OPENAI_API_KEYS"] == "molecule-vllm-key"
    key_length = len(env.pop("WEBUI_SECRET_KEY", ""))  # not shown in a failure
    assert key_length == 64


def test_the_secret_key_file_is_root_only(host):
    # The workshop user cannot even look into the directory.
    assert host.run("stat /etc/open-webui/webui-secret-key.env").rc != 0
    assert host.check_output("sudo stat -c '%U %a' /etc/open-webui /etc/open-webui/webui-secret-key.env").split() == [
        "root",
        "700",
        "root",
        "600",
    ]


def test_health_answers(hostvars):
    assert _call(hostvars, "GET", "/health") == (200, {"status": True})


def test_the_admin_sees_the_stage_model_and_the_kept_settings(hostvars, admin_token):
    status, models = _call(hostvars, "GET", "/api/models", token=admin_token)
    assert status == 200
    assert hostvars["molecule_webui_stage"]["served_name"] in [m["id"] for m in models["data"]]
    admin = _call(hostvars, "GET", "/api/v1/auths/admin/config", token=admin_token)[1]
    assert (admin["ENABLE_SIGNUP"], admin["DEFAULT_USER_ROLE"]) == (True, "user")
    assert _call(hostvars, "GET", "/ollama/config", token=admin_token)[1]["ENABLE_OLLAMA_API"] is False


def test_a_participant_signs_up_sees_the_model_and_chats_streamed(hostvars):
    status, user = _call(
        hostvars, "POST", "/api/v1/auths/signup", {"name": "P2", "email": "p2@workshop.local", "password": "pw-p2"}
    )
    assert status == 200, user
    assert user["role"] == "user"
    model = hostvars["molecule_webui_stage"]["served_name"]
    assert model in [m["id"] for m in _call(hostvars, "GET", "/api/models", token=user["token"])[1]["data"]]
    body = {"model": model, "stream": True, "max_tokens": 16, "messages": [{"role": "user", "content": "Hello Thor"}]}
    req = urllib.request.Request(
        f"http://{hostvars['ansible_host']}:8080/api/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {user['token']}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deltas = []
    with opener.open(req, timeout=60) as resp:
        for line in resp:
            line = line.decode().strip()
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    deltas.append(chunk["choices"][0]["delta"]["content"])
    assert len(deltas) > 1 and "".join(deltas).strip()


def test_the_run_without_password_left_nothing(host):
    assert not host.file("/etc/open-webui-nopw").exists
    assert host.run("sudo docker inspect open-webui-nopw").rc != 0
