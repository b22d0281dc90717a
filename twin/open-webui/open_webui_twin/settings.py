"""Open WebUI's settings as its 0.12 code reads them from the environment, and its per-key config store.

Simulated: a stand-in for open_webui/config.py, env.py and models/config.py of open-webui 0.12.4 (PyPI), limited to the
settings the collection's role and tests use. The semantics that matter are reproduced exactly:
- every setting has a default taken from the environment at start (the "ConfigVar" value);
- with ENABLE_PERSISTENT_CONFIG true (the default) the defaults are written to the database on start for keys it does
  not have yet, and afterwards the database wins: a changed environment variable has no effect on an existing
  database (the "persistence trap");
- with ENABLE_PERSISTENT_CONFIG false the environment's values are used on every start, and a change through the
  admin API changes only the running process (lost at restart);
- when the admin account is created from WEBUI_ADMIN_EMAIL/WEBUI_ADMIN_PASSWORD, ui.enable_signup is set to false
  through the same store (so, with persistence off, only until the next start).
"""

from __future__ import annotations

import json
import os
import threading
import time


def _bool(env, name, default):
    return env.get(name, default).lower() == "true"


def defaults_from_env(env):
    """The config keys this twin knows, with their values from the environment (open_webui/config.py 0.12.4)."""
    webui_auth = _bool(env, "WEBUI_AUTH", "True")

    base_url = env.get("OPENAI_API_BASE_URL", "")
    if base_url == "":
        base_url = "https://api.openai.com/v1"
    elif base_url.endswith("/"):
        base_url = base_url[:-1]
    keys = env.get("OPENAI_API_KEYS", "") or env.get("OPENAI_API_KEY", "")
    keys = [key.strip() for key in keys.split(";")]
    urls = env.get("OPENAI_API_BASE_URLS", "") or base_url
    urls = [url.strip() if url != "" else "https://api.openai.com/v1" for url in urls.split(";")]
    configs = {}
    if env.get("OPENAI_API_CONFIGS"):
        try:
            parsed = json.loads(env["OPENAI_API_CONFIGS"])
            configs = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            configs = {}

    ollama = env.get("OLLAMA_BASE_URL", "")
    if ollama.endswith("/"):
        ollama = ollama[:-1]
    if not ollama:
        api = env.get("OLLAMA_API_BASE_URL", "http://localhost:11434/api")
        ollama = api[:-4] if api.endswith("/api") else api
    ollama_urls = [url.strip() for url in (env.get("OLLAMA_BASE_URLS", "") or ollama).split(";")]

    return {
        "openai.enable": _bool(env, "ENABLE_OPENAI_API", "True"),
        "openai.api_base_urls": urls,
        "openai.api_keys": keys,
        "openai.api_configs": configs,
        "ollama.enable": _bool(env, "ENABLE_OLLAMA_API", "True"),
        "ollama.base_urls": ollama_urls,
        "ollama.api_configs": {},
        "ui.enable_signup": False if not webui_auth else _bool(env, "ENABLE_SIGNUP", "True"),
        "ui.enable_login_form": _bool(env, "ENABLE_LOGIN_FORM", "True"),
        "ui.default_user_role": env.get("DEFAULT_USER_ROLE", "pending"),
        "ui.default_models": env.get("DEFAULT_MODELS"),
        "ui.default_group_id": env.get("DEFAULT_GROUP_ID", ""),
        "ui.enable_community_sharing": _bool(env, "ENABLE_COMMUNITY_SHARING", "True"),
        "ui.enable_message_rating": _bool(env, "ENABLE_MESSAGE_RATING", "True"),
        "ui.enable_user_webhooks": _bool(env, "ENABLE_USER_WEBHOOKS", "True"),
        "ui.pending_user_overlay_title": env.get("PENDING_USER_OVERLAY_TITLE", ""),
        "ui.pending_user_overlay_content": env.get("PENDING_USER_OVERLAY_CONTENT", ""),
        "ui.watermark": env.get("RESPONSE_WATERMARK", ""),
        "auth.admin.show": _bool(env, "SHOW_ADMIN_DETAILS", "true"),
        "auth.admin.email": env.get("ADMIN_EMAIL"),
        "auth.enable_api_keys": _bool(env, "ENABLE_API_KEYS", "False"),
        "auth.api_key.endpoint_restrictions": _bool(env, "ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS", "False"),
        "auth.api_key.allowed_endpoints": env.get("API_KEYS_ALLOWED_ENDPOINTS", ""),
        "auth.jwt_expiry": env.get("JWT_EXPIRES_IN", "4w"),
        "webui.url": env.get("WEBUI_URL", ""),
        "folders.enable": _bool(env, "ENABLE_FOLDERS", "True"),
        "channels.enable": _bool(env, "ENABLE_CHANNELS", "False"),
        "notes.enable": _bool(env, "ENABLE_NOTES", "True"),
    }


