# shellcheck shell=bash
# Debian's Docker engine (docker.io 20.10) for the length of a script, on a machine without a
# registry (see ../shared/OFFLINE.md). Sourced by hack/docker-images.sh and
# hack/docker-systemd-check.sh; the caller defines log() and die().
#
#   kx_dockerd_up     installs docker.io if missing, starts dockerd, exports DOCKER (the client,
#                     Debian's /usr/bin/docker), DOCKER_HOST and DOCKER_BUILDKIT=1, and arranges
#                     for kx_dockerd_down to run when the script exits, even on failure.
#   kx_dockerd_down   stops dockerd and its containerd and undoes what kx_dockerd_up changed
#                     (the EXIT trap; first it calls kx_dockerd_before_down if the caller
#                     defines it, while the daemon still runs).
#
# What the daemon gets, and why:
# - Its own socket, exec root (/run/kx-docker) and data root ($KX_DOCKER_DIR/data, default
#   ~/.cache/kubexport/docker): nothing collides with another engine, and images and the build
#   cache survive for the next run.
# - The runc wrapper hack/lib/runc-capwrap.sh as default runtime: the machine's bounding set
#   lacks CAP_SYS_RESOURCE, which Docker 20.10 gives every privileged container.
# - `--iptables=false`, and a bridge of its own ($KX_DOCKER_BRIDGE, $KX_DOCKER_CIDR) that this
#   file creates: dockerd then writes no netfilter rule and does not set the FORWARD policy to
#   DROP (which breaks the local cluster's pod traffic). Builds still reach the Go module proxy
#   and the Debian mirror through three rules this file adds, each marked with the comment
#   $kx_dockerd_comment, and removes again by that exact specification; net.ipv4.ip_forward is
#   set to 1 and restored.
# - Its own cgroup parent ($kx_dockerd_cgroup) for containers, so kx_dockerd_down can kill what a
#   failed check left and remove the cgroups (and likewise for interrupted build steps, which
#   Docker 20.10 puts under docker/buildkit, when no other dockerd runs).
# - BuildKit (DOCKER_BUILDKIT=1): the Dockerfiles use a cache mount.
# The daemon is started in its own session and stopped by PID (SIGTERM, SIGKILL after 30 s).

KX_DOCKER_DIR=${KX_DOCKER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/docker}
KX_DOCKER_BRIDGE=${KX_DOCKER_BRIDGE:-kxdocker0}
KX_DOCKER_CIDR=${KX_DOCKER_CIDR:-172.31.250.1/24}
kx_dockerd_run=/run/kx-docker
kx_dockerd_comment=kubexport-dockerd
kx_dockerd_cgroup=kx-docker
kx_dockerd_libdir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# kx_dockerd_rules: the netfilter rules kx_dockerd_up adds, one per line (iptables arguments
# after the table and chain: "TABLE CHAIN SPEC...").
kx_dockerd_rules() {
  local net
  net=$(kx_dockerd_subnet "$KX_DOCKER_CIDR")
  echo "nat POSTROUTING -s $net ! -o $KX_DOCKER_BRIDGE -j MASQUERADE -m comment --comment $kx_dockerd_comment"
  echo "filter FORWARD -i $KX_DOCKER_BRIDGE ! -o $KX_DOCKER_BRIDGE -j ACCEPT -m comment --comment $kx_dockerd_comment"
  echo "filter FORWARD -o $KX_DOCKER_BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment $kx_dockerd_comment"
}

# kx_dockerd_subnet A.B.C.D/N: the network address of an IPv4 CIDR ("172.31.250.0/24").
kx_dockerd_subnet() {
  local ip=${1%/*} bits=${1#*/} a b c d n mask
  IFS=. read -r a b c d <<< "$ip"
  n=$(( (a << 24) | (b << 16) | (c << 8) | d ))
  mask=$(( bits == 0 ? 0 : (0xffffffff << (32 - bits)) & 0xffffffff ))
  n=$(( n & mask ))
  echo "$(( n >> 24 & 255 )).$(( n >> 16 & 255 )).$(( n >> 8 & 255 )).$(( n & 255 ))/$bits"
}

