"""The Open WebUI twin's HTTP server: the endpoints the collection uses, with Open WebUI 0.12.4's rules and texts.

Simulated (standard library only): it is not Open WebUI. What it reproduces, from open-webui 0.12.4's source (PyPI):
/health, /ready, /api/version, /api/config (part), sign-in and sign-up with their rules and error texts (first user is
admin, DEFAULT_USER_ROLE, ENABLE_SIGNUP, the admin from WEBUI_ADMIN_EMAIL/PASSWORD), HS256 session tokens signed with
WEBUI_SECRET_KEY, /api/models (the OpenAI connections' /models with their keys, Ollama probed when enabled, model access
control with BYPASS_MODEL_ACCESS_CONTROL), the admin settings API of the OpenAI, Ollama and admin groups with the
ConfigVar persistence rules (settings.py), and /api/chat/completions proxied to the connection, streamed as it arrives.
Everything else (the web app, chats, RAG, tools, files) is absent: GET / says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from . import VERSION
from .settings import (
    ADMIN_CONFIG_KEYS,
    ADMIN_REQUIRED,
    OLLAMA_CONFIG_KEYS,
    OPENAI_CONFIG_KEYS,
    Config,
    defaults_from_env,
)
from .store import Store

# The admin API's settings routes: GET reads a group of settings, POST writes it (routers/openai.py, ollama.py,
# auths.py); the names are the App methods that apply a form.
CONFIG_READS = {
    "/openai/config": OPENAI_CONFIG_KEYS,
    "/ollama/config": OLLAMA_CONFIG_KEYS,
    "/api/v1/auths/admin/config": ADMIN_CONFIG_KEYS,
}
CONFIG_WRITES = {
    "/openai/config/update": "update_openai",
    "/ollama/config/update": "update_ollama",
    "/api/v1/auths/admin/config": "update_admin",
}

log = logging.getLogger("open_webui_twin")

INVALID_CRED = "The email or password provided is incorrect. Please check for typos and try logging in again."
ACCESS_PROHIBITED = "You do not have permission to access this resource. Please contact your administrator for assistance."
INVALID_TOKEN = "Your session has expired or the token is invalid. Please sign in again."
EMAIL_TAKEN = "Uh-oh! This email is already registered. Sign in with your existing account or choose another email to start anew."
INVALID_EMAIL_FORMAT = (
    "The email format you entered is invalid. Please double-check and make sure you're using a valid email address "
    "(e.g., yourname@example.com)."
)
SECRET_KEY_MISSING = (
    "WEBUI_SECRET_KEY is not set. It is a hard requirement when authentication is enabled.\n"
    "The supported start methods set or auto-generate it for you: use start.sh (Linux/macOS), "
    "start_windows.bat (Windows), or `open-webui serve`."
)
TWIN_NOTE = "Open WebUI twin: a simulated stand-in for open-webui, not Open WebUI (twin/open-webui, docs/open-webui.md)"
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")
_DURATION_RE = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
RATE_LIMIT_EXCEEDED = "API rate limit exceeded"
# routers/auths.py: RateLimiter(limit=5 * 3, window=60 * 3), every sign-in attempt of an email counts.
SIGNIN_LIMIT, SIGNIN_WINDOW = 15, 180


class HTTPError(Exception):
    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_encode(payload, key):
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = hmac.new(key.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def jwt_decode(token, key, now=None):
    """The payload of a valid HS256 token signed with key, or None (bad signature, malformed, expired)."""
    try:
        header, body, signature = token.split(".")
        expected = hmac.new(key.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            return None
        if json.loads(_unb64(header)).get("alg") != "HS256":
            return None
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    exp = payload.get("exp")
    if exp is not None and (now or time.time()) >= exp:
        return None
    return payload


def parse_duration(text):
    """Seconds of a JWT_EXPIRES_IN value such as 4w or 30m; None for -1 (no expiry)."""
    if text in ("-1", "0"):
        return None
    match = _DURATION_RE.match(str(text).strip())
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


class App:
    """The twin's state: environment-derived settings, the database, the secret key."""

    def __init__(self, env, data_dir):
        self.env = env
        self.webui_auth = env.get("WEBUI_AUTH", "True").lower() == "true"
        self.secret = env.get("WEBUI_SECRET_KEY", env.get("WEBUI_JWT_SECRET_KEY", ""))
        if self.webui_auth and self.secret == "":
            raise SystemExit(SECRET_KEY_MISSING)
        self.bypass_model_access = env.get("BYPASS_MODEL_ACCESS_CONTROL", "False").lower() == "true"
        self.bypass_admin_access = env.get("BYPASS_ADMIN_ACCESS_CONTROL", "True").lower() == "true"
        self.model_list_timeout = float(env.get("AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST", "10") or 10)
        self.chat_timeout = float(env.get("AIOHTTP_CLIENT_TIMEOUT", "300") or 300)
        self.store = Store(f"{data_dir}/webui.db")
        self.signins = {}
        persistent = env.get("ENABLE_PERSISTENT_CONFIG", "True").lower() == "true"
        self.config = Config(self.store, defaults_from_env(env), persistent)
        self.started = time.time()

    def startup(self):
        seeded = self.config.seed()
        if seeded:
            log.info("Seeded %d new config defaults", seeded)
        email, password = self.env.get("WEBUI_ADMIN_EMAIL", ""), self.env.get("WEBUI_ADMIN_PASSWORD", "")
        if email and password and self.store.count_users() == 0:
            log.info("Creating admin account from environment variables: %s", email)
            self.store.insert_user(email, password, self.env.get("WEBUI_ADMIN_NAME", "Admin"), "admin")
            log.info("Admin account created successfully: %s", email)
            self.config.upsert({"ui.enable_signup": False})

    # --- auth -----------------------------------------------------------------------------------------------
    def token_for(self, user):
        payload = {"id": user["id"], "jti": str(uuid.uuid4()), "iat": int(time.time())}
        seconds = parse_duration(self.config.get("auth.jwt_expiry"))
        if seconds:
            payload["exp"] = int(time.time() + seconds)
        return jwt_encode(payload, self.secret)

    def signin_response(self, user):
        return {
            "token": self.token_for(user),
            "token_type": "Bearer",
            "expires_at": None,
            "id": user["id"],
            "email": user["email"],
            "name": user["name"],
            "role": user["role"],
            "profile_image_url": "/user.png",
            "permissions": {},
        }

    def current_user(self, headers):
        auth = headers.get("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        if not token:
            raise HTTPError(401, "Not authenticated")
        payload = jwt_decode(token, self.secret)
        if payload is None or "id" not in payload:
            raise HTTPError(401, INVALID_TOKEN)
        user = self.store.user_by_id(payload["id"])
        if user is None:
            raise HTTPError(401, INVALID_TOKEN)
        return user

    def verified_user(self, headers):
        user = self.current_user(headers)
        if user["role"] not in ("user", "admin"):
            raise HTTPError(401, ACCESS_PROHIBITED)
        return user

    def admin_user(self, headers):
        user = self.current_user(headers)
        if user["role"] != "admin":
            raise HTTPError(401, ACCESS_PROHIBITED)
        return user

    def signin(self, form):
        email, now = str(form.get("email", "")).lower(), time.monotonic()
        attempts = [t for t in self.signins.get(email, []) if now - t < SIGNIN_WINDOW] + [now]
        self.signins[email] = attempts
        if len(attempts) > SIGNIN_LIMIT:
            raise HTTPError(429, RATE_LIMIT_EXCEEDED)
        user = self.store.authenticate(str(form.get("email", "")), str(form.get("password", "")))
        if user is None:
            raise HTTPError(400, INVALID_CRED)
        return self.signin_response(user)

    def signup(self, form):
        email, password, name = str(form.get("email", "")), str(form.get("password", "")), str(form.get("name", ""))
        has_users = self.store.count_users() > 0
        if self.webui_auth:
            if has_users and (not self.config.get("ui.enable_signup") or not self.config.get("ui.enable_login_form")):
                raise HTTPError(403, ACCESS_PROHIBITED)
        elif has_users:
            raise HTTPError(403, ACCESS_PROHIBITED)
        if not _EMAIL_RE.match(email.lower()):
            raise HTTPError(400, INVALID_EMAIL_FORMAT)
        if self.store.user_by_email(email):
            raise HTTPError(400, EMAIL_TAKEN)
        user = self.store.insert_user(email, password, name, self.config.get("ui.default_user_role"))
        if self.store.count_users() == 1:
            self.store.set_role(user["id"], "admin")
            user["role"] = "admin"
            self.config.upsert({"ui.enable_signup": False})
        return self.signin_response(user)

    # --- settings -------------------------------------------------------------------------------------------
    def read_group(self, mapping):
        values = self.config.get_many(list(mapping.values()))
        return {field: values[key] for field, key in mapping.items()}

    def update_openai(self, form):
        for field in ("OPENAI_API_BASE_URLS", "OPENAI_API_KEYS", "OPENAI_API_CONFIGS"):
            if field not in form:
                raise HTTPError(422, [{"type": "missing", "loc": ["body", field], "msg": "Field required"}])
        urls, keys = list(form["OPENAI_API_BASE_URLS"]), list(form["OPENAI_API_KEYS"])
        keys = keys[: len(urls)] + [""] * (len(urls) - len(keys))
        configs = {k: v for k, v in dict(form["OPENAI_API_CONFIGS"]).items() if k in {str(i) for i in range(len(urls))}}
        self.config.upsert(
            {
                "openai.enable": form.get("ENABLE_OPENAI_API"),
                "openai.api_base_urls": urls,
                "openai.api_keys": keys,
                "openai.api_configs": configs,
            }
        )
        return {
            "ENABLE_OPENAI_API": form.get("ENABLE_OPENAI_API"),
            "OPENAI_API_BASE_URLS": urls,
            "OPENAI_API_KEYS": keys,
            "OPENAI_API_CONFIGS": configs,
        }

    def update_ollama(self, form):
        for field in ("OLLAMA_BASE_URLS", "OLLAMA_API_CONFIGS"):
            if field not in form:
                raise HTTPError(422, [{"type": "missing", "loc": ["body", field], "msg": "Field required"}])
        urls = list(form["OLLAMA_BASE_URLS"])
        configs = {k: v for k, v in dict(form["OLLAMA_API_CONFIGS"]).items() if k in {str(i) for i in range(len(urls))}}
        self.config.upsert(
            {"ollama.enable": form.get("ENABLE_OLLAMA_API"), "ollama.base_urls": urls, "ollama.api_configs": configs}
        )
        return self.read_group(OLLAMA_CONFIG_KEYS)

    def update_admin(self, form):
        missing = [field for field in ADMIN_REQUIRED if field not in form]
        if missing:
            raise HTTPError(422, [{"type": "missing", "loc": ["body", f], "msg": "Field required"} for f in missing])
        updates = {key: form[field] for field, key in ADMIN_CONFIG_KEYS.items() if field in form}
        if form.get("DEFAULT_USER_ROLE") not in ("pending", "user", "admin"):
            updates.pop("ui.default_user_role", None)
        self.config.upsert(updates)
        return self.read_group(ADMIN_CONFIG_KEYS)

    # --- models ---------------------------------------------------------------------------------------------
    def _get_json(self, url, key, timeout):
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(url, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode())

    def base_models(self):
        models = []
        enable, urls, keys, configs = self.config.get_many(
            ["openai.enable", "openai.api_base_urls", "openai.api_keys", "openai.api_configs"]
        ).values()
        if enable:
            for idx, url in enumerate(urls or []):
                conf = (configs or {}).get(str(idx), (configs or {}).get(url, {})) or {}
                if conf.get("enable") is False:
                    continue
                key = keys[idx] if idx < len(keys or []) else ""
                try:
                    payload = self._get_json(f"{url}/models", key, self.model_list_timeout)
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    log.error("Connection error: %s", exc)
                    continue
                prefix = conf.get("prefix_id")
                for item in payload.get("data", []) if isinstance(payload, dict) else []:
                    model_id = f"{prefix}.{item['id']}" if prefix else item["id"]
                    models.append(
                        {
                            "id": model_id,
                            "name": item.get("name", item["id"]),
                            "object": "model",
                            "created": item.get("created", int(self.started)),
                            "owned_by": "openai",
                            "openai": item,
                            "connection_type": conf.get("connection_type", "external"),
                            "urlIdx": idx,
                            "tags": [],
                        }
                    )
        ollama_enable, ollama_urls = self.config.get_many(["ollama.enable", "ollama.base_urls"]).values()
        if ollama_enable:
            for idx, url in enumerate(ollama_urls or []):
                try:
                    payload = self._get_json(f"{url}/api/tags", "", self.model_list_timeout)
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    log.error("Connection error: %s", exc)
                    continue
                for item in payload.get("models", []) if isinstance(payload, dict) else []:
                    models.append(
                        {
                            "id": item.get("model"),
                            "name": item.get("name"),
                            "object": "model",
                            "owned_by": "ollama",
                            "ollama": item,
                            "urlIdx": idx,
                            "tags": [],
                        }
                    )
        return models

    def filtered_models(self, user):
        models = self.base_models()
        restricted = user["role"] == "user" or (user["role"] == "admin" and not self.bypass_admin_access)
        if restricted and not self.bypass_model_access:
            # The twin keeps no per-model access grants: a base model without one is visible to admins only.
            return [model for model in models if user["role"] == "admin"]
        return models

    def connection_for(self, model_id, user):
        for model in self.filtered_models(user):
            if model["id"] == model_id and model["owned_by"] == "openai":
                urls, keys = self.config.get_many(["openai.api_base_urls", "openai.api_keys"]).values()
                idx = model["urlIdx"]
                return urls[idx], (keys[idx] if idx < len(keys) else ""), model["openai"]["id"]
        raise HTTPError(400, "Model not found")

    def admin_details(self):
        return {"twin": {"simulated": True, "note": TWIN_NOTE}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""
    app: App = None

    def log_message(self, format, *args):
        if "/health" not in self.path:
            log.info('%s - "%s" %s', self.client_address[0], self.requestline, args[1] if len(args) > 1 else "")

    # --- plumbing ---------------------------------------------------------------------------------------------
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise HTTPError(422, [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"}]) from None
        if not isinstance(body, dict):
            raise HTTPError(422, [{"type": "dict_type", "loc": ["body"], "msg": "Input should be a valid dictionary"}])
        return body

    def _send(self, status, payload, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method):
        parsed = urlparse(self.path)
        path, query = parsed.path.rstrip("/") or "/", parse_qs(parsed.query)
        app = self.app
        try:
            if method == "GET":
                if path == "/health" or path == "/ready" or path == "/health/db":
                    return self._send(200, {"status": True})
                if path == "/api/version":
                    return self._send(200, {"version": VERSION, **app.admin_details()})
                if path == "/api/config":
                    return self._send(
                        200,
                        {
                            "status": True,
                            "name": "Open WebUI",
                            "version": VERSION,
                            "features": {
                                "auth": app.webui_auth,
                                "enable_signup": app.config.get("ui.enable_signup"),
                                "enable_login_form": app.config.get("ui.enable_login_form"),
                            },
                            **app.admin_details(),
                        },
                    )
                if path == "/api/v1/auths":
                    user = app.current_user(self.headers)
                    return self._send(200, {**{k: user[k] for k in ("id", "email", "name", "role")}, "token_type": "Bearer"})
                if path in ("/api/models", "/api/v1/models"):
                    user = app.verified_user(self.headers)
                    del query  # refresh: the twin keeps no model cache, every listing asks the connections
                    return self._send(200, {"data": app.filtered_models(user)})
                if path in CONFIG_READS:  # admin only
                    app.admin_user(self.headers)
                    return self._send(200, app.read_group(CONFIG_READS[path]))
                if path == "/":
                    page = f"<!doctype html><title>Open WebUI (twin)</title><p>{TWIN_NOTE}. It has no web app.</p>"
                    return self._send(200, page.encode(), "text/html; charset=utf-8")
            if method == "POST":
                body = self._body()
                if path == "/api/v1/auths/signin":
                    return self._send(200, app.signin(body))
                if path == "/api/v1/auths/signup":
                    return self._send(200, app.signup(body))
                if path in CONFIG_WRITES:  # admin only
                    app.admin_user(self.headers)
                    return self._send(200, getattr(app, CONFIG_WRITES[path])(body))
                if path in ("/api/chat/completions", "/api/v1/chat/completions"):
                    user = app.verified_user(self.headers)
                    return self._chat(user, body)
            raise HTTPError(404, "Not Found")
        except HTTPError as exc:
            return self._send(exc.status, {"detail": exc.detail})
        except Exception:  # a twin bug: answer as uvicorn does, with the traceback in the log
            log.exception("Exception in ASGI application")
            return self._send(500, b"Internal Server Error", "text/plain; charset=utf-8")

    def _chat(self, user, body):
        url, key, upstream_model = self.app.connection_for(body.get("model"), user)
        payload = dict(body, model=upstream_model)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(payload).encode(), headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            upstream = opener.open(req, timeout=self.app.chat_timeout)
        except urllib.error.HTTPError as exc:
            return self._send(exc.code, exc.read() or b"{}")
        except (urllib.error.URLError, OSError) as exc:
            raise HTTPError(500, f"Open WebUI: Server Connection Error ({exc})") from None
        with upstream:
            if not body.get("stream"):
                return self._send(upstream.status, upstream.read())
            # Streamed as it arrives: each upstream read is one chunk of ours.
            self.send_response(upstream.status)
            self.send_header("Content-Type", upstream.headers.get("Content-Type", "text/event-stream"))
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                data = upstream.read1(65536)
                if not data:
                    break
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        return None

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")


def serve(env, host, port, data_dir):
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    app = App(env, data_dir)
    log.warning(TWIN_NOTE)
    app.startup()
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    log.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
