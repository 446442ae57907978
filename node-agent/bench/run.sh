#!/usr/bin/env bash
# Side-by-side benchmarks of fabricwatch-agent (see BENCHMARKS.md for results):
#   1. agent vs prometheus-node-exporter on the same sysfs tree and the real /proc, both
#      with their InfiniBand and ethtool collectors: steady RSS and CPU per scrape;
#   2. ICMP RTT of `fabricwatch-agent probe` vs fping on a veth netns pair;
#   3. CPU cost of probing 500 peers at 1 Hz.
# Every measurement is repeated (ROUNDS, default 5) with the two programs interleaved (the
# order alternates per round, so neither always runs first), and reported as the median with
# the min–max spread, next to the machine's state (load, CPU pressure, steal time,
# clocksource, virtualization) before and after, since a shared or virtual machine moves
# these numbers more than small code changes do.
# Needs root, iproute2, iptables, fping, prometheus-node-exporter, curl, python3 and a
# release build:
#   cargo build --release -p fabricwatch-agent
# Usage: node-agent/bench/run.sh [scrape_seconds_per_round] ; env ROUNDS=5 SECTIONS="1 2 3"
set -euo pipefail
cd "$(dirname "$0")/../.."
AGENT=${AGENT:-target/release/fabricwatch-agent}
NE=${NODE_EXPORTER:-prometheus-node-exporter}
SECS=${1:-30}
ROUNDS=${ROUNDS:-5}
SECTIONS=${SECTIONS:-"1 2 3"}
FIXTURE=node-agent/tests/fixtures/sysfs/roce/sys
TMP=$(mktemp -d)
NS_A=fwag-bench-a NS_B=fwag-bench-b NS_S=fwag-bench-s
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in $NS_A $NS_B $NS_S; do ip netns del $n 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
# Median and spread of the numbers on stdin: "median (min–max, n=N)".
summary() { python3 -c '
import sys, statistics
v = [float(x) for x in sys.stdin.read().split()]
print(f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f}, n={len(v)})" if v else "n/a")'; }
# Steal and total jiffies of all CPUs (/proc/stat "cpu" line).
cpu_line() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print $9, t}' /proc/stat; }
machine_state() {
  echo "-- machine ($1): $(date -u +%FT%TZ)"
  echo "   $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "   kernel $(uname -r), virt $(systemd-detect-virt 2>/dev/null || echo unknown), clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)"
  echo "   loadavg $(cut -d' ' -f1-3 /proc/loadavg), cpu pressure: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
  echo "   other processes using CPU: $(ps -eo pcpu=,comm= --sort=-pcpu | head -5 | awk '{printf "%s %s%%; ", $2, $1}')"
}
machine_state before
read -r steal0 total0 < <(cpu_line)

