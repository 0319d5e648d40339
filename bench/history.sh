#!/usr/bin/env bash
# History at 20k sockets (bench/holdconns.py 10000 connections), one run:
# - memory per hour of in-memory history, calm (only held connections) and
#   busy (plus churn: short connections opened and closed all the time, and
#   4 streams of 1 MB/s): /api/history `bytes` after the window, per hour;
# - disk bytes per hour of `--record` (segment + index after SIGTERM);
# - `?at=` latency: /api/graph?at= for random seconds over the whole kept
#   window (median, p90, max; also of the moments older than the
#   checkpoints and of each block's first query);
# - the sampler's extra CPU for keeping history: CPU of the same server
#   with `--history-size 0` (no history) and with history, same machine.
# In the same run, what a user would do instead: log `ss -tanpi` once a
# second (bytes per hour raw and gzip -6), the ratio column.
# Usage: bench/history.sh  Env: PROCNET (default target/release/procnet),
#   CONNS (10000), WINDOW (seconds per phase, default 90: a block is 60 s),
#   BASELINE (another procnet binary: its `?at=` latency and sampler CPU
#   are measured too, in the same run on the same held connections),
#   AT_QUERIES (60), AT_RECENT_S (180), BUSY (1; 0 skips the busy phase).
set -euo pipefail
cd "$(dirname "$0")/.."
PROCNET=${PROCNET:-target/release/procnet}
CONNS=${CONNS:-10000}
WINDOW=${WINDOW:-90}
[ -x "$PROCNET" ] || cargo build --release --quiet
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
TICKS=$(getconf CLK_TCK)
TMP=$(mktemp -d)
pid=
trap 'kill $pid $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

CHURN=$(cat <<'PY'
import socket, sys, threading, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(256)
port = s.getsockname()[1]
def sink(c):
    while c.recv(1 << 16): pass
    c.close()
def accept():
    while True:
        c, _ = s.accept(); threading.Thread(target=sink, args=(c,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
streams = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
chunk = b"t" * 65536
end = time.time() + float(sys.argv[1])
while time.time() < end:
    t = time.time()
    for c in streams:
        for _ in range(16): c.sendall(chunk)
    # 20 connections a second (0.1 %/s of 20k sockets), each sends 2 kB.
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", port)); c.sendall(b"x" * 2048); c.close()
    time.sleep(max(0, 1 - (time.time() - t)))
PY
)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

coproc HOLD { exec python3 bench/holdconns.py --conns "$CONNS" --max-seconds $((WINDOW * 6 + 600)); }
read -r ready <&"${HOLD[0]}"
case "$ready" in READY*) ;; *) echo "holdconns failed: $ready" >&2; exit 1 ;; esac
sockets=$(ss -tan | wc -l)
echo "sockets $sockets, load at start $(cut -d' ' -f1-3 /proc/loadavg)"

