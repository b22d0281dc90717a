#!/usr/bin/env bash
# Build thor-twin/vllm:25.09-py3 offline (stand-in for nvcr.io/nvidia/vllm:25.09-py3): a bookworm minbase with
# Debian's python3, python3-aiohttp and python3-prometheus-client (no pip), the vllm_twin package and
# /usr/local/bin/vllm. Cached by recipe hash; `docker save`s build/images/thor-twin-vllm.tar when rebuilt.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

IMAGE="thor-twin/vllm:25.09-py3"
TARBALL="$TWIN_BUILD_DIR/images/thor-twin-vllm.tar"
ROOTFS="$TWIN_BUILD_DIR/rootfs/vllm"
start=$(date +%s)
hash="$(twin_recipe_hash twin/lib.sh twin/vllm/build.sh twin/vllm/bin twin/vllm/vllm_twin)"

if twin_image_current "$IMAGE" "$hash" && [ -f "$TARBALL" ]; then
  echo "$IMAGE is current (recipe ${hash:0:12}); $TARBALL present"
  exit 0
fi

if ! twin_image_current "$IMAGE" "$hash"; then
  echo "building $IMAGE (recipe ${hash:0:12})"
  twin_debootstrap "$ROOTFS" python3,python3-aiohttp,python3-prometheus-client
  dest="$ROOTFS/usr/local/lib/python3.11/dist-packages"
  mkdir -p "$dest" "$ROOTFS/root/.cache/huggingface" "$ROOTFS/root/.cache/vllm" "$ROOTFS/workspace"
  cp -r "$TWIN_REPO_ROOT/twin/vllm/vllm_twin" "$dest/"
  find "$dest" -name __pycache__ -prune -exec rm -rf {} +
  install -m 0755 "$TWIN_REPO_ROOT/twin/vllm/bin/vllm" "$ROOTFS/usr/local/bin/vllm"
  chroot "$ROOTFS" python3 -c "import vllm_twin.cli, vllm_twin.serve" # imports resolve with Debian's versions
  rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/cache/apt/*.bin
  twin_import "$ROOTFS" "$IMAGE" "$hash" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'ENV HOME=/root' \
    'ENV PYTHONDONTWRITEBYTECODE=1' 'WORKDIR /workspace' 'CMD ["/bin/bash"]'
  rm -rf "$ROOTFS" "$ROOTFS.debootstrap.log"
fi
mkdir -p "$(dirname "$TARBALL")"
docker save -o "$TARBALL.tmp" "$IMAGE" && chmod 0644 "$TARBALL.tmp" && mv "$TARBALL.tmp" "$TARBALL"
echo "$IMAGE built and saved to $TARBALL in $(( $(date +%s) - start )) s"
