#!/usr/bin/env bash
# Snapshot benchmark: whole-process time of `procnet snapshot --format graph`
# against `ss -tanpi` and psutil's net_connections(), with N loopback TCP
# connections held open (2N sockets), in the same run; plus procnet's peak RSS.
#
# Usage: bench/snapshot.sh                 # 10,000 and 50,000 connections
#        CONNS="2000" RUNS=3 bench/snapshot.sh
#        USER=nobody bench/snapshot.sh     # tier T2: everything as that user
# Env:   PROCNET (default target/release/procnet, built if missing),
#        CONNS (space-separated connection counts), RUNS (>= 5 for reports),
#        OUT (markdown summary, default $TMPDIR/procnet-snapshot-<time>.md),
#        USER (when it is not the user running the script, which must then be
#        root: the held connections, procnet and `ss -tanpi` all run as that
#        user, in one hyperfine run, and CPU time (user+sys) is reported
#        beside wall time; psutil is left out), PROCNET_BEFORE (USER mode: a
#        second procnet binary, e.g. an older build, measured in the same run).
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
AS_USER=""
if [ -n "${USER:-}" ] && [ "${USER}" != "$(id -un)" ]; then
    AS_USER=$USER
    [ "$(id -u)" = 0 ] || { log "USER=$AS_USER needs root (runuser)"; exit 1; }
    id "$AS_USER" >/dev/null || { log "no such user: $AS_USER"; exit 1; }
fi
if [ -z "$AS_USER" ] && ! "$PY" -c 'import psutil' 2>/dev/null; then
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

# --- tier T2: everything as $AS_USER ----------------------------------------
if [ -n "$AS_USER" ]; then
    # The binaries and the holder are copied where that user may run them.
    RUN_DIR=$(mktemp -d)
    chmod 755 "$RUN_DIR"
    cp "$PROCNET" "$RUN_DIR/procnet"
    cp bench/holdconns.py "$RUN_DIR/holdconns.py"
    BEFORE=""
    if [ -n "${PROCNET_BEFORE:-}" ]; then
        cp "$PROCNET_BEFORE" "$RUN_DIR/procnet-before"
        BEFORE="$RUN_DIR/procnet-before"
    fi
    chmod 755 "$RUN_DIR"/*
    chown "$AS_USER" "$HOLD_DIR"
    trap 'cleanup; rm -rf "$RUN_DIR"' EXIT INT TERM
    PY_USER=${PYTHON_USER:-/usr/bin/python3}
    start_user_holder() { # $1 = connections
        mkfifo "$HOLD_DIR/in.$1"
        timeout 1000 runuser -u "$AS_USER" -- "$PY_USER" "$RUN_DIR/holdconns.py" \
            --conns "$1" --max-seconds 900 <"$HOLD_DIR/in.$1" >"$HOLD_DIR/out.$1" 2>&1 &
        HOLD_PID=$!
        exec 9>"$HOLD_DIR/in.$1"
        for _ in $(seq 1200); do
            grep -q READY "$HOLD_DIR/out.$1" && return 0
            kill -0 "$HOLD_PID" 2>/dev/null || break
            sleep 0.1
        done
        log "holdconns did not get ready:"; cat "$HOLD_DIR/out.$1" >&2
        exit 1
    }
    cpu() { # hyperfine JSON, command index -> mean user+sys seconds
        "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]; print(r["user"]+r["system"])' "$1" "$2"
    }
    {
        echo "| connections | sockets | load (1 min) | procnet wall (median) | procnet CPU (user+sys) | ss -tanpi wall (median) | ss CPU | ss / procnet wall | ss / procnet CPU |${BEFORE:+ before: wall | before: CPU | before: ss / wall | before: ss / CPU |}"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|${BEFORE:+---:|---:|---:|---:|}"
    } >"$OUT.table"
    for n in $CONNS; do
        log "holding $n connections as $AS_USER"
        start_user_holder "$n"
        sockets=$(ss -tanH state established | wc -l)
        json="$HOLD_DIR/hf.$n.json"
        load=$(cut -d' ' -f1 /proc/loadavg)
        log "$sockets established TCP sockets; benchmarking as $AS_USER ($RUNS runs each, load $load)"
        before_args=()
        [ -n "$BEFORE" ] && before_args=(-n before "$BEFORE snapshot --format graph")
        timeout 2400 runuser -u "$AS_USER" -- hyperfine --style basic --warmup 1 --runs "$RUNS" -N \
            --export-json "$json" \
            -n procnet "$RUN_DIR/procnet snapshot --format graph" \
            -n ss "ss -tanpi" "${before_args[@]}" >&2
        load="$load-$(cut -d' ' -f1 /proc/loadavg)"
        stop_holder
        p=$(median "$json" 0); s=$(median "$json" 1); pc=$(cpu "$json" 0); sc=$(cpu "$json" 1)
        b=0; bc=0
        if [ -n "$BEFORE" ]; then b=$(median "$json" 2); bc=$(cpu "$json" 2); fi
        "$PY" - "$n" "$sockets" "$load" "$p" "$pc" "$s" "$sc" "$b" "$bc" >>"$OUT.table" <<'EOF'
import sys
n, sockets, load = sys.argv[1:4]
p, pc, s, sc, b, bc = map(float, sys.argv[4:])
row = (f"| {int(n):,} | {int(sockets):,} | {load} | {p*1000:.1f} ms | {pc*1000:.1f} ms "
       f"| {s*1000:.0f} ms | {sc*1000:.0f} ms | {s/p:.1f}x | {sc/pc:.1f}x |")
if b > 0:
    row += f" {b*1000:.1f} ms | {bc*1000:.1f} ms | {s/b:.1f}x | {sc/bc:.1f}x |"
print(row)
EOF
    done
    {
        echo "Snapshot benchmark as $AS_USER (tier T2), $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, kernel $(uname -r)"
        echo "procnet: $PROCNET ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))${BEFORE:+, before: $PROCNET_BEFORE}; $(ss -V 2>&1 | head -1)"
        echo
        cat "$OUT.table"
    } >"$OUT"
    rm -f "$OUT.table"
    cat "$OUT"
    exit 0
fi

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
