#!/usr/bin/env bash
# A real node for the local control plane, next to the kwok nodes: a kubelet and
# kube-proxy built from the pinned k8s.io/kubernetes (hack/tools/kubelet), Debian's
# containerd with runc, CNI bridge networking (Debian's containernetworking-plugins),
# and a DNS server for Services (dnsmasq, kept in sync by hack/realnode_dns.py).
# Images come only from hack/images.sh, imported into containerd's k8s.io
# namespace; nothing is pulled (the pause image is ours too).
#
# Usage: hack/real-node.sh deps          install the Debian packages (apt-get)
#        hack/real-node.sh up            join the node to the running local cluster
#        hack/real-node.sh down          drain it, stop its processes, undo its network
#        hack/real-node.sh status
#        hack/real-node.sh import REF... import more images (by reference from buildah)
# Env:   STATE_DIR (default ./.state); REAL_NODE_NAME (default real-node)
#
# The node:
# - is labelled cronwarden.io/real-node=true and tainted
#   cronwarden.io/real-node=true:NoSchedule, so that only pods that tolerate the
#   taint (and select the label) run there; kwok's nodes take everything else;
# - authenticates with a client certificate of its own (CN system:node:NAME, group
#   system:nodes) signed by the cluster's CA, so the Node authorizer applies;
#   kube-proxy with one for system:kube-proxy (the built-in node-proxier role);
# - gives pods addresses in $POD_CIDR on the bridge cw0 (host 10.244.0.1); pods
#   reach this host and each other, nothing beyond: a FORWARD rule drops the rest,
#   and nothing is masqueraded;
# - routes Services with kube-proxy (iptables mode). The `kubernetes` Service's
#   endpoint is the API server on this host's address, so the cluster is started
#   with bindAddress 0.0.0.0 (hack/cluster.sh, REAL_NODE=1) and the API server's
#   certificate names 10.0.0.1, the Service's address;
# - resolves <svc>.<ns>.svc.cluster.local with dnsmasq listening on 10.244.0.1,
#   which forwards nothing (--no-resolv): hack/realnode_dns.py writes the
#   Services' names and ClusterIPs into its hosts file.
#
# cgroup v1 hosts need `failCgroupV1: false` (kubelet 1.35+); the kubelet uses
# the cgroupfs driver, as containerd's runc does here (no systemd).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${STATE_DIR:-$root/.state}
name=${REAL_NODE_NAME:-real-node}
bin=$state/bin
dir=$state/real-node
logs=$state/logs/real-node
kubeconfig=$state/kubeconfig
pki=$state/kwok/clusters/${CLUSTER_NAME:-cronwarden}/pki
POD_CIDR=10.244.0.0/24
GATEWAY=10.244.0.1
BRIDGE=cw0
LABEL=cronwarden.io/real-node
sock=$dir/containerd/containerd.sock
export PATH=$bin:$PATH

log() { echo "real-node: $*"; }
kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }
ctrk() { ctr --address "$sock" --namespace k8s.io "$@"; }

DEBS=(containerd runc containernetworking-plugins iptables conntrack dnsmasq-base mmdebstrap buildah openssl)

