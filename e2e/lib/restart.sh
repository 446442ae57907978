# shellcheck shell=bash
# `e2e/cluster restart DAEMON`: stop one control-plane daemon and start it again with the
# command line it was running with, the way a node reboot or a crashed static pod restarts it.
# Fault tests use it to check that watches relist and status writes resume.

RESTARTABLE=(etcd kube-apiserver kube-controller-manager kube-scheduler)

cmd_restart() {
  need_root restart
  local name=${1:-} down=${2:-0} pid pidfile cmdline ready
  [[ " ${RESTARTABLE[*]} " == *" $name "* ]] ||
    die "usage: e2e/cluster restart {${RESTARTABLE[*]}} [SECONDS_DOWN]"
  [[ $down =~ ^[0-9]+$ ]] || die "SECONDS_DOWN must be a whole number of seconds"
  pidfile=$STATE/pids/$name.pid
  pid=$(cat "$pidfile" 2>/dev/null) || pid=
  if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then die "$name is not running (no live pid in $pidfile)"; fi
  # The exact argv, NUL-separated, read before the process goes away.
  mapfile -d '' -t cmdline < "/proc/$pid/cmdline"
  [ "${#cmdline[@]}" -gt 0 ] || die "could not read the command line of $name (pid $pid)"
  BIN=$(k8s_bin_dir) || die "no Kubernetes binaries"
  kill -TERM "$pid"
  # kube-apiserver 1.20 may take over 30 s to drain on SIGTERM; 10 s bounds the outage.
  wait_until 10 "$name (pid $pid) to exit" bash -c "! kill -0 $pid" || {
    warn "$name did not stop within 10 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 "$name (pid $pid) to die" bash -c "! kill -0 $pid" || die "$name (pid $pid) does not die"
  }
  log "$name stopped (pid $pid)"
  [ "$down" -eq 0 ] || sleep "$down"
  # start_daemon appends to nothing: keep the old log by moving it aside.
  mv -f "$STATE/logs/$name.log" "$STATE/logs/$name.log.$(date +%s)" 2>/dev/null || true
  start_daemon "$name" "$CP_CGROUP" "${cmdline[@]}"
  case $name in
    etcd) ready=(curl -sf "http://127.0.0.1:$ETCD_CLIENT_PORT/health") ;;
    kube-apiserver) ready=("$BIN/kubectl" --kubeconfig="$STATE/kubeconfig" get --raw /readyz) ;;
    *) ready=(bash -c "kill -0 \$(cat '$pidfile')") ;;
  esac
  wait_until 120 "$name ready after restart" "${ready[@]}" || fail_with_logs "$name"
  log "$name running again (pid $(cat "$pidfile"))"
}
