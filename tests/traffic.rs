//! Traffic against a real server: rates and totals from the kernel's
//! counters, short-lived connections from socket-destroy notifications, and
//! `/metrics` read back by a Prometheus text-format parser.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Accepts connections; for each, reads until EOF then closes. With
/// argv[1] = reply size, it first reads REQ bytes and replies REPLY bytes.
const SINK: &str = r#"
import socket, sys, threading
req, reply = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(512)
print(s.getsockname()[1], flush=True)
def serve(c):
    got = 0
    while got < req:
        d = c.recv(1 << 20)
        if not d: break
        got += len(d)
    c.sendall(b"r" * reply)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Opens N connections, each sends REQ bytes and reads REPLY bytes, closes.
const BURST: &str = r#"
import socket, sys, time
port, n, req, reply = (int(a) for a in sys.argv[1:5])
t = time.time()
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"q" * req)
    got = 0
    while got < reply:
        d = c.recv(1 << 20)
        if not d: break
        got += len(d)
    c.close()
print("%.3f" % (time.time() - t), flush=True)
time.sleep(3600)
"#;

#[test]
fn short_lived_connections_are_counted_with_their_bytes() {
    require_root("counting connections that closed between samples (socket-destroy notifications, kernel events)");
    let mut sink = python(SINK, &["5000", "1000"]);
    let port: u16 = sink.line().parse().unwrap();
    let server = Server::start_with_interval(&[], "1.0");
    let mut events = EventStream::open(server.port);
    assert_eq!(events.next(Duration::from_secs(5)).unwrap().name, "graph");
    let mut burst = python(BURST, &[&port.to_string(), "200", "5000", "1000"]);
    let took: f64 = burst.line().parse().unwrap();
    eprintln!("200 connections opened, used and closed in {took:.3} s");
    // As root, `serve` runs at tier T0: kernel events keep the exited
    // client's pid on its end of every connection.
    let edge_id = format!("tcp:pid:{}->pid:{}:{port}", burst.pid(), sink.pid());
    let (mut count, mut tx, mut rx) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count < 200 && Instant::now() < deadline {
        let Some(ev) = events.next(Duration::from_secs(3)) else {
            continue;
        };
        if ev.name != "diff" {
            continue;
        }
        for e in ev.data["addedEdges"]
            .as_array()
            .unwrap()
            .iter()
            .chain(ev.data["updatedEdges"].as_array().unwrap())
        {
            if e["id"] == edge_id {
                count += e["count"].as_u64().unwrap();
                tx += e["txBytes"].as_u64().unwrap_or(0);
                rx += e["rxBytes"].as_u64().unwrap_or(0);
            }
        }
    }
    assert_eq!(count, 200, "every short-lived connection is counted once");
    assert_eq!(tx, 200 * 5000, "client → server bytes");
    assert_eq!(rx, 200 * 1000, "server → client bytes");
    // The server's own totals include them.
    let traffic = server.get("/api/traffic").json();
    let recv: u64 = traffic
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pid"] == sink.pid())
        .map(|t| t["recv"].as_u64().unwrap())
        .sum();
    // Exact: the close event says whether the peer's FIN (which the
    // kernel counts as one received byte) had come.
    assert_eq!(recv, 200 * 5000, "server received");
}

#[test]
fn rates_and_totals_for_a_known_transfer() {
    let mut sink = python(SINK, &["10000000", "3000000"]);
    let port: u16 = sink.line().parse().unwrap();
    let server = Server::start_with_interval(&[], "0.5");
    const HOLD: &str = r#"
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"q" * 10_000_000)
got = 0
while got < 3_000_000:
    got += len(c.recv(1 << 20))
