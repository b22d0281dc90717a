#!/usr/bin/env bash
# make browser-test: install what the test needs (tests/browser/setup.sh; the first time about 5 minutes, then a
# no-op), make sure the vLLM twin image exists (twin/vllm/build.sh, a no-op when current), then run
# tests/browser/test_browser.py with the browser venv's pytest. Artefacts: build/browser/ (screenshots/, logs,
# timings.json, the answers). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
start=$SECONDS
tests/browser/setup.sh
twin/vllm/build.sh
rm -rf build/browser && mkdir -p build/browser  # only this run's artefacts
rc=0
build/venvs/browser/bin/pytest -q -p no:cacheprovider tests/browser/test_browser.py "$@" || rc=$?
echo "browser-test: $((SECONDS - start)) s in all; artefacts in build/browser/ (screenshots/, open-webui.log, vllm.log, timings.json)"
exit "$rc"
