#!/usr/bin/env bash
# Latency of GET /api/graph (and /api/connections) from a running
# `procnet serve` with N loopback connections held open: median and p90 of
# 200 requests over one keep-alive connection, each timed client-side.
# Usage: bench/api.sh [CONNS]   (default 10000 = 20k sockets)
set -euo pipefail
cd "$(dirname "$0")/.."
PROCNET=${PROCNET:-target/release/procnet}
CONNS=${1:-10000}
[ -x "$PROCNET" ] || cargo build --release --quiet
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
coproc HOLD { exec python3 bench/holdconns.py --conns "$CONNS" --max-seconds 300; }
read -r ready <&"${HOLD[0]}"
case "$ready" in READY*) ;; *) echo "holdconns failed: $ready" >&2; exit 1 ;; esac
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn "$PROCNET" serve --port "$port" --interval 1 &
pid=$!
trap 'kill $pid 2>/dev/null; eval "exec ${HOLD[1]}>&-"' EXIT
sleep 4
python3 - "$port" "$CONNS" <<'PY'
import http.client, statistics, sys, time, json
port, conns = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
host = {"Host": f"127.0.0.1:{port}"}
for path in ("/api/graph", "/api/connections"):
    ts, size = [], 0
    for _ in range(200):
        t = time.perf_counter()
        c.request("GET", path, headers=host)
        body = c.getresponse().read()
        ts.append((time.perf_counter() - t) * 1000)
        size = len(body)
    ts.sort()
    print(f"| {path} | {2*conns} | {statistics.median(ts):.2f} ms | {ts[int(len(ts)*0.9)]:.2f} ms | {size/1024:.0f} KiB |")
PY
