# shellcheck shell=bash
# The cluster's lifecycle: up (start every component, load the images), down (stop them and
# restore the machine: processes, mounts, network (network.sh), cgroups, host paths, state),
# status, and loading image archives into containerd.

# Host paths kubelet, CNI and containerd create whatever their configuration says: `down`
# removes the ones that did not exist before `up`.
host_paths=(/var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd)
# The processes of the cluster, in start order.
components=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns)

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

# unmount_state: unmount everything under the cluster's directory (pod volumes, netns, overlay
# snapshots), deepest first; dies if something stays mounted, so no state is deleted under a mount.
unmount_state() {
  local m
  for m in $(awk -v d="$KX_HOME/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
  done
  if awk -v d="$KX_HOME/" 'index($2, d) == 1' /proc/self/mounts | grep -q .; then
    die "mounts remain under $KX_HOME; not deleting its state: $(awk -v d="$KX_HOME/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | head -3 | tr '\n' ' ')"
  fi
}

# start_apiserver starts kube-apiserver (its audit log of Job creations in $run/audit.log) and
# waits until it is ready.
start_apiserver() {
  write_audit_policy
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port=$API_PORT \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP --allow-privileged=true --profiling=false \
    --audit-policy-file="$KX_HOME/audit-policy.yaml" --audit-log-path="$run/audit.log" --audit-log-mode=blocking
  wait_for "kube-apiserver ready" 90 kctl get --raw /readyz
}

# start_kubelet starts the kubelet.
start_kubelet() {
  start kubelet "$bin/kubelet" --config="$KX_HOME/kubelet.yaml" --kubeconfig="$KX_HOME/kubelet.kubeconfig" \
    --root-dir="$state/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
}

# restart NAME: stop one component and start it again with the same configuration, as a crash
# and a supervisor's restart would (the fault suite's API server and kubelet restarts). Only the
# components whose restart leaves the others running: kube-apiserver and kubelet.
restart() {
  need_root
  local name=${1:-} t0=$SECONDS
  case "$name" in
    kube-apiserver) pid_of kube-apiserver >/dev/null || die "kube-apiserver is not running"
      stop kube-apiserver; start_apiserver ;;
    kubelet) pid_of kubelet >/dev/null || die "kubelet is not running"
      stop kubelet; start_kubelet
      wait_for "node $NODE_NAME Ready" 120 kctl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s ;;
    *) die "usage: restart kube-apiserver|kubelet" ;;
  esac
  log "$name restarted in $((SECONDS - t0)) s"
}

up() {
  need_root
  local t0=$SECONDS
  ensure_packages
  build
  pause_archive
  local c p fresh=1
  if ! pid_of etcd >/dev/null; then
    for p in 2379 2380 $API_PORT 10250 10257 10259 10248 10249 10256; do
      port_free "$p" || die "TCP port $p is already in use (another cluster or etcd?); see: ss -ltnp 'sport = :$p'"
    done
  fi
  # What the machine has before the cluster touches it, so `down` removes only what the cluster
  # added. Recorded afresh unless a previous run left something behind (then its record stays).
  local running=0
  for c in "${components[@]}"; do if pid_of "$c" >/dev/null; then running=1; fi; done
  # State with no process behind it is what an interrupted run left (the machine rebooted, the
  # session was killed before `down`): its etcd would bring back that run's objects, so start
  # from an empty state instead.
  if [ $running = 0 ] && [ -d "$state" ]; then
    log "removing the state an interrupted run left in $state"
    unmount_state
    rm -rf "$state"
  fi
  [ $running = 0 ] || fresh=0
  mkdir -p "$run" "$state"
  if [ -f "$KX_HOME/bridge.created" ]; then fresh=0; fi
  if [ $fresh = 1 ]; then rm -rf "$KX_HOME/preexisting" "$netfilter_dir"; fi
  # Host paths kubelet/CNI/containerd use whatever their configuration: remember which existed.
  [ -f "$KX_HOME/preexisting" ] || for p in "${host_paths[@]}" /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -e "$p" ] && echo "$p"
  done > "$KX_HOME/preexisting"
  # iptables and nftables (network.sh).
  netfilter_snapshot
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
  # A fresh API server starts a fresh audit log (a restart appends to it).
  pid_of kube-apiserver >/dev/null || rm -f "$run/audit.log"
  start_apiserver
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$KX_HOME/controller-manager.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false \
    --use-service-account-credentials --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$KX_HOME/scheduler.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false --profiling=false
  apply_system_objects
  start_kubelet
  start kube-proxy "$bin/kube-proxy" --config="$KX_HOME/kube-proxy.yaml"
  start coredns "$bin/coredns" -conf "$KX_HOME/Corefile"
  load
  wait_for "node $NODE_NAME Ready" 120 kctl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
  wait_for "ServiceAccount default/default" 60 kctl get serviceaccount default -n default
  log "cluster up in $((SECONDS - t0)) s"
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
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

  unmount_state
  # iptables, nftables, bridge, route, conntrack, sysctls (network.sh). After the unmounts: a
  # pod's network namespace is mounted under the state directory.
  network_down
  # cgroups and host paths: only with the record `up` made of what existed before (a second
  # `down` must not take another kubelet's /var/lib/kubelet for the cluster's).
  if [ -f "$KX_HOME/preexisting" ]; then
    # cgroups the kubelet made (cgroupfs driver): kubepods and below, in every hierarchy.
    for p in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
      [ -d "$p" ] || continue
      grep -qxF "$p" "$KX_HOME/preexisting" && continue
      find "$p" -depth -type d -exec rmdir {} + 2>/dev/null || true
      if [ -d "$p" ]; then log "cgroup $p remains (processes still in it?)"; fi
    done
    for p in "${host_paths[@]}"; do
      if [ -e "$p" ] && ! grep -qxF "$p" "$KX_HOME/preexisting"; then
        rm -rf "$p"
      fi
    done
    if grep -qxF /var/lib/kubelet "$KX_HOME/preexisting"; then rm -f /var/lib/kubelet/device-plugins/kubelet.sock; fi
    if grep -qxF /var/log/containers "$KX_HOME/preexisting"; then
      find /var/log/containers -maxdepth 1 -type l -lname "$state/*" -delete 2>/dev/null || true
    fi
    rm -f "$KX_HOME/preexisting"
  fi
  rm -rf "$state"
  log "cluster down in $((SECONDS - t0)) s (logs kept in $run)"
}

status() {
  local c pid any=0
  for c in "${components[@]}"; do
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

