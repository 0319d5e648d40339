#!/usr/bin/env bash
# Snapshot benchmark: whole-process time of `procnet snapshot --format graph`
# against `ss -tanpi` and psutil's net_connections(), with N loopback TCP
# connections held open (2N sockets), in the same run; plus procnet's peak RSS.
#
# Usage: bench/snapshot.sh                 # 10,000 and 50,000 connections
#        CONNS="2000" RUNS=3 bench/snapshot.sh
# Env:   PROCNET (default target/release/procnet, built if missing),
#        CONNS (space-separated connection counts), RUNS (>= 5 for reports),
#        OUT (markdown summary, default $TMPDIR/procnet-snapshot-<time>.md).
# Needs root for apt-get/pip when hyperfine, GNU time or psutil are missing.
# Every step is bounded by `timeout`; held connections are torn down on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
PROCNET=${PROCNET:-target/release/procnet}
CONNS=${CONNS:-"10000 50000"}
RUNS=${RUNS:-5}

OUT=${OUT:-${TMPDIR:-/tmp}/procnet-snapshot-$(date +%Y%m%d-%H%M%S).md}
PY=${PYTHON:-python3}

log() { printf '[snapshot.sh] %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------
if ! command -v hyperfine >/dev/null || [ ! -x /usr/bin/time ]; then
    log "installing hyperfine and time with apt-get"
    timeout 300 apt-get install -y hyperfine time >/dev/null 2>&1 ||
        { timeout 300 apt-get update >/dev/null 2>&1 && timeout 300 apt-get install -y hyperfine time >/dev/null; }
fi
if ! "$PY" -c 'import psutil' 2>/dev/null; then
    log "installing psutil with pip"
    timeout 300 "$PY" -m pip install --quiet psutil ||
        timeout 300 "$PY" -m pip install --quiet --break-system-packages psutil
fi
if [ ! -x "$PROCNET" ]; then
    log "building $PROCNET"
    timeout 900 cargo build --release --quiet
fi
command -v ss >/dev/null || { log "ss (iproute2) is missing"; exit 1; }

# --- connection holder ---------------------------------------------------
HOLD_PID=""
HOLD_DIR=$(mktemp -d)
cleanup() {
    if [ -n "$HOLD_PID" ]; then
        kill "$HOLD_PID" 2>/dev/null || true
        wait "$HOLD_PID" 2>/dev/null || true
        HOLD_PID=""
    fi
    rm -rf "$HOLD_DIR"
}
trap cleanup EXIT INT TERM

start_holder() { # $1 = connections
    mkfifo "$HOLD_DIR/in.$1"
    # holdconns exits when its stdin closes, on SIGTERM, or after 900 s.
    timeout 1000 "$PY" bench/holdconns.py --conns "$1" --max-seconds 900 \
        <"$HOLD_DIR/in.$1" >"$HOLD_DIR/out.$1" 2>&1 &
    HOLD_PID=$!
    exec 9>"$HOLD_DIR/in.$1" # keep its stdin open until we close fd 9
    for _ in $(seq 1200); do
        grep -q READY "$HOLD_DIR/out.$1" && return 0
        kill -0 "$HOLD_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "holdconns did not get ready:"; cat "$HOLD_DIR/out.$1" >&2
    exit 1
}

stop_holder() {
    exec 9>&-
    kill "$HOLD_PID" 2>/dev/null || true
    wait "$HOLD_PID" 2>/dev/null || true
    HOLD_PID=""
}

median() { # hyperfine JSON file, command index -> median seconds
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "$2"
}

{
    echo "| connections | sockets | procnet snapshot (median) | ss -tanpi (median) | psutil.net_connections (median) | ss / procnet | psutil / procnet | procnet peak RSS |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$OUT.table"

for n in $CONNS; do
    log "holding $n connections"
    start_holder "$n"
    sockets=$(ss -tanH state established | wc -l)
    log "$sockets established TCP sockets; benchmarking ($RUNS runs each)"
    json="$HOLD_DIR/hf.$n.json"
    timeout 1200 hyperfine --style basic --warmup 1 --runs "$RUNS" -N \
        --export-json "$json" \
        -n procnet "$PROCNET snapshot --format graph" \
        -n ss "ss -tanpi" \
        -n psutil "$PY -c 'import psutil; psutil.net_connections()'" >&2
    p=$(median "$json" 0); s=$(median "$json" 1); u=$(median "$json" 2)
    rss_kb=$(timeout 120 /usr/bin/time -v "$PROCNET" snapshot --format graph 2>&1 >/dev/null |
        awk -F': ' '/Maximum resident set size/ {print $2}')
    stop_holder
    "$PY" - "$n" "$sockets" "$p" "$s" "$u" "$rss_kb" >>"$OUT.table" <<'EOF'
import sys
n, sockets, p, s, u, rss = sys.argv[1:]
p, s, u = float(p), float(s), float(u)
print(f"| {int(n):,} | {int(sockets):,} | {p*1000:.1f} ms | {s*1000:.0f} ms | {u*1000:.0f} ms "
      f"| {s/p:.1f}x | {u/p:.1f}x | {int(rss)/1024:.1f} MiB |")
EOF
done

{
    echo "Snapshot benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, kernel $(uname -r)"
    echo "procnet: $PROCNET ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); $(ss -V 2>&1 | head -1); psutil $("$PY" -c 'import psutil; print(psutil.__version__)')"
    echo
    cat "$OUT.table"
} >"$OUT"
rm -f "$OUT.table"
cat "$OUT"