print("done", flush=True)
time.sleep(3600)
"#;
    // The connection stays open after the transfer (the sink closes its end).
    let mut client = python(HOLD, &[&port.to_string()]);
    assert_eq!(client.line(), "done");
    // A rate shows up for the interval the transfer happened in.
    let node_id = format!("pid:{}", client.pid());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut totals_ok = false;
    while Instant::now() < deadline && !totals_ok {
        let t = server.get("/api/traffic").json();
        let of = |pid: u32| -> (u64, u64) {
            t.as_array()
                .unwrap()
                .iter()
                .filter(|x| x["pid"] == pid)
                .fold((0, 0), |a, x| {
                    (
                        a.0 + x["send"].as_u64().unwrap(),
                        a.1 + x["recv"].as_u64().unwrap(),
                    )
                })
        };
        let (c_send, c_recv) = of(client.pid());
        let (s_send, s_recv) = of(sink.pid());
        let near = |v: u64, want: f64| (v as f64 - want).abs() / want < 0.01;
        totals_ok =
            near(c_send, 10e6) && near(c_recv, 3e6) && near(s_recv, 10e6) && near(s_send, 3e6);
        if totals_ok {
            assert!(t
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["pid"] == client.pid() && x["interface"] == "lo"));
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        totals_ok,
        "per-process totals within 1 %: {}",
        server.get("/api/traffic").body
    );
    let g = server.get("/api/graph").json();
    let node = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == node_id)
        .unwrap()
        .clone();
    assert!((node["txBytes"].as_f64().unwrap() - 10e6).abs() / 10e6 < 0.01);
    assert!(node["txRate"].is_number(), "nodes carry rates: {node}");
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let (_srv, port) = tcp_server("127.0.0.1");
    let (_cli, _) = tcp_client("127.0.0.1", port, 2, &[]);
    let server = Server::start(&[]);
    std::thread::sleep(Duration::from_millis(500));
    let body = server.get("/metrics").body;
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert!(
        value(
            "procnet_sockets",
            &[("proto", "tcp"), ("state", "ESTABLISHED")]
        )
        .unwrap()
            >= 4.0
    );
    assert!(value("procnet_listeners", &[]).unwrap() >= 1.0);
    assert!(value("procnet_samples_total", &[]).unwrap() >= 1.0);
    assert!(value("procnet_process_sent_bytes_total", &[("process", "other")]).is_some());
    let hist = scrape
        .samples
        .iter()
        .find(|s| s.metric == "procnet_collector_duration_seconds")
        .expect("histogram");
    match &hist.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert!(buckets.iter().any(|b| b.count >= 1.0))
        }
        other => panic!("not a histogram: {other:?}"),
    }
}

/// A parent connects, forks, and then only the PARENT sends, when it gets
/// SIGUSR1 (the child keeps its copy of the socket and sleeps). Prints
/// `<child pid>` once forked, `sent` once sent.
const FORK_THEN_PARENT_SENDS: &str = r#"
import os, signal, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
pid = os.fork()
if pid == 0:
    while True:
        time.sleep(3600)
print(pid, flush=True)
signal.sigwait([signal.SIGUSR1])
c.sendall(b"q" * int(sys.argv[2]))
print("sent", flush=True)
time.sleep(3600)
"#;

