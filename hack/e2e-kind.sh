#!/usr/bin/env bash
# The e2e suite on a kind cluster, on a machine that reaches no container registry (see
# ../shared/OFFLINE.md, "kind without a registry"): what a user with Docker and kind runs
# (`KX_CLUSTER=kind make test-e2e`), with the engine and the images a registry would give made
# here.
#
#   hack/e2e-kind.sh          (make test-e2e-kind; run it under `flock -o /tmp/kx-cluster.lock`)
#
# 1. The kind node image's root filesystem (hack/kind-node-image.sh tarball; no daemon; cached).
# 2. Debian's Docker engine for the length of the script (hack/lib/dockerd.sh), and the base
#    images the Dockerfiles name (hack/lib/docker-images.sh, as `make docker-build-offline`).
# 3. The node image imported into the engine (hack/kind-node-image.sh import; cached by its
#    inputs), exported as KIND_NODE_IMAGE.
# 4. hack/e2e.sh with KX_CLUSTER=kind: `make docker-build-dev` (real docker build of the images
#    config/dev deploys), `kind create cluster --image $KIND_NODE_IMAGE`, `kind load
#    docker-image`, `make deploy-dev`, `go test -tags e2e ./test/e2e/`, kind cluster deleted.
# 5. Always, even on failure: the kind cluster and its Docker network deleted, dockerd stopped
#    and what it changed undone. (KX_KEEP is ignored: the cluster cannot outlive the engine.)
#
# Needs root (dockerd, debootstrap). Environment: KIND_NODE_IMAGE, KIND_CLUSTER (kubexport),
# K8S_VERSION, and those of hack/kind-node-image.sh and hack/lib/dockerd.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kubexport
ROOTFS_CACHE=${KX_ROOTFS_CACHE:-$cache/rootfs}
export KX_CLUSTER=kind GOTOOLCHAIN=local
export KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kubexport.local/kind-node:${K8S_VERSION:-v1.32.5}}
export KIND_CLUSTER=${KIND_CLUSTER:-kubexport}
unset KX_KEEP

log() { printf '%s e2e-kind: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=hack/lib/debian-rootfs.sh
. "$root/hack/lib/debian-rootfs.sh"
# shellcheck source=hack/lib/dockerd.sh
. "$root/hack/lib/dockerd.sh"

t0=$SECONDS
[ "$(id -u)" = 0 ] || die "needs root (dockerd, debootstrap)"
t=$SECONDS
hack/kind-node-image.sh tarball > /dev/null
log "node image root filesystem ready in $((SECONDS - t)) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/kx-e2e-kind.XXXXXX")
# kind mounts the host's /lib/modules into its nodes (read-only); this machine has none, and
# Docker would create it: made here empty, and removed again.
made_modules=
if [ ! -e /lib/modules ]; then mkdir /lib/modules; made_modules=1; fi
# While the engine still runs: the cluster (if hack/e2e.sh did not get to delete it) and the
# network kind made.
kx_dockerd_before_down() {
  hack/kind-up.sh down > /dev/null 2>&1 || log "deleting the kind cluster failed"
  "$DOCKER" network rm kind > /dev/null 2>&1 || true
  rm -rf "$work"
  [ -z "$made_modules" ] || rmdir /lib/modules 2> /dev/null || true
  log "total $((SECONDS - t0)) s"
}
kx_dockerd_up
# `docker` for make and kind: Debian's client, the daemon's own version (another client on PATH
# may want a buildx plugin for BuildKit builds).
mkdir -p "$work/bin"
ln -s "$DOCKER" "$work/bin/docker"
export PATH=$work/bin:$PATH
# shellcheck source=hack/lib/docker-images.sh
. "$root/hack/lib/docker-images.sh"
kx_docker_base_images
t=$SECONDS
hack/kind-node-image.sh import
log "node image $KIND_NODE_IMAGE ready in $((SECONDS - t)) s"

hack/e2e.sh
