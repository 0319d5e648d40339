#!/usr/bin/env bash
# Fleet mode at scale, on one machine (root): 10 host network namespaces on
# a bridge in a hub namespace (198.19.99.0/24, benchmark space), one
# `procnet serve` per host, 500 flows per host (a client process on host i
# holds one connection to each of 500 listen ports of host i+1, sending a
# little every second), a real Prometheus in the hub scraping every host
# every 2 s, and `procnet serve --fleet` in the hub.
#
# Measures:
#  1. fleet /api/graph latency: `?at=` (six instant queries + the join, what
#     every live map costs) and the live document (what a page fetches),
#     median and p90; against the same join written in PromQL and asked of
#     Prometheus directly (query Q1 of shared/design/fleet-queries.sh,
#     what a Grafana Node Graph panel would run), in the same run;
#  2. Prometheus series per host;
#  3. one host's /metrics at 20k sockets (bench/holdconns.py, 10,000
#     connections in a namespace of its own): scrape time and size, against
#     `ss -tanpi` listing the same sockets.
#  4. with PROCNET_BEFORE=BINARY (an older procnet), the same fleet read by
#     both binaries in the same run, asked in turn: before / after;
#  5. where a view's time goes: each query's time and Prometheus' own
#     `stats=all` timings, asked directly (the plain selectors of now and
#     the aggregated queries of before), and the fleet server's own
#     fetch / decode / join split (its trace log).
# Usage: sudo [PROCNET_BEFORE=old/procnet] bench/fleet.sh [HOSTS] [FLOWS]   (default 10 500)
set -euo pipefail
cd "$(dirname "$0")/.."
PROCNET=${PROCNET:-target/release/procnet}
HOSTS=${1:-10}
FLOWS=${2:-500}
[ "$(id -u)" = 0 ] || { echo "bench/fleet.sh needs root (network namespaces)" >&2; exit 1; }
[ -x "$PROCNET" ] || cargo build --release --quiet
PROCNET=$(realpath "$PROCNET")
TAG=pnb$$
HUB=$TAG-hub
HOLD=$TAG-hold
NET=198.19.99
WORK=$(mktemp -d)
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
ln -s "$PY" "$WORK/fleetsrv"; ln -s "$PY" "$WORK/fleetcli"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for ns in $(ip netns list | awk '{print $1}' | grep "^$TAG-" || true); do ip netns del "$ns"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
bg() { "$@" >"$WORK/log.$((${#PIDS[@]}))" 2>&1 & PIDS+=($!); }

ip netns add "$HUB"
ip -n "$HUB" link set lo up
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" link set br0 up
ip -n "$HUB" addr add "$NET.254/24" dev br0
echo "tok" >"$WORK/token"
targets=()
for i in $(seq 1 "$HOSTS"); do
  ns=$TAG-h$i
  ip netns add "$ns"
  ip link add "p$i" netns "$HUB" type veth peer name eth0 netns "$ns"
  ip -n "$HUB" link set "p$i" master br0
  ip -n "$HUB" link set "p$i" up
  ip -n "$ns" addr add "$NET.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  bg ip netns exec "$ns" "$PROCNET" serve --bind 0.0.0.0 --port 9100 --token-file "$WORK/token" \
    --host-name "host$i" --fleet-networks 198.18.0.0/15 --interval 1 --no-containers
  targets+=("'$NET.$i:9100'")
done
cat >"$WORK/prom.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: procnet
    bearer_token: tok
    static_configs:
      - targets: [$(IFS=,; echo "${targets[*]}")]
EOF
bg ip netns exec "$HUB" /usr/bin/prometheus --config.file="$WORK/prom.yml" \
  --storage.tsdb.path="$WORK/tsdb" --web.listen-address=127.0.0.1:9090 --log.level=warn

