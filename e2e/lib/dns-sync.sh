#!/bin/bash
# Cluster DNS for the local cluster, part 2 of 2: keeps dnsmasq's hosts file equal to the
# cluster's Services (<name>.<namespace>.svc.cluster.local -> ClusterIP) by watching them,
# and tells dnsmasq (SIGHUP) to reload it. Started by `e2e/cluster up`, ended by `down`.
#   usage: dns-sync.sh KUBECTL KUBECONFIG HOSTS_FILE DNSMASQ_PIDFILE
set -uo pipefail
KUBECTL=$1 KUBECONFIG_FILE=$2 HOSTS=$3 DNSMASQ_PID=$4

render() {
  local tmp=$HOSTS.tmp
  "$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" get services --all-namespaces -o \
    jsonpath='{range .items[*]}{.spec.clusterIP} {.metadata.name}.{.metadata.namespace}.svc.cluster.local{"\n"}{end}' \
    2>/dev/null | awk '$1 ~ /^[0-9.]+$/' | sort > "$tmp" || return 0
  if ! cmp -s "$tmp" "$HOSTS"; then
    mv "$tmp" "$HOSTS"
    kill -HUP "$(cat "$DNSMASQ_PID")" 2>/dev/null || true
  else
    rm -f "$tmp"
  fi
}

while true; do
  render
  # Re-render on every Service event; the watch is restarted every 5 minutes or when it drops.
  timeout 300 "$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" get services --all-namespaces \
    --watch-only -o name 2>/dev/null | while read -r _; do render; done
  sleep 1
done
