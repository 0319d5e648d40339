#!/usr/bin/env python3
"""Checks `procnet snapshot --format connections` output (or, from a binary
without the `snapshot` subcommand yet, the raw Snapshot JSON it prints) for
the listener and both connection ends that examples/hold_conn opened.

usage: check_snapshot.py FILE LISTEN_PORT CLIENT_PORT
exit 0 = found, 1 = not found / bad output, 3 = output is neither format.
"""
import json
import sys

path, lport, cport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    doc = json.load(open(path, encoding="utf-8", errors="replace"))
except ValueError as e:
    print(f"not JSON: {e}")
    sys.exit(3)

def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)

if isinstance(doc, dict) and "listeners" in doc and "connections" in doc:
    ls = [l for l in doc["listeners"] if l.get("port") == lport]
    if not ls:
        fail(f"no listener on port {lport}: {doc['listeners']}")
    l = ls[0]
    if l.get("address") not in ("127.0.0.1",):
        fail(f"listener address {l.get('address')}")
    if "pid" not in l or "processName" not in l:
        fail(f"listener lacks pid/processName: {l}")
    conns = doc["connections"]
    # The client end: from client port to the listener port.
    fwd = [c for c in conns if c.get("fromPort") == cport and c.get("toPort") == lport]
    if not fwd:
        fail(f"no connection {cport} -> {lport}: {conns}")
    c = fwd[0]
    if c.get("fromAddress") != "127.0.0.1" or c.get("toAddress") != "127.0.0.1":
        fail(f"connection addresses: {c}")
    # The server end pairs with the client end; it should not show up as a
    # second, reversed connection (server -> client).
    rev = [c for c in conns if c.get("fromPort") == lport and c.get("toPort") == cport]
    if rev:
        print(f"note: server end also listed reversed: {rev}")
    print(f"OK (connections format): listener :{lport} pid={l['pid']} "
          f"name={l['processName']!r}; connection {cport} -> {lport}")
    sys.exit(0)

if isinstance(doc, dict) and "sockets" in doc:
    socks = doc["sockets"]
    def has(local, remote, state):
        return any(s.get("proto") == "tcp" and s.get("local") == local
                   and s.get("remote") == remote and s.get("state") == state for s in socks)
    a, b = f"127.0.0.1:{lport}", f"127.0.0.1:{cport}"
    if not has(a, None, "LISTEN"):
        fail(f"no LISTEN socket {a}")
    if not has(b, a, "ESTABLISHED"):
        fail(f"no client end {b} -> {a}")
    if not has(a, b, "ESTABLISHED"):
        fail(f"no server end {a} <- {b}")
    print(f"OK (raw Snapshot format): LISTEN {a}, ESTABLISHED {b}->{a} and {a}->{b}")
    sys.exit(0)

print("output is neither the connections document nor a Snapshot")
sys.exit(3)
