# shellcheck shell=bash
# `e2e/cluster status|env|kubectl|nodeexec`. Sourced by e2e/cluster.

kctl() { "$BIN/kubectl" --kubeconfig="$STATE/kubeconfig" "$@"; }

# cluster_healthy N: the apiserver answers and N nodes are Ready (and no other count).
cluster_healthy() {
  local want=$1 ready
  BIN=${BIN:-$(k8s_bin_dir)} || return 1
  [ -s "$STATE/kubeconfig" ] && [ "$(cat "$STATE/nodes" 2>/dev/null)" = "$want" ] || return 1
  kctl get --raw /readyz >/dev/null 2>&1 || return 1
  ready=$(kctl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null \
    | grep -c '^True$' || true)
  [ "$ready" = "$want" ]
}

cmd_env() {
  local bin
  [ -s "$STATE/kubeconfig" ] || die "no cluster is up (state: $STATE); run: e2e/cluster up"
  echo "export KUBECONFIG=$STATE/kubeconfig"
  if bin=$(k8s_bin_dir); then echo "export PATH=$bin:\$PATH"; fi
}

# Exit status: 0 up and answering, 3 down, 1 up but broken.
cmd_status() {
  local f pid name alive=0 dead=0 rc=0
  BIN=$(k8s_bin_dir) || { echo "binaries: not built (run: e2e/cluster build)"; }
  if [ ! -s "$STATE/kubeconfig" ]; then
    echo "cluster: down (state: $STATE)"
    return 3
  fi
  echo "cluster: $(cat "$STATE/nodes" 2>/dev/null || echo '?') nodes, state $STATE"
  echo "kubeconfig: $STATE/kubeconfig   api: https://$BRIDGE_IP:$API_PORT"
  for f in "$STATE"/pids/*.pid; do
    [ -s "$f" ] || continue
    name=${f##*/}; name=${name%.pid}; pid=$(cat "$f")
    if [ -d "/proc/$pid" ]; then alive=$((alive + 1)); else dead=$((dead + 1)); echo "  NOT RUNNING: $name (pid $pid)"; fi
  done
  echo "processes: $alive running, $dead gone"
  [ "$dead" = 0 ] || rc=1
  if [ -n "${BIN:-}" ] && kctl get --raw /readyz >/dev/null 2>&1; then
    kctl get nodes -o wide
    return $rc
  else
    echo "apiserver: not answering"
    return 1
  fi
}

cmd_kubectl() {
  BIN=$(k8s_bin_dir) || die "no kubectl (run: e2e/cluster build)"
  [ -s "$STATE/kubeconfig" ] || die "no cluster is up (state: $STATE)"
  exec "$BIN/kubectl" --kubeconfig="$STATE/kubeconfig" "$@"
}

# nodeexec N CMD...: run CMD in node N's network and mount namespaces (where its containerd,
# kubelet and hostNetwork pods live), e.g. `e2e/cluster nodeexec 1 ctr -n k8s.io images ls`.
cmd_nodeexec() {
  need_root nodeexec
  local n=${1:-} pid
  if ! [[ $n =~ ^[0-9]+$ ]] || [ $# -lt 2 ]; then die "usage: e2e/cluster nodeexec N CMD..."; fi
  shift
  pid=$(cat "$STATE/pids/$(node_name "$n")-containerd.pid" 2>/dev/null) || pid=
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || die "node $(node_name "$n") is not running"
  exec nsenter --target "$pid" --net --mount -- "$@"
}
