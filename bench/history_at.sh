#!/usr/bin/env bash
# `?at=` of two builds side by side at 20k sockets (bench/holdconns.py
# 10000): both serve the same held connections for WARM seconds (default
# 210, past the checkpoints of the last ~3 minutes), then 40 seconds drawn
# uniformly over the kept window are asked of both, interleaved (the same
# offsets; who is asked first alternates), so a shared machine's load hits
# both alike. Prints median / p90 / max of all, of the moments older than
# 150 s, of each minute's first query (its block not read yet) and of the
# rest, and the three slowest queries of each.
# Usage: BASELINE=/path/to/old/procnet bench/history_at.sh
#   Env: PROCNET (default target/release/procnet), WARM (210), CONNS (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
PROCNET=${PROCNET:-target/release/procnet}
: "${BASELINE:?give BASELINE=<the procnet binary to compare with>}"
[ -x "$PROCNET" ] || cargo build --release --quiet
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
coproc HOLD { exec python3 bench/holdconns.py --conns "${CONNS:-10000}" --max-seconds $(( ${WARM:-210} + 300 )); }
read -r ready <&"${HOLD[0]}"
echo "sockets $(ss -tan | wc -l) load $(cut -d' ' -f1 /proc/loadavg)"
RUST_LOG=warn "$PROCNET" serve --port 18801 --interval 1 --no-containers & a=$!
RUST_LOG=warn "$BASELINE" serve --port 18802 --interval 1 --no-containers & b=$!
trap 'kill $a $b 2>/dev/null; true' EXIT
sleep "${WARM:-210}"
python3 - <<'PY'
import json, random, time, urllib.request
def hist(p): return json.load(urllib.request.urlopen(f"http://127.0.0.1:{p}/api/history"))
hs = {p: hist(p) for p in (18801, 18802)}
rng = random.Random(13)
span = min(h["seqs"][-1][0] - h["seqs"][0][0] for h in hs.values())
res = {18801: [], 18802: []}
seen = {18801: set(), 18802: set()}
for i in range(40):
    off = rng.uniform(0, span)
    # Who is asked first alternates, so neither always pays for the other.
    for p in sorted(hs, reverse=bool(i % 2)):
        h = hs[p]
        lo, hi = h["seqs"][0][0], h["seqs"][-1][0]
        t = lo + off
        t0 = time.perf_counter()
        json.loads(urllib.request.urlopen(f"http://127.0.0.1:{p}/api/graph?at={t/1000:.3f}").read())
        block = int(off // 60000)
        cold = block not in seen[p]
        seen[p].add(block)
        res[p].append(((time.perf_counter() - t0) * 1000, hi - t, cold, i))
for p, name in ((18801, "procnet"), (18802, "baseline")):
    for label, sel in (("all", lambda r: True), ("older than 150 s", lambda r: r[1] > 150000),
                       ("first query of a block", lambda r: r[2]), ("the rest", lambda r: not r[2])):
        v = sorted(r[0] for r in res[p] if sel(r))
        if v:
            print(f"{name} {label} n={len(v)} median {v[len(v)//2]:.1f} p90 {v[min(len(v)-1,int(len(v)*0.9))]:.1f} max {v[-1]:.1f} ms")
    top = sorted(res[p], reverse=True)[:3]
    print(f"{name} slowest: " + ", ".join(f"{ms:.1f} ms (query {i}, {age/1000:.0f} s old{', first of its block' if cold else ''})" for ms, age, cold, i in top))
PY
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
