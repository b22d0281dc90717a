#!/usr/bin/env bash
# Build the twin Jetson Thor unit image and the tiny CUDA stand-in image, fully offline.
#   thor-twin/unit:latest                         debootstrap bookworm + docker.io + rootfs/ overlay
#   thor-twin/cuda:13.0.0-runtime-ubuntu24.04     busybox-static only; saved to build/images/thor-twin-cuda.tar
# Both are skipped when their recipe label equals the hash of twin/unit/ + twin/lib.sh (--force: build anyway).
# The debootstrap+apt base is cached in build/rootfs/unit-base (keyed by packages.txt + lib.sh),
# so an overlay-only change rebuilds in seconds.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

UNIT_IMAGE=thor-twin/unit:latest
CUDA_IMAGE=thor-twin/cuda:13.0.0-runtime-ubuntu24.04
CUDA_TAR="$TWIN_BUILD_DIR/images/thor-twin-cuda.tar"
HERE="$TWIN_REPO_ROOT/twin/unit"
ROOTFS_DIR="$TWIN_BUILD_DIR/rootfs"
start=$SECONDS

hash="$(twin_recipe_hash twin/unit twin/lib.sh)"
force=0
[ "${1:-}" = --force ] && force=1
# The tarball must hold the current CUDA image (its manifest names the image id).
cuda_tar_current() {
  local id
  id="$(docker image inspect -f '{{.Id}}' "$CUDA_IMAGE" 2>/dev/null)" && [ -s "$CUDA_TAR" ] \
    && tar -xOf "$CUDA_TAR" manifest.json | grep -q "${id#sha256:}"
}
if [ "$force" = 0 ] && twin_image_current "$UNIT_IMAGE" "$hash" && twin_image_current "$CUDA_IMAGE" "$hash" && cuda_tar_current; then
  echo "thor-twin/unit and thor-twin/cuda up to date (recipe ${hash:0:12}); $((SECONDS - start)) s"
  exit 0
fi

old_ids="$(docker image inspect -f '{{.Id}}' "$UNIT_IMAGE" "$CUDA_IMAGE" 2>/dev/null || true)"

# 1. Base rootfs: debootstrap minbase + docker.io (+ busybox-static, only borrowed for the CUDA stand-in).
base="$ROOTFS_DIR/unit-base"
base_hash="$(twin_recipe_hash twin/unit/packages.txt twin/lib.sh)"
if [ "$(cat "$base.hash" 2>/dev/null)" != "$base_hash" ]; then
  echo "debootstrap bookworm minbase (cache: build/cache/debootstrap)..."
  rm -f "$base.hash"
  twin_debootstrap "$base" "$(grep -v '^#' "$HERE/packages.txt" | paste -sd, -)"
  twin_chroot_apt "$base" docker.io busybox-static
  echo "$base_hash" >"$base.hash"
fi

# 2. CUDA stand-in: busybox and nothing else; nvidia-smi comes only from the nvidia runtime shim.
cuda="$ROOTFS_DIR/cuda"
rm -rf "$cuda" && mkdir -p "$cuda"/{bin,usr/bin,etc,tmp,root}
cp "$base/bin/busybox" "$cuda/bin/busybox"
for applet in $(chroot "$base" /bin/busybox --list); do
  [ -e "$cuda/bin/$applet" ] || ln -s busybox "$cuda/bin/$applet"
done
cp -r --no-preserve=ownership "$HERE/cuda-rootfs/." "$cuda/"
chmod 1777 "$cuda/tmp"
twin_import "$cuda" "$CUDA_IMAGE" "$hash" 'CMD ["/bin/sh"]' \
  'ENV PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  'ENV NVIDIA_VISIBLE_DEVICES=all' 'ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility' 'ENV CUDA_VERSION=13.0.0'
mkdir -p "$(dirname "$CUDA_TAR")"
docker save -o "$CUDA_TAR.tmp" "$CUDA_IMAGE" && chmod 0644 "$CUDA_TAR.tmp" && mv "$CUDA_TAR.tmp" "$CUDA_TAR"

# 3. Unit rootfs: copy of the base, the overlay rootfs/ (plain files), then a few commands.
unit="$ROOTFS_DIR/unit"
rm -rf "$unit" && cp -a "$base" "$unit"
tar -C "$HERE/rootfs" --owner=0 --group=0 -c . | tar -C "$unit" --no-overwrite-dir -x
chmod 0440 "$unit/etc/sudoers.d/workshop"
mkdir -p "$unit"/{etc/thor-twin,opt/thor-twin/images,var/lib/thor-twin}
# nvidia-l4t-core: an empty package whose only purpose is its dpkg version (rewritten at boot per the faults).
pkg="$ROOTFS_DIR/nvidia-l4t-core"
rm -rf "$pkg" && cp -r "$HERE/l4t-core" "$pkg" && chmod 0755 "$pkg" "$pkg/DEBIAN"
dpkg-deb --root-owner-group -b "$pkg" "$unit/tmp/nvidia-l4t-core.deb" >/dev/null
in_unit() { chroot "$unit" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_unit dpkg -i /tmp/nvidia-l4t-core.deb >/dev/null
in_unit dpkg --purge busybox-static >/dev/null
in_unit useradd -m -u 1000 -G docker,sudo -s /bin/bash workshop
in_unit usermod -p '*' workshop
in_unit systemctl enable -q thor-twin-boot.service thor-twin-memd.service thor-twin-images.service
# Keep an idle unit small: nothing that only makes sense on a console or a long-lived real machine.
in_unit systemctl mask -q getty@tty1.service console-getty.service getty-static.service serial-getty@.service \
  apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  systemd-journal-flush.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount \
  dev-hugepages.mount dev-mqueue.mount systemd-ask-password-console.path systemd-ask-password-wall.path \
  systemd-pcrphase.service systemd-pcrphase-sysinit.service
in_unit python3 -m compileall -q /usr/local/lib/thor-twin
rm -f "$unit"/etc/ssh/ssh_host_* "$unit/tmp/nvidia-l4t-core.deb" "$unit/etc/machine-id"
: >"$unit/etc/machine-id"
rm -rf "$unit"/usr/share/{doc,man,info}/* "$unit"/var/cache/apt/*.bin "$unit"/var/log/*.log
twin_import "$unit" "$UNIT_IMAGE" "$hash" 'CMD ["/lib/systemd/systemd"]' 'ENV container=docker'
# docker import (engine 20.10) refuses STOPSIGNAL; a one-line build on top adds it without a layer.
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$UNIT_IMAGE" | DOCKER_BUILDKIT=0 docker build -q -t "$UNIT_IMAGE" - \
  >/dev/null 2>"$ROOTFS_DIR/stopsignal.log" || { cat "$ROOTFS_DIR/stopsignal.log" >&2; exit 1; }

for id in $old_ids; do docker image rm "$id" >/dev/null 2>&1 || true; done  # replaced, unless a container uses it
echo "built $UNIT_IMAGE and $CUDA_IMAGE (recipe ${hash:0:12}) in $((SECONDS - start)) s"
