#!/usr/bin/env bash
# Picks and drives the test cluster for demo and e2e: kind where Docker and a registry are
# available, else the offline local cluster (hack/local-cluster.sh).
#
#   hack/cluster.sh up       build the images, bring the cluster up, load the images
#   hack/cluster.sh down     tear the cluster down
#   hack/cluster.sh kind     print which kind of cluster is used (kind or local)
#   hack/cluster.sh env      print KUBECONFIG=... and KUBECTL=... for eval
#
# KX_CLUSTER=kind|local forces the choice.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '%s cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

kind_of_cluster() {
  if [ -n "${KX_CLUSTER:-}" ]; then echo "$KX_CLUSTER"; return; fi
  # kind needs a Docker engine and its node image from a registry.
  if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1 &&
     timeout 20 docker manifest inspect kindest/node:v1.35.0 >/dev/null 2>&1; then
    echo kind
  else
    echo local
  fi
}

kubeconfig() {
  case "$(kind_of_cluster)" in
    kind) echo "${KIND_KUBECONFIG:-$root/bin/kind.kubeconfig}" ;;
    local) hack/local-cluster.sh kubeconfig ;;
  esac
}

kubectl_bin() {
  case "$(kind_of_cluster)" in
    local) hack/local-cluster.sh kubectl-path ;;
    kind) echo "$(hack/envtest-binaries.sh)/kubectl" ;;
  esac
}

case "${1:-}" in
  up)
    k=$(kind_of_cluster)
    start=$(date +%s)
    # kind: the Dockerfiles, built by the engine (no root); the local cluster: the engine-less
    # builder (root, debootstrap). Both give the images config/dev deploys.
    if [ "$k" = kind ]; then make docker-build-dev; else hack/images.sh >/dev/null; fi
    log "images built in $(( $(date +%s) - start ))s"
    start=$(date +%s)
    if [ "$k" = kind ]; then hack/kind-up.sh; else hack/local-cluster.sh up; fi
    log "$k cluster up with images loaded in $(( $(date +%s) - start ))s"
    ;;
  down)
    if [ "$(kind_of_cluster)" = kind ]; then hack/kind-up.sh down; else hack/local-cluster.sh down; fi
    ;;
  kind) kind_of_cluster ;;
  env)
    echo "KUBECONFIG=$(kubeconfig)"
    echo "KUBECTL=$(kubectl_bin)"
    ;;
  *) echo "usage: hack/cluster.sh up|down|kind|env" >&2; exit 2 ;;
esac
