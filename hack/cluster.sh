#!/usr/bin/env bash
# Starts, stops and reports the local control plane: the real kube-apiserver,
# kube-controller-manager, kube-scheduler and etcd built by hack/build-tools.sh,
# run as local processes by kwokctl's binary runtime, with kwok fake nodes whose
# pods run and then complete.
#
# Usage: hack/cluster.sh up|down|status|kubeconfig
#        hack/cluster.sh stop-component|start-component NAME   (e.g. kube-controller-manager)
# Env:   STATE_DIR      project state (default ./.state); kubeconfig at $STATE_DIR/kubeconfig
#        CLUSTER_NAME   kwokctl cluster name (default cronwarden)
#        CLUSTER_NODES  number of fake nodes (default 2)
#        REAL_NODE=1    also join a real node (hack/real-node.sh: kubelet, containerd,
#                       runc); the API server then listens on every address of the
#                       host, since the kubernetes Service's endpoint (the host's
#                       address) must reach it from pods. `down` removes the node.
#        CLUSTER_FEATURE_GATES  Kubernetes feature gates of every component (default
#                       ShardedListAndWatch=true: the alpha server-side shard selector on
#                       list and watch, KEP-5866, which `cronwarden run --shards` uses;
#                       it changes nothing for a request without a shardSelector)
#        CLUSTER_PORT_BASE  the first of the 6 ports its components listen on (default:
#                       a free block in 20000-27999 picked from the state directory)
#        STOP_GRACE_SECONDS  stop-component and down send SIGTERM, then SIGKILL after
#                       this long (default 10), as the kubelet does after a grace period
#
# kwokctl's own output (JSON log lines) goes to $STATE_DIR/logs/kwokctl.log; the
# components log to $STATE_DIR/kwok/clusters/NAME/logs/.
#
# The API server audits the requests of the ServiceAccounts in the namespaces that
# `make chaos` runs its operators as (AUDITED below), and nothing else, at the
# Metadata level (who, what, when, the answer's code), to
# $STATE_DIR/kwok/clusters/NAME/logs/audit.log: the chaos harness judges from it,
# not from the operator's own view, that a replica that lost its Lease wrote nothing
# (hack/harness/audit.py).
#
# `down` leaves no process of the cluster running: after `kwokctl delete cluster`
# it stops every process started from the cluster's bin/ directory (argv[0] under
# it), whoever started it: kwokctl, the supervisor, or start-component. Those
# that kwokctl did not start outlive its delete, and kube-apiserver does not
# stop on SIGTERM within 10 s, so what is left gets SIGKILL after the grace period.
#
# Pods of Jobs go Pending -> Running -> Succeeded (exit 0) within about a
# second. A pod labelled pod-container-running-failed.stage.kwok.x-k8s.io=true
# fails instead (exit 1; the exit code can be set with the annotation
# pod-container-running-failed.stage.kwok.x-k8s.io/exit-code).
#
# The components heal as static pods do under a kubelet: `up` starts
# hack/supervise.py, which restarts a component that exits (1 s back-off doubling
# to 30 s, reset after a minute up; log in $STATE_DIR/logs/supervisor.log), so
# kube-controller-manager and kube-scheduler come back after they lose their
# leader election during an API server outage. A component stopped with
# stop-component stays down until start-component; `down` stops the supervisor
# first.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${STATE_DIR:-$root/.state}
name=${CLUSTER_NAME:-cronwarden}
nodes=${CLUSTER_NODES:-2}
real_node=${REAL_NODE:-0}
feature_gates=${CLUSTER_FEATURE_GATES-ShardedListAndWatch=true}
bin=$state/bin
kubeconfig=$state/kubeconfig
export KWOK_WORKDIR=$state/kwok
cluster_dir=$KWOK_WORKDIR/clusters/$name
supervisor_pid=$state/supervisor.pid
kwokctl_log=$state/logs/kwokctl.log
grace=${STOP_GRACE_SECONDS:-10}
# The namespaces whose ServiceAccounts are audited (hack/harness/accounts.py).
AUDITED=(chaos-throttling chaos-leader-election)
# stop-component marks a component here; the supervisor leaves marked ones down.
stopped=$state/stopped
# Serialises stop-component, start-component and the supervisor's restarts.
lock=$state/components.lock
# kwokctl polls the API server with kubectl; never let it download one.
export KWOK_KUBECTL_BINARY=$bin/kubectl PATH=$bin:$PATH

