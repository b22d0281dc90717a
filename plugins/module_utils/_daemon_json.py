# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: read, merge and render Docker's daemon.json.
# Standard library only: this code runs on the units, which have no pip.

from __future__ import annotations

import copy
import json

# Runtimes dockerd knows without a "runtimes" entry (moby daemon/config: builtin runtimes).
BUILTIN_RUNTIMES = ("runc", "io.containerd.runc.v2")


class DaemonJsonError(Exception):
    """daemon.json cannot be used as it is. ``line``/``column`` are set for syntax errors."""

    def __init__(self, message, line=None, column=None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def parse_daemon_json(data):
    """Parse daemon.json bytes (or text) into a dict.

    An empty or whitespace-only file counts as ``{}`` (what ``touch`` leaves behind).
    Raises DaemonJsonError for undecodable bytes, syntax errors (with line and column)
    and a top level that is not an object.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DaemonJsonError(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    else:
        text = data
    if text.startswith("\ufeff"):
        # dockerd's Go decoder rejects a byte order mark as well; report it like any syntax error.
        raise DaemonJsonError("starts with a UTF-8 byte order mark, which dockerd rejects", line=1, column=1)
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DaemonJsonError(exc.msg, line=exc.lineno, column=exc.colno) from exc
    if not isinstance(config, dict):
        raise DaemonJsonError(f"the top level is a JSON {type(config).__name__}, dockerd needs an object")
    return config


def merge_daemon_json(current, runtimes=None, default_runtime=None, settings=None):
    """Return a new config: ``current`` with the requested entries set, every other key kept.

    - ``runtimes``: each named runtime's definition is set (replaced as a whole); other runtimes stay.
    - ``default_runtime``: sets ``default-runtime``.
    - ``settings``: further top-level keys, each value replaced as a whole.
    Key order is kept; new keys go at the end.
    """
    merged = copy.deepcopy(current)
    if settings:
        for key, value in settings.items():
            merged[key] = copy.deepcopy(value)
    if runtimes:
        existing = merged.get("runtimes")
        if existing is None:
            existing = {}
        elif not isinstance(existing, dict):
            raise DaemonJsonError(f'"runtimes" is a JSON {type(existing).__name__}, dockerd needs an object')
        for name, definition in runtimes.items():
            existing[name] = copy.deepcopy(definition)
        merged["runtimes"] = existing
    if default_runtime:
        merged["default-runtime"] = default_runtime
    return merged


def check_default_runtime(config):
    """Return an error text when ``default-runtime`` names a runtime dockerd would not know, else None."""
    name = config.get("default-runtime")
    if name is None or name in BUILTIN_RUNTIMES:
        return None
    declared = config.get("runtimes") or {}
    if isinstance(declared, dict) and name in declared:
        return None
    return f'"default-runtime" is "{name}" but "runtimes" does not declare it; dockerd would refuse to start'


def render_daemon_json(config, indent=4):
    """The file content for ``config``: pretty JSON plus a final newline."""
    return json.dumps(config, indent=indent, ensure_ascii=False) + "\n"