/// What one server says of a connection a parent and its forked child
/// hold and only the parent sends on: the tier, the parent's and the
/// child's `txBytes` on the graph, and their `send` in `/api/traffic`.
fn shared_socket_credit(env: &[(&str, &str)]) -> (String, [(u64, u64); 2]) {
    const SENT: u64 = 1_000_000;
    // Closes once it has read everything: the state change (CLOSE_WAIT on
    // the parent's side) brings the socket's final counters. (At T0 a
    // live socket's counters move with its events; the kernel may still
    // be sending what the last send() queued.)
    let mut sink = python(SINK, &[&SENT.to_string(), "0"]);
    let port: u16 = sink.line().parse().unwrap();
    let mut parent = python(
        FORK_THEN_PARENT_SENDS,
        &[&port.to_string(), &SENT.to_string()],
    );
    let child: u32 = parent.line().parse().unwrap();
    // The forked child outlives its parent's kill: end it with the test.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
    let _child_guard = KillOnDrop(child);
    // Started after the fork: its first walk sees both holders (at T0 the
    // table has them from it; no later event names the silent child).
    let server = Server::start_with_env(&[], "0.3", env);
    let tier = server.get("/healthz").json()["collector"]["tier"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // SAFETY: kill has no memory preconditions.
    assert_eq!(unsafe { libc::kill(parent.pid() as i32, libc::SIGUSR1) }, 0);
    assert_eq!(parent.line(), "sent");
    let tx = |graph: &serde_json::Value, pid: u32| -> u64 {
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == format!("pid:{pid}"))
            .and_then(|n| n["txBytes"].as_u64())
            .unwrap_or(0)
    };
    let graph = server.wait_graph(Duration::from_secs(20), |g| {
        tx(g, parent.pid()) + tx(g, child) >= SENT
    });
    let traffic = server.get("/api/traffic").json();
    let sent_by = |pid| sent_in(&traffic, pid);
    let pids = [parent.pid(), child];
    (tier, pids.map(|pid| (tx(&graph, pid), sent_by(pid))))
}

/// Bytes of a socket shared across fork go to the process that did the
/// I/O when the kernel event says which (tier T0): here the parent, where
/// the youngest-holder rule would credit the silent child. At T1 no event
/// says, and that documented fall-back holds. Per-process totals add up
/// to the socket's either way (never once per holder).
#[test]
fn a_shared_socket_is_credited_to_the_process_that_did_the_io() {
    require_root("tier T0 (kernel events)");
    let (tier, [parent, child]) = shared_socket_credit(&[]);
    assert_eq!(tier, "T0");
    assert!(parent.0 >= 1_000_000, "T0: the parent sent: {parent:?}");
    assert!(parent.1 >= 1_000_000, "T0: /api/traffic: {parent:?}");
    assert_eq!(child, (0, 0), "T0: the child did no I/O");

    let (tier, [parent, child]) = shared_socket_credit(&[("PROCNET_TIER", "T1")]);
    assert_eq!(tier, "T1");
    assert!(child.0 >= 1_000_000, "T1: the youngest holder: {child:?}");
    assert!(child.1 >= 1_000_000, "T1: /api/traffic: {child:?}");
    assert_eq!(parent, (0, 0), "T1: counted once, not per holder");
}

