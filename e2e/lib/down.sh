# shellcheck shell=bash
# `e2e/cluster down`: stop everything `up` started and remove every trace of it: processes
# (only those inside the cluster's own cgroups or named by its PID files), network
# namespaces, the bridge, cgroups, host iptables rules, created mount-point folders, and the
# global sysctls the kubelet changed. Sourced by e2e/cluster. Logs stay in $STATE/logs.

# Node numbers that have anything left: state folders, netns or cgroups.
leftover_nodes() {
  {
    local d
    for d in "$STATE"/n[0-9]*; do [ -d "$d" ] && echo "${d##*/n}"; done
    ip netns list 2>/dev/null | awk '{print $1}' | sed -n "s/^$NETNS_PREFIX\([0-9][0-9]*\)\$/\1/p"
    for d in "$(cgroup_track)/$CGROUP_PREFIX"-n[0-9]*; do [ -d "$d" ] && echo "${d##*-n}"; done
  } | sort -un
}

state_present() {
  [ -n "$(leftover_nodes)" ] || [ -d "$(cgroup_track)/$CP_CGROUP" ] || [ -e "$STATE/pids" ] ||
    ip link show "$BRIDGE" >/dev/null 2>&1 || [ -s "$STATE/sysctl.orig" ] || [ -s "$STATE/created-paths" ]
}

# stop_cgroups NAME...: SIGTERM every process in these cgroups (and below) at once, and give
# them up to 3 s to exit. The cluster keeps no state worth a slower shutdown.
stop_cgroups() {
  local cg pids left
  for cg in "$@"; do
    pids=$(cgroup_pids "$cg")
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
  done
  for _ in $(seq 1 30); do
    left=
    for cg in "$@"; do left+=$(cgroup_pids "$cg"); done
    [ -z "$left" ] && return 0
    sleep 0.1
  done
}

# kill_cgroup NAME: SIGKILL every process in cgroup NAME and below until it is empty.
kill_cgroup() {
  local cg=$1 pids
  for _ in $(seq 1 50); do
    pids=$(cgroup_pids "$cg")
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  warn "processes left in cgroup $cg: $(cgroup_pids "$cg" | tr '\n' ' ')"
}

# remove_cgroup NAME: remove cgroup NAME and its children in every hierarchy (the kubelet also
# creates them in the hybrid layout's cgroup v2 tree, /sys/fs/cgroup/unified).
remove_cgroup() {
  local h
  for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
    [ -d "$h/$1" ] && find "$h/$1" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

teardown() {
  local n cg ns cgroups=("$CP_CGROUP")
  for n in $(leftover_nodes); do cgroups+=("$(node_cgroup "$n")"); done
  # Every process the cluster started lives in one of these cgroups (see lib/common.sh).
  stop_cgroups "${cgroups[@]}"
  for cg in "${cgroups[@]}"; do kill_cgroup "$cg"; done
  log "processes stopped"
  for n in $(leftover_nodes); do
    cg=$(node_cgroup "$n"); ns=$(node_netns "$n")
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
      # Anything still in the node's netns was started by us too (only we enter it).
      local pids; pids=$(ip netns pids "$ns" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
      ip netns delete "$ns"
    fi
    remove_cgroup "$cg"
    rm -rf "${STATE:?}/n$n"
  done
  remove_cgroup "$CP_CGROUP"
  rm -rf "${STATE:?}/pids"
  ip link delete "$BRIDGE" 2>/dev/null || true      # also drops the host routes to pod CIDRs
  if [ -s "$STATE/host-iptables" ]; then
    local rule
    while read -r rule; do
      # shellcheck disable=SC2086
      while iptables -C $rule 2>/dev/null; do iptables -D $rule; done
    done < "$STATE/host-iptables"
    rm -f "$STATE/host-iptables"
  fi
  if [ -s "$STATE/sysctl.orig" ]; then
    # shellcheck disable=SC2046
    sysctl -q -w $(cat "$STATE/sysctl.orig") && rm -f "$STATE/sysctl.orig"
  fi
  if [ -s "$STATE/created-paths" ]; then
    local d
    while read -r d; do
      [ -d "$d" ] || continue
      if [ "$d" = /run/netns ]; then
        [ -z "$(ls -A /run/netns)" ] || continue
        while mountpoint -q /run/netns; do umount /run/netns; done
      fi
      rmdir "$d" 2>/dev/null || warn "left $d in place (not empty)"
    done < <(tac "$STATE/created-paths")
    rm -f "$STATE/created-paths"
  fi
  rm -rf "${STATE:?}/etcd" "${STATE:?}/pki" "${STATE:?}/kubeconfigs" "${STATE:?}/pids" \
    "$STATE/kubeconfig" "$STATE/nodes" "$STATE/phase"
}

cmd_down() {
  need_root down
  case ${1:-} in
    "") ;;
    -h|--help) echo "usage: e2e/cluster down"; return 0 ;;
    *) die "down takes no arguments" ;;
  esac
  lock_state
  if ! state_present; then
    log "nothing to do: no cluster is up (state: $STATE)"
    return 0
  fi
  log "tearing down the cluster in $STATE"
  teardown
  log "down: done (logs kept in $STATE/logs)"
}
