#!/usr/bin/env bash
# A kind cluster for machines with Docker, with kubexport's images loaded.
#   hack/kind-up.sh          create (idempotent) and load the images config/dev deploys
#                            (`make dev-images`, built by `make docker-build-dev`) with
#                            `kind load docker-image`
#   hack/kind-up.sh down     delete it
# The node image is kind's published one for its version (pulled from a registry), unless
# KIND_NODE_IMAGE names another: hack/e2e-kind.sh supplies one built offline
# (hack/kind-node-image.sh). Needs no root.
# Environment: KIND_CLUSTER (kubexport), KIND_VERSION (v0.33.0), KIND_NODE_IMAGE,
# KIND_KUBECONFIG (bin/kind.kubeconfig).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
NAME=${KIND_CLUSTER:-kubexport}
KIND_VERSION=${KIND_VERSION:-v0.33.0}
KUBECONFIG_PATH=${KIND_KUBECONFIG:-$root/bin/kind.kubeconfig}
kind=$root/bin/kind-$KIND_VERSION
[ -x "$kind" ] || { mkdir -p bin; GOBIN="$root/bin/.kind" GOFLAGS='' go install "sigs.k8s.io/kind@$KIND_VERSION" && mv bin/.kind/kind "$kind"; }

if [ "${1:-up}" = down ]; then
  "$kind" delete cluster --name "$NAME"
  exit 0
fi
if ! "$kind" get clusters | grep -qx "$NAME"; then
  image_args=()
  [ -z "${KIND_NODE_IMAGE:-}" ] || image_args=(--image "$KIND_NODE_IMAGE")
  "$kind" create cluster --name "$NAME" "${image_args[@]}" --kubeconfig "$KUBECONFIG_PATH" --wait 180s
fi
mapfile -t images < <(make -s --no-print-directory dev-images)
"$kind" load docker-image --name "$NAME" "${images[@]}"
echo "$KUBECONFIG_PATH"
