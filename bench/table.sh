#!/usr/bin/env bash
# The table at scale (issue 16, item 1): with N loopback connections held open (2N sockets,
# bench/holdconns.py), for each binary given: time to the first table rows in headless
# Chromium (bench/table.mjs, median of RUNS fresh page loads), and the bytes of the whole
# /api/connections document against the first page the table asks for (limit=200), plain and
# gzip. Compare a binary from before the paged table with one after, in the same run.
# Usage: bench/table.sh [CONNS] BINARY...   (default CONNS 50000 = 100k sockets)
# Env: RUNS (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-50000}; shift || true
[ $# -gt 0 ] || set -- target/release/procnet
RUNS=${RUNS:-5}
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
coproc HOLD { exec python3 bench/holdconns.py --conns "$CONNS" --max-seconds 1200; }
read -r ready <&"${HOLD[0]}"
case "$ready" in READY*) ;; *) echo "holdconns failed: $ready" >&2; exit 1 ;; esac
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; eval "exec ${HOLD[1]}>&-"' EXIT
size() { curl -s -o /dev/null -w '%{size_download}' -H "Host: 127.0.0.1:$port" "$@"; }
for bin in "$@"; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  RUST_LOG=warn "$bin" serve --port "$port" --interval 1 &
  pid=$!
  sleep 5
  ui=$(node bench/table.mjs "http://127.0.0.1:$port" "$RUNS")
  full=$(size "http://127.0.0.1:$port/api/connections")
  fullgz=$(size -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/api/connections")
  page=$(size "http://127.0.0.1:$port/api/connections?limit=200&offset=0")
  pagegz=$(size -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/api/connections?limit=200&offset=0")
  rows=$(curl -s -H "Host: 127.0.0.1:$port" "http://127.0.0.1:$port/api/connections" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["connections"]))')
  rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  echo "$bin rows=$rows $ui full=$full fullgz=$fullgz page=$page pagegz=$pagegz peakRssKiB=$rss"
  kill $pid; wait $pid 2>/dev/null || true; pid=
done
