#!/usr/bin/env bash
# Build thor-twin/open-webui:v0.12.4 offline: a SIMULATED stand-in for ghcr.io/open-webui/open-webui:v0.12.4
# (docs/open-webui.md says what it reproduces and why the real one is not used on twin units). The package is standard
# library Python, so the image is the vLLM twin's Debian rootfs (python3) plus one small layer: `docker create` from
# thor-twin/vllm:25.09-py3, `docker cp` the package in, `docker commit` with the real image's layout (WORKDIR
# /app/backend, DATA_DIR /app/backend/data, PORT 8080, start.sh's `serve --host $HOST --port $PORT`). No builder, no
# registry. Cached by recipe hash (this directory, twin/lib.sh and the base image's id); saves
# build/images/thor-twin-open-webui.tar when rebuilt (every twin unit loads it).
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

IMAGE="thor-twin/open-webui:v0.12.4"
BASE="thor-twin/vllm:25.09-py3"
TARBALL="$TWIN_BUILD_DIR/images/thor-twin-open-webui.tar"
STAGE="$TWIN_BUILD_DIR/rootfs/open-webui"
start=$(date +%s)

"$TWIN_REPO_ROOT/twin/vllm/build.sh" >/dev/null
base_id="$(docker image inspect -f '{{.Id}}' "$BASE")"
hash="$( (twin_recipe_hash twin/lib.sh twin/open-webui; echo "$base_id") | sha256sum | cut -c1-64)"

if twin_image_current "$IMAGE" "$hash" && [ -f "$TARBALL" ]; then
  echo "$IMAGE is current (recipe ${hash:0:12}); $TARBALL present"
  exit 0
fi

if ! twin_image_current "$IMAGE" "$hash"; then
  echo "building $IMAGE (recipe ${hash:0:12}) on $BASE"
  rm -rf "$STAGE"
  dest="$STAGE/usr/local/lib/python3.11/dist-packages"
  mkdir -p "$dest" "$STAGE/usr/local/bin" "$STAGE/app/backend/data"
  cp -r "$TWIN_REPO_ROOT/twin/open-webui/open_webui_twin" "$dest/"
  find "$dest" -name __pycache__ -prune -exec rm -rf {} +
  install -m 0755 "$TWIN_REPO_ROOT/twin/open-webui/bin/open-webui" "$STAGE/usr/local/bin/open-webui"
  cid="$(docker create "$BASE" true)"
  trap 'docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT
  tar -C "$STAGE" --owner=0 --group=0 -c . | docker cp - "$cid:/"
  docker commit \
    -c "LABEL $TWIN_RECIPE_LABEL=$hash" -c 'LABEL org.jetson-thor.twin.simulated=true' \
    -c 'LABEL org.jetson-thor.twin.stands-in-for=ghcr.io/open-webui/open-webui:v0.12.4' \
    -c 'ENV DATA_DIR=/app/backend/data' -c 'ENV PORT=8080' -c 'ENV HOST=0.0.0.0' -c 'ENV ENV=prod' \
    -c 'WORKDIR /app/backend' -c 'EXPOSE 8080' \
    -c 'CMD ["sh", "-c", "exec open-webui serve --host \"${HOST:-0.0.0.0}\" --port \"${PORT:-8080}\""]' \
    "$cid" "$IMAGE" >/dev/null
  docker run --rm --network none "$IMAGE" open-webui --version
  rm -rf "$STAGE"
fi
mkdir -p "$(dirname "$TARBALL")"
docker save -o "$TARBALL.tmp" "$IMAGE" && chmod 0644 "$TARBALL.tmp" && mv "$TARBALL.tmp" "$TARBALL"
echo "$IMAGE built and saved to $TARBALL in $(( $(date +%s) - start )) s"