# Field names of the admin API (routers/auths.py ADMIN_CONFIG_KEYS, the subset this twin knows) -> config keys.
ADMIN_CONFIG_KEYS = {
    "SHOW_ADMIN_DETAILS": "auth.admin.show",
    "ADMIN_EMAIL": "auth.admin.email",
    "WEBUI_URL": "webui.url",
    "ENABLE_LOGIN_FORM": "ui.enable_login_form",
    "ENABLE_SIGNUP": "ui.enable_signup",
    "ENABLE_API_KEYS": "auth.enable_api_keys",
    "ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS": "auth.api_key.endpoint_restrictions",
    "API_KEYS_ALLOWED_ENDPOINTS": "auth.api_key.allowed_endpoints",
    "DEFAULT_USER_ROLE": "ui.default_user_role",
    "DEFAULT_GROUP_ID": "ui.default_group_id",
    "JWT_EXPIRES_IN": "auth.jwt_expiry",
    "ENABLE_COMMUNITY_SHARING": "ui.enable_community_sharing",
    "ENABLE_MESSAGE_RATING": "ui.enable_message_rating",
    "ENABLE_FOLDERS": "folders.enable",
    "ENABLE_CHANNELS": "channels.enable",
    "ENABLE_NOTES": "notes.enable",
    "ENABLE_USER_WEBHOOKS": "ui.enable_user_webhooks",
    "PENDING_USER_OVERLAY_TITLE": "ui.pending_user_overlay_title",
    "PENDING_USER_OVERLAY_CONTENT": "ui.pending_user_overlay_content",
    "RESPONSE_WATERMARK": "ui.watermark",
}
# Fields the real AdminConfig form requires (no default there): a POST without one of them is a 422.
ADMIN_REQUIRED = (
    "SHOW_ADMIN_DETAILS",
    "WEBUI_URL",
    "ENABLE_SIGNUP",
    "ENABLE_API_KEYS",
    "ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS",
    "API_KEYS_ALLOWED_ENDPOINTS",
    "DEFAULT_USER_ROLE",
    "DEFAULT_GROUP_ID",
    "JWT_EXPIRES_IN",
    "ENABLE_COMMUNITY_SHARING",
    "ENABLE_MESSAGE_RATING",
    "ENABLE_FOLDERS",
    "ENABLE_CHANNELS",
    "ENABLE_NOTES",
    "ENABLE_USER_WEBHOOKS",
)
OPENAI_CONFIG_KEYS = {
    "ENABLE_OPENAI_API": "openai.enable",
    "OPENAI_API_BASE_URLS": "openai.api_base_urls",
    "OPENAI_API_KEYS": "openai.api_keys",
    "OPENAI_API_CONFIGS": "openai.api_configs",
}
OLLAMA_CONFIG_KEYS = {
    "ENABLE_OLLAMA_API": "ollama.enable",
    "OLLAMA_BASE_URLS": "ollama.base_urls",
    "OLLAMA_API_CONFIGS": "ollama.api_configs",
}


class Config:
    """Per-key config with open_webui.models.config.Config's read/write rules, on the twin's database."""

    def __init__(self, db, defaults, persistent):
        self.db = db
        self.defaults = dict(defaults)
        self.persistent = persistent
        self._lock = threading.Lock()

    def seed(self):
        """Write the defaults of keys the database does not have yet (only with persistence on)."""
        if not self.persistent:
            return 0
        existing = set(self.db.config_keys())
        new = {key: value for key, value in self.defaults.items() if key not in existing}
        self.db.config_upsert(new, int(time.time()))
        return len(new)

    def get(self, key):
        if not self.persistent:
            return self.defaults.get(key)
        rows = self.db.config_get([key])
        return rows[key] if key in rows else self.defaults.get(key)

    def get_many(self, keys):
        if not self.persistent:
            return {key: self.defaults.get(key) for key in keys}
        rows = self.db.config_get(keys)
        return {key: rows[key] if key in rows else self.defaults.get(key) for key in keys}

    def upsert(self, updates):
        with self._lock:
            if not self.persistent:
                self.defaults.update(updates)
                return
            self.db.config_upsert(updates, int(time.time()))


def environment():
    return dict(os.environ)
