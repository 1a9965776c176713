#!/usr/bin/env bash
# The kind workflow, for users with a Docker engine: build the operator image,
# load it into a kind cluster, deploy the Helm chart and check that the operator,
# running in the cluster, reconciles a task and reports its runs.
#
# The CI machines have no Docker engine, so this is not run there; the same
# chart is tested against the local control plane (tests/e2e/test_helm.py).
#
# Usage: hack/kind.sh up|down|docker-build|load|deploy|undeploy|e2e
# Env:   KIND_CLUSTER    kind cluster name (default cronwarden)
#        KIND_KUBECONFIG kubeconfig of the kind cluster (default $STATE_DIR/kind-kubeconfig;
#                        ~/.kube/config is not touched)
#        IMAGE           image to build, load and deploy (default cronwarden:dev)
#        RELEASE         Helm release name (default cronwarden)
#        NAMESPACE       namespace of the release (default cronwarden)
#        HELM_ARGS       extra arguments for `helm upgrade --install`
#        DOCKER, KIND    the docker and kind commands (default: from PATH)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${STATE_DIR:-$root/.state}
cluster=${KIND_CLUSTER:-cronwarden}
kubeconfig=${KIND_KUBECONFIG:-$state/kind-kubeconfig}
image=${IMAGE:-cronwarden:dev}
release=${RELEASE:-cronwarden}
namespace=${NAMESPACE:-cronwarden}
docker=${DOCKER:-docker}
kind=${KIND:-kind}
demo_namespace=cronwarden-kind-e2e
# The chart's full name: the release name when it contains "cronwarden".
if [[ $release == *cronwarden* ]]; then fullname=$release; else fullname=$release-cronwarden; fi

# The pinned kubectl and helm from `make tools` when built, else the ones on PATH.
tool() {
  if [ -x "$state/bin/$1" ]; then echo "$state/bin/$1"; else command -v "$1" || {
    echo "kind: $1 not found: run 'make tools' or install it" >&2
    exit 1
  }; fi
}
kubectl() { "$(tool kubectl)" --kubeconfig "$kubeconfig" "$@"; }
helm() { "$(tool helm)" --kubeconfig "$kubeconfig" "$@"; }

need() {
  command -v "$1" >/dev/null || {
    echo "kind: '$1' is not installed; this workflow needs Docker and kind" >&2
    exit 1
  }
}

exists() { "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; }

# A cluster created by plain `kind create cluster` keeps its kubeconfig in
# ~/.kube/config; write ours from kind when it is missing.
ensure_kubeconfig() {
  exists || {
    echo "kind: no kind cluster '$cluster': run 'make kind-up' first" >&2
    exit 1
  }
  if [ ! -s "$kubeconfig" ]; then
    mkdir -p "$(dirname "$kubeconfig")"
    "$kind" get kubeconfig --name "$cluster" >"$kubeconfig"
  fi
}

# repository and tag of $image (a registry port does not count as a tag).
image_repository() { if [[ "${image##*/}" == *:* ]]; then echo "${image%:*}"; else echo "$image"; fi; }
image_tag() { if [[ "${image##*/}" == *:* ]]; then echo "${image##*:}"; else echo latest; fi; }

up() {
  need "$kind"
  if exists; then
    echo "kind: cluster '$cluster' exists"
  else
    mkdir -p "$(dirname "$kubeconfig")"
    "$kind" create cluster --name "$cluster" --config "$root/kind-config.yaml" \
      --kubeconfig "$kubeconfig" --wait 120s
  fi
  ensure_kubeconfig
  echo "kind: export KUBECONFIG=$kubeconfig"
}

down() {
  need "$kind"
  "$kind" delete cluster --name "$cluster" --kubeconfig "$kubeconfig"
  rm -f "$kubeconfig"
}

docker_build() {
  need "$docker"
  "$docker" build --tag "$image" "$root"
}

load() {
  need "$kind"
  ensure_kubeconfig
  "$kind" load docker-image "$image" --name "$cluster"
}

deploy() {
  ensure_kubeconfig
  # pullPolicy Never: the image was loaded into the nodes, it is in no registry.
  # shellcheck disable=SC2086
  helm upgrade --install "$release" "$root/helm/cronwarden" \
    --namespace "$namespace" --create-namespace \
    --set image.repository="$(image_repository)" --set image.tag="$(image_tag)" \
    --set image.pullPolicy=Never \
    --wait --timeout 180s ${HELM_ARGS:-}
  kubectl -n "$namespace" rollout status "deployment/$fullname" --timeout=120s
}

undeploy() {
  ensure_kubeconfig
  kubectl delete namespace "$demo_namespace" --ignore-not-found --wait=false
  helm uninstall "$release" --namespace "$namespace" --wait --ignore-not-found
  echo "kind: the ScheduledTask CRD is kept (crds.keep); delete it with"
  echo "  kubectl delete crd scheduledtasks.cronwarden.io"
}

# The install notes' command: a port-forward reaches /metrics (the operator listens on
# localhost in the pod too), polled until it answers or 30 s have passed.
port_forward_metrics() {
  local port=19090 pf ok=""
  kubectl -n "$namespace" port-forward "deployment/$fullname" "$port:9090" >/dev/null &
  pf=$!
  for _ in $(seq 30); do
    if curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | grep -q '^cronwarden_'; then
      ok=1
      break
    fi
    sleep 1
  done
  kill "$pf"
  wait "$pf" 2>/dev/null || true
  [ -n "$ok" ] || { echo "kind: kubectl port-forward to /metrics did not answer" >&2; exit 1; }
  echo "kind: /metrics answers through kubectl port-forward"
}

# What only a real cluster with the image can show: the operator in its pod (service
# account login, non-root, read-only root filesystem) reconciles a task, records a
# real run and serves metrics.
e2e() {
  docker_build
  load
  deploy
  kubectl create namespace "$demo_namespace" --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n "$demo_namespace" apply -f "$root/examples/heartbeat.yaml"
  kubectl -n "$demo_namespace" wait --for=condition=Ready scheduledtask/heartbeat --timeout=120s
  kubectl -n "$demo_namespace" get cronjob heartbeat
  # The first slot is at most a minute away; the image is pulled on the first run.
  kubectl -n "$demo_namespace" wait scheduledtask/heartbeat \
    --for=jsonpath='{.status.lastRun.result}'=Succeeded --timeout=300s
  kubectl get --raw \
    "/api/v1/namespaces/$namespace/services/$fullname-metrics:metrics/proxy/metrics" |
    grep "^cronwarden_task_last_success_timestamp_seconds{.*namespace=\"$demo_namespace\""
  port_forward_metrics
  kubectl -n "$namespace" logs "deployment/$fullname" --tail=20
  echo "kind: e2e passed: the operator in kind reconciled heartbeat and reported its run"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  docker-build) docker_build ;;
  load) load ;;
  deploy) deploy ;;
  undeploy) undeploy ;;
  e2e) e2e ;;
  *)
    echo "usage: $0 up|down|docker-build|load|deploy|undeploy|e2e" >&2
    exit 2
    ;;
esac
