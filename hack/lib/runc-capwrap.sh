#!/usr/bin/env bash
# A runc wrapper for machines whose capability bounding set lacks capabilities that a
# privileged container is given (see ../shared/OFFLINE.md: the build machines lack
# CAP_SYS_RESOURCE). Docker 20.10 grants a privileged container every capability it knows, and
# runc then fails with "unable to apply caps: operation not permitted". This wrapper removes,
# from the bundle's config.json on `create`/`run` and from the `--process` file on `exec`, every
# capability missing from its own bounding set, then execs the real runc with the same
# arguments. On a machine with a full bounding set it changes nothing.
#
# Registered as dockerd's default runtime by hack/lib/dockerd.sh (daemon.json "runtimes");
# a kind node's containerd can use it the same way (runc options BinaryName).
# Environment: KX_RUNC (the real runc; default /usr/sbin/runc).
set -euo pipefail
real=${KX_RUNC:-/usr/sbin/runc}

# Capability names by number (linux/capability.h), 0..40.
caps=(CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID
  CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE CAP_NET_BROADCAST CAP_NET_ADMIN
  CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO CAP_SYS_CHROOT CAP_SYS_PTRACE
  CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE CAP_SYS_RESOURCE CAP_SYS_TIME
  CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE CAP_AUDIT_WRITE CAP_AUDIT_CONTROL CAP_SETFCAP
  CAP_MAC_OVERRIDE CAP_MAC_ADMIN CAP_SYSLOG CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_AUDIT_READ
  CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE)

bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
sed_args=()
for i in "${!caps[@]}"; do
  if (( (16#$bnd >> i & 1) == 0 )); then
    c=${caps[$i]}
    # The JSON runc reads is compact (json.Marshal): "CAP_X" sits in an array of strings.
    sed_args+=(-e "s/\"$c\",//g" -e "s/,\"$c\"//g" -e "s/\[\"$c\"\]/[]/g")
  fi
done

if [ ${#sed_args[@]} -gt 0 ]; then
  # The subcommand and its --bundle/--process argument (global options come first).
  cmd='' bundle=. process=''
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do
    a=${args[$i]}
    if [ -z "$cmd" ]; then
      case "$a" in
        --root|--log|--log-format|--criu|--rootless) i=$((i + 1)) ;;
        -*) ;;
        *) cmd=$a ;;
      esac
      continue
    fi
    case "$a" in
      --bundle|-b) bundle=${args[$((i + 1))]} ;;
      --bundle=*) bundle=${a#--bundle=} ;;
      --process|-p) process=${args[$((i + 1))]} ;;
      --process=*) process=${a#--process=} ;;
    esac
  done
  case "$cmd" in
    create|run) file=$bundle/config.json ;;
    exec) file=$process ;;
    *) file= ;;
  esac
  if [ -n "$file" ] && [ -f "$file" ]; then sed -i "${sed_args[@]}" "$file"; fi
fi
exec "$real" "$@"