# phase ARGS... — runs a server for WINDOW s (after a 5 s warm-up), writes
# "cpu_pct history_bytes port" to $TMP/phase and leaves the server running
# as $pid (in this shell: no subshell, so $pid is ours to stop).
phase() {
  local port bin=${BIN:-$PROCNET}; port=$(free_port)
  RUST_LOG=warn "$bin" serve --port "$port" --interval 1 --no-containers "$@" &
  pid=$!
  sleep 5
  local t0 t1; t0=$(cpu_ticks $pid); sleep "$WINDOW"; t1=$(cpu_ticks $pid)
  local bytes; bytes=$(curl -s "http://127.0.0.1:$port/api/history" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')
  echo "$(echo "($t1 - $t0) * 100 / $TICKS / $WINDOW" | bc -l) $bytes $port" > "$TMP/phase"
}

# at_latency PORT — `?at=` latency over the whole kept window: AT_QUERIES
# (default 60) seconds drawn uniformly from oldest to newest (the same
# seeded offsets for every build), in that order. Prints, in ms:
# "median p90 max" of all, of those older than AT_RECENT_S (default 180 s:
# past the checkpoints of 20k sockets) and of the first query of each
# minute-long block (its block not decoded yet), then the count older.
at_latency() {
  python3 - "$1" "${AT_QUERIES:-60}" "${AT_RECENT_S:-180}" <<'PY'
import json, random, sys, time, urllib.request
port, n, recent_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
h = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/history"))
times = [t for t, _ in h["seqs"]]
lo, hi = times[0], times[-1]
rng = random.Random(13)
offsets = [rng.uniform(0, hi - lo) for _ in range(n)]
every, older, cold, seen = [], [], [], set()
for off in offsets:
    t = lo + off
    t0 = time.perf_counter()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/graph?at={t/1000:.3f}").read()
    ms = (time.perf_counter() - t0) * 1000
    json.loads(body)
    every.append(ms)
    if hi - t > recent_s * 1000:
        older.append(ms)
    block = int(off // 60000)
    if block not in seen:
        seen.add(block)
        cold.append(ms)
def stats(v):
    if not v:
        return "- - -"
    v = sorted(v)
    return f"{v[len(v)//2]:.1f} {v[min(len(v)-1, int(len(v)*0.9))]:.1f} {v[-1]:.1f}"
print(stats(every), stats(older), stats(cold), len(older))
PY
}

phase --history-size 0; read -r cpu_off _ _ < "$TMP/phase"; kill $pid; wait $pid 2>/dev/null || true
phase --record "$TMP/rec"; read -r cpu_calm bytes_calm port < "$TMP/phase"
lat=$(at_latency "$port")
kill -TERM $pid; wait $pid 2>/dev/null || true
disk=$(du -cb "$TMP"/rec/* | tail -1 | cut -f1)
cpu_busy=0 bytes_busy=0
if [ "${BUSY:-1}" != 0 ]; then
  python3 -c "$CHURN" $((WINDOW + 20)) &
  churn=$!
  phase; read -r cpu_busy bytes_busy _ < "$TMP/phase"; kill $pid; wait $pid 2>/dev/null || true
  kill $churn 2>/dev/null || true
fi
if [ -n "${BASELINE:-}" ]; then
  BIN=$BASELINE phase --history-size 0; read -r base_off _ _ < "$TMP/phase"; kill $pid; wait $pid 2>/dev/null || true
  BIN=$BASELINE phase --record "$TMP/rec-base"; read -r base_calm _ port < "$TMP/phase"
  base_lat=$(at_latency "$port")
  kill $pid; wait $pid 2>/dev/null || true
fi

# The alternative: ss -tanpi once a second into a log.
ss_bytes=$(ss -tanpi | wc -c)
ss_gz=$(ss -tanpi | gzip -6 | wc -c)
eval "exec ${HOLD[1]}>&-"; wait "$HOLD_PID" 2>/dev/null || true

per_hour() { echo "$1 * 3600 / $WINDOW / 1048576" | bc -l; }
printf '| %s | value | `ss -tanpi` log at 1 Hz | ratio |\n|---|---:|---:|---:|\n' "$sockets sockets"
printf '| memory per hour, calm | %.1f MiB | %.0f MiB raw | %.0fx smaller |\n' "$(per_hour "$bytes_calm")" "$(echo "$ss_bytes*3600/1048576" | bc -l)" "$(echo "$ss_bytes*$WINDOW/$bytes_calm" | bc -l)"
printf '| memory per hour, busy | %.1f MiB | | |\n' "$(per_hour "$bytes_busy")"
printf '| disk per hour (`--record`), calm | %.1f MiB | %.0f MiB gzip -6 | %.1fx smaller |\n' "$(per_hour "$disk")" "$(echo "$ss_gz*3600/1048576" | bc -l)" "$(echo "$ss_gz*$WINDOW/$disk" | bc -l)"
at_rows() { # LABEL "median p90 max ×3 count"
  set -- "$1" $2
  printf '| %s `?at=` any second, median / p90 / max of %s | %s / %s / %s ms | | |\n' "$1" "${AT_QUERIES:-60}" "$2" "$3" "$4"
  printf '| %s `?at=` older than %s s (%s of them), median / p90 / max | %s / %s / %s ms | | |\n' "$1" "${AT_RECENT_S:-180}" "${11}" "$5" "$6" "$7"
  printf '| %s `?at=` first query of a block, median / p90 / max | %s / %s / %s ms | | |\n' "$1" "$8" "$9" "${10}"
}
at_rows procnet "$lat"
printf '| sampler CPU, no history → history (calm) | %.2f → %.2f %% of a core (+%.2f) | | |\n' "$cpu_off" "$cpu_calm" "$(echo "$cpu_calm - $cpu_off" | bc -l)"
printf '| sampler CPU with history, busy | %.2f %% of a core | | |\n' "$cpu_busy"
printf '| default cap (64 MiB) holds, calm | %.1f hours | | |\n' "$(echo "64 / ($bytes_calm * 3600 / $WINDOW / 1048576)" | bc -l)"
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${BASELINE:-}" ]; then
  at_rows "baseline ($BASELINE)" "$base_lat"
  printf '| baseline sampler CPU, no history → history (calm) | %.2f → %.2f %% of a core (+%.2f) | | |\n' "$base_off" "$base_calm" "$(echo "$base_calm - $base_off" | bc -l)"
fi
