#!/usr/bin/env bash
# Builds the binaries envtest needs (kube-apiserver, etcd, kubectl) from the Go module proxy,
# for machines where `setup-envtest` cannot download its prebuilt archives.
#
# Order: (1) the cache; (2) setup-envtest's normal download (when $SETUP_ENVTEST names the tool
# and ENVTEST_OFFLINE is not 1); (3) a build from the Go module proxy.
#
# Usage: hack/envtest-binaries.sh [K8S_VERSION]
#   K8S_VERSION defaults to the k8s.io/api version in go.mod (v0.X.Y -> vX'.X.Y, i.e. v1.X.Y).
# Output: prints the directory holding kube-apiserver, etcd and kubectl, laid out the way
#   setup-envtest expects: $ENVTEST_BIN_DIR/k8s/<version>-linux-amd64/.
# Results are cached in $ENVTEST_BIN_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/envtest),
# outside the clone, so a second run costs nothing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
bin_dir=${ENVTEST_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/envtest}

k8s_version=${1:-}
if [ -z "$k8s_version" ]; then
  api=$(awk '$1=="k8s.io/api"{print $2; exit}' "$root/go.mod")
  [ -n "$api" ] || { echo "envtest-binaries: k8s.io/api not found in go.mod" >&2; exit 1; }
  k8s_version="v1.${api#v0.}"
fi
out="$bin_dir/k8s/${k8s_version#v}-$(go env GOOS)-$(go env GOARCH)"

if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -x "$out/kubectl" ]; then
  echo "$out"
  exit 0
fi

log() { echo "envtest-binaries: $*" >&2; }

# One build at a time (parallel `make test` runs share the cache): wait for another run, then
# use what it built.
mkdir -p "$bin_dir"
exec 9>"$bin_dir/.build.lock"
flock 9
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -x "$out/kubectl" ]; then
  echo "$out"
  exit 0
fi

if [ -n "${SETUP_ENVTEST:-}" ] && [ "${ENVTEST_OFFLINE:-0}" != 1 ]; then
  if path=$(timeout 120 "$SETUP_ENVTEST" use "${k8s_version#v}" --bin-dir "$bin_dir" -p path 2>/dev/null) && [ -x "$path/kube-apiserver" ]; then
    echo "$path"
    exit 0
  fi
  log "setup-envtest could not download envtest binaries; building them from source instead"
fi
# The same wrapper-module builds as the local cluster's (hack/lib/build-from-proxy.sh).
# shellcheck source-path=SCRIPTDIR source=lib/build-from-proxy.sh
source "$root/hack/lib/build-from-proxy.sh"
log "building what $out lacks of kube-apiserver, kubectl $k8s_version and etcd $ETCD_VERSION from the Go module proxy (a few minutes, once)"
kx_build_kubernetes "$k8s_version" "$out" kube-apiserver kubectl
kx_build_etcd "$ETCD_VERSION" "$out/etcd"

echo "$out"
