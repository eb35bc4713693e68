#!/usr/bin/env bash
# Assembles a kind node image without a registry (see ../shared/OFFLINE.md, "kind without a
# registry"): what kind v0.33.0's base image (images/base/Dockerfile) and node builder
# (`kind build node-image`) make, from this machine's Debian packages and Kubernetes built from
# the Go module proxy. `kind build node-image` itself cannot run here: it pulls the kubeadm
# images, kindnetd and local-path-provisioner inside its build container.
#
#   hack/kind-node-image.sh            the root filesystem tarball, then dockerd
#                                      (hack/lib/dockerd.sh) for the import; run it under
#                                      `flock -o /tmp/kx-cluster.lock`
#   hack/kind-node-image.sh tarball    only the root filesystem tarball (no daemon, no lock):
#                                      prints its path
#   hack/kind-node-image.sh import     only the import, into the engine the caller started
#                                      (DOCKER and DOCKER_HOST set, as by kx_dockerd_up)
#
# The image ($KIND_NODE_IMAGE, default kubexport.local/kind-node:$K8S_VERSION):
# - kind's base image: a Debian bookworm root (debootstrap) with systemd and kind's package list
#   (iptables, conntrack, iproute2, ...), Debian's containerd 1.6, runc and CNI plugins (linked
#   into /opt/cni/bin) instead of kind's own builds, /usr/local/bin/containerd linking Debian's
#   binary (the name kind's unit runs), kind's images/base/files from the kind module, its
#   systemd changes (units removed, kubelet/containerd/undo-mount-hacks enabled), and
#   /etc/containerd/cri-base.json as kind makes it (`ctr oci spec` with its hook, no rlimits).
# - Differences this machine needs: containerd's runc runtimes run hack/lib/runc-capwrap.sh
#   (BinaryName; the bounding set lacks CAP_SYS_RESOURCE, which privileged pods such as
#   kube-proxy are given) with restrict_oom_score_adj = true, and containerd.service gets
#   OOMScoreAdjust=0 (lowering it needs CAP_SYS_RESOURCE too).
# - kind's node builder: kubeadm, kubelet and kubectl at $K8S_VERSION (hack/lib/build-from-proxy.sh,
#   version-stamped) in /usr/bin, crictl ($CRICTL_VERSION, `go install` from the proxy; kind's
#   `load` runs it) in /usr/local/bin, /kind/version, the sandbox image set in containerd's config,
#   and the images `kubeadm config images list` names (exactly those names) imported into the
#   node's containerd (`ctr -n k8s.io images import --no-unpack`, by a containerd of this
#   machine's run on the root for the length of the import). Each image is built without a
#   registry by hack/imagebuild: the binaries on the distroless-like base (kube-apiserver,
#   kube-controller-manager, kube-scheduler, etcd, coredns, pause; coredns runs as root, as
#   kubeadm's Deployment sets no user and a non-root user would need file capabilities that
#   no_new_privs ignores), kube-proxy on a Debian root with iptables and conntrack.
# - Instead of kindnetd (not buildable from the proxy): a static CNI config in /etc/cni/net.d
#   (ptp + host-local + portmap, kindnet's plugins, pod subnet $KIND_POD_SUBNET, kind's default),
#   so the image serves single-node clusters; /kind/manifests/default-cni.yaml is only a
#   ConfigMap saying so (kind applies that file). Instead of local-path-provisioner:
#   /kind/manifests/default-storage.yaml is a default StorageClass "standard" for statically
#   created PersistentVolumes (kubernetes.io/no-provisioner, WaitForFirstConsumer).
#
# Caching: the image carries the label io.kubexport.base-recipe = a hash of every input (this
# script, kind's files, the binaries, the apt sources, the wrapper); a run whose hash matches the
# image, or the tarball $KX_KIND_NODE_DIR/node-<hash>.tar, does nothing more. The debootstrap roots
# are cached in $KX_ROOTFS_CACHE by package list and sources.
#
# Needs root (debootstrap, chroot), Go, and the binaries hack/local-cluster/build.sh builds
# (built here when missing). Environment: K8S_VERSION (v1.32.5), KIND_VERSION (v0.33.0),
# KIND_NODE_IMAGE, KIND_POD_SUBNET (10.244.0.0/16), KX_BIN_DIR, KX_KIND_NODE_DIR
# (~/.cache/kubexport/kind-node), KX_ROOTFS_CACHE, and hack/lib/dockerd.sh's.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kubexport
K8S_VERSION=${K8S_VERSION:-v1.32.5}
KIND_VERSION=${KIND_VERSION:-v0.33.0}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kubexport.local/kind-node:$K8S_VERSION}
KIND_POD_SUBNET=${KIND_POD_SUBNET:-10.244.0.0/16}
# crictl (kind's `load` and `export logs` run it): the newest release on the module proxy near
# kind's v1.36.0 (v1.35 and v1.36 are not there).
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}
KX_BIN_DIR=${KX_BIN_DIR:-$cache/cluster-bin}
OUT=${KX_KIND_NODE_DIR:-$cache/kind-node}
ROOTFS_CACHE=${KX_ROOTFS_CACHE:-$cache/rootfs}
SUITE=bookworm
RECIPE_LABEL=io.kubexport.base-recipe
bin=$KX_BIN_DIR/$K8S_VERSION
# kind's base image packages (images/base/Dockerfile) less fuse-overlayfs, nfs-common and
# open-iscsi (rootless and storage drivers this image does not serve), plus Debian's container
# runtime, which kind builds from source.
NODE_PACKAGES=(systemd dbus conntrack iptables nftables iproute2 ethtool util-linux mount kmod
  libseccomp2 pigz e2fsprogs bash ca-certificates curl jq procps
  containerd runc containernetworking-plugins)
