#!/usr/bin/env bash
# `make lock`: resolves pyproject.toml's dependencies into hash-locked
# requirement files with pip-compile (pip-tools, a dev extra):
#
#   requirements.lock        [project] dependencies and everything they pull in:
#                            what the image ships and `pip-audit` checks.
#   requirements-build.lock  [build-system] requires (setuptools): what builds
#                            the cronwarden wheel, in the image and in `make install`.
#   requirements-dev.lock    the test and dev extras, constrained by the two
#                            above, so it repeats their pins with the same hashes;
#                            it also pins pip, which `make install` upgrades to.
#
# Every line has every sha256 PyPI lists for that version (wheels for all
# platforms and the sdist), so the files install on any platform; markers are
# resolved for the Python that runs this script, which must be the image's 3.11.
#
# By default pip-compile keeps the versions already in a lock that still satisfy
# pyproject.toml (a change to pyproject moves only what it must). UPGRADE=1
# re-resolves everything to the newest versions allowed.
#
# Usage: hack/lock.sh   (env: PYTHON, the venv python with pip-tools; UPGRADE=1)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-$root/.venv/bin/python}

if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "lock: $python is not Python 3.11, the image's Python; the markers would be resolved for the wrong one" >&2
  exit 2
fi

args=(--quiet --generate-hashes --strip-extras --resolver=backtracking
  --no-emit-index-url --no-emit-trusted-host --no-emit-find-links)
[ "${UPGRADE:-}" = 1 ] && args+=(--upgrade)

# Resolve from the index only: a local --find-links directory (PIP_FIND_LINKS)
# could offer files whose hashes PyPI does not list.
export CUSTOM_COMPILE_COMMAND="make lock"
compile() { env -u PIP_FIND_LINKS "$python" -m piptools compile "${args[@]}" "$@" pyproject.toml; }

start=$(date +%s)
compile --output-file requirements.lock
compile --all-build-deps --only-build-deps --allow-unsafe --output-file requirements-build.lock
# "cronwarden[test]" in the dev extra refers to the project itself, which
# pip-compile would write as an unhashable file:// line: declaring it "unsafe"
# leaves it out (as a comment). pip and setuptools are then pinned with hashes.
compile --extra dev --unsafe-package cronwarden \
  --constraint requirements.lock --constraint requirements-build.lock \
  --output-file requirements-dev.lock
echo "lock: wrote requirements.lock, requirements-build.lock and requirements-dev.lock in $(($(date +%s) - start))s"
echo "lock: (pip-compile's warning about an unpinned 'cronwarden' is expected: it is this project)"
