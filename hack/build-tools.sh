#!/usr/bin/env bash
# Builds the pinned tools from Go modules into a cache outside the work tree and
# links them into $STATE_DIR/bin.
#
# Each tool has its own module under hack/tools/<tool>/ whose go.mod and go.sum
# are the pins; kstatus, a program of ours, is the module hack/kstatus/ (its
# main.go with the pinned sigs.k8s.io/cli-utils). A tool's cache directory is keyed
# by a hash of those files (and of the module's own *.go files), the Go version and
# BUILD_REVISION, so a later run on the same machine (or another checkout) reuses
# it, and changing a pin or the source rebuilds only that tool.
#
# Go's build cache for these builds is a directory of the project's own
# ($cache/go-build, never the user's `go env GOCACHE`): several GB after a cold
# build of every tool. It is deleted after a successful run unless KEEP_GO_CACHE=1
# (keep it when you are about to change a pin and rebuild). Downloaded modules stay
# in Go's module cache (`go env GOMODCACHE`, shared with your other Go work).
#
# Usage: hack/build-tools.sh [tool...]   (default: every tool but the on-demand ones)
#        `make run` and `make cluster-up` build only the cluster's: kubernetes etcd kwok
# Env:   CRONWARDEN_TOOLS_CACHE  cache root (default ~/.cache/cronwarden/tools)
#        STATE_DIR               where bin/ links go (default ./.state)
#        KEEP_GO_CACHE=1         keep $cache/go-build after the build
#        EXTRA_TOOLS="kubelet"   also build these (on-demand) tools in the same run, so
#                                that they reuse the build cache of the others (CI: the
#                                kubelet shares most of its packages with kube-apiserver)
set -euo pipefail

# Bump when the build commands below change in a way that alters the binaries.
BUILD_REVISION=1

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CRONWARDEN_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronwarden/tools}
state=${STATE_DIR:-$root/.state}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOCACHE=$cache/go-build
all_tools=(kubernetes etcd kwok helm promtool prometheus alertmanager kstatus)
# Built only when asked for by name (crane: `make pin-base-image`; kubelet:
# `make real-node-tools`).
on_demand_tools=(crane kubelet)
tools=("${@:-${all_tools[@]}}")
# shellcheck disable=SC2206  # a space-separated list of tool names
tools+=(${EXTRA_TOOLS:-})

# The module a tool is built from.
tool_dir() { if [ "$1" = kstatus ]; then echo "$root/hack/kstatus"; else echo "$root/hack/tools/$1"; fi; }

