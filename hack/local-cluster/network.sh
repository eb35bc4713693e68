# shellcheck shell=bash
# The cluster's network: the pod bridge, the route of the service range, the isolation chain,
# sysctls, and the netfilter snapshot that lets `down` remove exactly what the cluster added.
#
# What `down` removes from iptables (IPv4 and IPv6), and why that is safe on a machine that runs
# other containers or clusters:
#
# `up` saves `iptables-save`, `ip6tables-save` and `nft list tables` to $KX_HOME/netfilter before
# any component starts (kept until a `down` succeeds, so a second `up` or a crash does not move
# it). At `down`, once every component has stopped, a chain in the current ruleset belongs to the
# cluster when
#   - it is $FW_CHAIN (KX-ISOLATE), this script's own chain; or
#   - it is absent from the snapshot and
#     - its name starts with KUBE-: kubelet's and kube-proxy's chains. Only this cluster's
#       kubelet and kube-proxy can have made them in the host's network namespace during the run:
#       `up` refuses to start while anything holds kubelet's or kube-proxy's ports
#       (10248-10250, 10256), and a kubelet or kube-proxy started later cannot bind them (kind
#       and other container-based clusters keep their chains in their nodes' namespaces); or
#     - its name starts with CNI- and a rule in it, or a rule jumping to it, carries the comment
#       the CNI plugins put on every rule they write: `name: "<network>" id: "<container>"`
#       with this cluster's network ($CNI_NETWORK). podman's CNI-* chains, made while the
#       cluster ran, name their own network and stay.
# A rule in a chain that stays is the cluster's when it is not in the snapshot (counting
# duplicates) and it jumps (-j/-g) to one of the cluster's chains or to any KUBE-* chain, or it
# sits in a KUBE-* chain, or it carries this cluster's CNI comment: for the same reasons, nobody
# else can have written it. (A KUBE-* chain that existed before `up`, e.g. a dead cluster's
# leftover KUBE-SERVICES, stays, without the rules this cluster's kube-proxy added to it.)
# The cleanup deletes those rules, then flushes and deletes the cluster's chains: one
# `iptables-restore --noflush` transaction per table. Everything else stays as it was: chains
# and rules from before `up`, and what other programs made meanwhile (DOCKER-*, podman's
# CNI-*). `kube-proxy --cleanup` is not used: it deletes kube-proxy's chains and nftables tables
# whoever made them. nftables tables that did not exist before `up` and are empty again (the
# `ip filter`/`ip nat`/... tables iptables-nft creates on first use) are deleted. hack/local-
# cluster/netfilter-test.sh checks all this in a network namespace of its own.
# # Without a snapshot (the state directory was removed), only $FW_CHAIN and the rules
# jumping to it go, and the KUBE-*/CNI-* chains left are listed for a human to judge.

FW_CHAIN=KX-ISOLATE
CNI_NETWORK=kubexport-local
netfilter_dir="$KX_HOME/netfilter"

sysctls=(net.ipv4.ip_forward kernel.panic kernel.panic_on_oops vm.overcommit_memory
  net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait)

# netfilter_snapshot: record the rulesets before the cluster touches them (once per up/down).
netfilter_snapshot() {
  [ -d "$netfilter_dir" ] && return
  local tmp="$netfilter_dir.tmp" ipt
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for ipt in iptables ip6tables; do
    if command -v "$ipt-save" >/dev/null; then "$ipt-save" > "$tmp/$ipt.orig" || die "$ipt-save failed"; fi
  done
  if command -v nft >/dev/null; then nft list tables > "$tmp/nft-tables.orig" || die "nft list tables failed"; fi
  mv "$tmp" "$netfilter_dir"
}

# netfilter_plan ORIG CURRENT: the iptables-restore --noflush input that removes the cluster's
# rules and chains from CURRENT (an iptables-save output), given ORIG (the snapshot; an empty
# file when there is none, with NO_SNAPSHOT=1). See the top of this file for the rules.
netfilter_plan() {
  awk -v fw="$FW_CHAIN" -v net="$CNI_NETWORK" -v nosnap="${NO_SNAPSHOT:-0}" -v orig="$1" '
    # target: the chain a rule jumps or goes to ("" if none); quoted strings (comments) skipped.
    function target(line,   s, n, i, f) {
      s = line
      gsub(/"([^"\\]|\\.)*"/, "\"\"", s)
      n = split(s, f, " ")
      for (i = 1; i < n; i++) if (f[i] == "-j" || f[i] == "-g") return f[i + 1]
      return ""
    }
    FILENAME == orig {
      if (/^\*/) t = substr($1, 2); else if (/^:/) had[t, substr($1, 2)] = 1; else if (/^-A /) was[t, $0]++
      next
    }
    /^\*/ { t = substr($1, 2); tables[++nt] = t; next }
    /^:/ { chains[t] = chains[t] " " substr($1, 2); next }
    /^-A / {
      rules[t, ++nr[t]] = $0
      ours = index($0, "name: \\\"" net "\\\"") > 0
      if (ours) { tagged[t, $2] = 1; tagged[t, target($0)] = 1 }
      # new: not in the snapshot, duplicates counted; a rule of the cluster by its shape.
      isnew[t, nr[t]] = !nosnap && ++seen[t, $0] > was[t, $0]
      shaped[t, nr[t]] = ours || $2 ~ /^KUBE-/ || target($0) ~ /^KUBE-/
    }
    END {
      for (i = 1; i <= nt; i++) {
        t = tables[i]; mine = ""; plan = ""
        n = split(chains[t], cs, " ")
        for (j = 1; j <= n; j++) {
          c = cs[j]
          if (c == fw || (!nosnap && !((t, c) in had) && (c ~ /^KUBE-/ || (c ~ /^CNI-/ && (t, c) in tagged)))) {
            own[t, c] = 1; mine = mine " " c
          }
        }
        for (k = 1; k <= nr[t]; k++) {
          split(rules[t, k], f, " ")
          if ((t, f[2]) in own) continue
          if (((t, target(rules[t, k])) in own) || (isnew[t, k] && shaped[t, k])) plan = plan "-D" substr(rules[t, k], 3) "\n"
        }
        n = split(mine, cs, " ")
        for (j = 1; j <= n; j++) plan = plan "-F " cs[j] "\n"
        for (j = 1; j <= n; j++) plan = plan "-X " cs[j] "\n"
        if (plan != "") printf "*%s\n%sCOMMIT\n", t, plan
      }
    }' "$1" "$2"
}

