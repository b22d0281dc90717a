#!/usr/bin/env bash
# Shared helpers for the twin image builders (sourced, not executed).
# Images are built fully offline from Debian's archive: debootstrap, then `docker import`.
set -euo pipefail

TWIN_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TWIN_BUILD_DIR="${TWIN_BUILD_DIR:-$TWIN_REPO_ROOT/build}"
TWIN_DEBIAN_MIRROR="${TWIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TWIN_RECIPE_LABEL="org.jetson-thor.twin.recipe"

# twin_recipe_hash PATH...: sha256 over the names and contents of every file under PATHs.
twin_recipe_hash() {
  (cd "$TWIN_REPO_ROOT" && find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum) | sha256sum | cut -c1-64
}

# twin_image_current IMAGE HASH: true when IMAGE exists and was built from HASH.
twin_image_current() {
  local have
  have="$(docker image inspect -f "{{ index .Config.Labels \"$TWIN_RECIPE_LABEL\" }}" "$1" 2>/dev/null || true)"
  [ "$have" = "$2" ]
}

# twin_debootstrap DIR INCLUDES: a bookworm minbase rootfs with the comma-separated INCLUDES.
twin_debootstrap() {
  local dir="$1" includes="$2"
  mkdir -p "$TWIN_BUILD_DIR/cache/debootstrap"
  rm -rf "$dir" && mkdir -p "$dir"
  debootstrap --variant=minbase --cache-dir="$TWIN_BUILD_DIR/cache/debootstrap" \
    --include="$includes" bookworm "$dir" "$TWIN_DEBIAN_MIRROR" >"$dir.debootstrap.log" 2>&1 \
    || { tail -n 30 "$dir.debootstrap.log" >&2; return 1; }
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
}

# twin_chroot_apt DIR PACKAGES...: install more packages inside a rootfs, then clean the apt caches.
twin_chroot_apt() {
  local dir="$1"; shift
  chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  chroot "$dir" apt-get clean
  rm -rf "$dir"/var/lib/apt/lists/*
}

# twin_import DIR IMAGE HASH CHANGES...: import a rootfs as IMAGE, labelled with its recipe HASH.
twin_import() {
  local dir="$1" image="$2" hash="$3"; shift 3
  local args=(-c "LABEL $TWIN_RECIPE_LABEL=$hash" -c "LABEL org.jetson-thor.twin.simulated=true")
  local c
  for c in "$@"; do args+=(-c "$c"); done
  : >"$dir/etc/resolv.conf"
  tar -C "$dir" -c . | docker import "${args[@]}" - "$image" >/dev/null
}
