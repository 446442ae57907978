#!/usr/bin/env bash
# Endpoint probe latency of `fabricwatch-agent endpoint` side by side with `curl -w` on the
# same HTTP and HTTPS endpoint, over a veth pair between two network namespaces
# (probes-bench-c → probes-bench-s, 10.197.0.1 → .2). The server is Python's http.server
# (TLS with a self-signed certificate made here by openssl). Rounds interleave the two
# clients (the order alternates), each doing COUNT requests in one process (the agent as it
# does on a node, curl with COUNT URLs on the command line, each a new connection without
# TLS session resumption); the first request of each, which pays one-time setup such as
# loading the CA file, is dropped.
# curl sends the request the agent sends (`Connection: close`): with keep-alive, Python's
# TLS server writes head and body as two small segments and Nagle on its side waits for
# curl's delayed ACK (+40 ms), which says nothing about either client.
# Phases are compared cumulatively, as curl reports them: name lookup, connect, TLS done
# (appconnect), first byte (starttransfer), total. Prints medians per client and the
# median of |Δ| per phase, in milliseconds.
# Needs root, iproute2, curl, openssl, python3 and a build of the agent:
#   cargo build --release -p fabricwatch-agent
# Usage: node-agent/bench/endpoint_curl.sh ; env ROUNDS=5 COUNT=40 AGENT=path
set -euo pipefail
cd "$(dirname "$0")/../.."
AGENT=${AGENT:-${CARGO_TARGET_DIR:-target}/release/fabricwatch-agent}
ROUNDS=${ROUNDS:-5}
COUNT=${COUNT:-40}
C=probes-bench-c S=probes-bench-s
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del $C 2>/dev/null || true
  ip netns del $S 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
cleanup 2>/dev/null || true
TMP=$(mktemp -d)
ip netns add $C
ip netns add $S
ip link add prbbc netns $C type veth peer name prbbs netns $S
ip -n $C addr add 10.197.0.1/30 dev prbbc
ip -n $S addr add 10.197.0.2/30 dev prbbs
for n in $C $S; do ip -n $n link set lo up; done
ip -n $C link set prbbc up
ip -n $S link set prbbs up

# A CA and a server certificate it signs (webpki, like browsers, refuses a CA certificate
# as the server's own).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=probes-bench-ca -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=probes.bench \
  -keyout "$TMP/key.pem" -out "$TMP/srv.csr" 2>/dev/null
printf 'subjectAltName=DNS:probes.bench,IP:10.197.0.2\nbasicConstraints=CA:FALSE\n' > "$TMP/ext"
openssl x509 -req -in "$TMP/srv.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
  -days 2 -extfile "$TMP/ext" -out "$TMP/cert.pem" 2>/dev/null
echo -n "hello bench" > "$TMP/index.html"
cat > "$TMP/serve.py" <<'EOF'
import http.server, ssl, sys, os
os.chdir(sys.argv[1])
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
def serve(port, tls):
    s = http.server.ThreadingHTTPServer(("10.197.0.2", port), H)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(sys.argv[1], "cert.pem"), os.path.join(sys.argv[1], "key.pem"))
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
    s.serve_forever()
import threading
threading.Thread(target=serve, args=(8443, True), daemon=True).start()
serve(8080, False)
EOF
ip netns exec $S python3 "$TMP/serve.py" "$TMP" &
PIDS+=($!)
sleep 1

run_agent() { # url extra-json → lines "dns connect tls firstbyte total" (cumulative, s)
  ip netns exec $C "$AGENT" endpoint --count $((COUNT + 1)) \
    "{\"name\":\"b\",\"http\":{\"url\":\"$1\"$2},\"timeoutSeconds\":5}" |
    tail -n +2 | python3 -c '
import sys, json
for l in sys.stdin:
    r = json.loads(l); p = r["phases"]
    if r["state"] == "down": sys.exit("agent probe failed: " + r.get("error", ""))
    d = p.get("resolve", 0); c = d + p.get("connect", 0); t = c + p.get("tls", 0)
    f = t + p.get("processing", 0)
    print(d, c, t, f, r["durationSeconds"])'
}
run_curl() { # url extra-args: one process, COUNT+1 transfers (the first dropped, like the
  # agent's), each on a new connection with a full handshake (no session resumption)
  local urls=()
  for _ in $(seq $((COUNT + 1))); do urls+=(-o /dev/null "$1"); done
  ip netns exec $C curl -s --no-sessionid -H 'Connection: close' $2 \
    -w '%{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}\n' \
    "${urls[@]}" | tail -n +2
}
compare() { # name url agent-json curl-args
  : > "$TMP/a"; : > "$TMP/c"
  for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then run_agent "$2" "$3" >> "$TMP/a"; run_curl "$2" "$4" >> "$TMP/c"
    else run_curl "$2" "$4" >> "$TMP/c"; run_agent "$2" "$3" >> "$TMP/a"; fi
  done
  python3 - "$1" "$TMP/a" "$TMP/c" <<'EOF'
import sys, statistics as st
name, a, c = sys.argv[1], sys.argv[2], sys.argv[3]
rows = lambda f: [list(map(float, l.split())) for l in open(f) if l.strip()]
A, C = rows(a), rows(c)
phases = ["dns", "connect", "tls", "firstbyte", "total"]
print(f"{name}: agent n={len(A)}, curl n={len(C)}; medians in ms (cumulative, as curl -w)")
print(f"  {'phase':10} {'agent':>8} {'curl':>8} {'|Δ|':>8}")
for i, ph in enumerate(phases):
    ma, mc = st.median(r[i] for r in A) * 1e3, st.median(r[i] for r in C) * 1e3
    if ph == "tls" and mc == 0: continue
    print(f"  {ph:10} {ma:8.3f} {mc:8.3f} {abs(ma - mc):8.3f}")
EOF
}
echo "agent: $AGENT; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
compare "HTTP  http://10.197.0.2:8080/" "http://10.197.0.2:8080/" "" ""
compare "HTTPS https://10.197.0.2:8443/ (P-256, TLS 1.3)" "https://10.197.0.2:8443/" \
  ",\"tls\":{\"caFile\":\"$TMP/ca.pem\"}" "--cacert $TMP/ca.pem"
