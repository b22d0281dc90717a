"""The twin's database (sqlite3, DATA_DIR/webui.db, as Open WebUI's default): users, their password hashes, config rows.

Simulated: the table layout is the twin's own (Open WebUI 0.12 has many more tables, migrated by alembic); password
hashes are PBKDF2-SHA256 from the standard library, where Open WebUI uses bcrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
import uuid

_ITERATIONS = 60_000


def hash_password(password):
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), _ITERATIONS).hex()
    return f"pbkdf2_sha256${_ITERATIONS}${salt}${digest}"


def verify_password(password, stored):
    try:
        _, iterations, salt, digest = stored.split("$")
        mine = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations)).hex()
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(mine, digest)


class Store:
    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with self._connect() as db:
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS user (
                    id TEXT PRIMARY KEY, email TEXT UNIQUE NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
                    created_at INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS auth (id TEXT PRIMARY KEY, email TEXT NOT NULL, password TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER);
                """
            )

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    # --- config -------------------------------------------------------------------------------------------
    def config_keys(self):
        with self._lock, self._connect() as db:
            return [row["key"] for row in db.execute("SELECT key FROM config")]

    def config_get(self, keys):
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        with self._lock, self._connect() as db:
            rows = db.execute(f"SELECT key, value FROM config WHERE key IN ({marks})", list(keys)).fetchall()
        return {row["key"]: json.loads(row["value"]) for row in rows}

    def config_upsert(self, updates, now):
        if not updates:
            return
        with self._lock, self._connect() as db:
            db.executemany(
                "INSERT INTO config (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                [(key, json.dumps(value), now) for key, value in updates.items()],
            )

    # --- users --------------------------------------------------------------------------------------------
    def count_users(self):
        with self._lock, self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM user").fetchone()[0]

    def user_by_email(self, email):
        with self._lock, self._connect() as db:
            row = db.execute("SELECT * FROM user WHERE email = ?", (email.lower(),)).fetchone()
        return dict(row) if row else None

    def user_by_id(self, user_id):
        with self._lock, self._connect() as db:
            row = db.execute("SELECT * FROM user WHERE id = ?", (user_id,)).fetchone()
        return dict(row) if row else None

    def insert_user(self, email, password, name, role):
        user = {"id": str(uuid.uuid4()), "email": email.lower(), "name": name, "role": role, "created_at": int(time.time())}
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO user (id, email, name, role, created_at) VALUES (:id, :email, :name, :role, :created_at)", user
            )
            db.execute(
                "INSERT INTO auth (id, email, password) VALUES (?, ?, ?)", (user["id"], user["email"], hash_password(password))
            )
        return user

    def set_role(self, user_id, role):
        with self._lock, self._connect() as db:
            db.execute("UPDATE user SET role = ? WHERE id = ?", (role, user_id))

    def authenticate(self, email, password):
        with self._lock, self._connect() as db:
            row = db.execute("SELECT password FROM auth WHERE email = ?", (email.lower(),)).fetchone()
        if row is None or not verify_password(password, row["password"]):
            return None
        return self.user_by_email(email)
