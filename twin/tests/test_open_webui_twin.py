"""The Open WebUI twin (twin/open-webui): the behaviours the open_webui role relies on, against a live twin process.

Each test starts `open-webui serve` (the twin) on a free loopback port with a data directory of its own, in front of a
small OpenAI-compatible backend in this process (or the vLLM twin, for the streamed chat).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from twin_support import LLAMA, Server, free_port, twin_env

ROOT = Path(__file__).resolve().parents[2]
WEBUI_DIR = ROOT / "twin" / "open-webui"
ADMIN = {"email": "admin@workshop.local", "password": "correct horse battery"}


class Backend:
    """An OpenAI-compatible /v1 with one model; requires `Bearer <key>` when a key is given. Records what it got."""

    def __init__(self, model="stage-model", key=None):
        self.model, self.key, self.requests = model, key, []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self):
                backend.requests.append((self.command, self.path, self.headers.get("Authorization")))
                if backend.key and self.headers.get("Authorization") != f"Bearer {backend.key}":
                    self._reply(401, {"error": "Unauthorized"})
                    return False
                return True

            def do_GET(self):
                if self._authorized():
                    self._reply(200, {"object": "list", "data": [{"id": backend.model, "object": "model", "owned_by": "vllm"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self._authorized():
                    self._reply(200, {"choices": [{"message": {"role": "assistant", "content": f"echo {body['model']}"}}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebUI:
    """A running Open WebUI twin; restart() keeps the data directory (a recreated container with the same volume)."""

    def __init__(self, data_dir, env, cwd=None):
        self.data_dir, self.env, self.cwd = data_dir, env, cwd or data_dir
        Path(self.cwd).mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.start()

    def start(self, **env_changes):
        self.env = {**self.env, **env_changes}
        self.env = {k: v for k, v in self.env.items() if v is not None}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+")
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(WEBUI_DIR),
            "DATA_DIR": str(self.data_dir),
            **self.env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(WEBUI_DIR / "bin" / "open-webui"), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=self.cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("twin exited: " + self.output())
            try:
                if self.call("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Open WebUI twin did not answer /health")

    def restart(self, **env_changes):
        self.stop()
        self.start(**env_changes)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def call(self, method, path, body=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def signin(self, email=ADMIN["email"], password=ADMIN["password"]):
        status, body = self.call("POST", "/api/v1/auths/signin", {"email": email, "password": password})
        assert status == 200, body
        return body["token"]

    def models(self, token):
        status, body = self.call("GET", "/api/models?refresh=true", token=token)
        assert status == 200, body
        return [m["id"] for m in body["data"]]


@pytest.fixture
def backend():
    b = Backend(key="vllm-key")
    yield b
    b.close()


@pytest.fixture
def webui_factory(tmp_path):
    started = []

    def make(env, data_dir=None):
        ui = WebUI(data_dir or tmp_path / "data", env)
        started.append(ui)
        return ui

    yield make
    for ui in started:
        ui.stop()


def role_env(backend, **extra):
    """What the open_webui role renders, in the form the twin reads it."""
    env = {
        "WEBUI_SECRET_KEY": "k" * 48,
        "WEBUI_ADMIN_EMAIL": ADMIN["email"],
        "WEBUI_ADMIN_PASSWORD": ADMIN["password"],
        "OPENAI_API_BASE_URLS": backend.url,
        "OPENAI_API_KEYS": backend.key or "",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_SIGNUP": "True",
        "DEFAULT_USER_ROLE": "user",
        "BYPASS_MODEL_ACCESS_CONTROL": "True",
        "ENABLE_PERSISTENT_CONFIG": "False",
    }
    env.update(extra)
    return env


def test_admin_from_the_environment_signs_in_and_sees_the_backend_model(webui_factory, backend):
    ui = webui_factory(role_env(backend))
    status, body = ui.call("POST", "/api/v1/auths/signin", ADMIN)
    assert status == 200 and body["role"] == "admin" and body["token_type"] == "Bearer"
    assert ui.models(body["token"]) == ["stage-model"]
    # The connection's key went to the backend with the model listing.
    assert ("GET", "/v1/models", "Bearer vllm-key") in backend.requests
    status, version = ui.call("GET", "/api/version")
    assert version["version"] == "0.12.4" and version["twin"]["simulated"] is True


def test_wrong_password_is_refused_with_open_webuis_text(webui_factory, backend):
    ui = webui_factory(role_env(backend))
    status, body = ui.call("POST", "/api/v1/auths/signin", {"email": ADMIN["email"], "password": "wrong"})
    assert status == 400
    assert body["detail"].startswith("The email or password provided is incorrect")


def test_missing_secret_key_with_auth_stops_the_start(tmp_path, backend):
    env = {k: v for k, v in role_env(backend).items() if k != "WEBUI_SECRET_KEY"}
    key_file = tmp_path / ".webui_secret_key"
    ui = WebUI(tmp_path / "data", env, cwd=tmp_path)
    try:
        # Like `open-webui serve`: a key generated into the working directory, used from then on.
        assert key_file.exists() and "Generating a new secret key" in ui.output()
    finally:
        ui.stop()


def test_a_session_survives_a_restart_with_the_same_key_and_not_with_another(webui_factory, backend):
    ui = webui_factory(role_env(backend))
    token = ui.signin()
    ui.restart()
    assert ui.call("GET", "/api/v1/auths", token=token)[0] == 200
    ui.restart(WEBUI_SECRET_KEY="another-key-" * 4)
    status, body = ui.call("GET", "/api/v1/auths", token=token)
    assert status == 401 and "session has expired or the token is invalid" in body["detail"]


def test_participants_see_the_model_only_with_bypass_model_access_control(webui_factory, backend):
    ui = webui_factory(role_env(backend, BYPASS_MODEL_ACCESS_CONTROL="False"))
    ui.signin()
    # The admin account from the environment turns sign-up off, for this run of the process.
    status, _ = ui.call("POST", "/api/v1/auths/signup", {"name": "P", "email": "p1@workshop.local", "password": "pw"})
    assert status == 403
    ui.restart()
    status, user = ui.call("POST", "/api/v1/auths/signup", {"name": "P", "email": "p1@workshop.local", "password": "pw"})
    assert status == 200 and user["role"] == "user"
    assert ui.models(user["token"]) == []
    ui.restart(BYPASS_MODEL_ACCESS_CONTROL="True")
    assert ui.models(ui.signin("p1@workshop.local", "pw")) == ["stage-model"]


def test_pending_participants_cannot_list_models(webui_factory, backend):
    ui = webui_factory(role_env(backend, DEFAULT_USER_ROLE="pending"))
    ui.restart()  # sign-up back on (see above)
    status, user = ui.call("POST", "/api/v1/auths/signup", {"name": "P", "email": "p2@workshop.local", "password": "pw"})
    assert status == 200 and user["role"] == "pending"
    assert ui.call("GET", "/api/models", token=user["token"])[0] == 401


def test_persistent_config_keeps_the_first_value_and_ignores_the_changed_environment(webui_factory, backend):
    other = Backend(model="other-model")
    try:
        ui = webui_factory(role_env(backend, ENABLE_PERSISTENT_CONFIG="True"))
        token = ui.signin()
        assert ui.models(token) == ["stage-model"]
        ui.restart(OPENAI_API_BASE_URLS=other.url, OPENAI_API_KEYS="")
        token = ui.signin()
        config = ui.call("GET", "/openai/config", token=token)[1]
        assert config["OPENAI_API_BASE_URLS"] == [backend.url]  # the trap: the database wins
        assert ui.models(token) == ["stage-model"]
        # ... and with persistence off the environment wins on every start.
        ui.restart(ENABLE_PERSISTENT_CONFIG="False")
        token = ui.signin()
        assert ui.call("GET", "/openai/config", token=token)[1]["OPENAI_API_BASE_URLS"] == [other.url]
        assert ui.models(token) == ["other-model"]
    finally:
        other.close()


def test_admin_api_changes_last_until_restart_without_persistence(webui_factory, backend):
    ui = webui_factory(role_env(backend))
    token = ui.signin()
    status, admin = ui.call("GET", "/api/v1/auths/admin/config", token=token)
    assert admin["ENABLE_SIGNUP"] is False and admin["DEFAULT_USER_ROLE"] == "user"
    status, _ = ui.call("POST", "/api/v1/auths/admin/config", dict(admin, ENABLE_SIGNUP=True, DEFAULT_USER_ROLE="pending"), token)
    assert status == 200
    assert ui.call("GET", "/api/v1/auths/admin/config", token=token)[1]["DEFAULT_USER_ROLE"] == "pending"
    ui.restart()
    token = ui.signin()
    admin = ui.call("GET", "/api/v1/auths/admin/config", token=token)[1]
    assert (admin["ENABLE_SIGNUP"], admin["DEFAULT_USER_ROLE"]) == (True, "user")


def test_admin_config_update_needs_the_whole_form_and_drops_an_unknown_role(webui_factory, backend):
    ui = webui_factory(role_env(backend))
    token = ui.signin()
    status, body = ui.call("POST", "/api/v1/auths/admin/config", {"ENABLE_SIGNUP": True}, token)
    assert status == 422 and any(item["loc"] == ["body", "DEFAULT_USER_ROLE"] for item in body["detail"])
    admin = ui.call("GET", "/api/v1/auths/admin/config", token=token)[1]
    ui.call("POST", "/api/v1/auths/admin/config", dict(admin, DEFAULT_USER_ROLE="superuser"), token)
    assert ui.call("GET", "/api/v1/auths/admin/config", token=token)[1]["DEFAULT_USER_ROLE"] == "user"


def test_settings_need_an_admin_token(webui_factory, backend):
    ui = webui_factory(role_env(backend))
    assert ui.call("GET", "/openai/config")[0] == 401
    assert ui.call("GET", "/openai/config", token="not-a-token")[0] == 401


def test_ollama_is_probed_only_when_enabled(webui_factory, backend, tmp_path):
    # Nothing listens on the Ollama URL: the listing still answers, with the OpenAI connection's model.
    ui = webui_factory(role_env(backend, ENABLE_OLLAMA_API="True", OLLAMA_BASE_URL=f"http://127.0.0.1:{free_port()}"))
    token = ui.signin()
    assert ui.models(token) == ["stage-model"]
    assert ui.call("GET", "/ollama/config", token=token)[1]["ENABLE_OLLAMA_API"] is True
    assert "Connection error" in ui.output()


def test_chat_completion_streams_through_to_the_vllm_twin(webui_factory, hub, device):
    env = twin_env(hub, device, VLLM_TWIN_TIME_SCALE="0.02")
    vllm = Server(LLAMA, env, extra=("--api-key", "unit-key"))
    try:
        b = type("B", (), {"url": vllm.url + "/v1", "key": "unit-key"})()
        ui = webui_factory(role_env(b))
        token = ui.signin()
        assert ui.models(token) == [LLAMA]
        body = {"model": LLAMA, "stream": True, "max_tokens": 24, "messages": [{"role": "user", "content": "Hello Thor"}]}
        req = urllib.request.Request(
            ui.url + "/api/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        arrivals, text = [], ""
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            for line in resp:
                line = line.decode().strip()
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[6:])
                    delta = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
                    if delta:
                        arrivals.append(time.monotonic())
                        text += delta
        assert text.strip()
        assert len(arrivals) > 3 and arrivals[-1] - arrivals[0] > 0  # chunks arrived one by one, not at the end
    finally:
        vllm.stop()


def _run_module(args):
    """The collection's open_webui_api module, in this process, as tests/unit/plugins/conftest.py runs modules."""
    import contextlib
    import io
    from unittest import mock

    sys.path.insert(0, str(ROOT / "collections"))
    from ansible.module_utils import basic

    from ansible_collections.jetson_thor.workshop.plugins.modules import open_webui_api

    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core 2.17, 2.18

        @contextlib.contextmanager
        def patch_module_args(a):
            with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": a}).encode()):
                yield

    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        open_webui_api.main()
    return json.loads(out.getvalue())