KUBE_PROXY_PACKAGES=(iptables conntrack)
NONROOT_UID=65532

log() { printf '%s kind-node-image: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=hack/lib/debian-rootfs.sh
. "$root/hack/lib/debian-rootfs.sh"
# shellcheck source=hack/lib/build-from-proxy.sh
. "$root/hack/lib/build-from-proxy.sh"
export GOTOOLCHAIN=local

mode=${1:-all}
case "$mode" in all|tarball|import) ;; *) die "usage: hack/kind-node-image.sh [tarball|import]" ;; esac

# kind_dir: the kind module's directory (its images/base/files).
kind_dir() {
  local d
  d=$(cd /tmp && GOFLAGS='' go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$d/images/base/files" ] || die "sigs.k8s.io/kind@$KIND_VERSION from the module proxy has no images/base/files"
  echo "$d"
}

# image_version NAME: the tag kubeadm gives the image NAME (kube-apiserver, etcd, ...).
image_version() { awk -F: -v n="$1" '{b = $1; sub(/.*\//, "", b)} b == n {print $2}' <<< "$kubeadm_images"; }

# binaries: kubeadm, kubelet, kubectl and the control plane at $K8S_VERSION, etcd and CoreDNS at
# the versions kubeadm names, the pause program; built once into $bin.
binaries() {
  kx_build_kubernetes "$K8S_VERSION" "$bin" kubeadm kubelet kubectl kube-apiserver kube-controller-manager \
    kube-scheduler kube-proxy || die "building Kubernetes $K8S_VERSION failed"
  kubeadm_images=$("$bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION") || die "kubeadm config images list failed"
  etcd_version=v$(image_version etcd | sed 's/-[0-9]*$//')
  coredns_version=$(image_version coredns)
  kx_build_etcd "$etcd_version" "$bin/kind/etcd-$etcd_version" || die "building etcd $etcd_version failed"
  if [ ! -x "$bin/kind/coredns-$coredns_version" ]; then
    log "building coredns $coredns_version"
    local gobin
    gobin=$(mktemp -d "${TMPDIR:-/tmp}/kx-coredns.XXXXXX")
    GOBIN="$gobin" GOFLAGS='' CGO_ENABLED=0 nice -n 10 go install -trimpath -ldflags "-s -w" \
      "github.com/coredns/coredns@$coredns_version" || { rm -rf "$gobin"; die "building coredns $coredns_version failed"; }
    mv "$gobin/coredns" "$bin/kind/coredns-$coredns_version"
    rm -rf "$gobin"
  fi
  if [ ! -x "$bin/kind/crictl-$CRICTL_VERSION" ]; then
    log "building crictl $CRICTL_VERSION"
    local gobin
    gobin=$(mktemp -d "${TMPDIR:-/tmp}/kx-crictl.XXXXXX")
    GOBIN="$gobin" GOFLAGS='' CGO_ENABLED=0 nice -n 10 go install -trimpath \
      -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
      "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" || { rm -rf "$gobin"; die "building crictl $CRICTL_VERSION failed"; }
    mv "$gobin/crictl" "$bin/kind/crictl-$CRICTL_VERSION"
    rm -rf "$gobin"
  fi
  if [ ! -x "$bin/pause" ]; then
    (cd "$root/hack/imagebuild" && GOFLAGS='' CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/pause" ./pause) \
      || die "building hack/imagebuild/pause failed"
  fi
  (cd "$root/hack/imagebuild" && GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -trimpath -o "$bin/imagebuild" .) \
    || die "building hack/imagebuild failed"
}

# debian_root NAME PACKAGES...: a cached tarball of a debootstrap root with PACKAGES (keyed on
# them and the apt sources); prints its path.
debian_root() {
  local name=$1 key tarball dir
  shift
  kx_debian_sources "$SUITE" "$work/debian.sources"
  key=$( { echo "suite=$SUITE packages=$*"; cat "$work/debian.sources"; } | sha256sum | cut -c1-16)
  tarball=$ROOTFS_CACHE/$name-$key.tar
  if [ ! -s "$tarball" ]; then
    local t=$SECONDS
    log "$name: debootstrap --variant=minbase with $* (once; ~2-4 min)"
    dir=$work/$name-root
    kx_debootstrap "$SUITE" "$dir" "$ROOTFS_CACHE/debs" "$work/$name-debootstrap.log" --include="$(IFS=,; echo "$*")"
    rm -f "$dir/etc/apt/sources.list"
    cp "$work/debian.sources" "$dir/etc/apt/sources.list.d/debian.sources"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/log/*.log \
      "${dir:?}"/dev/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
    : > "$dir/etc/machine-id"
    : > "$dir/etc/resolv.conf"
    find "$dir/proc" "$dir/sys" "$dir/run" -mindepth 1 -delete 2>/dev/null || true
    rm -f "$ROOTFS_CACHE/$name"-*.tar
    tar --sort=name --numeric-owner --xattrs --xattrs-include='security.capability' -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
    log "$name: made in $((SECONDS - t)) s"
  fi
  echo "$tarball"
}

# layer_of DIR OUT: DIR as a layer tarball (numeric owners, sorted, fixed times, gzip).
layer_of() {
  find "$1" -exec touch -h -d @0 {} +
  tar --sort=name --numeric-owner --xattrs --xattrs-include='security.capability' -C "$1" -cf - . | gzip -n -1 > "$2"
}

# control_plane_images DIR: a docker-archive per image kubeadm names, into DIR.
control_plane_images() {
  local dir=$1 ref name static=$work/static.tar.gz tree=$work/static-tree
  local path_env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  mkdir -p "$dir"
  kx_static_base_tree "$tree" $NONROOT_UID
  layer_of "$tree" "$static"
  local proxy_base
  proxy_base=$(debian_root kind-kube-proxy "${KUBE_PROXY_PACKAGES[@]}")
  while read -r ref; do
    name=${ref##*/}
    name=${name%%:*}
    local layer=$work/$name-layer l=() user=0:0 ep
    rm -rf "$layer"
    mkdir -p "$layer/usr/local/bin"
    case "$name" in
      kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy)
        cp "$bin/$name" "$layer/usr/local/bin/$name"; ep=/usr/local/bin/$name ;;
      etcd) cp "$bin/kind/etcd-$etcd_version" "$layer/usr/local/bin/etcd"; ep=/usr/local/bin/etcd ;;
      coredns) mkdir -p "$layer"; cp "$bin/kind/coredns-$coredns_version" "$layer/coredns"; ep=/coredns ;;
      pause) cp "$bin/pause" "$layer/pause"; ep=/pause; user=65535:65535 ;;
      *) die "no recipe for the image $ref that kubeadm $K8S_VERSION names" ;;
    esac
    layer_of "$layer" "$layer.tar.gz"
    if [ "$name" = kube-proxy ]; then
      l=(-layer "$proxy_base")
    else
      l=(-layer "$static")
    fi
    "$bin/imagebuild" -o "$dir/$name.tar" -tag "$ref" -entrypoint "[\"$ep\"]" -user "$user" -env "$path_env" \
      "${l[@]}" -layer "$layer.tar.gz" > /dev/null || die "assembling $ref failed"
    rm -rf "$layer" "$layer.tar.gz"
    log "image $ref: $(du -h "$dir/$name.tar" | cut -f1)"
  done <<< "$kubeadm_images"
}

