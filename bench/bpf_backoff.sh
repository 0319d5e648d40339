#!/bin/sh
# The T0 activity back-off (issue 12 item 7): kernel time per send() call
# of one socket doing 1-byte sends in a tight loop for 4 s, with the
# back-off off (a budget no load reaches) and forced on (1 ppm).
# Run as root in a private network namespace:
#   unshare -n sh bench/bpf_backoff.sh 1000000000; unshare -n sh bench/bpf_backoff.sh 1
# usage: bpf_backoff.sh BUDGET_PPM
ip link set lo up
BIN=${BIN:-target/debug/procnet}
PROCNET_BPF_BUDGET_PPM=$1 $BIN serve --port 18080 --interval 0.5 2>/tmp/meter_srv.log &
SRV=$!
sleep 3
python3 - <<'PY'
import socket, threading, time, json, urllib.request
def h():
    return json.load(urllib.request.urlopen("http://127.0.0.1:18080/healthz"))["collector"]
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
port = s.getsockname()[1]
def sink():
    c, _ = s.accept()
    while c.recv(1 << 20): pass
threading.Thread(target=sink, daemon=True).start()
c = socket.create_connection(("127.0.0.1", port))
time.sleep(1)
a = h()
t = time.time(); n = 0
while time.time() - t < 4:
    c.send(b"x"); n += 1
b = h()
runs = b["bpfRunCount"] - a["bpfRunCount"]; ns = b["bpfRunTimeNs"] - a["bpfRunTimeNs"]
print("sends %d runs %d ns/run %.0f share_ppm %s interval_ns %s" % (n, runs, ns / runs, b.get("bpfCpuSharePpm"), b.get("bpfActivityIntervalNs")))
PY
kill $SRV; wait $SRV 2>/dev/null