def test_the_roles_module_against_the_twin_puts_back_signup_once(webui_factory, backend):
    """The same check the browser test makes against the real Open WebUI: the admin from the environment turns sign-up
    off in memory, the first run of the role's module puts it back, the second run changes nothing."""
    ui = webui_factory(role_env(backend))
    args = {
        "url": ui.url,
        **ADMIN,
        "settings": {"ENABLE_OPENAI_API": True, "OPENAI_API_BASE_URLS": [backend.url], "ENABLE_OLLAMA_API": False,
                     "ENABLE_SIGNUP": True, "DEFAULT_USER_ROLE": "user"},
        "openai_api_keys": [backend.key],
        "expected_model": "stage-model",
        "wait_timeout": 20,
    }  # fmt: skip
    first, second = _run_module(args), _run_module(args)
    assert first["changed"] is True and first["updated"] == ["ENABLE_SIGNUP"] and first["expected_model_listed"] is True
    assert second["changed"] is False and second["updated"] == []
    assert second["version"] == "0.12.4" and second["settings"]["OPENAI_API_KEYS"] == ["(set)"]


def test_sign_ins_are_rate_limited_per_account(webui_factory, backend):
    ui = webui_factory(role_env(backend))
    statuses = [ui.call("POST", "/api/v1/auths/signin", {"email": ADMIN["email"], "password": "wrong"})[0] for _ in range(16)]
    assert statuses[:15] == [400] * 15 and statuses[15] == 429
    # Another account is not affected.
    assert ui.call("POST", "/api/v1/auths/signin", {"email": "p@workshop.local", "password": "x"})[0] == 400