/// Sends argv[2] bytes to 127.0.0.1:argv[1] in 1,000-byte send calls, a
/// millisecond apart, closes, prints `done`, then stays (so its process
/// and its totals remain).
const TRICKLE: &str = r#"
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for _ in range(int(sys.argv[2]) // 1000):
    c.sendall(b"t" * 1000)
    time.sleep(0.001)
c.close()
print("done", flush=True)
time.sleep(3600)
"#;

/// Self-metering at T0: `/healthz` and `/metrics` say the event programs'
/// CPU share, the budget and the per-socket activity interval; over budget
/// (a budget of 1 millionth of a CPU, which anything exceeds) the interval
/// grows, bounded by 4 sample intervals, and a connection's bytes are
/// still exact once it closed (closes are never skipped).
#[test]
fn self_metering_backs_off_over_budget_and_closes_stay_exact() {
    require_root("tier T0 (kernel events)");
    const SENT: u64 = 2_000_000;
    let server = Server::start_with_env(&[], "0.3", &[("PROCNET_BPF_BUDGET_PPM", "1")]);
    let collector = |server: &Server| server.get("/healthz").json()["collector"].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = collector(&server);
    while c["bpfActivityIntervalNs"].as_u64().unwrap_or(0) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        c = collector(&server);
    }
    assert_eq!(c["tier"], "T0", "{c}");
    assert_eq!(c["bpfCpuBudgetPpm"], 1, "{c}");
    let share = c["bpfCpuSharePpm"]
        .as_u64()
        .expect("a share after two samples");
    assert!(share > 1 && share < 2_000_000, "{c}");
    let interval = c["bpfActivityIntervalNs"].as_u64().unwrap();
    assert!(interval >= 1_000_000, "backed off: {c}");

    let mut sink = python(SINK, &[&SENT.to_string(), "0"]);
    let port: u16 = sink.line().parse().unwrap();
    let mut sender = python(TRICKLE, &[&port.to_string(), &SENT.to_string()]);
    assert_eq!(sender.line(), "done");
    let c = collector(&server);
    let interval = c["bpfActivityIntervalNs"].as_u64().unwrap();
    // At most 4 sample intervals of 0.3 s (as measured: allow a slow one).
    assert!(
        (1_000_000..=4 * 600_000_000).contains(&interval),
        "bounded: {c}"
    );
    let sent_by = |pid| sent_in(&server.get("/api/traffic").json(), pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sent_by(sender.pid()) < SENT && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(sent_by(sender.pid()), SENT, "exact at close");

    let body = server.get("/metrics").body;
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("valid exposition format");
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    assert!(value("procnet_bpf_cpu_share") > 0.0);
    assert_eq!(value("procnet_bpf_cpu_budget"), 1e-6);
    assert!(value("procnet_bpf_activity_interval_seconds") >= 0.001);
}

/// A UDP server that answers each datagram with argv[1] bytes.
const UDP_ECHO: &str = r#"
import socket, sys
reply = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
n = 0
while True:
    d, a = s.recvfrom(65536)
    n += 1
    if n % 2 == 0:
        s.sendto(b"a" * reply, a)
"#;

/// A connected UDP client: after a delay (so the server has a baseline), sends
/// 100 datagrams of 1000 bytes, reads the 50 answers, then holds the socket.
const UDP_SENDER: &str = r#"
import socket, sys, time
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.connect(("127.0.0.1", int(sys.argv[1])))
time.sleep(float(sys.argv[2]))
for _ in range(100):
    c.send(b"u" * 1000)
    time.sleep(0.001)
for _ in range(50):
    c.recv(65536)
print("done", flush=True)
time.sleep(3600)
"#;

#[test]
fn udp_bytes_come_from_packet_capture() {
    require_root("packet capture (CAP_NET_RAW)");
    let mut echo = python(UDP_ECHO, &["200"]);
    let port: u16 = echo.line().parse().unwrap();
    let server = Server::start_with_interval(&["--capture", "--udp"], "0.5");
    let mut client = python(UDP_SENDER, &[&port.to_string(), "1.0"]);
    assert_eq!(client.line(), "done");
    let totals = |pid: u32| -> (u64, u64) {
        server
            .get("/api/traffic")
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["pid"] == pid)
            .fold((0, 0), |a, t| {
                (
                    a.0 + t["send"].as_u64().unwrap(),
                    a.1 + t["recv"].as_u64().unwrap(),
                )
            })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while totals(client.pid()) != (100_000, 10_000) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        totals(client.pid()),
        (100_000, 10_000),
        "client: sent, received"
    );
    assert_eq!(
        totals(echo.pid()),
        (10_000, 100_000),
        "server: sent, received"
    );
}

/// A parent connects, forks, and only the child sends (the parent keeps its
/// copy of the socket and sleeps). Prints `<child pid>` once sent.
const FORK_SENDER: &str = r#"
import os, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
pid = os.fork()
if pid == 0:
    c.sendall(b"q" * int(sys.argv[2]))
    time.sleep(3600)
print(pid, flush=True)
time.sleep(3600)
"#;

