#!/usr/bin/env bash
# install.sh builds the pinned tools this project needs from the Go module proxy: the Kubernetes
# control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl), etcd, kwok,
# controller-gen and golangci-lint. No download site for Kubernetes binaries is reachable here;
# the Go module proxy is, so everything is compiled (about 15 min cold, seconds when warm).
#
# Binaries go to a cache outside the clone so that a fresh clone on the same machine reuses them:
#   ${BRUPOP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/brupop/tools/<key>}
# where <key> changes whenever a pin changes. Each tool has its own stamp, so an interrupted run
# resumes where it stopped. Prints the tools directory on its last line.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0
CONTROLLER_GEN_VERSION=v0.23.0
GOLANGCI_LINT_VERSION=v2.15.0

here=$(cd "$(dirname "$0")" && pwd)
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_cg-${CONTROLLER_GEN_VERSION}_lint-${GOLANGCI_LINT_VERSION}"
dir=${BRUPOP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/brupop/tools/$key}
if [ "${1:-}" = --print-dir ]; then echo "$dir"; exit 0; fi
mkdir -p "$dir"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

log() { printf 'tools: %s\n' "$*" >&2; }

# have NAME VERSION: true when NAME was built at VERSION into $dir.
have() { [ -x "$dir/$1" ] && [ "$(cat "$dir/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" > "$dir/.$1.version"; }

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
need_k8s=0
for b in "${k8s_bins[@]}"; do have "$b" "$K8S_VERSION" || need_k8s=1; done
if [ "$need_k8s" = 1 ]; then
  log "building Kubernetes $K8S_VERSION control plane (about 12 min cold)"
  start=$(date +%s)
  ldf="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  (cd "$here/k8s" && go build -trimpath -ldflags "$ldf" -o "$dir/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  for b in "${k8s_bins[@]}"; do stamp "$b" "$K8S_VERSION"; done
  log "Kubernetes built in $(( $(date +%s) - start ))s"
fi

if ! have etcd "$ETCD_VERSION"; then
  log "building etcd $ETCD_VERSION"
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$dir/etcd" .)
  stamp etcd "$ETCD_VERSION"
fi

# install NAME PACKAGE VERSION: go install a module-proxy tool into $dir.
install() {
  if ! have "$1" "$3"; then
    log "building $1 $3"
    GOBIN="$dir" go install -trimpath -ldflags "-s -w" "$2@$3"
    stamp "$1" "$3"
  fi
}
install controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_GEN_VERSION"
install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"

echo "$dir"