if [[ " $SECTIONS " == *" 1 "* ]]; then
echo "== 1. agent vs node_exporter: ${ROUNDS} rounds x ${SECS}s, 1 scrape/s each, interleaved"
# The same tree for both: the RoCE fixture with its ports' netdevs renamed to a veth pair
# that exists in a namespace of its own, and class/net/<veth> entries so that
# node_exporter's ethtool collector finds them. Both programs run in that namespace and
# ask the kernel for the veths' driver statistics (veth is not a driver the agent maps, so
# the agent stops after ETHTOOL_GDRVINFO; node_exporter exports veth's statistics).
SYSFS=$TMP/sys
cp -a "$FIXTURE" "$SYSFS"
ip netns add $NS_S
ip -n $NS_S link add fwagbe0 type veth peer name fwagbe1
ip -n $NS_S link set lo up; ip -n $NS_S link set fwagbe0 up; ip -n $NS_S link set fwagbe1 up
for i in 0 1; do
  for f in "$SYSFS"/class/infiniband/mlx5_$i/ports/1/gid_attrs/ndevs/*; do echo fwagbe$i > "$f"; done
  mkdir -p "$SYSFS/class/net/fwagbe$i"
done
cat > "$TMP/agent.yaml" <<YAML
intervalSeconds: 1
listen: 127.0.0.1:19470
ping: {enabled: false}
YAML
inns() { ip netns exec $NS_S "$@"; }
: > "$TMP/a_cpu"; : > "$TMP/n_cpu"; : > "$TMP/a_rss"; : > "$TMP/n_rss"; : > "$TMP/ratio"
for round in $(seq "$ROUNDS"); do
  inns "$AGENT" --standalone --config "$TMP/agent.yaml" --sysfs-root "$SYSFS" 2>/dev/null & AP=$!; PIDS+=($AP)
  inns "$NE" --web.listen-address=127.0.0.1:19100 --path.sysfs="$SYSFS" --path.procfs=/proc \
    --collector.disable-defaults --collector.infiniband --collector.ethtool --collector.cpu \
    --collector.loadavg --collector.meminfo --collector.filesystem --collector.diskstats \
    --collector.netdev --collector.pressure --collector.stat 2>/dev/null & NP=$!; PIDS+=($NP)
  sleep 3
  # `ip netns exec` runs the program as a child; measure the program itself.
  AP=$(pgrep -P $AP || echo $AP); NP=$(pgrep -P $NP || echo $NP)
  inns curl -sf 127.0.0.1:19470/metrics > "$TMP/agent.prom"
  inns curl -sf 127.0.0.1:19100/metrics > "$TMP/ne.prom"
  a0=$(cpu_ticks $AP); n0=$(cpu_ticks $NP)
  for _ in $(seq "$SECS"); do
    if (( round % 2 )); then
      inns curl -sf -o /dev/null 127.0.0.1:19470/metrics; inns curl -sf -o /dev/null 127.0.0.1:19100/metrics
    else
      inns curl -sf -o /dev/null 127.0.0.1:19100/metrics; inns curl -sf -o /dev/null 127.0.0.1:19470/metrics
    fi
    sleep 1
  done
  a1=$(cpu_ticks $AP); n1=$(cpu_ticks $NP)
  ac=$(echo "($a1-$a0)*1000/$hz/$SECS" | bc -l); nc=$(echo "($n1-$n0)*1000/$hz/$SECS" | bc -l)
  echo "$ac" >> "$TMP/a_cpu"; echo "$nc" >> "$TMP/n_cpu"
  echo "$(rss_kib $AP)" >> "$TMP/a_rss"; echo "$(rss_kib $NP)" >> "$TMP/n_rss"
  python3 -c "print($ac/$nc if $nc > 0 else 0)" >> "$TMP/ratio"
  printf 'round %d: agent %.2f ms/scrape %s KiB, node_exporter %.2f ms/scrape %s KiB\n' \
    "$round" "$ac" "$(rss_kib $AP)" "$nc" "$(rss_kib $NP)"
  kill $AP $NP 2>/dev/null || true; wait 2>/dev/null || true
done
printf '%-18s %-34s %-34s %s\n' component "cpu ms/scrape median (min-max)" "rss KiB median (min-max)" "samples/scrape"
printf '%-18s %-34s %-34s %s\n' fabricwatch-agent "$(summary < "$TMP/a_cpu")" "$(summary < "$TMP/a_rss")" "$(grep -vc '^#' "$TMP/agent.prom")"
printf '%-18s %-34s %-34s %s\n' node_exporter "$(summary < "$TMP/n_cpu")" "$(summary < "$TMP/n_rss")" "$(grep -vc '^#' "$TMP/ne.prom")"
echo "agent/node_exporter CPU per round: $(summary < "$TMP/ratio")"
ip netns del $NS_S
fi

if [[ " $SECTIONS " == *" 2 "* || " $SECTIONS " == *" 3 "* ]]; then
ip netns add $NS_A; ip netns add $NS_B
ip link add fwagbva netns $NS_A type veth peer name fwagbvb netns $NS_B
ip -n $NS_A addr add 10.199.250.1/30 dev fwagbva
ip -n $NS_B addr add 10.199.250.2/30 dev fwagbvb
for n in $NS_A $NS_B; do ip -n $n link set lo up; done
ip -n $NS_A link set fwagbva up; ip -n $NS_B link set fwagbvb up
fi

if [[ " $SECTIONS " == *" 2 "* ]]; then
echo "== 2. RTT: agent probe vs fping on a veth pair (${ROUNDS} rounds of 200 probes, 10 ms apart)"
# The three probers run at the same time (same load on the machine): the agent as it
# runs (RTT from the kernel's transmit stamp), the agent with --user-tx-stamps (from a
# stamp taken before sendto, as fping measures) and fping.
p50() { python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["rttP50Seconds"]*1e6)' < "$1"; }
: > "$TMP/dk"; : > "$TMP/du"
for round in $(seq "$ROUNDS"); do
  ip netns exec $NS_A "$AGENT" probe --count 200 --interval-ms 10 10.199.250.2 > "$TMP/k.json" & k=$!
  ip netns exec $NS_A "$AGENT" probe --user-tx-stamps --count 200 --interval-ms 10 10.199.250.2 > "$TMP/u.json" & u=$!
  f=$(ip netns exec $NS_A fping -C 200 -p 10 -q 10.199.250.2 2>&1 | python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split(":")[1].split() if x!="-"]; print(statistics.median(v)*1000)')
  wait $k $u
  a=$(p50 "$TMP/k.json"); b=$(p50 "$TMP/u.json")
  python3 -c "print(abs($a-$f))" >> "$TMP/dk"; python3 -c "print(abs($b-$f))" >> "$TMP/du"
  printf 'round %d: agent p50 %.1f µs (user TX stamp: %.1f µs), fping median %.1f µs\n' $round "$a" "$b" "$f"
done
echo "|Δ| agent (kernel TX stamp) vs fping, µs: $(summary < "$TMP/dk")"
echo "|Δ| agent (user TX stamp) vs fping, µs:   $(summary < "$TMP/du")"
fi

if [[ " $SECTIONS " == *" 3 "* ]]; then
echo "== 3. 500 peers at 1 Hz for 30 s (${ROUNDS} rounds)"
ip -n $NS_A route add 10.200.0.0/16 dev fwagbva
for i in $(seq 0 499); do echo "addr add 10.200.$((i/250)).$((i%250+1))/32 dev fwagbvb"; done | ip -n $NS_B -batch -
ip netns exec $NS_B sysctl -qw net.ipv4.conf.all.arp_ignore=0
targets=$(for i in $(seq 0 499); do printf '10.200.%d.%d ' $((i/250)) $((i%250+1)); done)
: > "$TMP/core"
for round in $(seq "$ROUNDS"); do
  /usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KiB max RSS' \
    ip netns exec $NS_A "$AGENT" probe --count 30 --interval-ms 1000 --timeout-ms 1000 $targets > "$TMP/500.json" 2> "$TMP/500.time"
  python3 - "$TMP/500.json" "$TMP/500.time" "$round" >> "$TMP/core" <<'PY'
import json, sys, re
d = json.load(open(sys.argv[1])); t = open(sys.argv[2]).read().strip().splitlines()[-1]
sent = sum(p["sent"] for p in d["peers"]); recv = sum(p["received"] for p in d["peers"])
wall, user, sys_ = (float(x) for x in re.findall(r"([\d.]+) s", t)[:3])
print(f"{(user+sys_)/wall*100:.3f}")
print(f"round {sys.argv[3]}: {len(d['peers'])} peers, {sent} probes, {recv} replies; {t}; "
      f"CPU {(user+sys_)/wall*100:.2f} % of one core", file=sys.stderr)
PY
done
echo "CPU, % of one core: $(summary < "$TMP/core")"
fi

read -r steal1 total1 < <(cpu_line)
echo "steal during the run: $(python3 -c "print(f'{100*($steal1-$steal0)/max(1,$total1-$total0):.2f} %')") of all CPU time"
machine_state after
