#!/usr/bin/env bash
# Checks that the local cluster's `down` removes from iptables/nftables exactly what the cluster
# added (see network.sh): chains and rules of other programs stay, whether they existed before
# `up` or were made while the cluster ran. Plays kubelet, kube-proxy, the CNI plugins, podman and
# Docker with the rules they write, then runs the real network_up/network_down.
#
# Must run in a network namespace of its own: `unshare --net hack/local-cluster/netfilter-test.sh`
# (netfilter_test.go does that). Needs root, iptables, ip6tables, iproute2.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] \
  || { echo "netfilter-test: run me in a network namespace of my own (unshare --net)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kx-netfilter-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
KX_HOME=$tmp/home
run=$KX_HOME/run
mkdir -p "$run"
BRIDGE=kxtest0
BRIDGE_CIDR=10.244.0.1/24
# shellcheck disable=SC2034  # read by network.sh
SERVICE_CIDR=10.96.0.0/24 NODE_IP=${BRIDGE_CIDR%/*} POD_CIDR=10.244.0.0/24
log() { echo "netfilter-test: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
fail() { log "FAIL: $*"; exit 1; }
# Kernel settings are not part of this test (some are not per network namespace).
sysctl() { :; }
conntrack() { :; }
# shellcheck source-path=SCRIPTDIR source=network.sh
source "$here/network.sh"

# The rulesets without counters and comments, IPv4 and IPv6. A table holding only built-in
# chains with an ACCEPT policy and no rule is left out: the kernel creates a table on first use
# and never removes it, and such a table filters nothing, as if it were absent (on a fresh
# machine the cluster is the first to use ip6tables' tables).
rulesets() {
  local ipt
  for ipt in iptables ip6tables; do
    echo "## $ipt"
    "$ipt-save" | sed -e '/^#/d' -e 's/ \[[0-9]*:[0-9]*\]$//' | awk '
      /^\*/ { block = $0 "\n"; used = 0; next }
      /^COMMIT$/ { if (used) printf "%sCOMMIT\n", block; block = ""; next }
      /^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT$/ { block = block $0 "\n"; next }
      { block = block $0 "\n"; used = 1 }'
  done
  if iptables --version | grep -q nf_tables && command -v nft >/dev/null; then
    echo "## nft"
    nft list tables
  fi
}
ipt() { iptables -w "$@"; }
ip6t() { ip6tables -w "$@"; }
podman_comment() { echo "name: \"podman\" id: \"$1\""; }

ip link set lo up

# Before `up`: another cluster's leftovers and podman's network.
ipt -N KUBE-FOREIGN-TEST
ipt -A FORWARD -j KUBE-FOREIGN-TEST
ipt -t nat -N CNI-FOREIGN-TEST
ipt -t nat -A POSTROUTING -s 10.88.0.2/32 -m comment --comment "$(podman_comment aaa)" -j CNI-FOREIGN-TEST
ipt -t mangle -N KUBE-KUBELET-CANARY
ipt -t nat -N KUBE-SERVICES
ipt -t nat -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES

netfilter_snapshot

# While the cluster runs, others add theirs: Docker's chain, a podman container's masquerading.
ipt -N DOCKER-USER
ipt -I FORWARD -j DOCKER-USER
ipt -t nat -N CNI-0123456789abcdef01234567
ipt -t nat -A CNI-0123456789abcdef01234567 -d 10.88.0.0/16 -m comment --comment "$(podman_comment bbb)" -j ACCEPT
ipt -t nat -A POSTROUTING -s 10.88.0.3/32 -m comment --comment "$(podman_comment bbb)" -j CNI-0123456789abcdef01234567
rulesets > "$tmp/expected"

# The cluster: this script's isolation chain and bridge, then what kubelet, kube-proxy and the
# CNI bridge plugin write (names and shapes as in Kubernetes 1.32 and CNI plugins 1.1).
network_up
ip link show "$BRIDGE" >/dev/null || fail "network_up made no bridge"
ipt -N KUBE-FIREWALL
ipt -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
ipt -I INPUT -j KUBE-FIREWALL
ipt -I OUTPUT -j KUBE-FIREWALL
ipt -t mangle -N KUBE-KUBELET-CANARY 2>/dev/null || true
ipt -t nat -N KUBE-KUBELET-CANARY
ip6t -t mangle -N KUBE-IPTABLES-HINT
ip6t -t mangle -N KUBE-KUBELET-CANARY
ip6t -N KUBE-FIREWALL
ip6t -I INPUT -j KUBE-FIREWALL
ipt -t nat -N KUBE-SVC-NPX46M4PTMTKRN6Y
ipt -t nat -N KUBE-SEP-VPILYQBSPPXYB66K
ipt -t nat -N KUBE-MARK-MASQ
ipt -t nat -N KUBE-POSTROUTING
ipt -t nat -N KUBE-NODEPORTS
ipt -t nat -A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
ipt -t nat -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
ipt -t nat -A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns has no endpoints" -m udp --dport 53 -j RETURN
ipt -t nat -A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 10.244.0.1:6443" -j KUBE-SEP-VPILYQBSPPXYB66K
ipt -t nat -A KUBE-SEP-VPILYQBSPPXYB66K -s 10.244.0.1/32 -m comment --comment "default/kubernetes:https" -j KUBE-MARK-MASQ
ipt -t nat -A KUBE-SEP-VPILYQBSPPXYB66K -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 10.244.0.1:6443
ipt -t nat -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
ipt -t nat -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
ipt -t nat -I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
ipt -t nat -I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
ipt -N KUBE-FORWARD
ipt -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
ipt -I FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
ipt -t nat -N CNI-fedcba9876543210fedcba98
ipt -t nat -A CNI-fedcba9876543210fedcba98 -d 10.244.0.0/24 -m comment --comment "name: \"$CNI_NETWORK\" id: \"ccc\"" -j ACCEPT
ipt -t nat -A POSTROUTING -s 10.244.0.7/32 -m comment --comment "name: \"$CNI_NETWORK\" id: \"ccc\"" -j CNI-fedcba9876543210fedcba98

network_down
rulesets > "$tmp/after"
if ! diff -u "$tmp/expected" "$tmp/after" >&2; then fail "down left the rulesets different from before up plus the others' changes (diff above: - expected, + after)"; fi
! ip link show "$BRIDGE" >/dev/null 2>&1 || fail "down left the bridge $BRIDGE"
log "ok: down removed the cluster's chains and rules and kept everyone else's"

# A second down changes nothing (no snapshot left: only $FW_CHAIN would go).
network_down 2>/dev/null
rulesets > "$tmp/again"
diff -u "$tmp/expected" "$tmp/again" >&2 || fail "a second down changed the rulesets"

# Without a snapshot (the state directory lost), only the cluster's own chain goes.
network_up
rm -rf "$netfilter_dir"
ipt -t nat -N KUBE-SVC-NEWWITHOUTSNAPSHOT
network_down 2>/dev/null
! iptables-save | grep -q "$FW_CHAIN" || fail "down without a snapshot left $FW_CHAIN"
iptables-save -t nat | grep -q '^:KUBE-SVC-NEWWITHOUTSNAPSHOT' || fail "down without a snapshot removed a KUBE-* chain it cannot attribute"
log "ok: without a snapshot down removed only $FW_CHAIN"