kx_dockerd_install() {
  if [ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] && [ -x /usr/sbin/runc ]; then return; fi
  log "installing Debian's docker.io (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
    docker.io iptables > /dev/null || die "apt-get install docker.io failed"
}

kx_dockerd_up() {
  [ "$(id -u)" = 0 ] || die "dockerd needs root"
  kx_dockerd_install
  export DOCKER=/usr/bin/docker DOCKER_HOST=unix://$kx_dockerd_run/docker.sock DOCKER_BUILDKIT=1
  mkdir -p "$KX_DOCKER_DIR/data" "$kx_dockerd_run"
  local pidfile=$kx_dockerd_run/dockerd.pid pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/dockerd ]; then
      die "a dockerd started by an earlier run is still running (pid $pid, $DOCKER_HOST); stop it first"
    fi
    rm -f "$pidfile"
  fi
  trap kx_dockerd_down EXIT

  cat > "$KX_DOCKER_DIR/daemon.json" <<EOF
{
  "data-root": "$KX_DOCKER_DIR/data",
  "exec-root": "$kx_dockerd_run",
  "pidfile": "$pidfile",
  "hosts": ["$DOCKER_HOST"],
  "storage-driver": "overlay2",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "cgroup-parent": "$kx_dockerd_cgroup",
  "iptables": false,
  "ip-masq": false,
  "bridge": "$KX_DOCKER_BRIDGE",
  "runtimes": {"kx-runc": {"path": "$kx_dockerd_libdir/runc-capwrap.sh"}},
  "default-runtime": "kx-runc",
  "features": {"buildkit": true}
}
EOF
  # The bridge, forwarding and the rules (before dockerd: it needs the bridge to exist).
  # (A run that was killed outright left the original value here: keep it.)
  [ -f "$kx_dockerd_run/ip_forward.orig" ] || sysctl -n net.ipv4.ip_forward > "$kx_dockerd_run/ip_forward.orig"
  if ! ip link show "$KX_DOCKER_BRIDGE" > /dev/null 2>&1; then
    ip link add "$KX_DOCKER_BRIDGE" type bridge
    ip addr add "$KX_DOCKER_CIDR" dev "$KX_DOCKER_BRIDGE"
  fi
  ip link set "$KX_DOCKER_BRIDGE" up
  sysctl -qw net.ipv4.ip_forward=1
  local table chain spec
  while read -r table chain spec; do
    # shellcheck disable=SC2086  # spec is a list of arguments
    iptables -w -t "$table" -C "$chain" $spec 2>/dev/null || iptables -w -t "$table" -I "$chain" $spec
  done < <(kx_dockerd_rules)

  log "starting dockerd ($(/usr/sbin/dockerd --version | cut -d, -f1), data root $KX_DOCKER_DIR/data)"
  setsid /usr/sbin/dockerd --config-file "$KX_DOCKER_DIR/daemon.json" > "$KX_DOCKER_DIR/dockerd.log" 2>&1 < /dev/null &
  local deadline=$((SECONDS + 60))
  until "$DOCKER" version > /dev/null 2>&1; do
    [ -d "/proc/$!" ] || die "dockerd exited; see $KX_DOCKER_DIR/dockerd.log: $(tail -5 "$KX_DOCKER_DIR/dockerd.log" | tr '\n' ' ')"
    [ $SECONDS -lt $deadline ] || die "dockerd not answering on $DOCKER_HOST after 60 s; see $KX_DOCKER_DIR/dockerd.log"
    sleep 0.5
  done
  log "dockerd ready: $("$DOCKER" info --format '{{.ServerVersion}}, {{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}, runtime {{.DefaultRuntime}}')"
}