mod_version() { (cd "$root/hack/tools/$1" && go list -m -f '{{.Version}}' "$2"); }
mod_time() { (cd "$root/hack/tools/$1" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$2"); }

# The -X flags that stamp a Kubernetes binary with the pinned release's version.
kube_ldflags() {
  local v major minor date ld=()
  v=$(mod_version kubernetes k8s.io/kubernetes)
  major=${v#v}; major=${major%%.*}
  minor=${v#v"$major".}; minor=${minor%%.*}
  date=$(mod_time kubernetes k8s.io/kubernetes)
  # kwokctl reads these versions to choose each component's flags.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=("-X $pkg.gitVersion=$v" "-X $pkg.gitMajor=$major" "-X $pkg.gitMinor=$minor"
      "-X $pkg.gitCommit=$v" "-X $pkg.gitTreeState=clean" "-X $pkg.buildDate=$date")
  done
  echo "-s -w ${ld[*]}"
}

build_kubernetes() {
  go build -trimpath -ldflags "$(kube_ldflags)" -o "$1/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

# The real node's kubelet and kube-proxy (hack/real-node.sh), from the same release
# as the control plane (hack/tools/kubelet/go.mod repeats its pins).
build_kubelet() {
  if [ "$(mod_version kubelet k8s.io/kubernetes)" != "$(mod_version kubernetes k8s.io/kubernetes)" ]; then
    echo "build-tools: hack/tools/kubelet and hack/tools/kubernetes pin different Kubernetes releases" >&2
    return 1
  fi
  go build -trimpath -ldflags "$(kube_ldflags)" -o "$1/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
}

build_etcd() {
  go build -trimpath -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  local out=$1 v kube dir
  v=$(mod_version kwok sigs.k8s.io/kwok)
  kube=$(mod_version kubernetes k8s.io/kubernetes)
  go build -trimpath -o "$out/" -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${v#v} \
    -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${kube#v}" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  # The stages kwok simulates nodes and pods with, from the same pinned release.
  dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  mkdir -p "$out/../stages"
  cp "$dir"/kustomize/stage/node/fast/node-initialize.yaml \
    "$dir"/kustomize/stage/node/heartbeat/node-heartbeat.yaml \
    "$dir"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml \
    "$dir"/kustomize/stage/pod/chaos/pod-container-running-failed.yaml "$out/../stages/"
}

build_helm() {
  local v kube major minor
  v=$(mod_version helm helm.sh/helm/v3)
  kube=$(mod_version kubernetes k8s.io/kubernetes)
  major=${kube#v}; major=${major%%.*}
  minor=${kube#v"$major".}; minor=${minor%%.*}
  go build -trimpath -o "$1/helm" -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" helm.sh/helm/v3/cmd/helm
}

build_crane() {
  local v
  v=$(mod_version crane github.com/google/go-containerregistry)
  go build -trimpath -o "$1/crane" -ldflags "-s -w \
    -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$v" \
    github.com/google/go-containerregistry/cmd/crane
}

# kstatus' verdict on objects (status.Compute of sigs.k8s.io/cli-utils), for the
# GitOps health tests; a cold build (module downloads included) takes about 80 s.
build_kstatus() {
  go build -trimpath -ldflags "-s -w" -o "$1/kstatus" .
}

build_promtool() {
  local v
  v=$(mod_version promtool github.com/prometheus/prometheus)
  go build -trimpath -tags remove_all_sd -o "$1/promtool" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$v" \
    github.com/prometheus/prometheus/cmd/promtool
}

build_prometheus() {
  local v
  v=$(mod_version prometheus github.com/prometheus/prometheus)
  # The server and promtool are one Prometheus release: a pin moved in only one
  # of the two modules is an error, not a second version.
  if [ "$v" != "$(mod_version promtool github.com/prometheus/prometheus)" ]; then
    echo "build-tools: hack/tools/prometheus and hack/tools/promtool pin different Prometheus versions" >&2
    return 1
  fi
  go build -trimpath -tags remove_all_sd -o "$1/prometheus" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$v" \
    github.com/prometheus/prometheus/cmd/prometheus
}

build_alertmanager() {
  local out=$1 v src build
  v=$(mod_version alertmanager github.com/prometheus/alertmanager)
  # ui/web.go embeds ui/app/dist, the web UI's npm build output, which the module
  # zip does not contain. Build a writable copy of the module source (verified
  # against go.sum on download) with a placeholder file there, through a replace
  # in a copy of this module. The web UI answers 404; the API is unaffected.
  go mod download github.com/prometheus/alertmanager
  src=$(go list -m -f '{{.Dir}}' github.com/prometheus/alertmanager)
  build=$out/../build
  rm -rf "$build" && mkdir -p "$build/mod"
  cp -R "$src" "$build/alertmanager"
  chmod -R u+w "$build/alertmanager"
  mkdir -p "$build/alertmanager/ui/app/dist"
  echo '<!doctype html><title>Alertmanager</title><p>Built without the web UI.</p>' \
    >"$build/alertmanager/ui/app/dist/index.html"
  cp go.mod go.sum "$build/mod/"
  (
    cd "$build/mod"
    go mod edit -replace "github.com/prometheus/alertmanager=$build/alertmanager"
    go build -trimpath -o "$out/alertmanager" \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${v#v}" \
      github.com/prometheus/alertmanager/cmd/alertmanager
  )
  rm -rf "$build"
}

mkdir -p "$cache" "$state/bin"
# One build at a time per cache (worktrees share it): two runs would build the same
# tool twice, and one would delete the Go build cache under the other.
exec 8>>"$cache/.lock"
flock 8
total_start=$(date +%s)
for tool in "${tools[@]}"; do
  moddir=$(tool_dir "$tool")
  [ -f "$moddir/go.mod" ] || { echo "build-tools: unknown tool '$tool' (known: ${all_tools[*]} ${on_demand_tools[*]})" >&2; exit 2; }
  # The pins, and the sources of a module with a program of its own (none elsewhere,
  # so the keys of the other tools are unchanged).
  sources=()
  for file in "$moddir"/*.go; do [ -f "$file" ] && sources+=("$file"); done
  key=$( (cat "$moddir/go.mod" "$moddir/go.sum" ${sources[@]+"${sources[@]}"}; go env GOVERSION; echo "$BUILD_REVISION") | sha256sum | cut -c1-12)
  dir=$cache/$tool-$key
  if [ -f "$dir/.complete" ]; then
    echo "build-tools: $tool: cached in $dir"
  else
    echo "build-tools: $tool: building into $dir ..."
    start=$(date +%s)
    rm -rf "$dir" && mkdir -p "$dir/bin"
    (cd "$moddir" && "build_$tool" "$dir/bin")
    touch "$dir/.complete"
    echo "build-tools: $tool: built in $(($(date +%s) - start))s"
  fi
  for bin in "$dir"/bin/*; do ln -sfn "$bin" "$state/bin/$(basename "$bin")"; done
  [ -d "$dir/stages" ] && ln -sfn "$dir/stages" "$state/kwok-stages"
done
echo "build-tools: done in $(($(date +%s) - total_start))s; binaries linked in $state/bin:"
ls "$state/bin" | sed 's/^/  /'
if [ -d "$GOCACHE" ]; then
  if [ "${KEEP_GO_CACHE:-0}" = 1 ]; then
    du -sh "$GOCACHE" | sed 's/^/build-tools: Go build cache kept (KEEP_GO_CACHE=1): /'
  else
    du -sh "$GOCACHE" | sed 's/^/build-tools: deleting the Go build cache: /'
    rm -rf "$GOCACHE"
  fi
fi
du -sh --exclude=go-build "$cache" | sed 's/^/build-tools: tools cache size /'
