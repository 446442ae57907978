#!/usr/bin/env bash
# Instruction count per collection + scrape, under valgrind's callgrind: user-space
# instructions only (kernel time in read/pread/getdents is not counted), nearly the same
# from run to run where CPU time on a shared machine is not; see BENCHMARKS.md.
# The agent runs standalone on the RoCE fixture and the real /proc with `intervalSeconds: 1`
# and ping disabled, as in run.sh; after a warm-up the counters are zeroed, the script
# scrapes `/metrics` once per second for N seconds, dumps, and divides the instructions by
# the number of collections done in that window (from `/status`).
# Needs valgrind, curl, python3 and a release build:
#   cargo build --release -p fabricwatch-agent --bin fabricwatch-agent
# Usage: node-agent/bench/callgrind.sh [seconds]   (AGENT=path overrides the binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
AGENT=${AGENT:-target/release/fabricwatch-agent}
SECS=${1:-30}
SYSFS=node-agent/tests/fixtures/sysfs/roce/sys
PORT=${PORT:-19471}
TMP=$(mktemp -d)
VP=
cleanup() { [ -n "$VP" ] && kill "$VP" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
cat > "$TMP/agent.yaml" <<YAML
intervalSeconds: 1
listen: 127.0.0.1:$PORT
ping: {enabled: false}
YAML
seq_now() { curl -sf "127.0.0.1:$PORT/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["report"]["seq"])'; }
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.%p" \
  "$AGENT" --standalone --config "$TMP/agent.yaml" --sysfs-root "$SYSFS" 2>"$TMP/vg.log" & VP=$!
for _ in $(seq 60); do curl -sf -o /dev/null "127.0.0.1:$PORT/metrics" && break; sleep 1; done
sleep 5
callgrind_control -z "$VP" >/dev/null
s0=$(seq_now)
for _ in $(seq "$SECS"); do curl -sf -o /dev/null "127.0.0.1:$PORT/metrics"; sleep 1; done
s1=$(seq_now)
callgrind_control -d "$VP" >/dev/null
sleep 1
dump=$(ls -t "$TMP"/cg.*.* 2>/dev/null | head -1)
ir=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1; exit}')
n=$((s1 - s0))
echo "collections $n, /metrics scrapes $SECS (+2 /status), instructions $ir"
python3 -c "print(f'instructions per collection+scrape: {$ir/$n/1e6:.3f} M')"
if [ -n "${KEEP:-}" ]; then cp "$dump" "$KEEP"; echo "profile kept in $KEEP"; fi
