#!/usr/bin/env bash
# A kind cluster for machines with Docker and registry access, with kubexport's images loaded.
#   hack/kind-up.sh          create (idempotent) and load the image archives of hack/images.sh
#   hack/kind-up.sh down     delete it
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
NAME=${KIND_CLUSTER:-kubexport}
KIND_VERSION=${KIND_VERSION:-v0.33.0}
IMAGES_DIR=${KX_IMAGES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/images}
KUBECONFIG_PATH=${KIND_KUBECONFIG:-$root/bin/kind.kubeconfig}
kind=$root/bin/kind-$KIND_VERSION
[ -x "$kind" ] || { mkdir -p bin; GOBIN="$root/bin/.kind" go install "sigs.k8s.io/kind@$KIND_VERSION" && mv bin/.kind/kind "$kind"; }

if [ "${1:-up}" = down ]; then
  "$kind" delete cluster --name "$NAME"
  exit 0
fi
if ! "$kind" get clusters | grep -qx "$NAME"; then
  "$kind" create cluster --name "$NAME" --kubeconfig "$KUBECONFIG_PATH" --wait 120s
fi
for archive in "$IMAGES_DIR"/*.tar; do
  "$kind" load image-archive --name "$NAME" "$archive"
done
echo "$KUBECONFIG_PATH"
