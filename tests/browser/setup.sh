#!/usr/bin/env bash
# Install what the browser test needs, outside the main venv (it is large): Debian's chromium, and a venv at
# build/venvs/browser with the real Open WebUI from PyPI (torch's CPU build first, from the machine's disk, so pip does
# not fetch a multi-GB CUDA build), Playwright (driving the system chromium; its own browser download is not used),
# pytest, and the official openai client (the version open-webui pins, 2.29.0). A no-op when the venv was made from the same pins.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/build/venvs/browser"
PINS=(torch==2.13.0 open-webui==0.12.4 playwright==1.65.2 pytest==9.2.0)
stamp="$(printf '%s\n' "${PINS[@]}" | sha256sum | cut -c1-16)"

if ! command -v chromium >/dev/null; then
  echo "browser-setup: installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

# Current: made from the same pins, and its interpreter still runs (a venv moved or reached through another path does not).
if [ "$(cat "$VENV/.pins" 2>/dev/null)" = "$stamp" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
  echo "browser-setup: $VENV is current ($(du -sh "$VENV" | cut -f1))"
  exit 0
fi
start=$SECONDS
rm -rf "$VENV"
python3.11 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# torch first, alone: open-webui's sentence-transformers would otherwise resolve a CUDA build.
"$VENV/bin/pip" install -q "${PINS[0]}"
"$VENV/bin/pip" install -q "${PINS[@]}"
echo "$stamp" >"$VENV/.pins"
echo "browser-setup: $VENV made in $((SECONDS - start)) s ($(du -sh "$VENV" | cut -f1))"
