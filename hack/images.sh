#!/usr/bin/env bash
# Builds the images the real node runs, with no Docker engine and no registry:
#
#   base      Debian bookworm (minbase) with its python3 (3.11), python3-venv and
#             python-is-python3, made by mmdebstrap from Debian's packages;
#   operator  the project's Dockerfile, built by buildah with PYTHON_IMAGE=base
#             (the Dockerfile is not changed: only its base is);
#   job       base plus busybox, so that examples' commands really run;
#   pause     the pod sandbox: busybox's static binary alone, `sleep` forever.
#
# Each image is an OCI archive in $CRONWARDEN_IMAGES_CACHE, named after a hash of
# its inputs (this script's recipe, the base's key, and for the operator the
# Dockerfile, the locks and the package's sources), so a rebuild happens only
# when an input changes; worktrees share the cache. The archives' references are
# written to $STATE_DIR/images.env (CRONWARDEN_{BASE,OPERATOR,JOB,PAUSE}_IMAGE) for
# hack/real-node.sh and hack/rehearse.py. Times and sizes: README, "A real node".
#
# Usage: hack/images.sh            build what is missing, write images.env
#        hack/images.sh --list     print the cached archives and their sizes
# Env:   CRONWARDEN_IMAGES_CACHE   default ~/.cache/cronwarden/images
#        STATE_DIR                 default ./.state
#
# Needs (Debian packages, installed by hack/real-node.sh deps): mmdebstrap, buildah.
# pip inside the build reaches PyPI through the host's network; the host's
# /etc/pip.conf and CA bundle are mounted into the build's RUN steps (not into the
# image) so that pip trusts what the host trusts.
set -euo pipefail

# Bump when the recipes below change in a way that alters the images.
RECIPE_REVISION=1
SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
JOB_PACKAGES=busybox-static

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CRONWARDEN_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronwarden/images}
state=${STATE_DIR:-$root/.state}
# buildah's own storage (layers, build cache) beside the archives, not /var/lib/containers.
storage=(--root "$cache/storage" --runroot "$cache/run" --storage-driver overlay)

log() { echo "images: $*"; }

# Docs, man pages and translations are not needed in a container.
slim=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*')

# hash of stdin, 12 hex digits
digest() { sha256sum | cut -c1-12; }

base_key() {
  printf '%s\n' "$RECIPE_REVISION" "$SUITE" "$BASE_PACKAGES" "${slim[*]}" | digest
}

job_key() {
  printf '%s\n' "$(base_key)" "$JOB_PACKAGES" | digest
}

# The Dockerfile's inputs: what its COPY lines take (locks, pyproject, README,
# LICENSE, operator/) and the Dockerfile itself.
operator_key() {
  (
    cd "$root"
    base_key
    find Dockerfile requirements.lock requirements-build.lock pyproject.toml README.md LICENSE \
      operator -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 |
      sort -z | xargs -0 sha256sum
  ) | digest
}

# (2: busybox is named busybox, as it picks its applet from argv[0].)
pause_key() { printf '%s\n' "$(job_key)" pause 2 | digest; }

# buildah with this project's storage.
bah() { buildah "${storage[@]}" "$@"; }

# Import rootfs tarball $1 as image $2 with entrypoint/cmd config args $3...
commit_rootfs() {
  local tar=$1 ref=$2 ctr
  shift 2
  ctr=$(bah from scratch)
  bah add "$ctr" "$tar" / >/dev/null
  bah config "$@" "$ctr"
  bah commit --quiet "$ctr" "$ref" >/dev/null
  bah rm "$ctr" >/dev/null
}

# Save image $1 as OCI archive $2 (written atomically).
save() {
  bah push --quiet "$1" "oci-archive:$2.tmp:$1"
  mv "$2.tmp" "$2"
}

build_base() {
  local out=$1 ref=$2 tmp
  tmp=$(mktemp -d)
  # No mirror given: mmdebstrap uses Debian's default with -updates and -security.
  mmdebstrap --quiet --variant=minbase --include="$BASE_PACKAGES" "${slim[@]}" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$SUITE" "$tmp/rootfs.tar"
  commit_rootfs "$tmp/rootfs.tar" "$ref" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 --label org.opencontainers.image.title=cronwarden-base \
    --label "org.opencontainers.image.description=Debian $SUITE minbase with $BASE_PACKAGES"
  save "$ref" "$out"
  rm -rf "$tmp"
}

