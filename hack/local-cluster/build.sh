# shellcheck shell=bash
# The cluster's binaries, cached in $bin ($KX_BIN_DIR/<k8s version>): the Kubernetes components
# and etcd from the Go module proxy (hack/lib/build-from-proxy.sh, shared with
# hack/envtest-binaries.sh), CoreDNS (`go install`), and the sandbox ("pause") program and image.

# shellcheck source=lib/build-from-proxy.sh
source "$root/hack/lib/build-from-proxy.sh"

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

build() {
  local missing=() b
  for b in "${k8s_bins[@]}" etcd coredns pause; do [ -x "$bin/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "building ${missing[*]} into $bin (once)"
  command -v go >/dev/null || die "go is not on PATH"
  mkdir -p "$bin"
  kx_build_kubernetes "$K8S_VERSION" "$bin" "${k8s_bins[@]}" || die "building Kubernetes $K8S_VERSION failed"
  kx_build_etcd "$ETCD_VERSION" "$bin/etcd" || die "building etcd $ETCD_VERSION failed"
  if [ ! -x "$bin/coredns" ]; then
    log "building coredns $COREDNS_VERSION"
    local gobin
    gobin=$(mktemp -d "${TMPDIR:-/tmp}/kx-coredns.XXXXXX")
    GOBIN="$gobin" GOFLAGS='' GOTOOLCHAIN=local CGO_ENABLED=0 nice -n 10 \
      go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION" \
      || { rm -rf "$gobin"; die "go install github.com/coredns/coredns@$COREDNS_VERSION failed"; }
    mv "$gobin/coredns" "$bin/coredns"
    rm -rf "$gobin"
  fi
  if [ ! -x "$bin/pause" ]; then
    log "building the pause program"
    (cd "$root/hack/imagebuild" && GOFLAGS='' CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/pause" ./pause) \
      || die "building hack/imagebuild/pause failed"
  fi
  log "binaries ready in $bin"
}

# pause_archive: the sandbox image containerd is configured with ($PAUSE_IMAGE), as a
# docker-archive in $bin.
pause_archive() {
  local out="$bin/pause-image.tar"
  [ -s "$out" ] && return
  log "building the sandbox image $PAUSE_IMAGE"
  (cd "$root/hack/imagebuild" && GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -trimpath -o "$bin/imagebuild" .) || die "building hack/imagebuild failed"
  local dir
  dir=$(mktemp -d)
  cp "$bin/pause" "$dir/pause"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf - pause | gzip -n > "$dir.tar.gz"
  "$bin/imagebuild" -o "$out" -tag "$PAUSE_IMAGE" -entrypoint '["/pause"]' -user 65535:65535 -layer "$dir.tar.gz" > /dev/null \
    || die "assembling the pause image failed"
  rm -rf "$dir" "$dir.tar.gz"
}
