"""content_distribution: a unit whose organizer has no manifest fails naming the organizer's path, not its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).parent / "files" / "content_check_no_manifest.yml"


def test_unit_names_the_organizers_missing_manifest():
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    argv = [sys.executable, "-m", "ansible.cli.playbook", "-i", "org,unit,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}", str(PLAYBOOK)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 2, proc.stdout
    out = " ".join(proc.stdout.split())
    assert "unit: no content to distribute: the organizer org could not read the manifest" in out, out
    assert "/organizer/data/manifest.json" in out
    assert "/unit/data/manifest.json" not in out