# netfilter_cleanup: remove what the cluster added to iptables and nftables (see the top).
netfilter_cleanup() {
  local ipt orig plan nosnap=0
  [ -d "$netfilter_dir" ] || { nosnap=1; log "no netfilter snapshot in $netfilter_dir: removing only $FW_CHAIN"; }
  for ipt in iptables ip6tables; do
    command -v "$ipt-save" >/dev/null || continue
    orig="$netfilter_dir/$ipt.orig"
    [ -f "$orig" ] || { orig=/dev/null; nosnap=1; }
    "$ipt-save" > "$run/$ipt.before-cleanup" || die "$ipt-save failed"
    plan=$(NO_SNAPSHOT=$nosnap netfilter_plan "$orig" "$run/$ipt.before-cleanup")
    [ -n "$plan" ] || continue
    printf '%s\n' "$plan" > "$run/$ipt.cleanup"
    log "$ipt: removing $(grep -c '^-X' "$run/$ipt.cleanup") chains and $(grep -c '^-D' "$run/$ipt.cleanup") rules of the cluster (plan: $run/$ipt.cleanup)"
    "$ipt-restore" -w 10 --noflush < "$run/$ipt.cleanup" || die "$ipt-restore of $run/$ipt.cleanup failed"
    if [ $nosnap = 1 ]; then
      local left
      left=$("$ipt-save" | awk '/^:(KUBE-|CNI-)/ {print substr($1, 2)}' | tr '\n' ' ')
      [ -z "$left" ] || log "$ipt: left alone (no snapshot to tell whose they are): $left"
    fi
  done
  if command -v nft >/dev/null && [ -f "$netfilter_dir/nft-tables.orig" ]; then
    local fam name
    nft list tables 2>/dev/null | while read -r _ fam name; do
      grep -qxF "table $fam $name" "$netfilter_dir/nft-tables.orig" && continue
      case "$fam" in ip) ipt=iptables ;; ip6) ipt=ip6tables ;; *) continue ;; esac
      # Empty: only built-in chains with ACCEPT policies left.
      if ! { $ipt -t "$name" -S 2>/dev/null || echo busy; } | grep -qvE '^-P [A-Z]+ ACCEPT$'; then
        nft delete table "$fam" "$name" || log "cannot delete nftables table $fam $name"
      fi
    done
  fi
  rm -rf "$netfilter_dir"
}

# network_up: the bridge (node IP), the service route, the isolation chain, sysctls.
network_up() {
  if [ ! -s "$KX_HOME/sysctl.orig" ]; then
    local k v
    for k in "${sysctls[@]}"; do
      v=$(sysctl -n "$k" 2>/dev/null) && echo "$k=$v"
    done > "$KX_HOME/sysctl.orig.tmp"
    mv "$KX_HOME/sysctl.orig.tmp" "$KX_HOME/sysctl.orig"
  fi
  # The bridge is the cluster's only when this script made it ($KX_HOME/bridge.created).
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE $BRIDGE_CIDR"
    ip link add "$BRIDGE" type bridge || die "ip link add $BRIDGE type bridge failed"
    echo "$BRIDGE" > "$KX_HOME/bridge.created"
  elif [ "$(cat "$KX_HOME/bridge.created" 2>/dev/null)" != "$BRIDGE" ]; then
    die "interface $BRIDGE exists and this script did not create it: choose another name with KX_BRIDGE"
  fi
  local net
  for net in "$POD_CIDR" "$SERVICE_CIDR"; do
    if ip -4 route show exact "$net" | grep -v "dev $BRIDGE " | grep -q .; then
      die "$net is already routed on this machine ($(ip -4 route show exact "$net" | head -1)): choose another range with KX_BRIDGE_CIDR/KX_SERVICE_CIDR"
    fi
  done
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

# network_down: iptables/nftables (above), the bridge and its route, conntrack entries of the
# cluster's ranges, sysctls. Runs after every component has stopped.
network_down() {
  netfilter_cleanup
  if [ "$(cat "$KX_HOME/bridge.created" 2>/dev/null)" = "$BRIDGE" ]; then
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
      log "deleting bridge $BRIDGE"
      ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
      ip link del "$BRIDGE"
    fi
    # Connection-tracking entries of the pod and service networks.
    local net dir
    for net in "$POD_CIDR" "$SERVICE_CIDR"; do
      for dir in -s -d; do conntrack -D "$dir" "$net" >/dev/null 2>&1 || true; done
    done
    rm -f "$KX_HOME/bridge.created"
  fi
  if [ -s "$KX_HOME/sysctl.orig" ]; then
    local kv
    while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || log "cannot restore $kv"; done < "$KX_HOME/sysctl.orig"
    rm -f "$KX_HOME/sysctl.orig"
  fi
}
