#!/usr/bin/env bash
# `make dist`: the release artifacts, into $DIST_DIR (default ./dist), with SHA256SUMS.
#
#   cronwarden-VERSION-py3-none-any.whl, cronwarden-VERSION.tar.gz   the operator (wheel, sdist)
#   cronwarden-CHARTVERSION.tgz                                       the Helm chart (helm package)
#   kubectl-cronwarden                                                the kubectl plugin, one file that
#                                                                     python3 runs (hack/plugin_zipapp.py)
#   kubectl-cronwarden-VERSION.tar.gz, cronwarden.yaml                its krew archive and manifest
#   cronwarden-image-VERSION.oci.tar                                  the image, as an OCI archive,
#                                                                     only where a container engine runs
#   SHA256SUMS                                                        sha256sum -c checks them all
#
# Built with the locked setuptools of .venv (no build isolation, nothing downloaded)
# and the pinned helm of $STATE_DIR/bin.
# Env: DIST_DIR, PYTHON (default .venv/bin/python), STATE_DIR, IMAGE (default cronwarden:VERSION),
#      RELEASE_URL (where the krew manifest says the archive is; {version} is replaced)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${DIST_DIR:-$root/dist}
python=${PYTHON:-$root/.venv/bin/python}
helm=${STATE_DIR:-$root/.state}/bin/helm
[ -x "$helm" ] || { echo "dist: $helm is missing: run 'make tools' first" >&2; exit 1; }
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"

echo "dist: wheel and sdist of cronwarden $version"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# setuptools' own chatter goes to a log, shown if it fails; its scratch build/ is removed.
if ! "$python" - "$out" >"$work/setuptools.log" 2>&1 <<'PY'
import sys

from setuptools import build_meta

out = sys.argv[1]  # build_meta rewrites sys.argv as it runs
print(build_meta.build_sdist(out))
print(build_meta.build_wheel(out))
PY
then
  tail -n 30 "$work/setuptools.log" >&2
  exit 1
fi
rm -rf build
echo "dist: the chart"
"$helm" package helm/cronwarden --destination "$out" | sed 's/^/  /'

echo "dist: the kubectl plugin, its krew archive and manifest"
"$python" hack/plugin_zipapp.py --out "$out" --version "$version" \
  ${RELEASE_URL:+--release-url "$RELEASE_URL"}

engine=
for candidate in docker podman; do
  if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then
    engine=$candidate
    break
  fi
done
image=${IMAGE:-cronwarden:$version}
archive=cronwarden-image-$version.oci.tar
if [ "$engine" = docker ]; then
  echo "dist: the image $image as an OCI archive, with docker buildx"
  docker buildx build --tag "$image" --output "type=oci,dest=$out/$archive" .
elif [ "$engine" = podman ]; then
  echo "dist: the image $image as an OCI archive, with podman"
  podman build --tag "$image" .
  podman save --format oci-archive --output "$out/$archive" "$image"
else
  echo "dist: no container engine answers here (docker info, podman info): the image archive is skipped"
fi

(cd "$out" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
echo "dist: $out:"
(cd "$out" && ls -l --time-style=+ | tail -n +2 | awk '{print "  " $NF " (" $5 " bytes)"}')
