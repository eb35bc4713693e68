#!/usr/bin/env bash
# A real single-node Kubernetes cluster for offline Linux machines (see ../shared/OFFLINE.md):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy (built from
# the Go module proxy), CoreDNS on the host, Debian's containerd + runc + CNI plugins, and a pod
# bridge this script creates. Nothing listens beyond loopback and that bridge; packets from the
# bridge or the service range towards any other interface are dropped.
#
# Usage: hack/local-cluster.sh up|down|status|restart|audit-log|ctr|build|load|kubeconfig|kubectl-path|kubectl
#   build       build and cache the binaries only (done by `up` when missing)
#   up          start everything (idempotent), load the image archives, wait for the node
#   load [F..]  import docker-archive tarballs into containerd (default: the images of
#               hack/images.sh found in $KX_IMAGES_DIR)
#   down        stop everything and restore the machine (idempotent)
#   status      report what runs
#   restart kube-apiserver|kubelet  stop one component and start it again (fault tests)
#   audit-log   print the path of the API server's audit log (every Job creation)
#   ctr ARGS    run ctr against the cluster's containerd (k8s.io namespace), e.g. to SIGKILL a
#               container: ctr tasks kill -s SIGKILL <container id>
#   kubeconfig  print the kubeconfig's path
#   kubectl-path  print the path of the kubectl built with the cluster (same version)
#   kubectl ARGS  run that kubectl against the cluster
#
# Environment:
#   KX_HOME        state dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/cluster)
#   KX_BIN_DIR     binary cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/cluster-bin)
#   KX_IMAGES_DIR  image archives to load (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/images)
#   K8S_VERSION (v1.32.5), ETCD_VERSION (v3.5.21), COREDNS_VERSION (v1.11.3)
#   KX_BRIDGE (kx0), KX_BRIDGE_CIDR (10.244.0.1/24), KX_SERVICE_CIDR (10.96.0.0/24)
# Needs root (containerd, kubelet, iptables).
#
# The parts, in hack/local-cluster/: common.sh (logging, processes), build.sh (binaries from the
# Go module proxy, with hack/lib/build-from-proxy.sh), packages.sh (Debian packages), pki.sh
# (certificates, kubeconfigs), network.sh (bridge, isolation, and the netfilter snapshot that
# makes `down` remove only what the cluster added), config.sh (component configuration),
# lifecycle.sh (up, down, status, load).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kubexport
KX_HOME=${KX_HOME:-$cache/cluster}
KX_BIN_DIR=${KX_BIN_DIR:-$cache/cluster-bin}
KX_IMAGES_DIR=${KX_IMAGES_DIR:-$cache/images}
K8S_VERSION=${K8S_VERSION:-v1.32.5}
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
COREDNS_VERSION=${COREDNS_VERSION:-v1.11.3}
BRIDGE=${KX_BRIDGE:-kx0}
BRIDGE_CIDR=${KX_BRIDGE_CIDR:-10.244.0.1/24}
SERVICE_CIDR=${KX_SERVICE_CIDR:-10.96.0.0/24}
NODE_IP=${BRIDGE_CIDR%/*}
POD_CIDR="${NODE_IP%.*}.0/${BRIDGE_CIDR#*/}"
API_SERVICE_IP="${SERVICE_CIDR%.*}.1"
DNS_SERVICE_IP="${SERVICE_CIDR%.*}.10"
NODE_NAME=${KX_NODE_NAME:-kx-node}
PAUSE_IMAGE=registry.k8s.io/pause:kx-local
API_PORT=6443

bin="$KX_BIN_DIR/$K8S_VERSION"
run="$KX_HOME/run"       # pid files, logs; kept after down for post-mortems (logs only)
state="$KX_HOME/state"   # etcd data, containerd root, kubelet root: wiped by down
pki="$KX_HOME/pki"
KUBECONFIG_PATH="$KX_HOME/kubeconfig"
sock="$run/containerd/containerd.sock"

set -E
# shellcheck disable=SC2154  # rc is assigned inside the trap
trap 'rc=$?; log "ERROR: command failed (exit $rc) at ${BASH_SOURCE[0]#"$root"/}:$LINENO: $BASH_COMMAND"; exit $rc' ERR

# shellcheck source=local-cluster/common.sh
source "$root/hack/local-cluster/common.sh"
# shellcheck source=local-cluster/build.sh
source "$root/hack/local-cluster/build.sh"
# shellcheck source=local-cluster/packages.sh
source "$root/hack/local-cluster/packages.sh"
# shellcheck source=local-cluster/pki.sh
source "$root/hack/local-cluster/pki.sh"
# shellcheck source=local-cluster/network.sh
source "$root/hack/local-cluster/network.sh"
# shellcheck source=local-cluster/config.sh
source "$root/hack/local-cluster/config.sh"
# shellcheck source=local-cluster/lifecycle.sh
source "$root/hack/local-cluster/lifecycle.sh"

main() {
  local cmd=${1:-}
  shift || true
  case "$cmd" in
    build) build ;;
    up) up ;;
    down) down ;;
    status) status || exit $? ;;
    restart) restart "$@" ;;
    audit-log) echo "$run/audit.log" ;;
    ctr) ctr_ "$@" ;;
    load) load "$@" ;;
    kubeconfig) echo "$KUBECONFIG_PATH" ;;
    kubectl-path) echo "$bin/kubectl" ;;
    kubectl) exec "$bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@" ;;
    *) die "usage: $0 up|down|status|restart NAME|audit-log|ctr ARGS|build|load [ARCHIVE...]|kubeconfig|kubectl-path|kubectl ARGS..." ;;
  esac
}

main "$@"
