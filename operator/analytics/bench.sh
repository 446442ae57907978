#!/usr/bin/env bash
# Ingest benchmark: synthetic agents push through the real HTTP endpoint; reports analytics'
# CPU and memory. Usage: analytics/bench.sh [agents...]   (default: 1000 5000)
# Auth is off (--insecure-skip-auth): with a cluster, a cached TokenReview costs one SHA-256
# and a map lookup per push.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p fabricwatch-analytics --examples
bin=target/release/examples
port=${PORT:-18080}
interval=${INTERVAL:-10}
warmup=${WARMUP:-25}
measure=${MEASURE:-60}
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
echo "| agents | pushes/s | analytics CPU (% of one core) | CPU per agent (ms/s) | RSS (MiB) | RSS per agent (KiB) | push latency p50 / p99 (ms) | failed |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for agents in "${@:-1000 5000}"; do
  for n in $agents; do
    "$bin/serve" --without-kubernetes --insecure-skip-auth --listen "127.0.0.1:$port" \
      --window-samples 60 2>/tmp/analytics-bench-serve.log &
    srv=$!
    sleep 1
    base_rss=$(rss_kib "$srv")
    "$bin/loadgen" "http://127.0.0.1:$port" "$n" "$interval" $((warmup + measure + 5)) > /tmp/analytics-bench-load.txt &
    gen=$!
    sleep "$warmup"
    c0=$(cpu_ticks "$srv")
    sleep "$measure"
    c1=$(cpu_ticks "$srv")
    rss=$(rss_kib "$srv")
    wait "$gen"
    kill "$srv"; wait "$srv" 2>/dev/null || true
    line=$(cat /tmp/analytics-bench-load.txt)
    rate=$(sed -E 's/.*rate=([0-9.]+).*/\1/' <<<"$line")
    p50=$(sed -E 's/.*p50=([0-9.]+).*/\1/' <<<"$line")
    p99=$(sed -E 's/.*p99=([0-9.]+).*/\1/' <<<"$line")
    failed=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
    awk -v n="$n" -v r="$rate" -v c0="$c0" -v c1="$c1" -v t="$tck" -v m="$measure" -v rss="$rss" -v b="$base_rss" \
        -v p50="$p50" -v p99="$p99" -v f="$failed" 'BEGIN {
      cpu = (c1 - c0) / t / m;
      printf "| %d | %.0f | %.1f | %.3f | %.1f | %.1f | %s / %s | %s |\n", n, r, 100 * cpu, 1000 * cpu / n, rss / 1024, (rss - b) / n, p50, p99, f
    }'
  done
done
