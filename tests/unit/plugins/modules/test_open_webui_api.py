"""open_webui_api against a small Open WebUI stand-in served on loopback (the endpoints and rules the module uses)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _open_webui
from ansible_collections.jetson_thor.workshop.plugins.modules import open_webui_api

ADMIN = {"email": "admin@workshop.local", "password": "s3cret-admin-pw"}
VLLM_KEY = "vllm-key-do-not-log"


class FakeWebUI:
    """State plus an HTTP server; `unhealthy` answers 503 to that many /health calls first."""

    def __init__(self):
        self.unhealthy = 0
        self.models = ["meta-llama/Llama-3.1-8B-Instruct"]
        self.keep_writes = True
        self.rate_limited = False
        self.requests = []
        self.posts = []
        self.groups = {
            "/openai/config": {
                "ENABLE_OPENAI_API": True,
                "OPENAI_API_BASE_URLS": ["http://127.0.0.1:8000/v1"],
                "OPENAI_API_KEYS": [VLLM_KEY],
                "OPENAI_API_CONFIGS": {},
            },
            "/ollama/config": {
                "ENABLE_OLLAMA_API": False,
                "OLLAMA_BASE_URLS": ["http://localhost:11434"],
                "OLLAMA_API_CONFIGS": {},
            },
            "/api/v1/auths/admin/config": {
                "ENABLE_SIGNUP": False,
                "DEFAULT_USER_ROLE": "user",
                "ADMIN_EMAIL": None,
                "JWT_EXPIRES_IN": "4w",
            },
        }
        writes = {"/openai/config/update": "/openai/config", "/ollama/config/update": "/ollama/config"}
        writes["/api/v1/auths/admin/config"] = "/api/v1/auths/admin/config"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def admin(self):
                if self.headers.get("Authorization") != "Bearer admin-token":
                    self.reply(401, {"detail": "Your session has expired or the token is invalid. Please sign in again."})
                    return False
                return True

            def do_GET(self):
                fake.requests.append(("GET", self.path))
                if self.path == "/health":
                    if fake.unhealthy:
                        fake.unhealthy -= 1
                        return self.reply(503, {"detail": "starting"})
                    return self.reply(200, {"status": True})
                if self.path == "/api/version":
                    return self.reply(200, {"version": "0.12.4"})
                if not self.admin():
                    return None
                if self.path.startswith("/api/models"):
                    return self.reply(200, {"data": [{"id": m, "owned_by": "openai"} for m in fake.models]})
                if self.path in fake.groups:
                    return self.reply(200, fake.groups[self.path])
                return self.reply(404, {"detail": "Not Found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append(("POST", self.path))
                if self.path == "/api/v1/auths/signin":
                    if fake.rate_limited:
                        return self.reply(429, {"detail": "API rate limit exceeded"})
                    if body == ADMIN:
                        return self.reply(
                            200,
                            {
                                "token": "admin-token",
                                "token_type": "Bearer",
                                "id": "1",
                                "email": ADMIN["email"],
                                "name": "Admin",
                                "role": "admin",
                            },
                        )
                    return self.reply(400, {"detail": "The email or password provided is incorrect."})
                if not self.admin():
                    return None
                if self.path in writes:
                    fake.posts.append((self.path, body))
                    if fake.keep_writes:
                        fake.groups[writes[self.path]] = body
                    return self.reply(200, body)
                return self.reply(404, {"detail": "Not Found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def webui(monkeypatch):
    fake = FakeWebUI()
    monkeypatch.setattr(open_webui_api, "_POLL_SECONDS", 0.05)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _args(webui, **extra):
    return {"url": webui.url, **ADMIN, "wait_timeout": 5, "timeout": 5, **extra}


DESIRED = {
    "ENABLE_OPENAI_API": True,
    "OPENAI_API_BASE_URLS": ["http://127.0.0.1:8000/v1"],
    "ENABLE_OLLAMA_API": False,
    "ENABLE_SIGNUP": True,
    "DEFAULT_USER_ROLE": "user",
}


def test_waits_for_health_then_signs_in_and_finds_the_model(run_module, webui):
    webui.unhealthy = 3
    result = run_module(open_webui_api.main, _args(webui, expected_model="meta-llama/Llama-3.1-8B-Instruct"))
    assert result["_rc"] == 0 and result["changed"] is False
    assert result["expected_model_listed"] is True and result["models"] == ["meta-llama/Llama-3.1-8B-Instruct"]
    assert result["user"]["role"] == "admin" and result["version"] == "0.12.4"
    assert [r for r in webui.requests if r == ("GET", "/health")] == [("GET", "/health")] * 4


def test_a_drifted_setting_is_written_back_with_the_rest_of_its_form(run_module, webui):
    result = run_module(
        open_webui_api.main, {**_args(webui, settings=DESIRED, openai_api_keys=[VLLM_KEY]), "_ansible_diff": True}
    )
    assert result["changed"] is True and result["updated"] == ["ENABLE_SIGNUP"]
    # Only the admin group differed; its whole form went back, with the null field left out (Open WebUI rejects nulls).
    assert webui.posts == [
        ("/api/v1/auths/admin/config", {"ENABLE_SIGNUP": True, "DEFAULT_USER_ROLE": "user", "JWT_EXPIRES_IN": "4w"})
    ]
    assert result["diff"]["before"]["ENABLE_SIGNUP"] is False and result["diff"]["after"]["ENABLE_SIGNUP"] is True
    assert result["settings"]["OPENAI_API_KEYS"] == ["(set)"]
    assert VLLM_KEY not in json.dumps(result) and ADMIN["password"] not in json.dumps(result)


def test_rerun_with_the_same_settings_changes_nothing(run_module, webui):
    run_module(open_webui_api.main, _args(webui, settings=DESIRED, openai_api_keys=[VLLM_KEY]))
    webui.posts.clear()
    result = run_module(open_webui_api.main, _args(webui, settings=DESIRED, openai_api_keys=[VLLM_KEY]))
    assert result["changed"] is False and result["updated"] == [] and webui.posts == []


def test_check_mode_reports_the_update_without_writing(run_module, webui):
    result = run_module(open_webui_api.main, {**_args(webui, settings=DESIRED), "_ansible_check_mode": True})
    assert result["changed"] is True and result["updated"] == ["ENABLE_SIGNUP"]
    assert webui.posts == [] and webui.groups["/api/v1/auths/admin/config"]["ENABLE_SIGNUP"] is False


def test_a_changed_url_and_key_go_to_the_openai_form(run_module, webui):
    settings = dict(DESIRED, OPENAI_API_BASE_URLS=["http://127.0.0.1:9000/v1"])
    result = run_module(open_webui_api.main, _args(webui, settings=settings, openai_api_keys=["new-key"]))
    assert set(result["updated"]) == {"ENABLE_SIGNUP", "OPENAI_API_BASE_URLS", "OPENAI_API_KEYS"}
    openai_post = dict(webui.posts)["/openai/config/update"]
    assert openai_post["OPENAI_API_BASE_URLS"] == ["http://127.0.0.1:9000/v1"] and openai_post["OPENAI_API_KEYS"] == ["new-key"]
    assert openai_post["OPENAI_API_CONFIGS"] == {} and openai_post["ENABLE_OPENAI_API"] is True


def test_a_value_open_webui_does_not_keep_fails(run_module, webui):
    webui.keep_writes = False
    result = run_module(open_webui_api.main, _args(webui, settings=DESIRED))
    assert result["failed"] is True and "did not keep ENABLE_SIGNUP" in result["msg"]


def test_wrong_password_fails_with_the_first_start_hint(run_module, webui):
    result = run_module(open_webui_api.main, _args(webui, password="changed-in-the-inventory"))
    assert result["failed"] is True
    assert "refused the sign-in as admin@workshop.local" in result["msg"] and "only on its first start" in result["msg"]
    assert "changed-in-the-inventory" not in json.dumps(result)


def test_a_model_that_never_appears_fails_with_the_listed_ones(run_module, webui):
    result = run_module(open_webui_api.main, _args(webui, expected_model="fp8", wait_timeout=1))
    assert result["failed"] is True
    assert "Model fp8 is not among the models" in result["msg"] and "meta-llama/Llama-3.1-8B-Instruct" in result["msg"]


def test_health_that_never_comes_fails_within_the_bound(run_module, webui):
    webui.unhealthy = 10**6
    result = run_module(open_webui_api.main, _args(webui, wait_timeout=1))
    assert result["failed"] is True and "did not answer /health within 1 s" in result["msg"] and "503" in result["msg"]


def test_nothing_listening_fails_with_the_reason(run_module, webui):
    url = webui.url
    webui.server.shutdown()
    webui.server.server_close()
    result = run_module(open_webui_api.main, {**_args(webui, wait_timeout=1), "url": url})
    assert result["failed"] is True and "did not answer /health" in result["msg"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"DEFAULT_USER_ROLE": "superuser"}, "DEFAULT_USER_ROLE must be one of pending, user, admin"),
        ({"OPENAI_API_BASE_URLS": "http://127.0.0.1:8000/v1"}, "OPENAI_API_BASE_URLS must be a list"),
        ({"OPENAI_API_KEYS": ["k"]}, "Give the API keys in openai_api_keys"),
    ],
)
def test_bad_settings_fail_before_any_request(run_module, webui, settings, message):
    result = run_module(open_webui_api.main, _args(webui, settings=settings))
    assert result["failed"] is True and message in result["msg"]
    assert webui.requests == []


def test_update_bodies_leave_out_groups_without_a_difference():
    current = {
        "openai": {"ENABLE_OPENAI_API": True, "OPENAI_API_BASE_URLS": ["u"], "OPENAI_API_KEYS": [""]},
        "admin": {"ENABLE_SIGNUP": True},
    }
    assert _open_webui.update_bodies(current, {"ENABLE_SIGNUP": True, "ENABLE_OPENAI_API": True}) == {}
    bodies = _open_webui.update_bodies(current, {"ENABLE_OPENAI_API": False})
    assert bodies == {
        "openai": {"ENABLE_OPENAI_API": False, "OPENAI_API_BASE_URLS": ["u"], "OPENAI_API_KEYS": [""], "OPENAI_API_CONFIGS": {}}
    }


def test_masked_shows_only_whether_keys_are_set():
    assert _open_webui.masked_settings({"OPENAI_API_KEYS": ["a", ""], "ENABLE_SIGNUP": True}) == {
        "ENABLE_SIGNUP": True,
        "OPENAI_API_KEYS": ["(set)", "(empty)"],
    }


def test_a_rate_limited_sign_in_fails_at_once_without_retrying(run_module, webui):
    webui.rate_limited = True
    result = run_module(open_webui_api.main, _args(webui, wait_timeout=30))
    assert result["failed"] is True and "15 sign-ins per account in 3 minutes" in result["msg"]
    assert webui.requests.count(("POST", "/api/v1/auths/signin")) == 1