build_job() {
  local out=$1 ref=$2 base=$3 ctr
  ctr=$(bah from "$base")
  # busybox from Debian's package, its applets linked into /usr/local/bin.
  bah run --isolation chroot --network host "$ctr" -- sh -c "apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $JOB_PACKAGES >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* && /bin/busybox --install -s /usr/local/bin"
  bah config --cmd sh --label org.opencontainers.image.title=cronwarden-job "$ctr"
  bah commit --quiet "$ctr" "$ref" >/dev/null
  bah rm "$ctr" >/dev/null
  save "$ref" "$out"
}

build_pause() {
  local out=$1 ref=$2 job=$3 ctr mnt tmp
  tmp=$(mktemp -d)
  ctr=$(bah from "$job")
  mnt=$(bah mount "$ctr")
  cp "$mnt/bin/busybox" "$tmp/busybox"
  bah umount "$ctr" >/dev/null
  bah rm "$ctr" >/dev/null
  mkdir -p "$tmp/rootfs"
  cp "$tmp/busybox" "$tmp/rootfs/busybox"
  tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
  # The sandbox's only process sleeps until the kubelet stops it (SIGTERM ends it).
  commit_rootfs "$tmp/rootfs.tar" "$ref" --entrypoint '["/busybox", "sleep", "2147483647"]' \
    --label org.opencontainers.image.title=cronwarden-pause
  save "$ref" "$out"
  rm -rf "$tmp"
}

build_operator() {
  local out=$1 ref=$2 base=$3 version
  local mounts=() file
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -n 1)
  # What the host's pip trusts, where the host has it (not copied into the image).
  for file in /etc/pip.conf /etc/ssl/certs/ca-certificates.crt; do
    if [ -f "$file" ]; then mounts+=(--volume "$file:$file:ro"); fi
  done
  # Chroot isolation with the host's network: RUN needs PyPI and no CNI.
  bah bud --quiet --isolation chroot --network host --layers \
    --build-arg "PYTHON_IMAGE=$base" --build-arg "VERSION=$version" ${mounts[@]+"${mounts[@]}"} \
    -f "$root/Dockerfile" -t "$ref" "$root" >/dev/null
  save "$ref" "$out"
}

# ensure NAME KEY [BASE_NAME]: the archive for image NAME built if missing; sets
# ref[NAME] and archive[NAME].
declare -A ref archive
ensure() {
  local name=$1 key=$2 from=${3:-} start
  ref[$name]=localhost/cronwarden-$name:$key
  [ "$name" = operator ] && ref[$name]=localhost/cronwarden:$key
  archive[$name]=$cache/$name-$key.oci.tar
  if [ -f "${archive[$name]}" ]; then
    log "$name: cached (${archive[$name]})"
    return
  fi
  # The build needs its base in buildah's storage (gone if the storage was reset).
  if [ -n "$from" ] && ! bah inspect --type image "${ref[$from]}" >/dev/null 2>&1; then
    bah pull --quiet "oci-archive:${archive[$from]}" >/dev/null
  fi
  log "$name: building ${ref[$name]} ..."
  start=$(date +%s)
  "build_$name" "${archive[$name]}" "${ref[$name]}" ${from:+"${ref[$from]}"}
  log "$name: built in $(($(date +%s) - start))s, $(du -m "${archive[$name]}" | cut -f1) MB"
}

case ${1:-} in
  --list)
    ls -l "$cache"/*.oci.tar 2>/dev/null || log "no images in $cache"
    exit 0
    ;;
  "") ;;
  *) echo "usage: $0 [--list]" >&2; exit 2 ;;
esac

for tool in mmdebstrap buildah; do
  command -v "$tool" >/dev/null || { log "$tool is missing: run 'hack/real-node.sh deps'" >&2; exit 1; }
done
mkdir -p "$cache" "$state"
exec 8>>"$cache/.lock"
flock 8
total=$(date +%s)
ensure base "$(base_key)"
ensure job "$(job_key)" base
ensure pause "$(pause_key)" job
ensure operator "$(operator_key)" base
for name in base operator job pause; do
  var=CRONWARDEN_${name^^}
  echo "${var}_IMAGE=${ref[$name]}"
  echo "${var}_ARCHIVE=${archive[$name]}"
done >"$state/images.env"
log "done in $(($(date +%s) - total))s; references in $state/images.env"
