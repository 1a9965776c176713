#!/usr/bin/env bash
# `make pin-base-image`: asks the registry for the digest of the Dockerfile's base
# image tag and writes it into the Dockerfile, as
#   ARG PYTHON_IMAGE=python:<tag>@sha256:<digest>
# which both FROM lines use. Docker then pulls exactly that manifest (and checks
# it against the digest) whatever the tag points to later. Run it again to move
# to the tag's current image, e.g. after a new Python patch release or a
# Debian security rebuild. An existing digest is replaced, never kept unchecked.
#
# The digest is the one of the manifest the tag names (for python's multi-platform
# images, the index), resolved with the first of:
#   $STATE_DIR/bin/crane  (pinned in hack/tools/crane, built by `make pin-base-image`)
#   crane, docker buildx imagetools, skopeo  (on PATH)
# It needs the registry (Docker Hub) to be reachable; it writes nothing otherwise.
#
# Usage: hack/pin-base-image.sh   (env: DOCKERFILE, default ./Dockerfile; STATE_DIR)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${STATE_DIR:-$root/.state}
dockerfile=${DOCKERFILE:-$root/Dockerfile}

line=$(grep -E '^ARG PYTHON_IMAGE=' "$dockerfile") || {
  echo "pin-base-image: no 'ARG PYTHON_IMAGE=' line in $dockerfile" >&2
  exit 2
}
current=${line#ARG PYTHON_IMAGE=}
ref=${current%@*}

resolve() {
  if [ -x "$state/bin/crane" ]; then
    echo "pin-base-image: resolving $ref with $state/bin/crane" >&2
    "$state/bin/crane" digest "$ref"
  elif command -v crane >/dev/null; then
    echo "pin-base-image: resolving $ref with crane" >&2
    crane digest "$ref"
  elif command -v docker >/dev/null && docker buildx version >/dev/null 2>&1; then
    echo "pin-base-image: resolving $ref with docker buildx imagetools" >&2
    docker buildx imagetools inspect "$ref" --format '{{.Manifest.Digest}}'
  elif command -v skopeo >/dev/null; then
    echo "pin-base-image: resolving $ref with skopeo" >&2
    local manifest
    manifest=$(mktemp)
    skopeo inspect --raw "docker://$ref" >"$manifest"
    skopeo manifest-digest "$manifest"
    rm -f "$manifest"
  else
    echo "pin-base-image: no tool to resolve $ref: build the pinned crane with" \
      "'hack/build-tools.sh crane' (needs Go), or install crane, docker buildx or skopeo" >&2
    return 3
  fi
}

if ! digest=$(resolve); then
  echo "pin-base-image: could not resolve $ref (is the registry reachable from here?);" \
    "$dockerfile is unchanged" >&2
  exit 1
fi
if ! [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "pin-base-image: '$digest' is not a sha256 digest; $dockerfile is unchanged" >&2
  exit 1
fi

pinned=$ref@$digest
if [ "$pinned" = "$current" ]; then
  echo "pin-base-image: $dockerfile already pins $pinned"
  exit 0
fi
tmp=$(mktemp)
sed "s|^ARG PYTHON_IMAGE=.*\$|ARG PYTHON_IMAGE=$pinned|" "$dockerfile" >"$tmp"
cat "$tmp" >"$dockerfile"
rm -f "$tmp"
echo "pin-base-image: $current -> $pinned"
