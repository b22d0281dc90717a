"""Fixtures `unit`, `host` (testinfra over paramiko SSH), `hostvars` and `case`: molecule/shared/thor_hosts.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from thor_hosts import *  # noqa: F403
