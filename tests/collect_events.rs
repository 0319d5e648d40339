//! Tier T0 (kernel events) against real processes on loopback: connections
//! that open and close between two samples keep their owners on both ends
//! and their exact bytes, TCP and UDP; and every tier, forced in turn,
//! reports the same sockets for the same fixture. Needs root (CI is root):
//! without it these tests fail, they do not pass silently.
#![cfg(target_os = "linux")]

use procnet::collect::linux::{LinuxOptions, OwnerSource, PlatformCollector, SocketSource};
use procnet::snapshot::{Proto, Snapshot, Socket, Tier};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};

fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(uid, 0, "{what} needs root: run this test as root (CI does)");
}

/// A python3 helper; killed when dropped.
struct Helper {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Helper {
    fn spawn(script: &str, args: &[&str]) -> Helper {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Helper { child, out }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        let n = self.out.read_line(&mut s).expect("read helper output");
        assert!(n > 0, "helper {} exited before printing", self.pid());
        s.trim().to_string()
    }

    fn wait(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait helper");
        assert!(status.success(), "helper failed: {status}");
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn t0_collector() -> PlatformCollector {
    let mut c = PlatformCollector::with_options(LinuxOptions {
        events: true,
        ..LinuxOptions::default()
    })
    .expect("collector");
    let first = c.sample().expect("first sample");
    assert_eq!(
        first.diagnostics.tier,
        Some(Tier::T0),
        "kernel events did not load: {:?}",
        first.diagnostics.tier_reason
    );
    c
}

/// Servers that answer every request with `REPLY` bytes: TCP (one thread
/// per connection, which reads `REQUEST` bytes, answers and closes) and
/// UDP (one unconnected socket). Prints both ports, then serves until
/// stdin closes.
const SERVERS: &str = r#"
import socket, sys, threading
REQUEST, REPLY = int(sys.argv[1]), int(sys.argv[2])
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", 0))
t.listen(4096)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
def tcp():
    while True:
        c, _ = t.accept()
        got = 0
        while got < REQUEST:
            d = c.recv(65536)
            if not d:
                break
            got += len(d)
        c.sendall(b"r" * REPLY)
        c.close()
def udp():
    while True:
        d, peer = u.recvfrom(65536)
        u.sendto(b"r" * REPLY, peer)
threading.Thread(target=tcp, daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
print(t.getsockname()[1], u.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// N short TCP connections then N short connected UDP sockets to the
/// servers, each sending REQUEST bytes and reading the whole reply, then
/// closing. Prints the local ports used (TCP, then UDP) and exits.
const CLIENTS: &str = r#"
import socket, sys, time
tport, uport, n, REQUEST, REPLY = map(int, sys.argv[1:6])
tcp, udp, longest = [], [], 0.0
for _ in range(n):
    start = time.monotonic()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.connect(("127.0.0.1", tport))
    c.sendall(b"q" * REQUEST)
    got = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += len(d)
    assert got == REPLY, got
    tcp.append(c.getsockname()[1])
    c.close()
    longest = max(longest, time.monotonic() - start)
for _ in range(n):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.connect(("127.0.0.1", uport))
    c.send(b"q" * REQUEST)
    assert len(c.recv(65536)) == REPLY
    udp.append(c.getsockname()[1])
    c.close()
print(" ".join(map(str, tcp)), flush=True)
print(" ".join(map(str, udp)), flush=True)
print(longest, flush=True)
"#;

type Ends = (Proto, SocketAddr, Option<SocketAddr>);

fn by_ends(snap: &Snapshot) -> HashMap<Ends, Vec<&Socket>> {
    let mut m: HashMap<Ends, Vec<&Socket>> = HashMap::new();
    // The closing side's TIME_WAIT leftovers (no owner, no counters) are
    // another kernel object, listed by the walk as before.
    for s in snap
        .sockets
        .iter()
        .filter(|s| s.closed || s.remote.is_none())
    {
        m.entry((s.proto, s.local, s.remote)).or_default().push(s);
    }
    m
}

fn ports(line: &str) -> Vec<u16> {
    line.split_whitespace()
        .map(|p| p.parse().expect("a port"))
        .collect()
}

/// 2,000 TCP connections and 2,000 UDP sockets, each living a few
/// milliseconds, all opened and closed between two samples by a client
/// that has exited by the second sample: every one is reported with the
/// client's pid on one end, the server's on the other, and exact bytes.
#[test]
fn short_lived_connections_keep_both_owners_and_exact_bytes() {
    require_root("tier T0 (kernel events)");
    const N: usize = 2000;
    const REQUEST: u64 = 300;
    const REPLY: u64 = 1200;
    let mut collector = t0_collector();
    let (req, rep) = (REQUEST.to_string(), REPLY.to_string());
    let mut servers = Helper::spawn(SERVERS, &[&req, &rep]);
    let server_pid = servers.pid();
    let sp = ports(&servers.line());
    let (tport, uport) = (sp[0], sp[1]);
    // The servers' listeners are in this sample: the connections are new.
    collector.sample().expect("sample before");
    let (t, u, n) = (tport.to_string(), uport.to_string(), N.to_string());
    let mut clients = Helper::spawn(CLIENTS, &[&t, &u, &n, &req, &rep]);
    let client_pid = clients.pid();
    let tcp_ports = ports(&clients.line());
    let udp_ports = ports(&clients.line());
    let longest: f64 = clients.line().parse().expect("seconds");
    clients.wait();
    assert_eq!((tcp_ports.len(), udp_ports.len()), (N, N));
    eprintln!("longest TCP connection: {:.2} ms", longest * 1000.0);
    let snap = collector.sample().expect("sample after");
    assert_eq!(snap.diagnostics.tier, Some(Tier::T0));
    // The programs' own kernel time is measured (self-metering).
    let runs = snap.diagnostics.bpf_run_count.unwrap_or(0);
    let ns = snap.diagnostics.bpf_run_time_ns.unwrap_or(0);
    assert!(runs >= 4 * N as u64 && ns > 0, "{runs} runs, {ns} ns");
    eprintln!(
        "event programs: {runs} runs, {:.1} ms, {:.0} ns per run",
        ns as f64 / 1e6,
        ns as f64 / runs as f64
    );
    let all = by_ends(&snap);
    let pids: HashMap<u32, &str> = snap
        .processes
        .iter()
        .map(|p| (p.pid, p.name.as_str()))
        .collect();
    assert!(
        pids.contains_key(&client_pid),
        "the exited client is named from the events"
    );
    let host = |p: u16| -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], p)) };
    // The kernel may reuse a closed socket's port for a later one: the
    // same endpoints then name several sockets, each reported once.
    let mut expected: HashMap<(Ends, u32, u64, u64), usize> = HashMap::new();
    for (proto, list, server_port) in [
        (Proto::Tcp, &tcp_ports, tport),
        (Proto::Udp, &udp_ports, uport),
    ] {
        for &p in list {
            let (client, server) = (host(p), host(server_port));
            let c = ((proto, client, Some(server)), client_pid, REQUEST, REPLY);
            *expected.entry(c).or_default() += 1;
            if proto == Proto::Tcp {
                let s = ((proto, server, Some(client)), server_pid, REPLY, REQUEST);
                *expected.entry(s).or_default() += 1;
            }
        }
    }
    let mut bad = Vec::new();
    for ((ends, pid, sent, received), n) in &expected {
        let found = all.get(ends).map(Vec::as_slice).unwrap_or_default();
        let right = found.iter().filter(|s| {
            s.closed
                && s.owners.as_slice() == [*pid]
                && s.bytes_sent == Some(*sent)
                && s.bytes_received == Some(*received)
        });
        if right.count() != *n || found.len() != *n {
            bad.push(format!("{ends:?} expected {n} owned by {pid}: {found:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} sockets wrong, e.g. {:#?}",
        bad.len(),
        3 * N,
        &bad[..bad.len().min(5)]
    );
    // The UDP server's own (live, unconnected) socket has its bytes too.
    let udp_server = &all[&(Proto::Udp, host(uport), None)];
    assert_eq!(udp_server.len(), 1);
    assert_eq!(udp_server[0].owners.as_slice(), [server_pid]);
    assert_eq!(udp_server[0].bytes_received, Some(REQUEST * N as u64));
    assert_eq!(udp_server[0].bytes_sent, Some(REPLY * N as u64));
    servers.wait();
}

/// Holds a fixture: a TCP listener with 3 accepted connections from a
/// second process, and a connected UDP pair. Prints the ports.
const FIXTURE_SERVER: &str = r#"
import socket, sys
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.bind(("127.0.0.1", 0))
t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
print(t.getsockname()[1], u.getsockname()[1], flush=True)
held = []
for k in range(3):
    c, _ = t.accept()
    # The request first, so the reply is the last I/O on both counters.
    c.recv(100 * (k + 1), socket.MSG_WAITALL)
    c.sendall(b"s" * 700)
    held.append(c)
print("ready", flush=True)
sys.stdin.read()
"#;

const FIXTURE_CLIENT: &str = r#"
import socket, sys
tport, uport = int(sys.argv[1]), int(sys.argv[2])
held = []
for k in range(3):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.connect(("127.0.0.1", tport))
    c.sendall(b"c" * (100 * (k + 1)))
    held.append(c)
got = 0
while got < 2100:
    for c in held:
        c.setblocking(False)
        try:
            got += len(c.recv(65536))
        except BlockingIOError:
            pass
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.connect(("127.0.0.1", uport))
print(" ".join(str(c.getsockname()[1]) for c in held), u.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// What a tier must agree on for one socket.
fn row(s: &Socket) -> String {
    let bytes = match s.proto {
        Proto::Tcp => format!("{:?}/{:?}", s.bytes_sent, s.bytes_received),
        // Only T0 counts UDP bytes (the walks have none to give).
        Proto::Udp => String::new(),
    };
    format!(
        "{:?} {} {:?} {:?} {:?} {bytes}",
        s.proto, s.local, s.remote, s.state, s.owners
    )
}

/// The same fixture read at T0, T1 and T2 gives the same sockets, states,
/// owners and TCP byte counters (T3 has no counters and no BPF, and is
/// checked by collect_linux's procfs test).
#[test]
fn every_tier_reports_the_same_sockets() {
    require_root("comparing tiers T0 and T1");
    // T0 starts first and walks an empty fixture: the fixture's sockets
    // come to it from the kernel's events alone.
    let mut t0 = t0_collector();
    let mut server = Helper::spawn(FIXTURE_SERVER, &[]);
    let sp = ports(&server.line());
    let (t, u) = (sp[0].to_string(), sp[1].to_string());
    let mut client = Helper::spawn(FIXTURE_CLIENT, &[&t, &u]);
    let mut mine = ports(&client.line());
    assert_eq!(server.line(), "ready");
    mine.extend(&sp);
    let rows = |snap: &Snapshot| -> Vec<String> {
        let mut v: Vec<String> = snap
            .sockets
            .iter()
            .filter(|s| {
                !s.closed
                    && mine.contains(&s.local.port())
                    && s.remote.is_none_or(|r| mine.contains(&r.port()))
            })
            .map(row)
            .collect();
        v.sort();
        v
    };
    let s0 = t0.sample().expect("T0 sample");
    assert_eq!(
        (s0.diagnostics.tier, s0.diagnostics.backend.as_str()),
        (Some(Tier::T0), "events+netlink"),
        "the T0 sample came from its event-fed table, not a walk"
    );
    let t0_rows = rows(&s0);
    // Its reconcile walk (due every minute) brings the table in line in
    // place and changes nothing here.
    t0.reconcile_next();
    let reconciles = t0.reconciles();
    let s0_walked = t0.sample().expect("T0 reconcile");
    assert_eq!(s0_walked.diagnostics.tier, Some(Tier::T0));
    assert_eq!(
        t0.reconciles(),
        reconciles + 1,
        "reconcile_next did not make the sample a reconcile in place"
    );
    assert_eq!(rows(&s0_walked), t0_rows);
    let s0_after = t0.sample().expect("T0 after its reconcile");
    assert_eq!(s0_after.diagnostics.backend, "events+netlink");
    assert_eq!(rows(&s0_after), t0_rows);
    // A T0 collector that walked the fixture (seeded after it was up)
    // agrees too: the same graph whichever path filled the table.
    let walked = rows(&t0_collector().sample().expect("T0 after a walk"));
    let mut t1 = PlatformCollector::with_options(LinuxOptions::default()).expect("T1");
    let s1 = t1.sample().expect("T1 sample");
    assert_eq!(
        s1.diagnostics.tier,
        Some(Tier::T1),
        "{:?}",
        s1.diagnostics.tier_reason
    );
    let mut t2 = PlatformCollector::with_options(LinuxOptions {
        source: SocketSource::Netlink,
        owners: OwnerSource::ProcFd,
        ..LinuxOptions::default()
    })
    .expect("T2");
    let s2 = t2.sample().expect("T2 sample");
    assert_eq!(s2.diagnostics.tier, Some(Tier::T2));
    assert_eq!(
        t0_rows.len(),
        3 * 2 + 1 + 2, /* listener, 3 × 2 ends, UDP pair */
        "{t0_rows:#?}"
    );
    assert_eq!(t0_rows, rows(&s1));
    assert_eq!(t0_rows, rows(&s2));
    assert_eq!(t0_rows, walked);
    let _ = std::io::stdout().flush();
}

/// Connections inside another network namespace (a container's) are not
/// in this namespace's walks, so the events do not report them either.
#[test]
fn other_network_namespaces_are_not_reported() {
    require_root("tier T0 and a network namespace");
    let mut collector = t0_collector();
    let script = r#"
import socket, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
port = s.getsockname()[1]
def serve():
    for _ in range(20):
        c, _ = s.accept(); c.recv(100); c.sendall(b"x" * 50); c.close()
threading.Thread(target=serve, daemon=True).start()
used = []
for _ in range(20):
    c = socket.create_connection(("127.0.0.1", port)); c.sendall(b"q" * 10)
    c.recv(100); used.append(c.getsockname()[1]); c.close()
print(port, " ".join(map(str, used)), flush=True)
"#;
    let out = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec python3 -c \"$0\"",
        ])
        .arg(script)
        .output()
        .expect("unshare (util-linux) and ip (iproute2) run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ports = ports(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(ports.len(), 21);
    let snap = collector.sample().expect("sample");
    let leaked: Vec<&Socket> = snap
        .sockets
        .iter()
        .filter(|s| s.closed && s.local.ip().is_loopback())
        .filter(|s| {
            ports.contains(&s.local.port()) && s.remote.is_some_and(|r| ports.contains(&r.port()))
        })
        .collect();
    assert!(leaked.is_empty(), "{leaked:#?}");
}

/// 20 held connections; each line on stdin makes the first three send
/// 100 bytes each (read by the other end before `sent` is printed).
const CHATTY: &str = r#"
import socket, sys
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(64)
pairs = []
for _ in range(20):
    c = socket.create_connection(("127.0.0.1", l.getsockname()[1]))
    s, _ = l.accept()
    pairs.append((c, s))
print("ready", flush=True)
for line in sys.stdin:
    for c, s in pairs[:3]:
        c.sendall(b"x" * 100)
        got = 0
        while got < 100:
            got += len(s.recv(100 - got))
    print("sent", flush=True)
"#;

/// When only counters move, a T0 sample says which sockets changed, and
/// that is exactly what comparing it with the sample before gives (so the
/// consumers that trust it see what a full pass would).
#[test]
fn a_t0_sample_names_exactly_the_sockets_whose_counters_moved() {
    require_root("tier T0");
    let mut helper = Helper::spawn(CHATTY, &[]);
    assert_eq!(helper.line(), "ready");
    let mut c = t0_collector();
    // Settle: the first event samples after the walk carry no change set.
    c.sample().expect("sample");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut prev = c.sample().expect("sample");
    let helper_pid = helper.pid();
    let mut named = 0;
    for _ in 0..8 {
        writeln!(helper.child.stdin.as_mut().expect("stdin")).expect("write");
        assert_eq!(helper.line(), "sent");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let next = c.sample().expect("sample");
        let claimed = c.take_changes();
        if let Some(changes) = &claimed {
            assert_eq!(
                Some(changes),
                procnet::snapshot::SocketChanges::between(&prev, &next).as_ref(),
                "the change set T0 gave is not the one comparing gives"
            );
            let moved: Vec<&Socket> = changes
                .changed
                .iter()
                .map(|&i| &next.sockets[i as usize])
                .filter(|s| s.owners.contains(&helper_pid))
                .collect();
            assert!(
                moved.len() >= 6,
                "the 3 chatty connections (both ends) are named: {moved:?}"
            );
            named += 1;
        }
        prev = next;
    }
    assert!(named >= 4, "only {named} of 8 samples had a change set");
    helper.wait();
}