# 500 listen ports per host; host i's client holds one connection to each
# port of host i+1 and sends 100 bytes on each every second.
SERVER='
import socket, sys, selectors
sel = selectors.DefaultSelector()
for p in range(20000, 20000 + int(sys.argv[1])):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(16); s.setblocking(False); sel.register(s, selectors.EVENT_READ, "l")
while True:
    for k, _ in sel.select():
        if k.data == "l":
            c, _ = k.fileobj.accept(); c.setblocking(False); sel.register(c, selectors.EVENT_READ, "c")
        else:
            try:
                d = k.fileobj.recv(65536)
            except BlockingIOError:
                continue
            if not d:
                sel.unregister(k.fileobj); k.fileobj.close()
'
CLIENT='
import socket, sys, time
ip, n = sys.argv[1], int(sys.argv[2])
held = []
for p in range(20000, 20000 + n):
    for _ in range(50):
        try:
            held.append(socket.create_connection((ip, p), timeout=5)); break
        except OSError:
            time.sleep(0.2)
while True:
    for c in held:
        c.send(b"x" * 100)
    time.sleep(1)
'
for i in $(seq 1 "$HOSTS"); do
  bg ip netns exec "$TAG-h$i" "$WORK/fleetsrv" -c "$SERVER" "$FLOWS"
done
sleep 2
for i in $(seq 1 "$HOSTS"); do
  next=$(( i % HOSTS + 1 ))
  bg ip netns exec "$TAG-h$i" "$WORK/fleetcli" -c "$CLIENT" "$NET.$next" "$FLOWS"