need_tools() {
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl; do
    [ -x "$bin/$b" ] || { echo "cluster: $bin/$b is missing: run 'make tools' first" >&2; exit 1; }
  done
}

running() {
  [ -f "$kubeconfig" ] && kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1
}

# Whether process $1 runs (a zombie has exited, although kill -0 still reaches it).
alive() {
  [ -r "/proc/$1/stat" ] && ! grep -qE '^[0-9]+ \(.*\) [ZX] ' "/proc/$1/stat" 2>/dev/null
}

supervisor_running() {
  [ -f "$supervisor_pid" ] && alive "$(cat "$supervisor_pid")"
}

start_supervisor() {
  supervisor_running && return
  mkdir -p "$state/logs"
  setsid nohup python3 "$root/hack/supervise.py" --cluster-dir "$cluster_dir" --state-dir "$state" \
    </dev/null >>"$state/logs/supervisor.log" 2>&1 &
  echo $! >"$supervisor_pid"
  echo "cluster: supervisor started (pid $!; log $state/logs/supervisor.log)"
}

# kwokctl with its output appended to $kwokctl_log; on failure, the end of it.
kwokctl_logged() {
  mkdir -p "$state/logs"
  echo "--- $(date -u +%FT%TZ) kwokctl $*" >>"$kwokctl_log"
  if ! kwokctl "$@" >>"$kwokctl_log" 2>&1; then
    echo "cluster: kwokctl $1 $2 failed; the end of $kwokctl_log:" >&2
    tail -n 20 "$kwokctl_log" >&2
    return 1
  fi
}

