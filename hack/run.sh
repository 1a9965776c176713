#!/usr/bin/env bash
# `make run`: the product on the local control plane. Starts the cluster (or
# reuses it), installs the CRD, applies the examples (and the Secret and PVC they
# name, hack/demo-prerequisites.yaml) into a demo namespace and
# runs the operator in the foreground until Ctrl-C. The cluster keeps running
# afterwards (`make cluster-down` stops it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${STATE_DIR:-$root/.state}
namespace=${DEMO_NAMESPACE:-cronwarden-demo}
export KUBECONFIG=$state/kubeconfig
kubectl=("$state/bin/kubectl")

"$root/hack/cluster.sh" up
"${kubectl[@]}" apply --server-side --force-conflicts -f "$root/crds/"
"${kubectl[@]}" wait --for=create crd/scheduledtasks.cronwarden.io --timeout=60s >/dev/null
"${kubectl[@]}" wait --for=condition=Established crd/scheduledtasks.cronwarden.io --timeout=60s
"${kubectl[@]}" create namespace "$namespace" --dry-run=client -o yaml | "${kubectl[@]}" apply -f -
# The examples' pods are admitted under Pod Security "restricted" (tests/e2e/test_examples.py).
"${kubectl[@]}" label --overwrite namespace "$namespace" \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
# The Secret and PersistentVolumeClaim that examples name (see their comments).
"${kubectl[@]}" -n "$namespace" apply -f "$root/hack/demo-prerequisites.yaml"
"${kubectl[@]}" -n "$namespace" apply -f "$root/examples/"

cat <<MSG

cronwarden: the operator starts below and watches namespace '$namespace'.
In another terminal:

  export KUBECONFIG=$KUBECONFIG PATH=$state/bin:\$PATH
  kubectl -n $namespace get st -w              # schedule, last success, next run, late
  kubectl -n $namespace get st -o wide         # also Ready and Failing
  kubectl -n $namespace describe st heartbeat  # status and Events (RunSucceeded, RunFailed)
  kubectl -n $namespace get cronjobs,jobs
  curl -s localhost:${METRICS_PORT:-9090}/metrics | grep cronwarden_task_   # Prometheus metrics

The first runs of 'heartbeat' and 'always-fails' start at the next full minute.
Ctrl-C stops the operator; 'make cluster-down' stops the cluster.

MSG
exec "$root/.venv/bin/cronwarden" run --namespace "$namespace" --kubeconfig "$KUBECONFIG" \
  --liveness-port "${LIVENESS_PORT:-8080}" --metrics-port "${METRICS_PORT:-9090}" \
  --bind-address 127.0.0.1