# kx_dockerd_cgroup_procs DIR...: the PIDs in the cgroups /sys/fs/cgroup/<controller>/DIR/**.
kx_dockerd_cgroup_procs() {
  local c
  for c in "$@"; do
    find /sys/fs/cgroup/*/"$c" -name cgroup.procs -exec cat {} + 2> /dev/null
  done | sort -u
}

kx_dockerd_down() {
  local rc=$? pidfile=$kx_dockerd_run/dockerd.pid pid i p
  trap - EXIT
  # Every step runs even if an earlier one fails.
  set +e
  # The caller's own cleanup first (it may still need the daemon).
  if declare -F kx_dockerd_before_down > /dev/null; then kx_dockerd_before_down || rc=1; fi
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/dockerd ]; then
      # Containers left by a failed check, then the daemon.
      local ids
      ids=$("$DOCKER" ps -aq 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$ids" ] || "$DOCKER" rm -f $ids > /dev/null 2>&1 || true
      log "stopping dockerd (pid $pid)"
      kill -TERM "$pid"
      for ((i = 0; i < 60; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
      if [ -d "/proc/$pid" ]; then
        log "dockerd still running after 30 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  fi
  # Its containerd (dockerd starts one of its own under the exec root, and normally stops it).
  local cpid
  cpid=$(cat "$kx_dockerd_run/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$cpid" ] && [ "$(readlink "/proc/$cpid/exe" 2>/dev/null)" = /usr/bin/containerd ]; then
    log "stopping dockerd's containerd (pid $cpid)"
    kill -KILL "$cpid" 2>/dev/null || true
  fi
  # What is left in its cgroups (cgroup v1, cgroupfs driver): containers under
  # $kx_dockerd_cgroup, build steps under docker/buildkit (Docker 20.10's BuildKit runs RUN steps
  # with runc itself, there whatever the cgroup parent, and they can outlive an interrupted
  # daemon). Build steps are this engine's only if no other dockerd runs.
  local pids cgdirs=("$kx_dockerd_cgroup") other=
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/exe" 2>/dev/null)" in */dockerd) other=${p#/proc/} ;; esac
  done
  if [ -z "$other" ]; then cgdirs+=(docker/buildkit); else log "another dockerd runs (pid $other): build steps left alone"; fi
  pids=$(kx_dockerd_cgroup_procs "${cgdirs[@]}")
  if [ -n "$pids" ]; then
    log "killing what is left of its containers and build steps: pids $(tr '\n' ' ' <<< "$pids")"
    # shellcheck disable=SC2086
    kill -KILL $pids 2> /dev/null || true
    for ((i = 0; i < 20; i++)); do
      [ -z "$(kx_dockerd_cgroup_procs "${cgdirs[@]}")" ] && break
      sleep 0.25
    done
  fi
  local table chain spec
  while read -r table chain spec; do
    # shellcheck disable=SC2086
    while iptables -w -t "$table" -C "$chain" $spec 2>/dev/null; do iptables -w -t "$table" -D "$chain" $spec; done
  done < <(kx_dockerd_rules)
  if [ -f "$kx_dockerd_run/ip_forward.orig" ]; then
    sysctl -qw net.ipv4.ip_forward="$(cat "$kx_dockerd_run/ip_forward.orig")"
    rm -f "$kx_dockerd_run/ip_forward.orig"
  fi
  ip link delete "$KX_DOCKER_BRIDGE" 2>/dev/null || true
  # Mounts dockerd or a killed container left (overlay2 layers, netns, shm), innermost first.
  local m
  awk -v a="$kx_dockerd_run" -v b="$KX_DOCKER_DIR/data" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/self/mounts |
    sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  if ! grep -q " $kx_dockerd_run" /proc/self/mounts; then rm -rf "$kx_dockerd_run"; fi
  # Its cgroups, innermost first (rmdir fails, harmlessly, on any still in use).
  local c d
  for c in "${cgdirs[@]}"; do
    for d in /sys/fs/cgroup/*/"$c"; do
      if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2> /dev/null || true; fi
    done
  done
  [ -n "$other" ] || rmdir /sys/fs/cgroup/*/docker 2> /dev/null || true
  log "dockerd stopped; its bridge, netfilter rules and mounts removed"
  exit "$rc"
}