deps() {
  local missing=() pkg
  for pkg in "${DEBS[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "Debian packages present"; return; fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pid_alive() { [ -f "$dir/pids/$1" ] && kill -0 "$(cat "$dir/pids/$1")" 2>/dev/null; }

# start NAME CMD...: run CMD detached, log to $logs/NAME.log, pid in $dir/pids/NAME.
start() {
  local what=$1
  shift
  mkdir -p "$logs" "$dir/pids"
  setsid nohup "$@" </dev/null >>"$logs/$what.log" 2>&1 &
  echo $! >"$dir/pids/$what"
}

# wait_until SECONDS WHAT CMD...: poll CMD every 0.5 s until it succeeds.
wait_until() {
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then log "timed out waiting for $what" >&2; return 1; fi
    sleep 0.5
  done
}

# cert NAME CN ORG: a client certificate signed by the cluster's CA.
cert() {
  local subj="/CN=$2"
  [ -n "$3" ] && subj="/O=$3$subj"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/pki/$1.key" -subj "$subj" \
    -out "$dir/pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$dir/pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 30 -out "$dir/pki/$1.crt" 2>/dev/null
}

# kubeconfig_for NAME: a kubeconfig with NAME's certificate for the local API server.
kubeconfig_for() {
  local server
  server=$(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  cat >"$dir/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$dir/pki/$1.crt", client-key: "$dir/pki/$1.key"}
contexts:
- name: local
  context: {cluster: local, user: $1}
current-context: local
EOF
}

write_configs() {
  mkdir -p "$dir"/{pki,containerd,cni/net.d,cni/ipam,kubelet,pod-logs}
  cert kubelet "system:node:$name" system:nodes
  cert kube-proxy system:kube-proxy ""
  kubeconfig_for kubelet
  kubeconfig_for kube-proxy
  # shellcheck disable=SC1091
  . "$state/images.env"
  cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$CRONWARDEN_PAUSE_IMAGE"
  # This sandbox lacks CAP_SYS_RESOURCE: never ask runc for an oom_score_adj below
  # containerd's own (the kubelet asks -998 for the pause container).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
  cat >"$dir/cni/net.d/10-cronwarden.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "cronwarden",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY"}]],
               "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$dir/cni/ipam"}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Pods' resolv.conf: the cluster's DNS only (kubelet adds the search domains).
  : >"$dir/resolv.conf"
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
failSwapOn: false
port: $KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
readOnlyPort: 0
# The API server of this cluster presents no client certificate to kubelets
# (kwokctl sets no --kubelet-client-certificate), so kubectl logs/exec/port-forward
# reach the kubelet anonymously; the machine takes no connections from outside.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
clusterDNS: ["$GATEWAY"]
resolvConf: "$dir/resolv.conf"
podLogsDir: "$dir/pod-logs"
registerWithTaints:
- {key: "$LABEL", value: "true", effect: NoSchedule}
maxPods: 30
# Images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi"}
podCIDR: "$POD_CIDR"
EOF
  cat >"$dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: "$POD_CIDR"
hostnameOverride: "$name"
clientConnection: {kubeconfig: "$dir/kube-proxy.kubeconfig"}
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
healthzBindAddress: ""
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# import_images REF...: load the archives of hack/images.sh into containerd.
import_images() {
  # shellcheck disable=SC1091
  . "$state/images.env"
  local archive
  for archive in "$CRONWARDEN_PAUSE_ARCHIVE" "$CRONWARDEN_OPERATOR_ARCHIVE" "$CRONWARDEN_JOB_ARCHIVE"; do
    ctrk images import --no-unpack=false --digests "$archive" >/dev/null
  done
  ctrk images ls -q | grep '^localhost/' | sed 's/^/real-node: image /'
}

network_up() {
  # The bridge and its address before the first pod, for dnsmasq to listen on;
  # the CNI bridge plugin takes it as it is.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The bridge plugin turns IPv4 forwarding on (isGateway); down restores it.
  [ -f "$dir/ip_forward" ] || cat /proc/sys/net/ipv4/ip_forward >"$dir/ip_forward"
  # Bridged pod-to-pod traffic must pass iptables for kube-proxy's rules.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  # Pods reach the pod network and this host (INPUT), never beyond.
  iptables -C FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP 2>/dev/null ||
    iptables -I FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP
}

