#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (as root) to run the collection's demo and tests:
# install the host packages that are missing, then start the Docker engine if it is not running.
# Safe to run again: it changes nothing when everything is in place.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap-host: run as root (it installs Debian packages and starts dockerd)." >&2
  exit 1
fi

packages=(docker.io debootstrap rsync openssh-client iproute2 ca-certificates make)
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap-host: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "bootstrap-host: starting dockerd (log: /var/log/dockerd.log)"
  # No systemd on the build machines: run the engine in the background, detached from this shell.
  setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "bootstrap-host: dockerd did not start; see /var/log/dockerd.log" >&2; tail -n 20 /var/log/dockerd.log >&2; exit 1; }
fi
# Every twin unit's systemd holds several inotify instances of the host's root user; the default
# limit (128) stops boots at about 15 units (docs/twin.md).
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 8192 ]; then
  sysctl -q -w fs.inotify.max_user_instances=8192
fi
echo "bootstrap-host: ready (docker $(docker version --format '{{.Server.Version}}'))"
