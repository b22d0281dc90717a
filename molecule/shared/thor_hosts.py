"""testinfra hosts for twin (or real) Thor units, reached over SSH with paramiko as a real user would.

The inventory comes from molecule (MOLECULE_INVENTORY_FILE) or from THOR_INVENTORY (for example
inventories/sim after `make fleet-up`), so the same test files run under molecule and under plain pytest:

    THOR_INVENTORY=inventories/sim .venv/bin/pytest molecule/default/tests
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra

REPO = Path(__file__).resolve().parents[2]


def inventory_source() -> str:
    if os.environ.get("THOR_INVENTORY"):
        return os.environ["THOR_INVENTORY"]
    molecule_file = os.environ.get("MOLECULE_INVENTORY_FILE")
    if molecule_file:
        # The directory also holds molecule's host_vars/ and group_vars/.
        return str(Path(molecule_file).parent)
    return str(REPO / "inventories" / "sim")


def thor_units(group: str = "thor") -> dict[str, dict]:
    """Resolved variables of every host in GROUP, from `ansible-inventory --list`."""
    out = subprocess.run(
        ["ansible-inventory", "-i", inventory_source(), "--list"],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    ).stdout
    data = json.loads(out)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    return {name: hostvars.get(name, {}) for name in data.get(group, {}).get("hosts", [])}


def expand(value: str) -> str:
    return os.path.expandvars(value).replace("${MOLECULE_PROJECT_DIRECTORY}", str(REPO))


def connect(hostvars: dict):
    """A testinfra host over paramiko SSH, as the unit's workshop user, with sudo available."""
    address = hostvars.get("ansible_host", hostvars.get("inventory_hostname"))
    user = hostvars.get("ansible_user", "workshop")
    key = expand(hostvars.get("ansible_ssh_private_key_file", str(REPO / "build" / "sim" / "fleet_key")))
    return testinfra.get_host(f"paramiko://{user}@{address}", ssh_identity_file=key)


# pytest fixtures shared by every scenario's tests/conftest.py (`from thor_hosts import *`):
# each test that takes `unit`, `host`, `hostvars` or `case` runs once per unit of group `thor`.
_UNITS: dict[str, dict] = {}


def _units() -> dict[str, dict]:
    if not _UNITS:
        _UNITS.update(thor_units())
    return _UNITS


def pytest_generate_tests(metafunc):
    if "unit" in metafunc.fixturenames:
        metafunc.parametrize("unit", sorted(_units()), scope="module")


@pytest.fixture(scope="module")
def hostvars(unit):
    return _units()[unit]


@pytest.fixture(scope="module")
def host(hostvars):
    return connect(hostvars)


@pytest.fixture(scope="module")
def case(hostvars):
    """The starting state a scenario gave this unit (host var molecule_runtime_case)."""
    return hostvars["molecule_runtime_case"]


__all__ = ["case", "host", "hostvars", "pytest_generate_tests"]