# import_images ROOTFS DIR: the archives in DIR into ROOTFS's containerd store (namespace
# k8s.io, not unpacked: the CRI plugin unpacks on first use), with a containerd of this
# machine's own (Debian's, the version the node runs) on that root for the length of the import.
import_images() {
  local rootfs=$1 dir=$2 st=$work/containerd pid
  if ! command -v containerd > /dev/null || ! command -v ctr > /dev/null; then
    log "installing Debian's containerd (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 containerd > /dev/null ||
      die "apt-get install containerd failed"
  fi
  mkdir -p "$st"
  cat > "$st/config.toml" <<EOF
version = 2
root = "$rootfs/var/lib/containerd"
state = "$st/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$st/c.sock"
[ttrpc]
  address = "$st/c.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$st/opt"
EOF
  containerd --config "$st/config.toml" > "$st/log" 2>&1 &
  pid=$!
  local deadline=$((SECONDS + 30))
  until ctr -a "$st/c.sock" version > /dev/null 2>&1; do
    [ -d "/proc/$pid" ] || die "containerd for the import exited: $(tail -5 "$st/log")"
    [ $SECONDS -lt $deadline ] || { kill "$pid"; die "containerd for the import not answering after 30 s"; }
    sleep 0.2
  done
  local f rc=0
  for f in "$dir"/*.tar; do
    ctr -a "$st/c.sock" -n k8s.io images import --no-unpack --all-platforms "$f" > /dev/null || { rc=1; log "importing $f failed"; break; }
  done
  local names
  names=$(ctr -a "$st/c.sock" -n k8s.io images ls -q)
  kill "$pid"
  wait "$pid" 2> /dev/null || true
  rm -rf "$st"
  [ $rc = 0 ] || die "importing the images into the node's containerd failed"
  local ref
  while read -r ref; do grep -qx "$ref" <<< "$names" || die "$ref missing from the node's containerd after the import"; done <<< "$kubeadm_images"
  log "node containerd holds: $(tr '\n' ' ' <<< "$names")"
}

# configure_node ROOTFS KIND_DIR: kind's base image and node builder steps on ROOTFS.
configure_node() {
  local r=$1 files=$2/images/base/files pause_ref
  pause_ref=$(grep '/pause:' <<< "$kubeadm_images")
  # COPY lines of images/base/Dockerfile, with their modes.
  install -m 0755 -t "$r/usr/local/bin" "$files"/usr/local/bin/*
  mkdir -p "$r/kind/bin" "$r/LICENSES" "$r/etc/containerd" "$r/etc/default" "$r/etc/sysctl.d" "$r/etc/systemd/system/kubelet.service.d"
  cp -r "$files/kind/." "$r/kind/"
  find "$r/kind" -type f -exec chmod 0644 {} +
  chmod 0755 "$r/kind" "$r/kind/bin" "$r"/kind/bin/*
  install -m 0644 -t "$r/LICENSES" "$files"/LICENSES/*
  install -m 0644 "$files/etc/crictl.yaml" "$r/etc/crictl.yaml"
  install -m 0644 -t "$r/etc/default" "$files"/etc/default/*
  install -m 0644 -t "$r/etc/sysctl.d" "$files"/etc/sysctl.d/*
  install -m 0644 -t "$r/etc/systemd/system" "$files"/etc/systemd/system/*.service "$files"/etc/systemd/system/*.slice
  install -m 0644 -t "$r/etc/systemd/system/kubelet.service.d" "$files"/etc/systemd/system/kubelet.service.d/*
  # containerd's config: kind's, with the node builder's sandbox image and this machine's runc
  # wrapper; Debian's containerd, runc and CNI plugins where kind installs its own builds.
  sed -e "s|sandbox_image = .*|sandbox_image = \"$pause_ref\"|" \
      -e 's|restrict_oom_score_adj = false|restrict_oom_score_adj = true|' \
      -e 's|^\(\s*\)SystemdCgroup = true|&\n\1BinaryName = "/usr/local/bin/kx-runc"|' \
      "$files/etc/containerd/config.toml" > "$r/etc/containerd/config.toml"
  grep -q 'BinaryName = "/usr/local/bin/kx-runc"' "$r/etc/containerd/config.toml" || die "kind's containerd config changed: no runc options to point at the wrapper"
  grep -q "sandbox_image = \"$pause_ref\"" "$r/etc/containerd/config.toml" || die "kind's containerd config changed: no sandbox_image"
  install -m 0755 "$root/hack/lib/runc-capwrap.sh" "$r/usr/local/bin/kx-runc"
  ln -sf /usr/bin/containerd "$r/usr/local/bin/containerd"
  mkdir -p "$r/usr/local/sbin" "$r/opt/cni/bin" "$r/etc/cni/net.d" "$r/etc/systemd/system/containerd.service.d"
  ln -sf /usr/sbin/runc "$r/usr/local/sbin/runc"
  local p
  for p in "$r"/usr/lib/cni/*; do ln -sf "/usr/lib/cni/${p##*/}" "$r/opt/cni/bin/${p##*/}"; done
  printf '[Service]\n# This machine'"'"'s bounding set lacks CAP_SYS_RESOURCE, which lowering it needs.\nOOMScoreAdjust=0\n' \
    > "$r/etc/systemd/system/containerd.service.d/10-kx-oom.conf"
  # RUN lines of images/base/Dockerfile.
  find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
    "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
    "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> "$r/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$r/sbin/init"
  systemctl --root="$r" --quiet enable kubelet.service containerd.service undo-mount-hacks.service
  systemctl --root="$r" --quiet mask systemd-binfmt.service
  mkdir -p "$r/etc/kubernetes/manifests"
  chroot "$r" sh -c "ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}' | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json" \
    || die "making /etc/containerd/cri-base.json failed"
  # The node builder: Kubernetes binaries, version, manifests.
  install -m 0755 -t "$r/usr/bin" "$bin/kubeadm" "$bin/kubelet" "$bin/kubectl"
  install -m 0755 "$bin/kind/crictl-$CRICTL_VERSION" "$r/usr/local/bin/crictl"
  echo "$K8S_VERSION" > "$r/kind/version"
  mkdir -p "$r/kind/manifests"
  cat > "$r/etc/cni/net.d/10-kx-ptp.conflist" <<EOF
{
  "cniVersion": "0.3.1",
  "name": "kx-ptp",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "$KIND_POD_SUBNET"}]]
      },
      "mtu": 1500
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat > "$r/kind/manifests/default-cni.yaml" <<EOF
# kind applies this file as its default CNI. kindnetd cannot be built without a registry: this
# node image (hack/kind-node-image.sh) carries a static CNI config instead,
# /etc/cni/net.d/10-kx-ptp.conflist (ptp + host-local on $KIND_POD_SUBNET + portmap), which
# serves a single-node cluster. This ConfigMap only records that.
apiVersion: v1
kind: ConfigMap
metadata:
  name: kx-static-cni
  namespace: kube-system
