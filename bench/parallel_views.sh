#!/usr/bin/env bash
# Memory and work of `procnet serve` under many clients asking for the
# biggest view at once: CLIENTS parallel GET /api/connections (each on its
# own connection, released together), ROUNDS times, with N loopback
# connections held open (2N sockets, bench/holdconns.py).
#
# Reports, for the whole load: peak RSS (VmHWM) before and after, RSS after,
# the number of /api/connections builds (`procnet_view_builds_total
# {view="connections"}` from /metrics, read before and after), the samples
# taken meanwhile, procnet's CPU time, and per round the wall time, the body
# size and the Content-Encoding the clients got.
#
# Usage: bench/parallel_views.sh [CONNS]   (default 50000 = 100k sockets)
# Env: PROCNET (default target/release/procnet), CLIENTS (default 20),
#      ROUNDS (default 3), ENCODINGS (default "identity gzip": one set of
#      rounds per Accept-Encoding).
set -euo pipefail
cd "$(dirname "$0")/.."
PROCNET=${PROCNET:-target/release/procnet}
CONNS=${1:-50000}
CLIENTS=${CLIENTS:-20}
ROUNDS=${ROUNDS:-3}
ENCODINGS=${ENCODINGS:-identity gzip}
[ -x "$PROCNET" ] || cargo build --release --quiet
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
TICKS=$(getconf CLK_TCK)

coproc HOLD { exec python3 bench/holdconns.py --conns "$CONNS" --max-seconds 900; }
read -r ready <&"${HOLD[0]}"
case "$ready" in READY*) ;; *) echo "holdconns failed: $ready" >&2; exit 1 ;; esac
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
RUST_LOG=warn "$PROCNET" serve --port "$port" --interval 1 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; eval "exec ${HOLD[1]}>&-"; rm -f "$log"' EXIT

python3 - "$port" "$pid" "$CLIENTS" "$ROUNDS" "$TICKS" "$ENCODINGS" "$CONNS" <<'PY'
import http.client, json, re, sys, threading, time
port, pid, clients, rounds, ticks = map(int, sys.argv[1:6])
encodings = sys.argv[6].split()
host = {"Host": f"127.0.0.1:{port}"}

def get(path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", path, headers={**host, **(headers or {})})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body

def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / ticks

def counters():
    _, body = get("/metrics")
    text = body.decode()
    builds = re.search(r'^procnet_view_builds_total\{view="connections"\} (\d+)', text, re.M)
    samples = re.search(r'^procnet_samples_total (\d+)', text, re.M)
    return (int(builds.group(1)) if builds else None, int(samples.group(1)))

# Wait for the server and three samples, so the baseline is steady.
deadline = time.time() + 120
while True:
    try:
        if counters()[1] >= 3:
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("procnet did not sample within 120 s")
    time.sleep(0.5)

hwm0, rss0 = status("VmHWM"), status("VmRSS")
builds0, samples0 = counters()
cpu0 = cpu()
rows = []
for enc in encodings:
    for n in range(rounds):
        barrier = threading.Barrier(clients)
        results = [None] * clients
        def client(i):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            c.connect()
            barrier.wait()
            t = time.perf_counter()
            c.request("GET", "/api/connections", headers={**host, "Accept-Encoding": enc})
            r = c.getresponse()
            body = r.read()
            results[i] = (r.status, len(body), r.getheader("Content-Encoding") or "identity",
                          time.perf_counter() - t)
            c.close()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        t0 = time.perf_counter()
        for t in threads: t.start()
        for t in threads: t.join()
        wall = time.perf_counter() - t0
        sizes = sorted({r[1] for r in results})
        got = sorted({r[2] for r in results})
        ok = sum(1 for r in results if r[0] == 200)
        rows.append((enc, n + 1, ok, wall, sizes, got))
        time.sleep(1.5)  # let a new sample arrive: each round is a fresh view
cpu1 = cpu()
builds1, samples1 = counters()
hwm1, rss1 = status("VmHWM"), status("VmRSS")

print(f"sockets: {2 * int(sys.argv[7]):,} (held connections x2); clients: {clients}; rounds per encoding: {rounds}")
print("| Accept-Encoding | round | 200s | wall | body bytes | Content-Encoding |")
print("|---|---:|---:|---:|---:|---|")
for enc, n, ok, wall, sizes, got in rows:
    print(f"| {enc} | {n} | {ok}/{clients} | {wall:.2f} s | {', '.join(f'{s:,}' for s in sizes)} | {', '.join(got)} |")
builds = "n/a (no counter)" if builds0 is None else str(builds1 - builds0)
print()
print(f"requests: {clients * rounds * len(encodings)}; samples meanwhile: {samples1 - samples0}; "
      f"/api/connections builds: {builds}")
print(f"peak RSS (VmHWM): {hwm0 / 1024:.1f} MiB before the load -> {hwm1 / 1024:.1f} MiB after; "
      f"RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB")
print(f"procnet CPU time during the load: {cpu1 - cpu0:.2f} s")
PY
