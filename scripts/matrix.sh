#!/usr/bin/env bash
# The ansible-core version matrix: for each claimed minor older than the main venv's (2.19, which
# `make unit` and `make molecule` cover), run the unit tests with that minor's own venv (scripts/matrix-venv.sh),
# and one molecule scenario for the minors in MATRIX_MOLECULE_VERSIONS (default: all of them); one result line each.
#   MATRIX_VERSIONS="2.17 2.18"  MATRIX_MOLECULE_VERSIONS="2.17"  MATRIX_SCENARIO=default  scripts/matrix.sh
# Needs what `make molecule` needs: the twin images (make images) and build/sim/fleet_key.
# Molecule runs take /tmp/molecule.lock (the scenario platforms have fixed container names).
# Logs: build/matrix/core-X.Y-{unit,molecule}.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

versions=${MATRIX_VERSIONS:-2.17 2.18}
scenario=${MATRIX_SCENARIO:-default}
molecule_versions=${MATRIX_MOLECULE_VERSIONS:-$versions}
logdir=build/matrix
mkdir -p "$logdir"

fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

show_failure() {  # the lines that say why, then the end of the log
    echo "---- $1 (first errors, then the last lines)"
    grep -E -m 6 -A 14 'fatal:|FAILED!|^E  |^FAILED|^ERROR|CRITICAL' "$1" | head -n 80 || true
    echo "...."
    tail -n 25 "$1"
    echo "----"
}

declare -a lines=()
rc=0
for minor in $versions; do
    t0=$SECONDS
    if ! venv=$(scripts/matrix-venv.sh "$minor" 2>"$logdir/core-$minor-venv.log"); then
        show_failure "$logdir/core-$minor-venv.log"
        lines+=("matrix: ansible-core $minor: venv FAILED ($logdir/core-$minor-venv.log)")
        rc=1
        continue
    fi
    venv=$PWD/$venv
    tvenv=$((SECONDS - t0))
    core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
    run() { env PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" NO_COLOR=1 PY_COLORS=0 ANSIBLE_NOCOLOR=1 "$@"; }

    t0=$SECONDS
    ulog=$logdir/core-$minor-unit.log
    if run pytest -q -p no:cacheprovider tests/unit >"$ulog" 2>&1; then
        unit="unit PASS ($(tail -n 1 "$ulog" | tr -d '=' | sed 's/^ *//; s/ *$//'))"
    else
        show_failure "$ulog"
        unit="unit FAIL ($ulog)"
        rc=1
    fi
    tunit=$((SECONDS - t0))

    if [[ " $molecule_versions " != *" $minor "* ]]; then
        lines+=("matrix: ansible-core $core: $unit in $(fmt $tunit); molecule not run for $minor (MATRIX_MOLECULE_VERSIONS=$molecule_versions)")
        echo "${lines[-1]}"
        continue
    fi
    t0=$SECONDS
    mlog=$logdir/core-$minor-molecule.log
    started=$logdir/core-$minor-molecule.started
    rm -f "$started"
    # shellcheck disable=SC2016  # expanded by the inner bash
    if run flock /tmp/molecule.lock bash -c 'date +%s >"$0"; exec molecule test --scenario-name "$1"' \
        "$started" "$scenario" >"$mlog" 2>&1; then
        mol="molecule $scenario PASS"
    else
        show_failure "$mlog"
        mol="molecule $scenario FAIL ($mlog)"
        rc=1
    fi
    now=$(date +%s)
    tmol=$((SECONDS - t0))
    twait=0
    [ -f "$started" ] && twait=$((tmol - (now - $(cat "$started"))))
    lines+=("matrix: ansible-core $core: $unit in $(fmt $tunit); $mol in $(fmt $((tmol - twait))) (lock wait $(fmt $twait), venv $(fmt $tvenv))")
    echo "${lines[-1]}"
done

echo "== ansible-core matrix ($versions; scenario $scenario)"
printf '%s\n' "${lines[@]}"
exit $rc
