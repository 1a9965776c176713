#!/usr/bin/env bash
# The end-to-end tests (`make test-e2e`), in two phases that run at the same time,
# each on a local control plane of its own:
#
# - concurrent: every test not marked `disruptive`, on E2E_WORKERS pytest-xdist
#   workers, on the shared cluster of $STATE_DIR (started if needed);
# - disruptive: the tests that stop kube-apiserver, etcd or kube-controller-manager,
#   one at a time, on a second cluster ($STATE_DIR/e2e-disruptive, cluster
#   'cronwarden-disruptive', ports of its own), so that their outages reach no other
#   test. Its output goes to $STATE_DIR/logs/e2e-disruptive.log, printed at the end.
#
# Both phases mostly wait on the clusters (per-minute slots, outages), so running
# them side by side takes about as long as the longer one rather than the sum.
# With CRONWARDEN_E2E_KUBECONFIG (a cluster of your own, for both phases) or
# E2E_PHASES=serial, they run one after the other instead, as before.
#
# Env: E2E_WORKERS (default 4), E2E_PHASES (parallel|serial), PYTEST_ARGS (extra
#      arguments for both pytest runs), PYTHON (default .venv/bin/python).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state=${STATE_DIR:-$root/.state}
py=${PYTHON:-$root/.venv/bin/python}
workers=${E2E_WORKERS:-4}
phases=${E2E_PHASES:-parallel}
# shellcheck disable=SC2206  # extra pytest arguments, split on spaces
extra=(${PYTEST_ARGS:-})

concurrent() { "$py" -m pytest tests/e2e -n "$workers" --maxschedchunk 1 -m "not disruptive" "${extra[@]}"; }
disruptive() { "$py" -m pytest tests/e2e -m disruptive "${extra[@]}"; }

case $phases in
  parallel) [ -z "${CRONWARDEN_E2E_KUBECONFIG:-}" ] || phases=serial ;;
  serial) ;;
  *) echo "test-e2e: E2E_PHASES must be 'parallel' or 'serial', not '$phases'" >&2; exit 2 ;;
esac

start=$(date +%s)
if [ "$phases" = serial ]; then
  rc=0
  concurrent || rc=$?
  disruptive || rc=$?
  echo "test-e2e: both phases, one after the other, took $(($(date +%s) - start))s"
  exit "$rc"
fi

# The second cluster's state: the built tools linked from the shared cache (seconds
# when `make tools` has built them), its own kubeconfig, logs and ports.
dstate=$state/e2e-disruptive
mkdir -p "$dstate" "$state/logs"
STATE_DIR=$dstate hack/build-tools.sh >"$state/logs/e2e-disruptive-tools.log"
log=$state/logs/e2e-disruptive.log
echo "test-e2e: the disruptive tests run meanwhile on cluster 'cronwarden-disruptive'" \
  "($dstate); their log: $log"
(STATE_DIR=$dstate CLUSTER_NAME=cronwarden-disruptive disruptive) >"$log" 2>&1 &
dpid=$!
# A stopped make (Ctrl-C, or CI's time limit) takes the background phase with it.
trap 'kill -INT "$dpid" 2>/dev/null || true' INT TERM

crc=0
concurrent || crc=$?
concurrent_s=$(($(date +%s) - start))
drc=0
wait "$dpid" || drc=$?
trap - INT TERM

echo
echo "===== the disruptive phase (cluster 'cronwarden-disruptive'; $log) ====="
cat "$log"
echo "test-e2e: concurrent phase exited $crc after ${concurrent_s}s;" \
  "disruptive phase exited $drc; both took $(($(date +%s) - start))s"
if [ "$crc" -ne 0 ]; then exit "$crc"; fi
exit "$drc"
