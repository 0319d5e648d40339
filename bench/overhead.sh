#!/usr/bin/env bash
# CPU and memory of `procnet serve --interval 1` over a steady machine with N
# loopback connections held open and ongoing traffic on some of them.
# Reports CPU as % of one core (utime+stime over the window) and peak RSS.
# In the same run, the CPU time of one `ss -tanpi` at the same socket count
# gives what polling with ss once a second would cost (the ratio column).
# Usage: bench/overhead.sh [CONNS...]  (default: 10000 50000 = 20k and 100k sockets)
# Env: PROCNET (default target/release/procnet), SECONDS_WINDOW (default 30);
#      TIERS (default "T0 T1 T2"): each is run in turn with PROCNET_TIER set,
#      over the same held connections (T0: kernel events, needs root);
#      ACTIVE (default "0 1000"): besides the 4 streams, this many of the
#      held-open-style connections each send 100 bytes once a second;
#      BASELINE (optional, another procnet binary): also the CPU time of one
#      `snapshot --format graph` (median of 3) of $PROCNET and of BASELINE
#      over the same held connections (the one-shot path, no events);
#      BASELINE_TIERS (optional, e.g. "T0"): for these tiers BASELINE's
#      `serve` is measured too, right after $PROCNET's, over the same held
#      connections and traffic (its rows say "(baseline)" after the backend).
# Other sessions' sockets count too; for a machine of your own run it in a
# private network namespace: unshare -n sh -c 'ip link set lo up; bench/overhead.sh 50000
set -euo pipefail
cd "$(dirname "$0")/.."
PROCNET=${PROCNET:-target/release/procnet}
WINDOW=${SECONDS_WINDOW:-30}
[ -x "$PROCNET" ] || cargo build --release --quiet
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
TICKS=$(getconf CLK_TCK)

# Ongoing traffic: 4 connections streaming 1 MB/s each for the whole window.
TRAFFIC=$(cat <<'PY'
import socket, sys, threading, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
port = s.getsockname()[1]
def sink(c):
    while c.recv(1 << 16): pass
def accept():
    while True:
        c, _ = s.accept(); threading.Thread(target=sink, args=(c,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
chunk = b"t" * 65536
end = time.time() + float(sys.argv[1])
while time.time() < end:
    for c in conns:
        for _ in range(16): c.sendall(chunk)
    time.sleep(1)
PY
)

# ACTIVE connections to a sink, each sending 100 bytes once a second.
CHATTY=$(cat <<'PY'
import socket, sys, threading, time
n, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024)
port = s.getsockname()[1]
def sink(c):
    while c.recv(1 << 16): pass
def accept():
    while True:
        c, _ = s.accept(); threading.Thread(target=sink, args=(c,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
end = time.time() + seconds
while time.time() < end:
    t = time.time()
    for c in conns: c.sendall(b"a" * 100)
    time.sleep(max(0, 1 - (time.time() - t)))
PY
)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TIERS=${TIERS:-T0 T1 T2}
ACTIVE=${ACTIVE:-0 1000}

printf '| connections | sockets | active conns | tier | backend | procnet CPU (%% of one core) | peak RSS | last sample took | ss -tanpi at 1 Hz | ss / procnet |\n|---|---|---|---|---|---|---|---|---|---|\n'
for n in "${@:-10000 50000}"; do
  for conns in $n; do
    coproc HOLD { exec python3 bench/holdconns.py --conns "$conns" --max-seconds $(( (WINDOW + 40) * 8 + 120 )); }
    read -r ready <&"${HOLD[0]}"
    case "$ready" in READY*) ;; *) echo "holdconns failed: $ready" >&2; exit 1 ;; esac
    # CPU seconds of one ss -tanpi (median of 3) = share of a core at 1 Hz.
    ss_cpu=$(for _ in 1 2 3; do /usr/bin/time -f '%U %S' ss -tanpi 2>&1 >/dev/null | tail -1; done |
      awk '{print $1 + $2}' | sort -n | sed -n 2p)
    for active in $ACTIVE; do
      chatty=
      if [ "$active" -gt 0 ]; then
        python3 -c "$CHATTY" "$active" $(( (WINDOW + 15) * 3 + 30 )) &
        chatty=$!
        sleep 3
      fi
      runs=
      for tier in $TIERS; do
        runs="$runs $tier:$PROCNET"
        case " ${BASELINE_TIERS:-} " in *" $tier "*) [ -n "${BASELINE:-}" ] && runs="$runs $tier:$BASELINE" ;; esac
      done
      for run in $runs; do
        tier=${run%%:*}; bin=${run#*:}
        label=; [ "$bin" = "$PROCNET" ] || label=" (baseline)"
        python3 -c "$TRAFFIC" $((WINDOW + 15)) &
        traffic=$!
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        PROCNET_TIER=$tier RUST_LOG=warn "$bin" serve --port "$port" --interval 1 &
        pid=$!
        sleep 5   # warm-up: caches filled, first samples taken
        t0=$(cpu_ticks $pid); sleep "$WINDOW"; t1=$(cpu_ticks $pid)
        rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
        health=$(curl -s "http://127.0.0.1:$port/healthz")
        ms=$(echo "$health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lastSampleMs"])')
        backend=$(echo "$health" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("collector",{}).get("backend","?"))')
        got=$(echo "$health" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("collector",{}).get("tier","?"))')
        sockets=$(ss -tan | wc -l)
        kill $pid $traffic 2>/dev/null || true; wait $pid 2>/dev/null || true; wait $traffic 2>/dev/null || true
        cpu=$(echo "($t1 - $t0) * 100 / $TICKS / $WINDOW" | bc -l)
        printf '| %s | %s | %s | %s | %s | %.1f %% | %.1f MiB | %.0f ms | %.0f %% | %.0fx |\n' "$conns" "$sockets" "$active" "$got" "$backend$label" \
          "$cpu" "$(echo "$rss/1024" | bc -l)" "$ms" "$(echo "$ss_cpu * 100" | bc -l)" "$(echo "$ss_cpu * 100 / ($cpu + 0.01)" | bc -l)"
      done
      if [ -n "$chatty" ]; then kill "$chatty" 2>/dev/null || true; wait "$chatty" 2>/dev/null || true; fi
    done
    if [ -n "${BASELINE:-}" ]; then
      for bin in "$PROCNET" "$BASELINE"; do
        snap_cpu=$(for _ in 1 2 3; do /usr/bin/time -f '%U %S' "$bin" snapshot --format graph 2>&1 >/dev/null | tail -1; done |
          awk '{print $1 + $2}' | sort -n | sed -n 2p)
        echo "snapshot CPU at $conns connections: $bin ${snap_cpu}s (median of 3)"
      done
    fi
    eval "exec ${HOLD[1]}>&-"; wait "$HOLD_PID" 2>/dev/null || true
  done
done
