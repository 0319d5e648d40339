#!/usr/bin/env bash
# Whole-process time of one snapshot with N loopback connections held open,
# against `ss -tanpi` and Python psutil's net_connections(), in the same run.
# Median of RUNS runs each; peak RSS of procnet from /usr/bin/time -v.
# Usage: bench/snapshot.sh [CONNS...]   (default: 10000 50000)
# Env: PROCNET (default target/release/procnet), RUNS (default 7).
set -euo pipefail
cd "$(dirname "$0")/.."
PROCNET=${PROCNET:-target/release/procnet}
RUNS=${RUNS:-7}
[ -x "$PROCNET" ] || cargo build --release --quiet
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
python3 -c 'import psutil' 2>/dev/null || pip install -q psutil
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Median wall seconds of RUNS runs of "$@".
median() {
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time, statistics
runs, cmd = int(sys.argv[1]), sys.argv[2:]
ts = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts):.4f}")
PY
}

printf '| connections | sockets | procnet snapshot | ss -tanpi | psutil net_connections() | vs ss | vs psutil | procnet peak RSS |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for conns in "${@:-10000 50000}"; do
  for n in $conns; do
    coproc HOLD { exec python3 bench/holdconns.py --conns "$n" --max-seconds 900; }
    read -r ready <&"${HOLD[0]}"
    case "$ready" in READY*) ;; *) echo "holdconns failed: $ready" >&2; exit 1 ;; esac
    sockets=$(ss -tan state established | wc -l)
    p=$(median "$PROCNET" snapshot --format graph)
    s=$(median ss -tanpi)
    y=$(median python3 -c 'import psutil; psutil.net_connections("inet")')
    rss=$(/usr/bin/time -v "$PROCNET" snapshot --format graph 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}')
    printf '| %s | %s | %.1f ms | %.1f ms | %.1f ms | %.1fx | %.1fx | %.1f MiB |\n' \
      "$n" "$sockets" "$(echo "$p*1000" | bc -l)" "$(echo "$s*1000" | bc -l)" "$(echo "$y*1000" | bc -l)" \
      "$(echo "$s/$p" | bc -l)" "$(echo "$y/$p" | bc -l)" "$(echo "$rss/1024" | bc -l)"
    eval "exec ${HOLD[1]}>&-"
    wait "$HOLD_PID" 2>/dev/null || true
  done
done
