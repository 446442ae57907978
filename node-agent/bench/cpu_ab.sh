#!/usr/bin/env bash
# CPU per collection + scrape of two agent builds side by side (same load on the machine),
# measured with `perf stat -e task-clock` (a software event, so it works in VMs without
# hardware counters; all threads, nanosecond resolution rather than 10 ms ticks). Each
# agent runs standalone on the RoCE fixture and the real /proc with `intervalSeconds: 1`
# and ping disabled, as in run.sh, and is scraped once per second.
# Needs perf (Debian linux-perf), curl and two builds of the agent.
# Usage: node-agent/bench/cpu_ab.sh OLD_BINARY NEW_BINARY [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
OLD=$1 NEW=$2 SECS=${3:-60}
SYSFS=node-agent/tests/fixtures/sysfs/roce/sys
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
i=0
for bin in "$OLD" "$NEW"; do
  i=$((i + 1))
  printf 'intervalSeconds: 1\nlisten: 127.0.0.1:1948%d\nping: {enabled: false}\n' $i > "$TMP/a$i.yaml"
  "$bin" --standalone --config "$TMP/a$i.yaml" --sysfs-root "$SYSFS" 2>/dev/null & PIDS+=($!)
done
sleep 3
for j in 1 2; do
  perf stat -e task-clock -x, -o "$TMP/perf$j" -p "${PIDS[$((j - 1))]}" & PIDS+=($!)
done
sleep 1
for _ in $(seq "$SECS"); do
  curl -sf -o /dev/null 127.0.0.1:19481/metrics
  curl -sf -o /dev/null 127.0.0.1:19482/metrics
  sleep 1
done
kill -INT "${PIDS[2]}" "${PIDS[3]}"; wait "${PIDS[2]}" "${PIDS[3]}" 2>/dev/null || true
for j in 1 2; do
  ms=$(awk -F, '/task-clock/{print $1}' "$TMP/perf$j")
  name=$([ $j = 1 ] && echo old || echo new)
  printf '%s: %.3f ms CPU per collection+scrape (%s ms over %s s)\n' "$name" "$(echo "$ms/$SECS" | bc -l)" "$ms" "$SECS"
done
