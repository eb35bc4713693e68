# shellcheck shell=bash
# Helpers every part of hack/local-cluster.sh uses: logging, running and stopping the cluster's
# processes by PID, waiting, writing configuration files. Sourced by hack/local-cluster.sh after
# it has set the paths (KX_HOME, run, state, bin, sock, KUBECONFIG_PATH).

log() { printf '%s local-cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (containerd, kubelet and iptables need it)"; }

kctl() { "$bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
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

# put FILE: write stdin to FILE only when the content differs (kube-proxy exits when its
# configuration file changes, so `up` on a running cluster must not touch it).
put() {
  local tmp="$1.tmp.$$"
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

