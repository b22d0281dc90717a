from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

import thor_hosts

UNITS = thor_hosts.thor_units()


def pytest_generate_tests(metafunc):
    if "unit" in metafunc.fixturenames:
        metafunc.parametrize("unit", sorted(UNITS), scope="module")


@pytest.fixture(scope="module")
def host(unit):
    return thor_hosts.connect(UNITS[unit])
