#!/usr/bin/env bash
# ansible-test sanity and units against the collection as it ships, offline, for one or more ansible-core minors.
#   scripts/ansible-test.sh [MINOR|VENV ...]   (default: .venv; 2.17 means build/venvs/core-2.17 (scripts/matrix-venv.sh),
#                                               the main venv's own minor, 2.19, means .venv)
#   ANSIBLE_TEST_WHAT="sanity units"         which of the two to run
#   ANSIBLE_TEST_SANITY_ARGS="--test pep8"   extra arguments for `ansible-test sanity`
# The tree under test is the built tarball's content (`ansible-galaxy collection build` honours galaxy.yml's
# build_ignore) plus tests/unit and tests/sanity, at build/ansible-test/core-X.Y/ansible_collections/jetson_thor/workshop.
# `ansible-test --venv` bootstraps pip in each of its venvs with a script it downloads from
# ci-files.testing.ansible.com, which build machines cannot reach: scripts/ansible-test-get-pip.py stands in for it
# (saved where ansible-test caches that download). The test requirements themselves come from the package index.
# Output: build/ansible-test/core-X.Y.log; one result line per version and step at the end.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
repo=$PWD
what=${ANSIBLE_TEST_WHAT:-sanity units}

venv_for() {  # MINOR or path -> absolute venv path
    local arg=$1 main
    case $arg in
        2.[0-9]*)
            if [ -f "requirements/core-$arg.txt" ]; then
                arg=$(scripts/matrix-venv.sh "$arg") || return 1
            else
                main=$(.venv/bin/python -c 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))')
                [ "$main" = "$arg" ] || { echo "ansible-test.sh: no requirements/core-$arg.txt and .venv has $main" >&2; return 1; }
                arg=.venv
            fi ;;
    esac
    (cd "$arg" && pwd)
}

step() {  # STEP VENV DEST PYVER
    local venv=$2 dest=$3 pyver=$4
    case $1 in
        sanity)
            # shellcheck disable=SC2086  # word splitting intended
            (cd "$dest" && PATH=$venv/bin:$PATH ansible-test sanity --venv --python "$pyver" --color no ${ANSIBLE_TEST_SANITY_ARGS:-}) ;;
        units)
            (cd "$dest" && PATH=$venv/bin:$PATH ansible-test units --venv --python "$pyver" --color no) ;;
        *) echo "ansible-test.sh: unknown step $1"; return 2 ;;
    esac
}

one() {  # VENV: build the tree, run the steps; prints "ansible-test STEP (...): PASS|FAIL in N s" lines
    local venv=$1 py core minor pyver reqs_py pip_version cache root dest name t0 s rc=0
    py=$venv/bin/python
    [ -x "$venv/bin/ansible-test" ] || { echo "ansible-test.sh: no ansible-test in $venv"; return 1; }
    core=$("$py" -c 'from ansible.release import __version__; print(__version__)')
    minor=$(echo "$core" | cut -d. -f1,2)
    pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

    # The pip bootstrap stand-in, under the name this ansible-test looks for.
    reqs_py=$("$py" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')
    pip_version=$(grep -oP "pip='\K[0-9.]+" "$reqs_py" | head -n 1)
    cache=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
    if ! [ -f "$cache" ]; then
        mkdir -p "$(dirname "$cache")"
        cp scripts/ansible-test-get-pip.py "$cache"
    fi

    # The collection as it ships, plus its tests.
    root=$repo/build/ansible-test/core-$minor
    dest=$root/ansible_collections/jetson_thor/workshop
    rm -rf "$root"
    mkdir -p "$dest" "$root/dist"
    "$venv/bin/ansible-galaxy" collection build --output-path "$root/dist" >/dev/null || return 1
    tar -xzf "$root"/dist/jetson_thor-workshop-*.tar.gz -C "$dest" || return 1
    mkdir -p "$dest/tests"
    cp -a tests/unit "$dest/tests/"
    [ -d tests/sanity ] && cp -a tests/sanity "$dest/tests/"
    find "$dest" -name __pycache__ -prune -exec rm -rf {} +
    # A repository of its own: ansible-test lists a collection's files with git when it finds a .git
    # above it, and this checkout's .gitignore leaves out all of build/.
    git -C "$dest" init -q
    echo /tests/output/ >>"$dest/.git/info/exclude"

    for name in $what; do
        t0=$SECONDS
        if step "$name" "$venv" "$dest" "$pyver"; then s=PASS; else s=FAIL; rc=1; fi
        echo "ansible-test $name (ansible-core $core, Python $pyver): $s in $((SECONDS - t0)) s"
    done
    return $rc
}

mkdir -p build/ansible-test
declare -a lines=()
rc=0
for arg in "${@:-.venv}"; do
    label=${arg//\//_}
    log=build/ansible-test/core-$label.log
    if venv=$(venv_for "$arg"); then
        one "$venv" 2>&1 | tee "$log"
        [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
        mapfile -t -O "${#lines[@]}" lines < <(grep -E '^ansible-test (sanity|units|[a-z]+) \(' "$log")
    else
        lines+=("ansible-test $arg: no venv")
        rc=1
    fi
done
echo "== ansible-test ($what) on the shipped collection; logs in build/ansible-test/"
printf '%s\n' "${lines[@]}"
exit $rc
