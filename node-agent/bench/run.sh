#!/usr/bin/env bash
# Side-by-side benchmarks of fabricwatch-agent (see BENCHMARKS.md for results):
#   1. agent vs prometheus-node-exporter on the same sysfs fixture and the real /proc:
#      steady RSS and CPU per scrape (one collection per scrape for both);
#   2. ICMP RTT of `fabricwatch-agent probe` vs fping on a veth netns pair;
#   3. CPU cost of probing 500 peers at 1 Hz.
# Needs root, iproute2, iptables, fping, prometheus-node-exporter, curl, and a release build:
#   cargo build --release -p fabricwatch-agent
# Usage: node-agent/bench/run.sh [scrape_seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
AGENT=${AGENT:-target/release/fabricwatch-agent}
NE=${NODE_EXPORTER:-prometheus-node-exporter}
SECS=${1:-60}
SYSFS=node-agent/tests/fixtures/sysfs/roce/sys
TMP=$(mktemp -d)
NS_A=fwag-bench-a NS_B=fwag-bench-b
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del $NS_A 2>/dev/null || true
  ip netns del $NS_B 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

echo "== 1. agent vs node_exporter (${SECS}s, 1 scrape/s each)"
cat > "$TMP/agent.yaml" <<YAML
intervalSeconds: 1
listen: 127.0.0.1:19470
ping: {enabled: false}
YAML
"$AGENT" --standalone --config "$TMP/agent.yaml" --sysfs-root "$SYSFS" 2>/dev/null & PIDS+=($!); AP=$!
"$NE" --web.listen-address=127.0.0.1:19100 --path.sysfs="$SYSFS" --path.procfs=/proc \
  --collector.disable-defaults --collector.infiniband --collector.cpu --collector.loadavg \
  --collector.meminfo --collector.filesystem --collector.diskstats --collector.netdev \
  --collector.pressure --collector.stat 2>/dev/null & PIDS+=($!); NP=$!
sleep 3
curl -sf 127.0.0.1:19470/metrics > "$TMP/agent.prom"
curl -sf 127.0.0.1:19100/metrics > "$TMP/ne.prom"
a0=$(cpu_ticks $AP); n0=$(cpu_ticks $NP)
# With perf (Debian linux-perf): task-clock per process as well, nanosecond resolution
# where utime+stime counts 10 ms ticks.
PERF_PIDS=()
if command -v perf >/dev/null; then
  perf stat -e task-clock -x, -o "$TMP/perf_agent" -p $AP & PERF_PIDS+=($!)
  perf stat -e task-clock -x, -o "$TMP/perf_ne" -p $NP & PERF_PIDS+=($!)
  PIDS+=("${PERF_PIDS[@]}")
fi
for _ in $(seq "$SECS"); do
  curl -sf -o /dev/null 127.0.0.1:19470/metrics & c1=$!
  curl -sf -o /dev/null 127.0.0.1:19100/metrics & c2=$!
  wait $c1 $c2 || true
  sleep 1
done
a1=$(cpu_ticks $AP); n1=$(cpu_ticks $NP)
perf_ms() { if [ -s "$1" ]; then echo "$(awk -F, '/task-clock/{print $1}' "$1")/$SECS" | bc -l; else echo 0; fi; }
if [ ${#PERF_PIDS[@]} -gt 0 ]; then kill -INT "${PERF_PIDS[@]}"; wait "${PERF_PIDS[@]}" 2>/dev/null || true; fi
printf '%-16s %10s %14s %19s %10s\n' component rss_kib cpu_ms/scrape perf_cpu_ms/scrape samples
printf '%-16s %10s %14.2f %19.3f %10s\n' fabricwatch-agent "$(rss_kib $AP)" "$(echo "($a1-$a0)*1000/$hz/$SECS" | bc -l)" "$(perf_ms "$TMP/perf_agent")" "$(grep -vc '^#' "$TMP/agent.prom")"
printf '%-16s %10s %14.2f %19.3f %10s\n' node_exporter "$(rss_kib $NP)" "$(echo "($n1-$n0)*1000/$hz/$SECS" | bc -l)" "$(perf_ms "$TMP/perf_ne")" "$(grep -vc '^#' "$TMP/ne.prom")"
kill $AP $NP; wait $AP $NP 2>/dev/null || true

echo "== 2. RTT: agent probe vs fping on a veth pair (200 probes, 10 ms apart)"
ip netns add $NS_A; ip netns add $NS_B
ip link add fwagbva netns $NS_A type veth peer name fwagbvb netns $NS_B
ip -n $NS_A addr add 10.199.250.1/30 dev fwagbva
ip -n $NS_B addr add 10.199.250.2/30 dev fwagbvb
for n in $NS_A $NS_B; do ip -n $n link set lo up; done
ip -n $NS_A link set fwagbva up; ip -n $NS_B link set fwagbvb up
# The three probers run at the same time (same load on the machine): the agent as it
# runs (RTT from the kernel's transmit stamp), the agent with --user-tx-stamps (from a
# stamp taken before sendto, as fping measures) and fping.
p50() { python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["rttP50Seconds"]*1e6)' < "$1"; }
for round in 1 2 3; do
  ip netns exec $NS_A "$AGENT" probe --count 200 --interval-ms 10 10.199.250.2 > "$TMP/k.json" & k=$!
  ip netns exec $NS_A "$AGENT" probe --user-tx-stamps --count 200 --interval-ms 10 10.199.250.2 > "$TMP/u.json" & u=$!
  f=$(ip netns exec $NS_A fping -C 200 -p 10 -q 10.199.250.2 2>&1 | python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split(":")[1].split() if x!="-"]; print(statistics.median(v)*1000)')
  wait $k $u
  a=$(p50 "$TMP/k.json"); b=$(p50 "$TMP/u.json")
  printf 'round %d: agent p50 %.1f µs (user TX stamp: %.1f µs), fping median %.1f µs, |Δ| %.1f µs (user TX: %.1f µs)\n' \
    $round "$a" "$b" "$f" "$(python3 -c "print(abs($a-$f))")" "$(python3 -c "print(abs($b-$f))")"
done

echo "== 3. 500 peers at 1 Hz for 30 s"
ip -n $NS_A route add 10.200.0.0/16 dev fwagbva
for i in $(seq 0 499); do echo "addr add 10.200.$((i/250)).$((i%250+1))/32 dev fwagbvb"; done | ip -n $NS_B -batch -
ip netns exec $NS_B sysctl -qw net.ipv4.conf.all.arp_ignore=0
targets=$(for i in $(seq 0 499); do printf '10.200.%d.%d ' $((i/250)) $((i%250+1)); done)
/usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KiB max RSS' \
  ip netns exec $NS_A "$AGENT" probe --count 30 --interval-ms 1000 --timeout-ms 1000 $targets > "$TMP/500.json" 2> "$TMP/500.time"
python3 - "$TMP/500.json" "$TMP/500.time" <<'PY'
import json, sys, re
d = json.load(open(sys.argv[1])); t = open(sys.argv[2]).read().strip().splitlines()[-1]
sent = sum(p["sent"] for p in d["peers"]); recv = sum(p["received"] for p in d["peers"])
wall, user, sys_ = (float(x) for x in re.findall(r"([\d.]+) s", t)[:3])
print(f"{len(d['peers'])} peers, {sent} probes, {recv} replies; {t}")
print(f"CPU: {(user+sys_)/wall*100:.2f} % of one core")
PY