done
port=18765
FLEET_FLAGS=(--interval 1 --fleet-timeout 30 --fleet-rate-window 10s --fleet http://127.0.0.1:9090)
ip netns exec "$HUB" env RUST_LOG=warn,procnet::fleet=trace "$PROCNET" serve --port $port "${FLEET_FLAGS[@]}" \
  >/dev/null 2>"$WORK/fleet-trace.log" & PIDS+=($!)
before_port=0
if [ -n "${PROCNET_BEFORE:-}" ]; then
  before_port=18766
  bg ip netns exec "$HUB" env RUST_LOG=warn "$(realpath "$PROCNET_BEFORE")" serve --port $before_port "${FLEET_FLAGS[@]}"
fi

echo "waiting for the fleet map ($HOSTS hosts x $FLOWS flows)…" >&2
ip netns exec "$HUB" python3 - "$port" "$before_port" "$HOSTS" "$FLOWS" "$WORK/fleet-trace.log" <<'PY'
import http.client, json, re, sys, time, statistics, urllib.parse
port, before_port, hosts, flows = (int(a) for a in sys.argv[1:5])
trace_log = sys.argv[5]
want = hosts * flows
def get(p, path):
    # A connection per request: a kept-alive one the server closed while
    # idle would be retried with a stale `?at=`.
    c = http.client.HTTPConnection("127.0.0.1", p, timeout=60)
    c.request("GET", path, headers={"Host": f"127.0.0.1:{p}"})
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, (p, path, r.status, body[:300])
    return body
servers = [("after", port)] + ([("before", before_port)] if before_port else [])
deadline = time.time() + 300
for name, p in servers:
    while True:
        g = json.loads(get(p, "/api/graph"))
        n = sum(1 for e in g["edges"] if e["from"].endswith("/fleetcli") and e["to"].endswith("/fleetsrv"))
        if n >= want:
            break
        if time.time() > deadline:
            sys.exit(f"{name}: only {n} of {want} fleet edges after 300 s")
        time.sleep(2)
time.sleep(12)  # a few scrapes with every flow open, so rates exist

def stats(ts):
    ts = sorted(ts)
    return statistics.median(ts), ts[int(len(ts) * 0.9)]
def ms(fn):
    t = time.perf_counter(); out = fn(); return (time.perf_counter() - t) * 1000, out
# Asked in turn (after, before, after, …) so that both see the same load.
res = {name: {"at": [], "live": [], "cached": []} for name, _ in servers}
docs = {}
for i in range(20):
    for name, p in servers:
        t, body = ms(lambda: get(p, f"/api/graph?at={time.time() - 3:.3f}"))
        res[name]["at"].append(t); docs[name] = body
for i in range(50):
    for name, p in servers:
        res[name]["live"].append(ms(lambda: get(p, "/api/graph"))[0])
# A moment older than SETTLED_SECS (30 s), so cached once asked, and inside
# the engine's data (on a quiet machine the map fills in under 40 s).
oldest = json.loads(get(port, "/api/history"))["oldestMs"] / 1000
time.sleep(max(0, oldest + 41 - time.time()))
settled = time.time() - 40
for name, p in servers:
    get(p, f"/api/graph?at={settled:.3f}")
for i in range(20):
    for name, p in servers:
        # Scrubbing back and forth over the same moments.
        res[name]["cached"].append(ms(lambda: get(p, f"/api/graph?at={settled + (i % 2) * 0.0001:.4f}"))[0])
hz = json.loads(get(port, "/healthz"))["fleet"]["lastQueryMs"]
hz_before = json.loads(get(before_port, "/healthz"))["fleet"]["lastQueryMs"] if before_port else None

def prom(q, t=None, extra=None):
    p = http.client.HTTPConnection("127.0.0.1", 9090, timeout=60)
    args = {"query": q, "time": f"{(t or time.time() - 3):.3f}"}
    args.update(extra or {})
    p.request("GET", "/api/v1/query?" + urllib.parse.urlencode(args))
    r = p.getresponse(); raw = r.read(); d = json.loads(raw)
    assert d["status"] == "success", d
    return d, len(raw)
q1 = '''sum by (host, process, container, peer_ip, peer_port, proto) (
     rate(procnet_flow_sent_bytes_total{role="client"}[10s]) + rate(procnet_flow_received_bytes_total{role="client"}[10s]))
   * on (peer_ip, peer_port, proto) group_left (server_host, server_process, server_container)
   label_replace(label_replace(label_replace(label_replace(label_replace(
       max by (host, process, container, ip, port, proto) (procnet_listen_info),
     "peer_ip", "$1", "ip", "(.*)"), "peer_port", "$1", "port", "(.*)"),
     "server_host", "$1", "host", "(.*)"), "server_process", "$1", "process", "(.*)"), "server_container", "$1", "container", "(.*)")'''
q1_ts = [ms(lambda: prom(q1))[0] for _ in range(20)]
m_q1, p_q1 = stats(q1_ts)
q1_rows = len(prom(q1)[0]["data"]["result"])

# Where the time goes: each query asked alone, 5 times; Prometheus' own timings.
FL = "host, role, proto, process, container, local_port, peer_ip, peer_port"
MANAGED = 'label_replace(max by (ip) (procnet_host_address_info), "peer_ip", "$1", "ip", "(.*)")'
def fam(name, metric, rate):
    wrap = (lambda s: f"rate({s}[10s])") if rate else (lambda s: s)
    client = wrap(metric + '{role="client"}')
    server = wrap(metric + '{role="server"}')
    return f'label_replace(max by ({FL}) ({client} or ({server} unless on (peer_ip) {MANAGED})), "m", "{name}", "", "")'
old_queries = [
    ("sent (aggregated)", fam("sent", "procnet_flow_sent_bytes_total", False)),
    ("received (aggregated)", fam("received", "procnet_flow_received_bytes_total", False)),
    ("open (aggregated)", fam("open", "procnet_flow_open_connections", False)),
    ("sent rate[10s] (aggregated)", fam("sent_rate", "procnet_flow_sent_bytes_total", True)),
    ("received rate[10s] (aggregated)", fam("received_rate", "procnet_flow_received_bytes_total", True)),
    ("info (aggregated)", 'label_replace(max by (host, proto, ip, port, process, container) (procnet_listen_info), "m", "listen", "", "") or label_replace(max by (host, ip) (procnet_host_address_info), "m", "address", "", "")'),
]
new_queries = [(q, q) for q in ["procnet_flow_sent_bytes_total", "procnet_flow_received_bytes_total",
    "procnet_flow_open_connections", "procnet_listen_info", "procnet_host_address_info"]]
print("PROFILE| query | wall median ms | Prometheus execTotalTime / innerEvalTime / resultSortTime ms | rows | answer KiB |")
print("PROFILE|---|---:|---:|---:|---:|")
for label, q in old_queries + new_queries:
    walls, ex, inner, sort = [], [], [], []
    for _ in range(5):
        w, (d, size) = ms(lambda: prom(q, extra={"stats": "all"}))
        walls.append(w)
        tm = d["data"].get("stats", {}).get("timings", {})
        ex.append(tm.get("execTotalTime", 0) * 1000); inner.append(tm.get("innerEvalTime", 0) * 1000); sort.append(tm.get("resultSortTime", 0) * 1000)
    rows = len(d["data"]["result"])
    print(f"PROFILE| `{label}` | {statistics.median(walls):.0f} | {statistics.median(ex):.0f} / {statistics.median(inner):.0f} / {statistics.median(sort):.0f} | {rows} | {size/1024:.0f} |")
# The fleet server's own split, from its trace log (the ?at= views above).
fetch, decode, join, views = {}, {}, [], []
for line in open(trace_log, errors="replace"):
    m = re.search(r"query (\S+): fetch ([\d.]+) ms, decode ([\d.]+) ms", line)
    if m:
        fetch.setdefault(m[1], []).append(float(m[2])); decode.setdefault(m[1], []).append(float(m[3]))
    m = re.search(r"view: queries ([\d.]+) ms, join ([\d.]+) ms", line)
    if m:
        views.append(float(m[1])); join.append(float(m[2]))
for q in sorted(fetch):
    print(f"SPLIT| `{q}` | fetch {statistics.median(fetch[q]):.0f} ms | decode {statistics.median(decode[q]):.1f} ms |")
if views:
    print(f"SPLIT| a view's 7 queries at once | {statistics.median(views):.0f} ms | join {statistics.median(join):.1f} ms |")

def scrape():
    h = http.client.HTTPConnection("198.19.99.1", 9100, timeout=30)
    h.request("GET", "/metrics", headers={"Host": "198.19.99.1:9100", "Authorization": "Bearer tok"})
    r = h.getresponse(); b = r.read(); assert r.status == 200, r.status
    return b
scr = [ms(scrape) for _ in range(20)]
m_scrape, p_scrape = stats([t for t, _ in scr]); scraped = scr[-1][1]
series = prom('count by (host) ({__name__=~"procnet_flow_.+|procnet_listen_info|procnet_host_address_info"})')[0]["data"]["result"]
allseries = prom('count by (instance) ({job="procnet"})')[0]["data"]["result"]
per_host = sorted(int(float(s["value"][1])) for s in series)
per_target = sorted(int(float(s["value"][1])) for s in allseries)
load = open("/proc/loadavg").read().split()[0]
doc = json.loads(docs["after"])
print(f"| load average (1 min) at the end (2 cores, shared) | {load} |")
print(f"| hosts × flows | {hosts} × {flows} ({len(doc['nodes'])} nodes, {len(doc['edges'])} edges, {len(docs['after'])/1024:.0f} KiB) |")
for name, _ in servers:
    r = res[name]
    print(f"| {name}: fleet `/api/graph?at=` (a new moment each time), median / p90 | **{stats(r['at'])[0]:.0f} ms** / {stats(r['at'])[1]:.0f} ms |")
    print(f"| {name}: fleet `/api/graph?at=` (a moment asked before: scrubbing), median / p90 | {stats(r['cached'])[0]:.1f} ms / {stats(r['cached'])[1]:.1f} ms |")
    print(f"| {name}: fleet `/api/graph` live (published each interval), median / p90 | {stats(r['live'])[0]:.2f} ms / {stats(r['live'])[1]:.2f} ms |")
hb = "" if hz_before is None else f" / {hz_before:.0f} ms"
print(f"| the live map's last round of queries + join (`/healthz` `fleet.lastQueryMs`), after" + (" / before" if before_port else "") + f" | {hz:.0f} ms{hb} |")
print(f"| the same join as one PromQL query (Q1) on Prometheus, median / p90 | {m_q1:.0f} ms / {p_q1:.0f} ms ({q1_rows} rows) |")
print(f"| ratio fleet `?at=` / PromQL Q1, after" + (" / before" if before_port else "") + " | " + " / ".join(f"{stats(res[n]['at'])[0] / m_q1:.2f}×" for n, _ in servers) + " |")
print(f"| fleet series per host (flow, listen, address) | {per_host[0]}–{per_host[-1]} |")
print(f"| all series per scrape target (with procnet's own) | {per_target[0]}–{per_target[-1]} |")
print(f"| one fleet host's `/metrics` ({flows} client + {flows} server flows): scrape median / p90, size | {m_scrape:.1f} ms / {p_scrape:.1f} ms, {len(scraped)/1024:.0f} KiB |")
PY

# FLEET_BENCH_PAUSE=SECS keeps the fleet up that long, for queries by hand.
sleep "${FLEET_BENCH_PAUSE:-0}"

# One host's /metrics at 20k sockets, in a namespace of its own.
ip netns add "$HOLD"
ip -n "$HOLD" link set lo up
exec {hold_in}> >(ip netns exec "$HOLD" python3 bench/holdconns.py --conns 10000 --max-seconds 300 >"$WORK/hold.out")
PIDS+=($!)
for _ in $(seq 1 120); do grep -q READY "$WORK/hold.out" 2>/dev/null && break; sleep 1; done
grep -q READY "$WORK/hold.out" || { echo "holdconns did not get ready" >&2; exit 1; }
bg ip netns exec "$HOLD" env RUST_LOG=warn "$PROCNET" serve --port 9100 --interval 1 --host-name hold --no-containers \
  --fleet-networks 127.0.0.0/8
sleep 5
ip netns exec "$HOLD" python3 - <<'PY'
import http.client, statistics, subprocess, time
c = http.client.HTTPConnection("127.0.0.1", 9100, timeout=30)
ts, size, fleet = [], 0, 0
for _ in range(20):
    t = time.perf_counter()
    c.request("GET", "/metrics", headers={"Host": "127.0.0.1:9100"})
    body = c.getresponse().read()
    ts.append((time.perf_counter() - t) * 1000)
    size = len(body)
    time.sleep(0.2)
lines = body.decode().splitlines()
fleet = sum(1 for l in lines if l.startswith(("procnet_flow_", "procnet_listen_info", "procnet_host_address_info")))
ss = []
for _ in range(5):
    t = time.perf_counter()
    out = subprocess.run(["ss", "-tanpi"], capture_output=True).stdout
    ss.append((time.perf_counter() - t) * 1000)
ts.sort()
sockets = subprocess.run(["ss", "-Htan"], capture_output=True).stdout.count(b"\n")
print(f"| one host's `/metrics` at {sockets} sockets: scrape median / p90 | **{statistics.median(ts):.1f} ms** / {ts[int(len(ts)*0.9)]:.1f} ms |")
print(f"| its size; fleet series in it (`--fleet-networks 127.0.0.0/8`) | {size/1024:.1f} KiB; {fleet} |")
print(f"| `ss -tanpi` listing the same sockets, median | {statistics.median(ss):.0f} ms |")
print(f"| ratio scrape / `ss -tanpi` | 1/{statistics.median(ss) / statistics.median(ts):.0f} |")
PY