/// A connection a parent and its forked child both hold counts its bytes
/// once: on the child's node (the youngest holder) and in its
/// `/api/traffic` total, not on the parent's too; both nodes say they
/// share a connection.
#[test]
fn a_socket_shared_after_fork_counts_once() {
    let mut sink = python(SINK, &["1000000", "0"]);
    let port: u16 = sink.line().parse().unwrap();
    let server = Server::start_with_interval(&[], "0.5");
    let mut parent = python(FORK_SENDER, &[&port.to_string(), "1000000"]);
    let child: u32 = parent.line().parse().unwrap();
    // The forked child outlives its parent's kill: end it with the test.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
    let _child_guard = KillOnDrop(child);
    let node = |graph: &serde_json::Value, pid: u32| {
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == format!("pid:{pid}"))
            .cloned()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let graph = loop {
        let g = server.get("/api/graph").json();
        let sent = node(&g, child).and_then(|n| n["txBytes"].as_u64());
        if sent >= Some(1_000_000) || Instant::now() > deadline {
            break g;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let (p, c) = (
        node(&graph, parent.pid()).expect("the parent's node"),
        node(&graph, child).expect("the child's node"),
    );
    assert_eq!(c["txBytes"].as_u64(), Some(1_000_000), "child: {c}");
    assert!(
        p["txBytes"].as_u64().unwrap_or(0) == 0,
        "parent credited too: {p}"
    );
    assert_eq!(p["sharedSockets"], 1, "{p}");
    assert_eq!(c["sharedSockets"], 1, "{c}");
    let traffic = server.get("/api/traffic").json();
    let sent_by = |pid| sent_in(&traffic, pid);
    assert_eq!(sent_by(parent.pid()), 0, "{traffic}");
    assert!(sent_by(child) >= 1_000_000, "{traffic}");
}

/// A reader that drains slowly: a small receive buffer (no autotuning), 64
/// KB every 20 ms, so a sender's last send() returns with much of its data
/// still queued in its own buffer.
const SLOW_SINK: &str = r#"
import socket, sys, time
want = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
got = 0
while got < want:
    d = c.recv(65536)
    if not d: break
    got += len(d)
    time.sleep(0.02)
print("drained", got, flush=True)
time.sleep(3600)
"#;

/// Sends N bytes with one sendall into a 1 MB send buffer, says so, then
/// holds the connection open without another call.
const SEND_THEN_HOLD: &str = r#"
import socket, sys, time
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
c.connect(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"x" * int(sys.argv[2]))
print("sent", flush=True)
time.sleep(3600)
"#;

/// send() returns once the bytes are queued; the kernel transmits the rest
/// as the peer reads. The sender makes no further call and its state does
/// not change, yet its counters follow the transmission (tier T0: the ACK
/// hook), so its total reaches what it sent within a few samples, not at
/// the next reconcile walk a minute later.
#[test]
fn bytes_queued_by_the_last_send_are_counted_as_they_leave() {
    require_root("tier T0 (kernel events)");
    const SENT: u64 = 5_000_000;
    let mut sink = python(SLOW_SINK, &[&SENT.to_string()]);
    let port: u16 = sink.line().parse().unwrap();
    let server = Server::start_with_env(&[], "0.5", &[("PROCNET_TIER", "T0")]);
    let tier = server.get("/healthz").json()["collector"]["tier"].clone();
    assert_eq!(tier, "T0", "{}", server.get("/healthz").body);
    let mut sender = python(SEND_THEN_HOLD, &[&port.to_string(), &SENT.to_string()]);
    assert_eq!(sender.line(), "sent");
    assert_eq!(sink.line(), format!("drained {SENT}"));
    let sent_by = |pid| sent_in(&server.get("/api/traffic").json(), pid);
    // Three samples after the peer read the last byte.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut sent = sent_by(sender.pid());
    while sent < SENT && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        sent = sent_by(sender.pid());
    }
    assert_eq!(
        sent,
        SENT,
        "the sender's total once its queue drained: {}",
        server.get("/api/traffic").body
    );
}

/// What `/api/traffic` (its JSON) says process `pid` sent, over all its
/// interfaces.
fn sent_in(traffic: &serde_json::Value, pid: u32) -> u64 {
    traffic
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pid"] == pid)
        .map(|t| t["send"].as_u64().unwrap())
        .sum()
}
