#!/usr/bin/env bash
# Create the virtual environment of one ansible-core minor of the test matrix and print its path.
#   scripts/matrix-venv.sh 2.17   ->  build/venvs/core-2.17 from requirements/core-2.17.txt
# Idempotent: the stamp file holds the requirements file's hash; a changed file rebuilds the venv.
# ansible-core 2.19 is the main venv (.venv, requirements.txt, `make venv`).
set -euo pipefail
cd "$(dirname "$0")/.."

minor=${1:?usage: scripts/matrix-venv.sh MINOR (for example 2.17)}
req=requirements/core-$minor.txt
venv=build/venvs/core-$minor
stamp=$venv/.installed
[ -f "$req" ] || { echo "matrix-venv: no $req" >&2; exit 2; }

want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/ansible-playbook" ]; then
    echo "$venv"
    exit 0
fi

echo "matrix-venv: creating $venv from $req" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
echo "$want" >"$stamp"
echo "$venv"
