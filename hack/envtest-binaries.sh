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
staging="v0.${k8s_version#v1.}"
out="$bin_dir/k8s/${k8s_version#v}-$(go env GOOS)-$(go env GOARCH)"

if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -x "$out/kubectl" ]; then
  echo "$out"
  exit 0
fi

log() { echo "envtest-binaries: $*" >&2; }

if [ -n "${SETUP_ENVTEST:-}" ] && [ "${ENVTEST_OFFLINE:-0}" != 1 ]; then
  if path=$(timeout 120 "$SETUP_ENVTEST" use "${k8s_version#v}" --bin-dir "$bin_dir" -p path 2>/dev/null) && [ -x "$path/kube-apiserver" ]; then
    echo "$path"
    exit 0
  fi
  log "setup-envtest could not download envtest binaries; building them from source instead"
fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

if [ ! -x "$out/kube-apiserver" ] || [ ! -x "$out/kubectl" ]; then
  log "building kube-apiserver and kubectl $k8s_version from the Go module proxy (a few minutes, once)"
  mkdir -p "$work/k8s"
  # k8s.io/kubernetes' go.mod points its staging modules at ./staging via replace directives;
  # a wrapper module replaces them with the published versions instead.
  modfile=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -n "$modfile" ] || { log "cannot download k8s.io/kubernetes@$k8s_version"; exit 1; }
  {
    echo "module kubexport.local/envtest-k8s"
    grep -E '^go [0-9]' "$modfile"
    grep -E '^godebug ' "$modfile" || true
    echo "require k8s.io/kubernetes $k8s_version"
    echo "replace ("
    awk '/^replace \(/{r=1; next} r && /^\)/{r=0} r && $1 ~ /^k8s.io\// {print "\t" $1 " => " $1 " '"$staging"'"}' "$modfile"
    echo ")"
  } > "$work/k8s/go.mod"
  cat > "$work/k8s/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
  (cd "$work/k8s" && go mod tidy >&2)
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version/verflag.programName=kube-apiserver"
  (cd "$work/k8s" && go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
  (cd "$work/k8s" && go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl)
fi

if [ ! -x "$out/etcd" ]; then
  log "building etcd $ETCD_VERSION from the Go module proxy"
  mkdir -p "$work/etcd"
  cat > "$work/etcd/go.mod" <<MOD
module kubexport.local/envtest-etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$work/etcd/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$work/etcd" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
fi

echo "$out"
