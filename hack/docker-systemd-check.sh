#!/usr/bin/env bash
# Checks the step a kind cluster stands on, on this machine: Debian's Docker engine runs a
# privileged container that boots systemd as PID 1 (what a kind node is), and systemd reaches
# `running` with no failed unit. See ../shared/OFFLINE.md (section on kind).
#
#   hack/docker-systemd-check.sh          (make docker-systemd-check)
#
# - The engine: hack/lib/dockerd.sh (Debian's docker.io 20.10, the runc wrapper that drops the
#   capabilities this machine's bounding set lacks, no netfilter rules of its own), stopped and
#   cleaned up on exit, even on failure.
# - The image: a Debian bookworm root from debootstrap (--variant=minbase) with systemd,
#   systemd-sysv and dbus, unchanged otherwise, imported with ENV container=docker and
#   ENTRYPOINT /sbin/init; kept in the engine's data root and rebuilt only when its recipe or
#   the apt sources change.
# - The container: started as kind starts a node (--privileged, --cgroupns=private, seccomp and
#   AppArmor unconfined, tmpfs /tmp and /run, an anonymous volume on /var, --stop-signal
#   SIGRTMIN+3; kind's /lib/modules mount is left out: this machine has no /lib/modules).
# - Passes when `systemctl is-system-running` (polled through `docker exec`, itself privileged)
#   says `running` within 90 s, `systemctl --failed` lists nothing, PID 1 sees its own cgroup
#   namespace, and `docker stop` ends the container through systemd's shutdown within 30 s.
#
# Needs root. Run it under `flock /tmp/kx-cluster.lock` like the cluster scripts.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kubexport
ROOTFS_CACHE=${KX_ROOTFS_CACHE:-$cache/rootfs}
SUITE=bookworm
IMAGE=kubexport.local/systemd-check:$SUITE
# Bump when the image recipe below changes (part of the image's key).
RECIPE=1
RECIPE_LABEL=io.kubexport.base-recipe
CONTAINER=kx-systemd-check

