#!/bin/sh
# swapon / swapoff (SIMULATED by the molecule runtime scenario, installed in /usr/local/sbin, ahead of util-linux).
# A twin unit is a container on the build machine: a real swapon there would add swap to the build machine's
# kernel. This keeps the list of "active" swap files in /run (cleared by a twin reboot, like real swap) and
# checks the swap signature the way swapon does. Everything else (fallocate, mkswap, fstab) is real.
set -eu
state=/run/thor-twin-swaps
touch "$state"
if [ "$(basename "$0")" = swapoff ]; then
  grep -qxF "$1" "$state" || { echo "swapoff: $1: swapoff failed: Invalid argument" >&2; exit 255; }
  grep -vxF "$1" "$state" >"$state.new" || true
  mv "$state.new" "$state"
  exit 0
fi
case "$1" in
  --show*) cat "$state"; exit 0 ;;
  -*) exec /usr/sbin/swapon "$@" ;;
esac
[ "$(blkid -o value -s TYPE "$1" 2>/dev/null)" = swap ] || { echo "swapon: $1: read swap header failed" >&2; exit 255; }
if grep -qxF "$1" "$state"; then echo "swapon: $1: swapon failed: Device or resource busy" >&2; exit 255; fi
echo "$1" >>"$state"
