# shellcheck shell=bash
# `e2e/cluster diagnose [SERVICE.NAMESPACE...]`: what a node sees of the cluster's Service
# path, for a test that waited in vain for an agent to reach a Service. Per node: whether
# containerd, the kubelet and kube-proxy are alive (state, kernel wait channel, CPU time, age
# of their last log line), kube-proxy's own health (time of its last iptables sync), and per
# named Service: its ClusterIP from the API, what the cluster DNS answers, how many nat rules
# name that IP in the node's iptables, and whether a TCP connect from the node gets through.
# Prints only; never fails. Sourced by e2e/cluster.

# proc_line PID: "state S wchan ep_poll cpu 12.3s" for a live process, "GONE" otherwise.
proc_line() {
  local pid=$1 stat state ticks hz
  if [ -z "$pid" ] || [ ! -r "/proc/$pid/stat" ]; then echo "GONE"; return; fi
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo "GONE"; return; }
  stat=${stat##*) }               # fields after "pid (comm) "
  # shellcheck disable=SC2086  # split the fields on purpose
  set -- $stat
  state=$1; ticks=$(( ${12} + ${13} )); hz=$(getconf CLK_TCK)
  echo "state $state wchan $(cat "/proc/$pid/wchan" 2>/dev/null || echo '?') cpu $((ticks / hz)).$(( (ticks % hz) * 10 / hz ))s"
}

# log_age FILE: seconds since FILE was last written, and its last line.
log_age() {
  local f=$1
  [ -f "$f" ] || { echo "(no log $f)"; return; }
  echo "last write $(( $(date +%s) - $(stat -c %Y "$f") ))s ago: $(tail -n 1 "$f" | cut -c1-160)"
}

cmd_diagnose() {
  need_root diagnose
  BIN=$(k8s_bin_dir) || { echo "diagnose: no Kubernetes binaries"; return 0; }
  [ -s "$STATE/kubeconfig" ] || { echo "diagnose: no cluster is up"; return 0; }
  local nodes n name ns d pid svc svc_ns ip port rules dns conn
  nodes=$(cat "$STATE/nodes" 2>/dev/null || echo 0)
  echo "=== diagnose at $(date -u +%H:%M:%S) (load $(cut -d' ' -f1-3 /proc/loadavg))"
  for n in $(seq 1 "$nodes"); do
    name=$(node_name "$n"); ns=$(node_netns "$n")
    echo "--- node $name (netns $ns)"
    for d in containerd kubelet kube-proxy; do
      pid=$(cat "$STATE/pids/$name-$d.pid" 2>/dev/null || true)
      printf '  %-10s pid %-7s %s\n' "$d" "${pid:-?}" "$(proc_line "$pid")"
      printf '  %-10s %s\n' "" "$(log_age "$STATE/logs/$name-$d.log")"
    done
    # kube-proxy's /healthz: lastUpdated is the end of its last successful iptables sync.
    printf '  kube-proxy healthz: %s\n' \
      "$(ip netns exec "$ns" curl -s -m 2 "http://$(node_ip "$n"):10256/healthz" 2>&1 | cut -c1-200)"
    # Where every kube-proxy goroutine waits (profiling is on, node-local): a stuck sync shows here.
    if ip netns exec "$ns" curl -s -m 5 -o "$STATE/logs/$name-kube-proxy-goroutines.txt" \
         "http://127.0.0.1:10249/debug/pprof/goroutine?debug=2"; then
      echo "  kube-proxy goroutines: $STATE/logs/$name-kube-proxy-goroutines.txt"
    fi
    for svc in "$@"; do
      svc_ns=${svc#*.}; svc=${svc%%.*}
      ip=$(kctl -n "$svc_ns" get service "$svc" -o jsonpath='{.spec.clusterIP}' 2>/dev/null || true)
      port=$(kctl -n "$svc_ns" get service "$svc" -o jsonpath='{.spec.ports[0].port}' 2>/dev/null || true)
      dns=$(ip netns exec "$ns" busybox nslookup "$svc.$svc_ns.svc.cluster.local" "$BRIDGE_IP" 2>&1 |
        awk '/^Address/ && !/#53/ {print $NF}' | tr '\n' ' ')
      rules=$(ip netns exec "$ns" iptables-save -t nat 2>/dev/null | grep -c -- "-d ${ip:-none}/32" || true)
      if [ -n "$ip" ] && [ -n "$port" ]; then
        conn=$(ip netns exec "$ns" timeout 3 bash -c "exec 3<>/dev/tcp/$ip/$port" 2>&1 && echo connected || echo "no connection")
      else
        conn="no ClusterIP/port"
      fi
      echo "  service $svc.$svc_ns: clusterIP ${ip:-none}:${port:-?}; DNS answers [${dns% }]; nat rules naming it: $rules; TCP from node: ${conn//$'\n'/ }"
    done
  done
  echo "--- control plane"
  for d in etcd kube-apiserver kube-controller-manager kube-scheduler cluster-dns cluster-dns-sync; do
    pid=$(cat "$STATE/pids/$d.pid" 2>/dev/null || true)
    printf '  %-24s pid %-7s %s\n' "$d" "${pid:-?}" "$(proc_line "$pid")"
  done
  return 0
}