data:
  plugin: ptp
  subnet: "$KIND_POD_SUBNET"
EOF
  cat > "$r/kind/manifests/default-storage.yaml" <<'EOF'
# kind's default StorageClass. local-path-provisioner cannot be built without a registry: this
# class binds claims to PersistentVolumes created beforehand (for example hostPath or local
# volumes on the node).
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
EOF
}

# inputs_key KIND_DIR: the hash of everything the image is made of.
inputs_key() {
  {
    sha256sum "$0" "$root/hack/lib/runc-capwrap.sh" "$root/hack/lib/debian-rootfs.sh"
    echo "k8s=$K8S_VERSION kind=$KIND_VERSION subnet=$KIND_POD_SUBNET image=$KIND_NODE_IMAGE"
    kx_debian_sources "$SUITE" "$work/sources.key" && cat "$work/sources.key"
    (cd "$1/images/base/files" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    sha256sum "$bin"/{kubeadm,kubelet,kubectl,kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy,pause} \
      "$bin/kind/etcd-$etcd_version" "$bin/kind/coredns-$coredns_version" "$bin/kind/crictl-$CRICTL_VERSION"
    (cd "$root/hack/imagebuild" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

image_key() { "$DOCKER" image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$KIND_NODE_IMAGE" 2>/dev/null || true; }

t0=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/kx-kind-node.XXXXXX")
cleanup_work() {
  local m
  awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup_work EXIT
mkdir -p "$OUT" "$ROOTFS_CACHE"
kdir=$(kind_dir)
binaries
key=$(inputs_key "$kdir")
tarball=$OUT/node-$key.tar

if [ "$mode" != import ] && [ ! -s "$tarball" ]; then
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot)"
  log "building the root filesystem of $KIND_NODE_IMAGE (inputs $key)"
  base=$(debian_root kind-node "${NODE_PACKAGES[@]}")
  t=$SECONDS
  rootfs=$work/rootfs
  mkdir -p "$rootfs"
  tar --numeric-owner --xattrs --xattrs-include='security.capability' -C "$rootfs" -xf "$base"
  configure_node "$rootfs" "$kdir"
  control_plane_images "$work/images"
  import_images "$rootfs" "$work/images"
  rm -f "$OUT"/node-*.tar
  tar --sort=name --numeric-owner --xattrs --xattrs-include='security.capability' -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  log "root filesystem $tarball ($(du -h "$tarball" | cut -f1)) made in $((SECONDS - t)) s"
fi
if [ "$mode" = tarball ]; then
  log "done in $((SECONDS - t0)) s"
  echo "$tarball"
  exit 0
fi

# The import into Docker: the tarball as one layer, then the configuration kind's base image
# has (`docker import --change` of Docker 20.10 rejects STOPSIGNAL: a one-line build sets it).
if [ "$mode" = all ]; then
  # shellcheck source=hack/lib/dockerd.sh
  . "$root/hack/lib/dockerd.sh"
  kx_dockerd_before_down() { cleanup_work; }
  kx_dockerd_up
fi
[ -n "${DOCKER:-}" ] && [ -n "${DOCKER_HOST:-}" ] || die "import: DOCKER and DOCKER_HOST must name a running engine (hack/lib/dockerd.sh)"
if [ "$(image_key)" = "$key" ]; then
  log "$KIND_NODE_IMAGE: up to date (inputs $key)"
else
  [ -s "$tarball" ] || die "$tarball missing: run hack/kind-node-image.sh tarball first"
  t=$SECONDS
  rootfs_ref=kubexport.local/kind-node-rootfs:$key
  "$DOCKER" import - "$rootfs_ref" < "$tarball" > /dev/null || die "docker import of $tarball failed"
  mkdir -p "$work/ctx"
  cat > "$work/ctx/Dockerfile" <<EOF
FROM $rootfs_ref
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
LABEL $RECIPE_LABEL=$key
EOF
  BUILDKIT_PROGRESS=plain "$DOCKER" build -t "$KIND_NODE_IMAGE" "$work/ctx" > "$work/build.log" 2>&1 \
    || die "building $KIND_NODE_IMAGE failed: $(tail -10 "$work/build.log")"
  "$DOCKER" rmi "$rootfs_ref" > /dev/null
  log "$KIND_NODE_IMAGE: imported in $((SECONDS - t)) s ($("$DOCKER" image inspect --format '{{.Size}}' "$KIND_NODE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
fi
log "done in $((SECONDS - t0)) s"
