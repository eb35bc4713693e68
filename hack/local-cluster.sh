#!/usr/bin/env bash
# A real single-node Kubernetes cluster for offline Linux machines (see ../shared/OFFLINE.md):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy (built from
# the Go module proxy), CoreDNS on the host, Debian's containerd + runc + CNI plugins, and a pod
# bridge this script creates. Nothing listens beyond loopback and that bridge; packets from the
# bridge or the service range towards any other interface are dropped.
#
# Usage: hack/local-cluster.sh up|down|status|build|load|kubeconfig|kubectl-path|kubectl
#   build       build and cache the binaries only (done by `up` when missing)
#   up          start everything (idempotent), load the image archives, wait for the node
#   load [F..]  import docker-archive tarballs into containerd (default: the images of
#               hack/images.sh found in $KX_IMAGES_DIR)
#   down        stop everything and restore the machine (idempotent)
#   status      report what runs
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
FW_CHAIN=KX-ISOLATE

log() { printf '%s local-cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
set -E
# shellcheck disable=SC2154  # rc is assigned inside the trap
trap 'rc=$?; log "ERROR: command failed (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $rc' ERR

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (containerd, kubelet and iptables need it)"; }

# ---------------------------------------------------------------------------------------------
# build: binaries from the Go module proxy, cached in $KX_BIN_DIR/<k8s version>.
# ---------------------------------------------------------------------------------------------
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

build() {
  local missing=() b
  for b in "${k8s_bins[@]}" etcd coredns pause; do [ -x "$bin/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "building ${missing[*]} into $bin (once$([[ " ${missing[*]} " == *" kube-apiserver "* ]] && echo '; kube-apiserver alone takes 4-14 min and 1.7 GB'))"
  command -v go >/dev/null || die "go is not on PATH"
  mkdir -p "$bin"
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/kx-build.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

  local need_k8s=0
  for b in "${k8s_bins[@]}"; do [ -x "$bin/$b" ] || need_k8s=1; done
  if [ $need_k8s = 1 ]; then
    # k8s.io/kubernetes points its staging modules at ./staging with replace directives, which
    # `go install` refuses; a wrapper module replaces them with the published versions.
    local staging="v0.${K8S_VERSION#v1.}" modfile
    mkdir -p "$work/k8s"
    modfile=$(cd "$work/k8s" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [ -n "$modfile" ] || die "cannot download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
    {
      echo "module kubexport.local/local-cluster-k8s"
      grep -E '^go [0-9]' "$modfile"
      grep -E '^godebug ' "$modfile" || true
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo "replace ("
      awk '/^replace \(/{r=1; next} r && /^\)/{r=0} r && $1 ~ /^k8s.io\// {print "\t" $1 " => " $1 " '"$staging"'"}' "$modfile"
      echo ")"
    } > "$work/k8s/go.mod"
    {
      echo '//go:build tools'; echo; echo 'package tools'; echo; echo 'import ('
      for b in "${k8s_bins[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
      echo ')'
    } > "$work/k8s/tools.go"
    (cd "$work/k8s" && go mod tidy >&2) || die "go mod tidy of the kubernetes $K8S_VERSION wrapper failed"
    for b in "${k8s_bins[@]}"; do
      [ -x "$bin/$b" ] && continue
      log "building $b $K8S_VERSION"
      (cd "$work/k8s" && nice -n 10 go build -trimpath \
        -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version/verflag.programName=$b" \
        -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b") || die "building $b failed"
      mv "$bin/$b.tmp" "$bin/$b"
    done
  fi

  if [ ! -x "$bin/etcd" ]; then
    log "building etcd $ETCD_VERSION"
    mkdir -p "$work/etcd"
    printf 'module kubexport.local/local-cluster-etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$work/etcd/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$work/etcd/tools.go"
    (cd "$work/etcd" && go mod tidy >&2 && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3) \
      || die "building etcd $ETCD_VERSION failed"
    mv "$bin/etcd.tmp" "$bin/etcd"
  fi

  if [ ! -x "$bin/coredns" ]; then
    log "building coredns $COREDNS_VERSION"
    mkdir -p "$work/gobin"
    GOBIN="$work/gobin" GOFLAGS='' nice -n 10 go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION" \
      || die "go install github.com/coredns/coredns@$COREDNS_VERSION failed"
    mv "$work/gobin/coredns" "$bin/coredns"
  fi

  if [ ! -x "$bin/pause" ]; then
    log "building the pause program"
    (cd "$root/hack/imagebuild" && GOFLAGS='' go build -trimpath -ldflags "-s -w" -o "$bin/pause" ./pause) \
      || die "building hack/imagebuild/pause failed"
  fi
  log "binaries ready in $bin"
}

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
kctl() { "$bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
sock="$run/containerd/containerd.sock"
ctr_() { ctr --address "$sock" -n k8s.io "$@"; }

# pid_of NAME: the PID of a component this script started, if it still runs that binary.
pid_of() {
  local f="$run/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(cat "$run/$1.exe" 2>/dev/null)" ] || return 1
  echo "$pid"
}

# start NAME BINARY ARGS...: start a component in its own session, log to $run/NAME.log.
start() {
  local name=$1 exe=$2
  shift 2
  if pid_of "$name" >/dev/null; then
    log "$name already running (pid $(pid_of "$name"))"
    return
  fi
  log "starting $name"
  setsid "$exe" "$@" >> "$run/$name.log" 2>&1 < /dev/null &
  echo $! > "$run/$name.pid"
  readlink -f "$exe" > "$run/$name.exe"
  sleep 0.2
  pid_of "$name" >/dev/null || die "$name exited at once; see $run/$name.log: $(tail -5 "$run/$name.log" | tr '\n' ' ')"
}

# stop NAME: SIGTERM by PID, SIGKILL after 15 s.
stop() {
  local name=$1 pid
  if pid=$(pid_of "$name"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then
      log "$name did not stop in 15 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$run/$name.pid" "$run/$name.exe"
}

# wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what=$1 timeout=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt "$timeout" ] || die "timed out after ${timeout}s waiting for $what"
    sleep 0.5
  done
  log "$what ($((SECONDS - t0)) s)"
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
ensure_packages() {
  local missing=() c
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v nft >/dev/null || missing+=(nftables)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v ss >/dev/null || missing+=(iproute2)
  [ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
  # Debian's containerd package may start a daemon where an init system runs; this script runs
  # its own instance with its own socket, so nothing else is needed.
}

# ---------------------------------------------------------------------------------------------
# Certificates and kubeconfigs
# ---------------------------------------------------------------------------------------------
cert() { # cert NAME CN ORG [SANS]: a client or serving cert signed by the cluster CA
  local name=$1 cn=$2 org=$3 sans=${4:-}
  [ -s "$pki/$name.crt" ] && return
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$sans"; else echo "extendedKeyUsage=clientAuth"; fi
  } > "$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
    -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null || die "signing the $name certificate failed"
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

kubeconfig() { # kubeconfig FILE CERTNAME
  put "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubexport-local
  cluster:
    certificate-authority: $pki/ca.crt
    server: https://$NODE_IP:$API_PORT
users:
- name: $2
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: kubexport-local
  context: {cluster: kubexport-local, user: $2}
current-context: kubexport-local
EOF
}

make_pki() {
  mkdir -p "$pki"
  chmod 700 "$pki"
  if [ ! -s "$pki/ca.crt" ]; then
    log "creating certificates in $pki"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -subj "/CN=kubexport-local-ca" \
      -days 3650 -out "$pki/ca.crt" 2>/dev/null || die "creating the CA failed"
  fi
  [ -s "$pki/sa.key" ] || { openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null && openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null; }
  cert apiserver kube-apiserver "" "IP:$NODE_IP,IP:127.0.0.1,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin kubernetes-admin system:masters
  cert kubelet "system:node:$NODE_NAME" system:nodes "IP:$NODE_IP,DNS:$NODE_NAME"
  cert controller-manager system:kube-controller-manager ""
  cert scheduler system:kube-scheduler ""
  cert kube-proxy system:kube-proxy ""
  cert coredns kubexport:coredns ""
  kubeconfig "$KUBECONFIG_PATH" admin
  local c
  for c in kubelet controller-manager scheduler kube-proxy coredns; do kubeconfig "$KX_HOME/$c.kubeconfig" "$c"; done
}

# ---------------------------------------------------------------------------------------------
# Network: the pod bridge, the service route, isolation rules, sysctls
# ---------------------------------------------------------------------------------------------
sysctls=(net.ipv4.ip_forward kernel.panic kernel.panic_on_oops vm.overcommit_memory
  net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait)

network_up() {
  if [ ! -s "$KX_HOME/sysctl.orig" ]; then
    local k
    for k in "${sysctls[@]}"; do
      v=$(sysctl -n "$k" 2>/dev/null) && echo "$k=$v"
    done > "$KX_HOME/sysctl.orig.tmp"
    mv "$KX_HOME/sysctl.orig.tmp" "$KX_HOME/sysctl.orig"
  fi
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE $BRIDGE_CIDR"
    ip link add "$BRIDGE" type bridge || die "ip link add $BRIDGE type bridge failed"
  fi
  ip addr replace "$BRIDGE_CIDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  # Nothing from the pod network or towards the service range leaves through any interface but
  # the bridge and loopback.
  iptables -N "$FW_CHAIN" 2>/dev/null || iptables -F "$FW_CHAIN"
  iptables -A "$FW_CHAIN" -o "$BRIDGE" -j RETURN
  iptables -A "$FW_CHAIN" -o lo -j RETURN
  iptables -A "$FW_CHAIN" -s "$POD_CIDR" -j DROP
  iptables -A "$FW_CHAIN" -d "$POD_CIDR" -j DROP
  iptables -A "$FW_CHAIN" -d "$SERVICE_CIDR" -j DROP
  iptables -A "$FW_CHAIN" -i "$BRIDGE" -j DROP
  local chain
  for chain in FORWARD OUTPUT; do
    iptables -C "$chain" -j "$FW_CHAIN" 2>/dev/null || iptables -I "$chain" 1 -j "$FW_CHAIN"
  done
}

# ---------------------------------------------------------------------------------------------
# Configuration files
# ---------------------------------------------------------------------------------------------
# put FILE: write stdin to FILE only when the content differs (kube-proxy exits when its
# configuration file changes, so `up` on a running cluster must not touch it).
put() {
  local tmp="$1.tmp.$$"
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

write_configs() {
  mkdir -p "$KX_HOME/cni" "$state/cni-ipam" "$state/kubelet" "$state/pod-logs" "$run/containerd"
  put "$KX_HOME/containerd.toml" <<EOF
version = 2
root = "$state/containerd"
state = "$state/containerd-state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$KX_HOME/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$state/runc"
        SystemdCgroup = false
EOF
  put "$KX_HOME/cni/10-kx.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kx",
  "plugins": [{
    "type": "bridge",
    "bridge": "$BRIDGE",
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
      "routes": [{"dst": "0.0.0.0/0"}],
      "dataDir": "$state/cni-ipam"
    }
  }]
}
EOF
  echo "nameserver $DNS_SERVICE_IP" | put "$KX_HOME/resolv.conf"
  put "$KX_HOME/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
failSwapOn: false
protectKernelDefaults: false
maxOpenFiles: 20000
clusterDomain: cluster.local
clusterDNS: [$DNS_SERVICE_IP]
resolvConf: $KX_HOME/resolv.conf
podLogsDir: $state/pod-logs
registerNode: true
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
evictionPressureTransitionPeriod: 10s
nodeStatusReportFrequency: 10s
EOF
  put "$KX_HOME/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $KX_HOME/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  put "$KX_HOME/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KX_HOME/coredns.kubeconfig kubexport-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
EOF
}

# Cluster objects the host-side components need: CoreDNS's RBAC and the kube-dns Service whose
# endpoint is CoreDNS on the bridge IP.
apply_system_objects() {
  kctl apply -f - > /dev/null <<EOF || die "applying the system objects failed"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "kubexport:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "kubexport:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "kubexport:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "kubexport:coredns"}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $DNS_SERVICE_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
subsets:
- addresses: [{ip: $NODE_IP}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------
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

# load_archive FILE: import a docker-archive into containerd's k8s.io namespace (skipped when
# the same archive was already imported since `up`).
load_archive() {
  local f=$1 mark key
  mark="$state/loaded/$(basename "$f")"
  key=$(stat -c '%s %Y' "$f")
  if [ "$(cat "$mark" 2>/dev/null)" = "$key" ]; then
    return
  fi
  local t0=$SECONDS
  ctr_ images import --no-unpack=false "$f" > "$run/ctr-import.log" 2>&1 \
    || die "ctr images import $f failed: $(tail -3 "$run/ctr-import.log" | tr '\n' ' ')"
  mkdir -p "$state/loaded"
  echo "$key" > "$mark"
  log "loaded $(grep -o 'unpacking [^ ]*' "$run/ctr-import.log" | cut -d' ' -f2 | tr '\n' ' ')from $f ($((SECONDS - t0)) s)"
}

load() {
  pid_of containerd > /dev/null || die "containerd is not running: hack/local-cluster.sh up first"
  local files=("$@") f
  if [ ${#files[@]} -eq 0 ]; then
    for f in "$KX_IMAGES_DIR"/*.tar; do [ -e "$f" ] && files+=("$f"); done
    [ ${#files[@]} -gt 0 ] || log "no image archives in $KX_IMAGES_DIR (hack/images.sh writes them)"
  fi
  for f in "${files[@]}"; do
    [ -f "$f" ] || die "$f: no such archive"
    load_archive "$f"
  done
}

# ---------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------
up() {
  need_root
  local t0=$SECONDS
  ensure_packages
  build
  pause_archive
  mkdir -p "$run" "$state"
  # Host paths kubelet/CNI/containerd use whatever their configuration: remember which existed.
  local p
  [ -f "$KX_HOME/preexisting" ] || for p in /var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd; do
    [ -e "$p" ] && echo "$p"
  done > "$KX_HOME/preexisting"
  # The nftables tables that exist before iptables-nft creates filter/nat/mangle for us.
  [ -f "$KX_HOME/nft-tables.orig" ] || nft list tables > "$KX_HOME/nft-tables.orig"
  if ! pid_of etcd >/dev/null; then
    for p in 2379 2380 $API_PORT 10250 10257 10259 10248 10249 10256; do
      port_free "$p" || die "TCP port $p is already in use (another cluster or etcd?); see: ss -ltnp 'sport = :$p'"
    done
  fi
  make_pki
  network_up
  write_configs

  start containerd "$(command -v containerd)" --config "$KX_HOME/containerd.toml"
  wait_for "containerd ready" 30 ctr --address "$sock" version
  load_archive "$bin/pause-image.tar"

  start etcd "$bin/etcd" --name kx --data-dir "$state/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster kx=http://127.0.0.1:2380 --listen-metrics-urls "" --log-level warn
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port=$API_PORT \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP --allow-privileged=true --profiling=false
  wait_for "kube-apiserver ready" 90 kctl get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$KX_HOME/controller-manager.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false \
    --use-service-account-credentials --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$KX_HOME/scheduler.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false --profiling=false
  apply_system_objects
  start kubelet "$bin/kubelet" --config="$KX_HOME/kubelet.yaml" --kubeconfig="$KX_HOME/kubelet.kubeconfig" \
    --root-dir="$state/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
  start kube-proxy "$bin/kube-proxy" --config="$KX_HOME/kube-proxy.yaml"
  start coredns "$bin/coredns" -conf "$KX_HOME/Corefile"
  load
  wait_for "node $NODE_NAME Ready" 120 kctl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
  wait_for "ServiceAccount default/default" 60 kctl get serviceaccount default -n default
  log "cluster up in $((SECONDS - t0)) s"
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

# ---------------------------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------------------------
# chains_cleanup: remove every KUBE-*/CNI-*/KX-* chain and the rules jumping to them (IPv4, IPv6).
chains_cleanup() {
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    for table in filter nat mangle raw; do
      { $ipt -t $table -S 2>/dev/null | grep -E '^-A .* -j (KUBE-|CNI-|KX-)' | grep -vE '^-A (KUBE-|CNI-|KX-)' || true; } | while read -r rule; do
        # shellcheck disable=SC2086
        eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null || true
      done
      for chain in $($ipt -t $table -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^(KUBE-|CNI-|KX-)/ {print $2}'); do
        $ipt -t $table -F "$chain" 2>/dev/null || true
      done
      for chain in $($ipt -t $table -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^(KUBE-|CNI-|KX-)/ {print $2}'); do
        $ipt -t $table -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# nft_tables_cleanup: delete the nftables tables that did not exist before `up` and are empty
# again (no rules, no user chains, ACCEPT policies), e.g. `ip filter` made by iptables-nft.
nft_tables_cleanup() {
  command -v nft >/dev/null && [ -f "$KX_HOME/nft-tables.orig" ] || return 0
  local fam name ipt
  nft list tables 2>/dev/null | while read -r _ fam name; do
    grep -qxF "table $fam $name" "$KX_HOME/nft-tables.orig" && continue
    case "$fam" in ip) ipt=iptables ;; ip6) ipt=ip6tables ;; *) continue ;; esac
    if ! { $ipt -t "$name" -S 2>/dev/null || echo busy; } | grep -qvE '^-P [A-Z]+ ACCEPT$'; then
      nft delete table "$fam" "$name" || log "cannot delete nftables table $fam $name"
    fi
  done
  rm -f "$KX_HOME/nft-tables.orig"
}

down() {
  need_root
  local t0=$SECONDS p
  if pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null && [ -x "$bin/kubectl" ]; then
    log "deleting workloads"
    local ns
    for ns in $(kctl get ns -o jsonpath='{.items[*].metadata.name}' 2>/dev/null); do
      kctl delete jobs,deployments,statefulsets,daemonsets,replicasets --all -n "$ns" --wait=false --request-timeout=10s >/dev/null 2>&1 || true
    done
    kctl delete pods --all --all-namespaces --grace-period=2 --timeout=30s --request-timeout=35s >/dev/null 2>&1 \
      || log "some pods did not go in time; containerd stops the rest"
  fi
  stop coredns
  stop kube-proxy
  stop kubelet
  if pid_of containerd >/dev/null; then
    local c
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
    sleep 0.5
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true; done
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  # Shims left behind: the processes whose command line names this cluster's containerd socket.
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -- "-address $sock"; then
      log "killing leftover shim ${p#/proc/}"
      kill -KILL "${p#/proc/}" 2>/dev/null || true
    fi
  done
  stop containerd
  stop kube-scheduler
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd

  if [ -x "$bin/kube-proxy" ] && iptables-save 2>/dev/null | grep -q KUBE-; then
    "$bin/kube-proxy" --cleanup > "$run/kube-proxy-cleanup.log" 2>&1 || true   # non-zero for ipvs/nft: expected
  fi
  chains_cleanup
  nft_tables_cleanup
  # Mounts under the cluster's directory (pod volumes, netns, overlay snapshots), deepest first.
  local m
  for m in $(awk -v d="$KX_HOME/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
  done
  if awk -v d="$KX_HOME/" 'index($2, d) == 1' /proc/self/mounts | grep -q .; then
    die "mounts remain under $KX_HOME; not deleting its state: $(awk -v d="$KX_HOME/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | head -3 | tr '\n' ' ')"
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "deleting bridge $BRIDGE"
    ip link del "$BRIDGE"
  fi
  ip route del "$SERVICE_CIDR" 2>/dev/null || true
  # Connection-tracking entries of the pod and service networks.
  local net dir
  for net in "$POD_CIDR" "$SERVICE_CIDR"; do
    for dir in -s -d; do conntrack -D "$dir" "$net" >/dev/null 2>&1 || true; done
  done
  if [ -s "$KX_HOME/sysctl.orig" ]; then
    local kv
    while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || log "cannot restore $kv"; done < "$KX_HOME/sysctl.orig"
    rm -f "$KX_HOME/sysctl.orig"
  fi
  # cgroups the kubelet made (cgroupfs driver): kubepods and below, in every hierarchy.
  for p in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$p" ] || continue
    find "$p" -depth -type d -exec rmdir {} + 2>/dev/null || true
    if [ -d "$p" ]; then log "cgroup $p remains (processes still in it?)"; fi
  done
  # Host paths kubelet, CNI and containerd create regardless of their configuration.
  for p in /var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd; do
    if [ -e "$p" ] && ! grep -qxF "$p" "$KX_HOME/preexisting" 2>/dev/null; then
      rm -rf "$p"
    fi
  done
  if grep -qxF /var/lib/kubelet "$KX_HOME/preexisting" 2>/dev/null; then rm -f /var/lib/kubelet/device-plugins/kubelet.sock; fi
  if grep -qxF /var/log/containers "$KX_HOME/preexisting" 2>/dev/null; then
    find /var/log/containers -maxdepth 1 -type l -lname "$state/*" -delete 2>/dev/null || true
  fi
  rm -f "$KX_HOME/preexisting"
  rm -rf "$state"
  log "cluster down in $((SECONDS - t0)) s (logs kept in $run)"
}

# ---------------------------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------------------------
status() {
  local c pid any=0
  for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do
    if pid=$(pid_of "$c"); then echo "$c: running (pid $pid)"; any=1; else echo "$c: stopped"; fi
  done
  if ip -br addr show "$BRIDGE" 2>/dev/null | grep -q .; then echo "bridge: $(ip -br addr show "$BRIDGE")"; else echo "bridge: absent"; fi
  echo "kubeconfig: $KUBECONFIG_PATH"
  if [ $any = 1 ] && pid_of kube-apiserver >/dev/null; then
    kctl get nodes -o wide --request-timeout=5s 2>&1 || true
    kctl get pods -A --request-timeout=5s 2>&1 || true
    [ -S "$sock" ] && ctr_ images ls -q 2>/dev/null | grep -v '^sha256:' | sed 's/^/image: /'
  fi
  [ $any = 1 ] || return 3
}

main() {
  local cmd=${1:-}
  shift || true
  case "$cmd" in
    build) build ;;
    up) up ;;
    down) down ;;
    status) status || exit $? ;;
    load) load "$@" ;;
    kubeconfig) echo "$KUBECONFIG_PATH" ;;
    kubectl-path) echo "$bin/kubectl" ;;
    kubectl) exec "$bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@" ;;
    *) die "usage: $0 up|down|status|build|load [ARCHIVE...]|kubeconfig|kubectl-path|kubectl ARGS..." ;;
  esac
}

main "$@"