network_down() {
  iptables -D FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP 2>/dev/null || true
  [ -x "$bin/kube-proxy" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
  ip link del "$BRIDGE" 2>/dev/null || true
  if [ -f "$dir/ip_forward" ]; then sysctl -qw "net.ipv4.ip_forward=$(cat "$dir/ip_forward")"; fi
}

up() {
  [ -f "$kubeconfig" ] || { log "no local cluster: run 'make cluster-up REAL_NODE=1'" >&2; exit 1; }
  for b in kubelet kube-proxy kubectl; do
    [ -x "$bin/$b" ] || { log "$bin/$b is missing: run 'make real-node-tools'" >&2; exit 1; }
  done
  [ -f "$state/images.env" ] || { log "no images: run 'make images'" >&2; exit 1; }
  if pid_alive kubelet; then log "'$name' is already up"; return; fi
  local t0 server_ip
  t0=$(date +%s)
  server_ip=$(kc get endpointslices -n default -l kubernetes.io/service-name=kubernetes \
    -o jsonpath='{.items[0].endpoints[0].addresses[0]}')
  if ! kc --server "https://$server_ip:$(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://')" \
    get --raw /readyz >/dev/null 2>&1; then
    log "the API server does not answer on $server_ip, the kubernetes Service's endpoint: start the cluster with 'make cluster-up REAL_NODE=1'" >&2
    exit 1
  fi
  KUBELET_PORT=$(free_port) KUBELET_HEALTHZ_PORT=$(free_port) KUBE_PROXY_METRICS_PORT=$(free_port) \
    write_configs
  network_up
  start containerd containerd --config "$dir/containerd/config.toml"
  wait_until 30 containerd ctrk version
  import_images
  start kubelet "$bin/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
    --hostname-override "$name" --root-dir "$dir/kubelet" --cert-dir "$dir/pki/serving" \
    --node-labels "$LABEL=true"
  start kube-proxy "$bin/kube-proxy" --config "$dir/kube-proxy.yaml"
  wait_until 120 "node $name to be Ready" kc wait --for=condition=Ready "node/$name" --timeout=5s
  : >"$dir/hosts"
  start dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address "$GATEWAY" --local=/cluster.local/ --addn-hosts "$dir/hosts" --log-facility=- \
    --pid-file="$dir/dnsmasq.pid"
  start dns-sync python3 "$root/hack/realnode_dns.py" --kubeconfig "$kubeconfig" \
    --hosts "$dir/hosts" --dnsmasq-pid-file "$dir/dnsmasq.pid"
  wait_until 10 "dnsmasq to listen on $GATEWAY:53" bash -c "ss -lnu | grep -q '$GATEWAY:53 '"
  for what in containerd kubelet kube-proxy dnsmasq dns-sync; do
    pid_alive "$what" || { log "$what exited; the end of $logs/$what.log:" >&2; tail -n 5 "$logs/$what.log" >&2; exit 1; }
  done
  log "'$name' Ready in $(($(date +%s) - t0))s (logs: $logs)"
}

down() {
  if [ -f "$kubeconfig" ] && kc get node "$name" >/dev/null 2>&1; then
    # Let the kubelet stop its pods through the CRI (netns, veths, mounts); cordoned
    # first, so that controllers' replacement pods are not scheduled here again.
    kc cordon "$name" >/dev/null 2>&1 || true
    kc delete pods --all-namespaces --field-selector "spec.nodeName=$name" --grace-period=1 \
      --wait=false >/dev/null 2>&1 || true
    wait_until 60 "the pods on $name to stop" \
      bash -c "[ -z \"\$(kubectl --kubeconfig '$kubeconfig' get pods -A --field-selector spec.nodeName=$name -o name)\" ]" || true
    kc delete node "$name" --wait=false >/dev/null 2>&1 || true
  fi
  local what pid
  for what in dns-sync dnsmasq kube-proxy kubelet; do
    if pid_alive "$what"; then
      pid=$(cat "$dir/pids/$what")
      kill "$pid"
      wait_until 15 "$what to stop" bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # Whatever the kubelet left: containers' tasks, then containerd itself.
  if pid_alive containerd; then
    for id in $(ctrk tasks ls -q 2>/dev/null); do ctrk tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
    pid=$(cat "$dir/pids/containerd")
    kill "$pid"
    wait_until 15 "containerd to stop" bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
  fi
  # Shims of this containerd (their -address names its socket).
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  network_down
  # Mounts under the node's directories (secrets' tmpfs, overlay snapshots, netns).
  if [ -d "$dir" ]; then
    awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$dir"
  fi
  log "'$name' removed"
}

status() {
  local what
  for what in containerd kubelet kube-proxy dnsmasq dns-sync; do
    if pid_alive "$what"; then echo "  $what: running (pid $(cat "$dir/pids/$what"))"; else echo "  $what: not running"; fi
  done
  kc get node "$name" -o wide 2>/dev/null | sed 's/^/  /' || true
}

case ${1:-} in
  deps) deps ;;
  up) up ;;
  down) down ;;
  status) status ;;
  import) import_images ;;
  tag) ctrk images tag --force "${2:?source}" "${3:?target}" >/dev/null ;;
  *) echo "usage: $0 deps|up|down|status|import|tag SRC DST" >&2; exit 2 ;;
esac
