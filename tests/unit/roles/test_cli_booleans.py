"""Booleans given on the command line arrive as strings: `-e name=false` must mean false in every role.

scripts/check-argument-specs.py checks statically that every bool option is read through `| bool`; this test runs the
preflight role's checks for real with -e values, on the controller, against a recorded unit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).parent / "files" / "preflight_assert.yml"


def _preflight(*extra_vars):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    argv = [sys.executable, "-m", "ansible.cli.playbook", "-i", "localhost,", str(PLAYBOOK)]
    for item in extra_vars:
        argv += ["-e", item]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)


@pytest.mark.parametrize("false", ["false", "no", "0", "False"])
def test_false_from_the_command_line_turns_checks_off(false):
    proc = _preflight(
        f"preflight_require_docker={false}", f"preflight_require_jetson_clocks={false}", f"preflight_require_swap={false}"
    )
    assert proc.returncode == 0, proc.stdout


def test_true_from_the_command_line_turns_checks_on():
    proc = _preflight("preflight_require_docker=true", "preflight_require_jetson_clocks=true", "preflight_require_swap=true")
    assert proc.returncode == 2
    assert "Docker is not installed" in proc.stdout
    assert "clocks are not pinned" in proc.stdout
    assert "no swap is configured" in proc.stdout
