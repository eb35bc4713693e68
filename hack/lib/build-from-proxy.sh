# shellcheck shell=bash
# Kubernetes and etcd binaries built from the Go module proxy, for machines where no release
# archive can be downloaded (see ../shared/OFFLINE.md). Sourced by hack/envtest-binaries.sh
# (kube-apiserver, kubectl, etcd for envtest) and hack/local-cluster/build.sh (every component
# of the local cluster).
#
#   kx_build_kubernetes VERSION OUT_DIR BINARY...   k8s.io/kubernetes/cmd/BINARY at VERSION
#   kx_build_etcd VERSION OUT_FILE                  go.etcd.io/etcd/server/v3 at VERSION
#
# Binaries already in OUT_DIR are kept. Each function runs in a subshell with its own temporary
# module and cleans it up; it prints progress on stderr and returns non-zero on failure.

# kx_build_kubernetes VERSION OUT_DIR BINARY...
#
# `go install k8s.io/kubernetes/cmd/X@vX` is refused: kubernetes' go.mod points its staging
# modules (k8s.io/api, k8s.io/apiserver, ...) at ./staging with replace directives. A wrapper
# module requires k8s.io/kubernetes and replaces every one of those with its published version
# (v0.Y.Z for v1.Y.Z); it copies kubernetes' `go` and `godebug` lines so the build behaves the
# same. The binaries carry the version stamp (`--version`) a release build would.
kx_build_kubernetes() (
  set -euo pipefail
  local version=$1 dest=$2 b missing=()
  shift 2
  for b in "$@"; do [ -x "$dest/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -gt 0 ] || exit 0
  command -v go >/dev/null || { echo "build-from-proxy: go is not on PATH" >&2; exit 1; }
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  local work staging="v0.${version#v1.}" modfile
  work=$(mktemp -d "${TMPDIR:-/tmp}/kx-k8s-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$dest"
  modfile=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -n "$modfile" ] || { echo "build-from-proxy: cannot download k8s.io/kubernetes@$version from the Go module proxy" >&2; exit 1; }
  {
    echo "module kubexport.local/k8s-from-proxy"
    grep -E '^go [0-9]' "$modfile"
    grep -E '^godebug ' "$modfile" || true
    echo "require k8s.io/kubernetes $version"
    echo "replace ("
    awk -v v="$staging" '/^replace \(/{r=1; next} r && /^\)/{r=0} r && $1 ~ /^k8s.io\// {print "\t" $1 " => " $1 " " v}' "$modfile"
    echo ")"
  } > "$work/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for b in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } > "$work/tools.go"
  (cd "$work" && go mod tidy >&2) || { echo "build-from-proxy: go mod tidy of the kubernetes $version wrapper failed" >&2; exit 1; }
  for b in "${missing[@]}"; do
    echo "build-from-proxy: building $b $version$([ "$b" = kube-apiserver ] && echo ' (4-14 min and 1.7 GB the first time)')" >&2
    (cd "$work" && nice -n 10 go build -trimpath \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version/verflag.programName=$b" \
      -o "$dest/$b.tmp.$$" "k8s.io/kubernetes/cmd/$b") || { echo "build-from-proxy: building $b $version failed" >&2; exit 1; }
    mv -f "$dest/$b.tmp.$$" "$dest/$b" # a name of its own: two checkouts may build at once
  done
)

# kx_build_etcd VERSION OUT_FILE
#
# `go install go.etcd.io/etcd/server/v3@VERSION` is refused for the same reason (replace
# directives); a wrapper module that requires it builds it (~25 s).
kx_build_etcd() (
  set -euo pipefail
  local version=$1 dest=$2
  [ -x "$dest" ] && exit 0
  command -v go >/dev/null || { echo "build-from-proxy: go is not on PATH" >&2; exit 1; }
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/kx-etcd-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$(dirname "$dest")"
  echo "build-from-proxy: building etcd $version" >&2
  printf 'module kubexport.local/etcd-from-proxy\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$version" > "$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$work/tools.go"
  (cd "$work" && go mod tidy >&2 && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$dest.tmp.$$" go.etcd.io/etcd/server/v3) \
    || { echo "build-from-proxy: building etcd $version failed" >&2; exit 1; }
  mv -f "$dest.tmp.$$" "$dest"
)