# The pids of the processes started from this cluster's binaries (argv[0] under
# $cluster_dir/, as kwokctl, the supervisor and start-component start them).
cluster_pids() {
  local proc argv0
  for proc in /proc/[0-9]*; do
    argv0=$(tr '\0' '\n' <"$proc/cmdline" 2>/dev/null | head -n 1) || continue
    case $argv0 in "$cluster_dir"/*) alive "${proc#/proc/}" && echo "${proc#/proc/}" ;; esac
  done
  return 0
}

# SIGTERM to every process of the cluster; SIGKILL to those left after $grace s.
stop_leftovers() {
  local pids left pid
  mapfile -t pids < <(cluster_pids)
  [ ${#pids[@]} -gt 0 ] || return 0
  echo "cluster: stopping ${#pids[@]} process(es) of '$name' that outlived kwokctl: ${pids[*]}"
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 $((grace * 10))); do
    left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -gt 0 ] || return 0
    sleep 0.1
  done
  echo "cluster: ${left[*]} still running after ${grace}s; killing"
  kill -KILL "${left[@]}" 2>/dev/null || true
  for pid in "${left[@]}"; do while alive "$pid"; do sleep 0.1; done; done
}

take_lock() {
  exec 9>>"$lock"
  flock -w 60 9 || { echo "cluster: $lock is held by another process" >&2; exit 1; }
}

stop_supervisor() {
  if supervisor_running; then
    local pid
    pid=$(cat "$supervisor_pid")
    kill "$pid"
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$supervisor_pid"
  rm -rf "$stopped" "$state/supervisor"
}

# Each cluster's components listen on a block of ports of its own, chosen when it is
# created (CLUSTER_PORT_BASE, or a block from a hash of its state directory, the next
# free one if that is taken) and kept for its life. kwokctl would pick them counting
# down from 32767, the first free ones at the moment, so a cluster created while
# another one's component was stopped took that component's port, and the component
# could not start again.
PORTS=(etcdPeerPort etcdPort kubeApiserverPort kwokControllerPort kubeControllerManagerPort kubeSchedulerPort)
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port_base() {
  local base=${CLUSTER_PORT_BASE:-} hash i p free
  if [ -n "$base" ]; then echo "$base"; return; fi
  hash=$(printf '%s' "$state/$name" | cksum | cut -d' ' -f1)
  for i in $(seq 0 799); do
    base=$((20000 + ((hash + i) % 800) * 10))
    free=1
    for p in $(seq "$base" $((base + ${#PORTS[@]} - 1))); do
      if port_in_use "$p"; then free=0; break; fi
    done
    if [ "$free" = 1 ]; then echo "$base"; return; fi
  done
  echo "cluster: no free block of ${#PORTS[@]} ports in 20000-27999" >&2
  return 1
}

up() {
  need_tools
  if running; then
    echo "cluster: '$name' is already running; kubeconfig: $kubeconfig"
    start_supervisor
    if [ "$real_node" = 1 ]; then "$root/hack/real-node.sh" up; fi
    return
  fi
  # A cluster left half-created or stopped by a reboot is recreated from scratch.
  stop_supervisor
  kwokctl_logged --name "$name" delete cluster || true
  stop_leftovers
  start=$(date +%s)
  config=$state/kwokctl-config.yaml
  local port_base i
  port_base=$(pick_port_base)
  {
    cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
  # The kubernetes Service's ClusterIP (kube-apiserver's default range), which
  # pods on a real node connect to.
  kubeApiserverCertSANs: ["10.0.0.1"]
EOF
    for i in "${!PORTS[@]}"; do echo "  ${PORTS[$i]}: $((port_base + i))"; done
    if [ "$real_node" = 1 ]; then
      cat <<EOF
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: bind-address, value: 0.0.0.0, override: true}
  # kubectl logs/exec reach the kubelet at its InternalIP (its hostname resolves nowhere).
  - {key: kubelet-preferred-address-types, value: InternalIP}
# kwok simulates only its own nodes, not the real one.
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
EOF
    fi
    for f in "$state"/kwok-stages/*.yaml; do echo "---"; cat "$f"; done
  } >"$config"
  audit_policy=$state/audit-policy.yaml
  {
    echo "apiVersion: audit.k8s.io/v1"
    echo "kind: Policy"
    echo "omitStages: [RequestReceived]"
    echo "rules:"
    echo "- level: Metadata"
    echo "  userGroups:"
    for ns in "${AUDITED[@]}"; do echo "  - system:serviceaccounts:$ns"; done
    echo "- level: None"
  } >"$audit_policy"
  echo "cluster: creating '$name' (kwokctl's log: $kwokctl_log)"
  kwokctl_logged --name "$name" create cluster \
    --runtime binary \
    --config "$config" \
    --kube-authorization=true \
    --kube-admission=true \
    ${feature_gates:+--kube-feature-gates "$feature_gates"} \
    --kube-audit-policy "$audit_policy" \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --etcd-binary "$bin/etcd" \
    --kwok-controller-binary "$bin/kwok" \
    --kubeconfig "" \
    --wait 3m
  cp "$KWOK_WORKDIR/clusters/$name/kubeconfig.yaml" "$kubeconfig"
  kwokctl_logged --name "$name" scale node --replicas "$nodes"
  kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=120s >/dev/null
  # Pods need the namespace's default ServiceAccount, which the controller
  # manager creates shortly after start.
  for _ in $(seq 1 120); do
    kubectl --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1 && break
    sleep 0.5
  done
  start_supervisor
  echo "cluster: '$name' up in $(($(date +%s) - start))s with $nodes kwok node(s), ports $port_base-$((port_base + ${#PORTS[@]} - 1))"
  if [ "$real_node" = 1 ]; then "$root/hack/real-node.sh" up; fi
  echo "cluster: export KUBECONFIG=$kubeconfig"
}

down() {
  # The real node first: it drains its pods through the API server.
  if [ -d "$state/real-node" ]; then "$root/hack/real-node.sh" down; fi
  stop_supervisor
  if [ -x "$bin/kwokctl" ]; then
    kwokctl_logged --name "$name" delete cluster || true
  fi
  stop_leftovers
  rm -f "$kubeconfig"
  echo "cluster: '$name' deleted"
}

status() {
  if ! running; then
    echo "cluster: '$name' is not running (start it with 'make cluster-up')"
    exit 1
  fi
  echo "cluster: '$name' is running; kubeconfig: $kubeconfig"
  kubectl --kubeconfig "$kubeconfig" version 2>/dev/null | sed 's/^/  /'
  kwokctl --name "$name" get components 2>/dev/null | sed 's/^/  /' || true
  if supervisor_running; then
    echo "  supervisor: running (pid $(cat "$supervisor_pid")); restarts so far:"
    grep -c ' restarted (pid' "$state/logs/supervisor.log" 2>/dev/null | sed 's/^/    /' || true
  else
    echo "  supervisor: not running (components that exit stay down)"
  fi
  kubectl --kubeconfig "$kubeconfig" get nodes | sed 's/^/  /'
}

# Stop one component (its command line is kept) and start it again later, to
# test what happens while, say, kube-controller-manager is down. The mark in
# $stopped keeps the supervisor from restarting it in between.
stop_component() {
  local pidfile=$cluster_dir/pids/$1.pid pid
  [ -f "$pidfile" ] || { echo "cluster: no component '$1'" >&2; exit 2; }
  take_lock
  mkdir -p "$stopped"
  touch "$stopped/$1"
  pid=$(cat "$pidfile")
  if alive "$pid"; then
    tr '\0' '\n' <"/proc/$pid/cmdline" >"$state/$1.cmdline"
    readlink "/proc/$pid/cwd" >"$state/$1.cwd"
    # It may exit on its own in between (kube-controller-manager after losing its
    # leader election during an API server outage, before the supervisor restarts it).
    kill "$pid" 2>/dev/null || true
    # kube-apiserver drains open watches for up to a minute, keeping its port.
    for _ in $(seq 1 $((grace * 10))); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      echo "cluster: $1 still runs after ${grace}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.1; done
    fi
  fi
  exec 9>&-
  echo "cluster: stopped $1"
}

start_component() {
  local pidfile=$cluster_dir/pids/$1.pid log=$cluster_dir/logs/$1.log cmd dir offset pid
  [ -f "$state/$1.cmdline" ] || { echo "cluster: $1 was not stopped by stop-component" >&2; exit 2; }
  mapfile -t cmd <"$state/$1.cmdline"
  dir=$(cat "$state/$1.cwd" 2>/dev/null || echo "$cluster_dir")
  offset=$(stat -c %s "$log" 2>/dev/null || echo 0)
  take_lock
  # 9>&-: the component must not inherit (and hold) the lock.
  (cd "$dir" && exec setsid "${cmd[@]}" </dev/null >>"$log" 2>&1 9>&-) &
  pid=$!
  echo "$pid" >"$pidfile"
  rm -f "$stopped/$1"
  exec 9>&-
  # Wait until it serves (the Kubernetes components log "Serving securely on",
  # etcd "ready to serve client requests"),
  # and fail at once if it exits: for example because another local cluster,
  # created meanwhile, took the port it had while it was stopped.
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "cluster: $1 exited right after starting; the end of $log:" >&2
      tail -c +"$((offset + 1))" "$log" | tail -n 5 >&2
      exit 1
    fi
    if tail -c +"$((offset + 1))" "$log" | grep -qE "Serving securely on|ready to serve client requests"; then
      echo "cluster: started $1 (pid $pid)"
      return
    fi
    sleep 0.1
  done
  echo "cluster: started $1 (pid $pid), but it did not report serving within 30s" >&2
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  kubeconfig) echo "$kubeconfig" ;;
  stop-component) stop_component "${2:?component name}" ;;
  start-component) start_component "${2:?component name}" ;;
  *) echo "usage: $0 up|down|status|kubeconfig|stop-component NAME|start-component NAME" >&2; exit 2 ;;
esac
