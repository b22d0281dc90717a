"""Offline stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py).

ansible-test --venv creates an empty virtual environment, then runs this file as
`python get_pip_X_Y.py --disable-pip-version-check pip==X.Y [--no-setuptools] [--no-wheel]`.
The real script is downloaded from ci-files.testing.ansible.com, which build machines cannot
reach. This one bootstraps pip from the interpreter's bundled wheel (ensurepip), then lets that
pip install the pinned pip from the package index (PyPI is reachable), honouring --no-setuptools.
scripts/ansible-test.sh saves it where ansible-test looks for the cached download.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> None:
    args = sys.argv[1:]
    no_setuptools = "--no-setuptools" in args
    pip_args = [a for a in args if a not in ("--no-setuptools", "--no-wheel")]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *pip_args], check=True)
    if no_setuptools:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"],
            check=False,
            stderr=subprocess.DEVNULL,
        )


if __name__ == "__main__":
    main()
