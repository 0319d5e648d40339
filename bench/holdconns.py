#!/usr/bin/env python3
"""Hold N loopback TCP connections open (2N sockets), for benchmarks.

The connections are spread over K server/client process pairs so no process
needs more than ~15,000 descriptors (the hard RLIMIT_NOFILE here may be low
and not raisable). Server k listens on several 127.0.0.1 ports and accepts;
client k connects from source addresses 127.0.0.2.. so no (source address,
port) pair runs out of ephemeral ports. When every connection is up it prints
`READY <pids>` and waits until its stdin closes (or SIGTERM / SIGINT, or the
--max-seconds deadline), then kills its children and exits. Children also
die with the parent (PR_SET_PDEATHSIG).

Usage: holdconns.py --conns 10000 [--ports 4] [--per-proc 12500] [--max-seconds 600]
"""
import argparse
import ctypes
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time

PR_SET_PDEATHSIG = 1
# SO_LINGER on with timeout 0: closing (or being killed) resets the
# connection, so a run leaves no TIME_WAIT sockets to skew the next one.
NO_TIME_WAIT = struct.pack("ii", 1, 0)


def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and need > hard:
        sys.stderr.write("holdconns: need %d fds, hard limit is %d\n" % (need, hard))
        os._exit(3)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))


def hold_forever():
    while True:
        if os.getppid() == 1:
            os._exit(0)
        time.sleep(0.5)


def server(listeners, count, done_w):
    sel = selectors.DefaultSelector()
    for l in listeners:
        l.setblocking(False)
        sel.register(l, selectors.EVENT_READ)
    held = []
    while len(held) < count:
        for key, _ in sel.select(timeout=0.5):
            while len(held) < count:
                try:
                    conn, _ = key.fileobj.accept()
                except BlockingIOError:
                    break
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, NO_TIME_WAIT)
                held.append(conn)
        if os.getppid() == 1:
            os._exit(0)
    os.write(done_w, b"s")
    hold_forever()


def client(ports, count, src_base, n_src, done_w):
    held = []
    for i in range(count):
        src = "127.0.%d.%d" % (src_base, 2 + (i % n_src))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, NO_TIME_WAIT)
        s.bind((src, 0))
        s.connect(("127.0.0.1", ports[i % len(ports)]))
        held.append(s)
    os.write(done_w, b"c")
    hold_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--ports", type=int, default=4, help="listener ports per server")
    ap.add_argument("--per-proc", type=int, default=12500, help="max connections per process")
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    deadline = time.monotonic() + a.max_seconds
    pairs = max(1, -(-a.conns // a.per_proc))
    per = -(-a.conns // pairs)
    raise_nofile(per + 64)

    done_r, done_w = os.pipe()
    children = []

    def stop(*_):
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    left = a.conns
    for k in range(pairs):
        count = min(per, left)
        left -= count
        listeners = []
        for _ in range(a.ports):
            l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            l.bind(("127.0.0.1", 0))
            l.listen(4096)
            listeners.append(l)
        ports = [l.getsockname()[1] for l in listeners]
        pid = os.fork()
        if pid == 0:
            die_with_parent()
            os.close(done_r)
            try:
                server(listeners, count, done_w)
            finally:
                os._exit(1)
        children.append(pid)
        for l in listeners:
            l.close()
        pid = os.fork()
        if pid == 0:
            die_with_parent()
            os.close(done_r)
            try:
                client(ports, count, k, max(1, min(250, count // 3000 + 1)), done_w)
            finally:
                os._exit(1)
        children.append(pid)
    os.close(done_w)

    got = 0
    while got < 2 * pairs:
        if time.monotonic() > deadline:
            sys.stderr.write("holdconns: timed out\n")
            stop()
        sel = selectors.DefaultSelector()
        sel.register(done_r, selectors.EVENT_READ)
        if sel.select(timeout=0.5):
            data = os.read(done_r, 64)
            if not data:
                sys.stderr.write("holdconns: a child died\n")
                stop()
            got += len(data)
    print("READY %s" % " ".join(map(str, children)), flush=True)

    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if sel.select(timeout=1.0) and not sys.stdin.buffer.read1(4096):
            break
    stop()


if __name__ == "__main__":
    main()