log() { printf '%s systemd-check: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=hack/lib/debian-rootfs.sh
. "$root/hack/lib/debian-rootfs.sh"
# shellcheck source=hack/lib/dockerd.sh
. "$root/hack/lib/dockerd.sh"

t0=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/kx-systemd-check.XXXXXX")
kx_dockerd_before_down() {
  if [ -n "${DOCKER:-}" ] && "$DOCKER" container inspect "$CONTAINER" > /dev/null 2>&1; then
    log "container logs (last 30 lines):"
    "$DOCKER" logs --tail 30 "$CONTAINER" 2>&1 | sed 's/^/  /' >&2 || true
    "$DOCKER" rm -f -v "$CONTAINER" > /dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
kx_dockerd_up

sources=$work/debian.sources
kx_debian_sources "$SUITE" "$sources"
key=$( { echo "recipe=$RECIPE suite=$SUITE"; cat "$sources"; } | sha256sum | cut -c1-16)
if [ "$("$DOCKER" image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$IMAGE" 2>/dev/null || true)" = "$key" ]; then
  log "$IMAGE: up to date"
else
  t=$SECONDS
  log "$IMAGE: debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus $SUITE (~1-2 min)"
  rootfs=$work/rootfs
  kx_debootstrap "$SUITE" "$rootfs" "$ROOTFS_CACHE/debs" "$work/debootstrap.log" --include=systemd,systemd-sysv,dbus
  rm -f "$rootfs/etc/apt/sources.list"
  cp "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
  # The machine's identity is made at boot; the engine provides /dev, resolv.conf and hosts.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log "${rootfs:?}"/dev/*
  : > "$rootfs/etc/machine-id"
  : > "$rootfs/etc/resolv.conf"
  find "$rootfs/proc" "$rootfs/sys" "$rootfs/run" -mindepth 1 -delete 2>/dev/null || true
  tar --sort=name --numeric-owner --xattrs --xattrs-include='security.capability' -C "$rootfs" -cf - . |
    "$DOCKER" import -c 'ENV container=docker' -c 'ENTRYPOINT ["/sbin/init"]' -c "LABEL $RECIPE_LABEL=$key" - "$IMAGE" > /dev/null
  rm -rf "$rootfs"
  log "$IMAGE: made in $((SECONDS - t)) s"
fi

log "starting $CONTAINER (privileged, cgroupns private, systemd as PID 1)"
"$DOCKER" rm -f -v "$CONTAINER" > /dev/null 2>&1 || true
t=$SECONDS
"$DOCKER" run -d --name "$CONTAINER" --hostname "$CONTAINER" \
  --privileged --cgroupns=private --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  --tmpfs /tmp --tmpfs /run --volume /var --stop-signal SIGRTMIN+3 \
  "$IMAGE" > /dev/null

# `systemctl is-system-running` answers "initializing" or "starting" during boot (or fails
# while D-Bus is not up yet), then "running", or "degraded" if a unit failed.
state=
deadline=$((SECONDS + 90))
while :; do
  state=$("$DOCKER" exec "$CONTAINER" systemctl is-system-running 2>&1 || true)
  case "$state" in
    running|degraded|maintenance|stopping|offline) break ;;
  esac
  running=$("$DOCKER" container inspect --format '{{.State.Running}}' "$CONTAINER" 2>/dev/null || echo false)
  [ "$running" = true ] || die "$CONTAINER exited during boot ($("$DOCKER" container inspect --format 'exit {{.State.ExitCode}} {{.State.Error}}' "$CONTAINER"))"
  [ $SECONDS -lt $deadline ] || die "systemd not booted after 90 s: systemctl is-system-running says '$state'; jobs: $("$DOCKER" exec "$CONTAINER" systemctl list-jobs --no-legend 2>&1 | head -10 | tr '\n' ';')"
  sleep 0.5
done
boot=$((SECONDS - t))
failed=$("$DOCKER" exec "$CONTAINER" systemctl --failed --no-legend --plain 2>&1 || true)
units=$("$DOCKER" exec "$CONTAINER" systemctl list-units --no-legend --plain --state=active 2>/dev/null | wc -l)
log "systemctl is-system-running: $state after ${boot} s ($units active units)"
[ -z "$failed" ] || die "failed units: $(tr '\n' ';' <<< "$failed")"
[ "$state" = running ] || die "systemd is $state, not running"

# PID 1 in its own cgroup namespace: its cgroups are the namespace's root.
cg=$("$DOCKER" exec "$CONTAINER" cat /proc/1/cgroup)
grep -q ':name=systemd:/$\|:name=systemd:/init.scope$' <<< "$cg" || die "PID 1's cgroups are not the namespace's root: $(tr '\n' ' ' <<< "$cg")"
init=$("$DOCKER" exec "$CONTAINER" cat /proc/1/comm)
[ "$init" = systemd ] || die "PID 1 is '$init', not systemd"
log "PID 1 is systemd $("$DOCKER" exec "$CONTAINER" systemctl --version | head -1 | cut -d' ' -f2), in a private cgroup namespace"

# kind deletes a node with `docker stop`, SIGRTMIN+3: systemd's orderly shutdown.
t=$SECONDS
"$DOCKER" stop -t 30 "$CONTAINER" > /dev/null
code=$("$DOCKER" container inspect --format '{{.State.ExitCode}}' "$CONTAINER")
stop=$((SECONDS - t))
[ "$stop" -lt 30 ] || die "docker stop took $stop s: systemd did not shut down on SIGRTMIN+3 (killed, exit $code)"
log "docker stop: systemd shut down in $stop s (exit $code)"
"$DOCKER" rm -v "$CONTAINER" > /dev/null
log "passed in $((SECONDS - t0)) s"
