//! The Linux collector against real processes: every test spawns separate
//! `python3` processes that hold loopback sockets on ephemeral ports, takes a
//! sample and checks the exact sockets, states and owners found.
#![cfg(target_os = "linux")]

mod common;
use common::require_root;

use procnet::collect::linux::{LinuxOptions, OwnerSource, PlatformCollector, SocketSource};
use procnet::collect::Collector;
use procnet::snapshot::{Proto, Snapshot, Socket, SocketState, UnknownReason};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

/// The real interpreter (not a pyenv shim script), so the pid we spawn is
/// the pid that holds the sockets.
fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 must be installed to run these tests");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// A helper process; killed (and its stdin closed, which ends any forked
/// children that wait on it) when dropped.
struct Helper {
    child: Child,
    out: BufReader<ChildStdout>,
}

const PRELUDE: &str = r#"
import os, socket, sys
def hold():
    sys.stdin.read()
    os._exit(0)
"#;

impl Helper {
    fn spawn(script: &str, args: &[String]) -> Helper {
        let mut child = Command::new(python())
            .arg("-c")
            .arg(format!("{PRELUDE}\n{script}"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Helper { child, out }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the helper prints, split at whitespace.
    fn line(&mut self) -> Vec<String> {
        let mut s = String::new();
        let n = self.out.read_line(&mut s).expect("read helper output");
        assert!(n > 0, "helper {} exited before printing", self.pid());
        s.split_whitespace().map(str::to_string).collect()
    }

    /// Like [`Helper::line`], parsing every field as a number.
    fn numbers(&mut self) -> Vec<u32> {
        self.line()
            .iter()
            .map(|f| f.parse().expect("helper prints numbers"))
            .collect()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample() -> Snapshot {
    Collector::new()
        .expect("collector")
        .sample()
        .expect("sample")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// The single socket with this protocol, local and remote address.
fn one(snap: &Snapshot, proto: Proto, local: SocketAddr, remote: Option<SocketAddr>) -> &Socket {
    let found: Vec<&Socket> = snap
        .sockets
        .iter()
        .filter(|s| s.proto == proto && s.local == local && s.remote == remote)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {proto:?} socket {local} -> {remote:?}, found {found:#?}"
    );
    found[0]
}

fn assert_owned(sock: &Socket, state: SocketState, owners: &[u32]) {
    assert_eq!(sock.state, state, "{sock:?}");
    assert_eq!(sock.owners.as_slice(), owners, "{sock:?}");
    assert_eq!(sock.unowned_reason, None, "{sock:?}");
    assert_ne!(sock.inode, 0, "{sock:?}");
}

fn my_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

const LISTENERS: &str = r#"
socks = []
def listen(fam, host, v6only=None):
    s = socket.socket(fam, socket.SOCK_STREAM)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((host, 0))
    s.listen(16)
    socks.append(s)
    return s.getsockname()[1]
print(listen(socket.AF_INET, "127.0.0.1"), listen(socket.AF_INET6, "::1"),
      listen(socket.AF_INET, "0.0.0.0"), listen(socket.AF_INET6, "::", 0), flush=True)
hold()
"#;

#[test]
fn listeners_on_every_address_kind_with_owner_details() {
    let mut h = Helper::spawn(LISTENERS, &[]);
    let ports = h.numbers();
    let snap = sample();
    let pid = h.pid();
    let expect = [
        format!("127.0.0.1:{}", ports[0]),
        format!("[::1]:{}", ports[1]),
        format!("0.0.0.0:{}", ports[2]),
        format!("[::]:{}", ports[3]),
    ];
    for local in &expect {
        let s = one(&snap, Proto::Tcp, addr(local), None);
        assert_owned(s, SocketState::Listen, &[pid]);
        assert_eq!(s.uid, Some(my_uid()));
    }

    let p = snap.process(pid).expect("owner is in processes");
    assert!(p.name.starts_with("python"), "{p:?}");
    assert_eq!(p.cmdline.first().map(String::as_str), Some(python()));
    assert_eq!(p.cmdline.get(1).map(String::as_str), Some("-c"));
    assert_eq!(p.ppid, Some(std::process::id()));
    assert_eq!(p.uid, Some(my_uid()));
    if my_uid() == 0 {
        assert_eq!(p.user.as_deref(), Some("root"));
    }
    assert!(
        p.exe.as_deref().is_some_and(|e| e.contains("python")),
        "{p:?}"
    );
    let now = procnet::collect::now_ms() / 1000;
    let started = p.start_time.expect("start time");
    // Started by this test: not in the future, not before this test ran.
    assert!(
        started <= now + 1 && started + 3600 > now,
        "{started} vs {now}"
    );

    // Every owner pid is described, and only owners are.
    for s in &snap.sockets {
        for o in &s.owners {
            assert!(snap.process(*o).is_some(), "owner {o} missing");
        }
    }
    for p in &snap.processes {
        assert!(snap.sockets.iter().any(|s| s.owners.contains(&p.pid)));
    }
    let backend = if can_load_bpf() && std::env::var_os("PROCNET_NO_BPF").is_none() {
        "bpf+netlink"
    } else {
        "netlink"
    };
    assert_eq!(snap.diagnostics.backend, backend);
    assert!(snap.taken_at_ms > 0);
}

const SERVER_V4_V6: &str = r#"
l4 = socket.socket(socket.AF_INET); l4.bind(("127.0.0.1", 0)); l4.listen(4)
l6 = socket.socket(socket.AF_INET6); l6.bind(("::1", 0)); l6.listen(4)
print(l4.getsockname()[1], l6.getsockname()[1], flush=True)
c4, _ = l4.accept(); c6, _ = l6.accept()
print("accepted", flush=True)
hold()
"#;

const CLIENT_V4_V6: &str = r#"
c4 = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c6 = socket.create_connection(("::1", int(sys.argv[2])))
print(c4.getsockname()[1], c6.getsockname()[1], flush=True)
hold()
"#;

#[test]
fn tcp_connections_between_processes_v4_and_v6() {
    let mut server = Helper::spawn(SERVER_V4_V6, &[]);
    let sp = server.numbers();
    let mut client = Helper::spawn(CLIENT_V4_V6, &[sp[0].to_string(), sp[1].to_string()]);
    let cp = client.numbers();
    assert_eq!(server.line(), ["accepted"]);
    let snap = sample();
    let (spid, cpid) = (server.pid(), client.pid());

    let l4 = addr(&format!("127.0.0.1:{}", sp[0]));
    let c4 = addr(&format!("127.0.0.1:{}", cp[0]));
    let l6 = addr(&format!("[::1]:{}", sp[1]));
    let c6 = addr(&format!("[::1]:{}", cp[1]));

    assert_owned(
        one(&snap, Proto::Tcp, l4, None),
        SocketState::Listen,
        &[spid],
    );
    assert_owned(
        one(&snap, Proto::Tcp, l6, None),
        SocketState::Listen,
        &[spid],
    );
    assert_owned(
        one(&snap, Proto::Tcp, l4, Some(c4)),
        SocketState::Established,
        &[spid],
    );
    assert_owned(
        one(&snap, Proto::Tcp, c4, Some(l4)),
        SocketState::Established,
        &[cpid],
    );
    assert_owned(
        one(&snap, Proto::Tcp, l6, Some(c6)),
        SocketState::Established,
        &[spid],
    );
    assert_owned(
        one(&snap, Proto::Tcp, c6, Some(l6)),
        SocketState::Established,
        &[cpid],
    );
    assert!(snap.process(spid).is_some() && snap.process(cpid).is_some());
}

const DUAL_STACK_SERVER: &str = r#"
l = socket.socket(socket.AF_INET6)
l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
l.bind(("::", 0)); l.listen(4)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
print("accepted", flush=True)
hold()
"#;

const CLIENT_V4: &str = r#"
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(c.getsockname()[1], flush=True)
hold()
"#;

#[test]
fn dual_stack_listener_reports_v4_peers_as_plain_ipv4() {
    let mut server = Helper::spawn(DUAL_STACK_SERVER, &[]);
    let port = server.numbers()[0];
    let mut client = Helper::spawn(CLIENT_V4, &[port.to_string()]);
    let cport = client.numbers()[0];
    assert_eq!(server.line(), ["accepted"]);
    let snap = sample();

    let srv = addr(&format!("127.0.0.1:{port}"));
    let cli = addr(&format!("127.0.0.1:{cport}"));
    assert_owned(
        one(&snap, Proto::Tcp, addr(&format!("[::]:{port}")), None),
        SocketState::Listen,
        &[server.pid()],
    );
    // The accepted socket is AF_INET6 in the kernel (::ffff:127.0.0.1).
    let accepted = one(&snap, Proto::Tcp, srv, Some(cli));
    assert!(accepted.local.is_ipv4() && accepted.remote.is_some_and(|r| r.is_ipv4()));
    assert_owned(accepted, SocketState::Established, &[server.pid()]);
    assert_owned(
        one(&snap, Proto::Tcp, cli, Some(srv)),
        SocketState::Established,
        &[client.pid()],
    );
}

const UDP_SERVER: &str = r#"
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s4.bind(("127.0.0.1", 0))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s6.bind(("::1", 0))
print(s4.getsockname()[1], s6.getsockname()[1], flush=True)
s4.recvfrom(100); s6.recvfrom(100)
print("received", flush=True)
hold()
"#;

const UDP_CLIENT: &str = r#"
c4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c4.connect(("127.0.0.1", int(sys.argv[1])))
c6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); c6.connect(("::1", int(sys.argv[2])))
c4.send(b"hi"); c6.send(b"hi")
print(c4.getsockname()[1], c6.getsockname()[1], flush=True)
hold()
"#;

#[test]
fn udp_bound_server_and_connected_client() {
    let mut server = Helper::spawn(UDP_SERVER, &[]);
    let sp = server.numbers();
    let mut client = Helper::spawn(UDP_CLIENT, &[sp[0].to_string(), sp[1].to_string()]);
    let cp = client.numbers();
    assert_eq!(server.line(), ["received"]);
    let snap = sample();

    for (srv, cli) in [
        (
            format!("127.0.0.1:{}", sp[0]),
            format!("127.0.0.1:{}", cp[0]),
        ),
        (format!("[::1]:{}", sp[1]), format!("[::1]:{}", cp[1])),
    ] {
        let (srv, cli) = (addr(&srv), addr(&cli));
        let s = one(&snap, Proto::Udp, srv, None);
        assert_owned(s, SocketState::Close, &[server.pid()]);
        assert_eq!(s.bytes_sent, None);
        let c = one(&snap, Proto::Udp, cli, Some(srv));
        assert_owned(c, SocketState::Established, &[client.pid()]);
    }
}

const FORKED_LISTENER: &str = r#"
l = socket.socket(socket.AF_INET); l.bind(("127.0.0.1", 0)); l.listen(4)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r); os.write(w, b"x"); os.close(w)
    hold()
os.close(w); os.read(r, 1)
print(l.getsockname()[1], pid, flush=True)
hold()
"#;

#[test]
fn socket_shared_after_fork_has_every_holder_as_owner() {
    let mut h = Helper::spawn(FORKED_LISTENER, &[]);
    let v = h.numbers();
    let (port, child) = (v[0], v[1]);
    let parent = h.pid();
    let snap = sample();
    let mut both = vec![parent, child];
    both.sort_unstable();
    let s = one(&snap, Proto::Tcp, addr(&format!("127.0.0.1:{port}")), None);
    assert_owned(s, SocketState::Listen, &both);
    let c = snap.process(child).expect("forked child is listed");
    assert_eq!(c.ppid, Some(parent));
    assert!(snap.process(parent).is_some());
}

#[test]
fn bpf_and_proc_fd_owner_sources_agree() {
    let mut h = Helper::spawn(FORKED_LISTENER, &[]);
    let v = h.numbers();
    let local = addr(&format!("127.0.0.1:{}", v[0]));
    let mut expect = vec![h.pid(), v[1]];
    expect.sort_unstable();
    for owners in [OwnerSource::Auto, OwnerSource::ProcFd] {
        let mut c = PlatformCollector::with_options(LinuxOptions {
            owners,
            ..LinuxOptions::default()
        })
        .expect("collector");
        let snap = c.sample().expect("sample");
        assert_owned(
            one(&snap, Proto::Tcp, local, None),
            SocketState::Listen,
            &expect,
        );
    }
}

/// Sockets in many states, made by `nobody` when run as root (so uids are
/// checked too): v4 and v6 listeners, an established pair of each family
/// with bytes both ways, a CLOSE_WAIT socket (peer's FIN counted out), and
/// a TIME_WAIT one.
const MANY_STATES: &str = r#"
import time, encodings.idna  # imported before dropping to nobody
if os.getuid() == 0:
    os.setgid(65534); os.setuid(65534)
l4 = socket.socket(); l4.bind(("127.0.0.1", 0)); l4.listen(8)
l6 = socket.socket(socket.AF_INET6); l6.bind(("::1", 0)); l6.listen(8)
keep = []
for l, host in ((l4, "127.0.0.1"), (l6, "::1")):
    c = socket.create_connection((host, l.getsockname()[1])); s, _ = l.accept()
    c.sendall(b"x" * 5000); n = 0
    while n < 5000: n += len(s.recv(65536))
    s.sendall(b"y" * 700); n = 0
    while n < 700: n += len(c.recv(65536))
    keep += [c, s]
c = socket.create_connection(("127.0.0.1", l4.getsockname()[1])); s, _ = l4.accept()
s.sendall(b"z" * 10); s.close(); keep.append(c)
c = socket.create_connection(("127.0.0.1", l4.getsockname()[1])); s, _ = l4.accept()
c.close(); s.recv(1); s.close()
time.sleep(0.2)
print(l4.getsockname()[1], l6.getsockname()[1], flush=True)
hold()
"#;

/// Every TCP socket that has `ports` at either end, as comparable rows.
fn rows_with_ports(snap: &Snapshot, ports: &[u16]) -> Vec<String> {
    let mut rows: Vec<String> = snap
        .sockets
        .iter()
        .filter(|s| s.proto == Proto::Tcp)
        .filter(|s| {
            ports.contains(&s.local.port()) || s.remote.is_some_and(|r| ports.contains(&r.port()))
        })
        .map(|s| {
            format!(
                "{} {:?} {:?} inode={} uid={:?} sent={:?} recv={:?} owners={:?}",
                s.local,
                s.remote,
                s.state,
                s.inode,
                s.uid,
                s.bytes_sent,
                s.bytes_received,
                s.owners
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Every TCP socket that has `ports` at either end → (whether it has
/// byte counters, its RTT and retransmits).
fn health_with_ports(
    snap: &Snapshot,
    ports: &[u16],
) -> std::collections::BTreeMap<(String, bool), Option<procnet::snapshot::TcpHealth>> {
    snap.sockets
        .iter()
        .filter(|s| s.proto == Proto::Tcp)
        .filter(|s| {
            ports.contains(&s.local.port()) || s.remote.is_some_and(|r| ports.contains(&r.port()))
        })
        .map(|s| {
            let key = format!("{} {:?} {:?}", s.local, s.remote, s.state);
            ((key, s.bytes_sent.is_some()), s.tcp_health)
        })
        .collect()
}

/// True where BPF iterators work at all (root, kernel BTF, no seccomp or
/// lockdown in the way): the owner iterator, which predates the TCP one,
/// loads. There the TCP iterator must load too.
fn can_load_bpf() -> bool {
    my_uid() == 0 && procnet::collect::linux::bpf_iter::OwnerIter::load().is_ok()
}

#[test]
fn bpf_tcp_iterator_and_netlink_agree() {
    let mut h = Helper::spawn(MANY_STATES, &[]);
    let v = h.numbers();
    let ports = [v[0] as u16, v[1] as u16];
    let mut snaps = Vec::new();
    for source in [SocketSource::Netlink, SocketSource::Auto] {
        let mut c = PlatformCollector::with_options(LinuxOptions {
            source,
            ..LinuxOptions::default()
        })
        .expect("collector");
        snaps.push(c.sample().expect("sample"));
    }
    assert_eq!(snaps[0].diagnostics.backend, "netlink");
    if can_load_bpf() && std::env::var_os("PROCNET_NO_BPF").is_none() {
        assert_eq!(snaps[1].diagnostics.backend, "bpf+netlink");
    } else {
        eprintln!("not root or no BTF: both samples come from netlink");
    }
    let (netlink, auto) = (
        rows_with_ports(&snaps[0], &ports),
        rows_with_ports(&snaps[1], &ports),
    );
    // 2 listeners, 2 pairs, CLOSE_WAIT + its orphaned peer, TIME_WAIT.
    assert_eq!(netlink.len(), 9, "{netlink:#?}");
    assert_eq!(auto, netlink);
    let joined = netlink.join("\n");
    for want in [
        "sent=Some(5000) recv=Some(700)",
        "sent=Some(700) recv=Some(5000)",
        "CloseWait",
        "TimeWait",
        "Listen",
    ] {
        assert!(joined.contains(want), "{want} missing in {joined}");
    }
    // RTT and retransmits, socket by socket: the same sockets have them
    // from both sources (every connected socket with kernel counters;
    // not listeners, not TIME_WAIT), with the same RTT samples. The BPF
    // sample is taken second, so a (spurious, tail-loss probe) retransmit
    // between the two may only add.
    let (h_netlink, h_auto) = (
        health_with_ports(&snaps[0], &ports),
        health_with_ports(&snaps[1], &ports),
    );
    assert_eq!(
        h_netlink.keys().collect::<Vec<_>>(),
        h_auto.keys().collect::<Vec<_>>()
    );
    for (key, n) in &h_netlink {
        let a = &h_auto[key];
        let (sock, counters) = (&key.0, key.1);
        assert_eq!(n.is_some(), counters && !sock.contains("Listen"), "{sock}");
        assert_eq!(n.is_some(), a.is_some(), "{sock}: {n:?} vs {a:?}");
        if let (Some(n), Some(a)) = (n, a) {
            assert_eq!(
                n.rtt_us.is_some(),
                a.rtt_us.is_some(),
                "{sock}: {n:?} vs {a:?}"
            );
            assert!(a.retransmits >= n.retransmits, "{sock}: {n:?} vs {a:?}");
        }
    }
    // The pairs that moved data have measured their RTT.
    assert!(
        h_netlink
            .values()
            .filter(|h| h.is_some_and(|h| h.rtt_us.is_some()))
            .count()
            >= 4,
        "{h_netlink:#?}"
    );
    // The CLOSE_WAIT socket got 10 bytes and a FIN: 10 payload bytes.
    assert!(joined.contains("CloseWait inode="), "{joined}");
    assert!(
        netlink
            .iter()
            .any(|r| r.contains("CloseWait") && r.contains("recv=Some(10)")),
        "{joined}"
    );
    if my_uid() == 0 {
        let owned: Vec<&String> = netlink.iter().filter(|r| !r.contains("inode=0")).collect();
        assert_eq!(owned.len(), 7, "{joined}");
        assert!(
            owned.iter().all(|r| r.contains("uid=Some(65534)")),
            "{joined}"
        );
    }
}

#[test]
fn tcp_iterator_inode_paths_agree() {
    use procnet::collect::linux::tcp_iter::TcpIter;
    require_root("comparing the BPF TCP iterator's inode paths");
    assert!(
        can_load_bpf(),
        "the BPF iterators did not load as root: this kernel lacks BTF (/sys/kernel/btf/vmlinux)"
    );
    let mut h = Helper::spawn(MANY_STATES, &[]);
    let v = h.numbers();
    let ports = [v[0] as u16, v[1] as u16];
    let read = |mut it: TcpIter| {
        let mut rows = Vec::new();
        it.read(&mut |d| {
            if ports.contains(&d.local.port())
                || d.remote.is_some_and(|r| ports.contains(&r.port()))
            {
                // RTT and retransmits may move between the two walks (see
                // bpf_tcp_iterator_and_netlink_agree); inodes may not.
                let d = procnet::collect::linux::inet_diag::DiagSocket {
                    tcp_health: None,
                    ..d
                };
                rows.push(format!("{d:?}"));
            }
        })
        .expect("read iterator");
        rows.sort();
        rows
    };
    let direct = read(TcpIter::load().expect("load"));
    let chain = read(TcpIter::load_with_inode_chain().expect("load (inode chain)"));
    assert_eq!(direct.len(), 9, "{direct:#?}");
    assert_eq!(direct, chain);
    assert_eq!(
        direct.iter().filter(|r| r.contains("inode: 0,")).count(),
        2,
        "{direct:#?}"
    );
}

const BULK_SERVER: &str = r#"
l = socket.socket(socket.AF_INET); l.bind(("127.0.0.1", 0)); l.listen(4)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
n = 0
while n < int(sys.argv[1]):
    b = c.recv(65536)
    if not b: break
    n += len(b)
print(n, flush=True)
hold()
"#;

const BULK_CLIENT: &str = r#"
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"x" * int(sys.argv[2]))
print(c.getsockname()[1], flush=True)
hold()
"#;

#[test]
fn tcp_byte_counters_match_the_bytes_moved() {
    const BYTES: u32 = 1_000_000;
    let mut server = Helper::spawn(BULK_SERVER, &[BYTES.to_string()]);
    let port = server.numbers()[0];
    let mut client = Helper::spawn(BULK_CLIENT, &[port.to_string(), BYTES.to_string()]);
    let cport = client.numbers()[0];
    assert_eq!(server.numbers(), [BYTES]);
    let srv = addr(&format!("127.0.0.1:{port}"));
    let cli = addr(&format!("127.0.0.1:{cport}"));

    let within = |v: Option<u64>| {
        v.is_some_and(|v| (v as f64 - f64::from(BYTES)).abs() <= 0.01 * f64::from(BYTES))
    };
    // Everything was received; the sender's counters follow with the ACKs,
    // so look a few times (a bound on attempts, not on time).
    let mut last = None;
    for _ in 0..50 {
        let snap = sample();
        let sender = one(&snap, Proto::Tcp, cli, Some(srv)).clone();
        let receiver = one(&snap, Proto::Tcp, srv, Some(cli)).clone();
        if within(sender.bytes_sent) && within(receiver.bytes_received) {
            assert!(
                sender.bytes_received.is_some_and(|b| b < 1000),
                "{sender:?}"
            );
            assert!(
                receiver.bytes_sent.is_some_and(|b| b < 1000),
                "{receiver:?}"
            );
            return;
        }
        last = Some((sender, receiver));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("byte counters never matched {BYTES}: {last:#?}");
}

const TIME_WAIT: &str = r#"
l = socket.socket(socket.AF_INET); l.bind(("127.0.0.1", 0)); l.listen(4)
c = socket.create_connection(("127.0.0.1", l.getsockname()[1]))
a, _ = l.accept()
cport = c.getsockname()[1]
c.close(); a.recv(10); a.close()
print(l.getsockname()[1], cport, flush=True)
hold()
"#;

#[test]
fn time_wait_socket_is_unowned_because_exited() {
    let mut h = Helper::spawn(TIME_WAIT, &[]);
    let v = h.numbers();
    let snap = sample();
    let s = one(
        &snap,
        Proto::Tcp,
        addr(&format!("127.0.0.1:{}", v[1])),
        Some(addr(&format!("127.0.0.1:{}", v[0]))),
    );
    assert_eq!(s.state, SocketState::TimeWait);
    assert_eq!(s.inode, 0);
    assert!(s.owners.is_empty());
    assert_eq!(s.unowned_reason, Some(UnknownReason::Exited));
    assert!(snap.diagnostics.unowned_exited >= 1);
}

#[test]
fn procfs_fallback_finds_the_same_sockets() {
    let mut server = Helper::spawn(DUAL_STACK_SERVER, &[]);
    let port = server.numbers()[0];
    let mut client = Helper::spawn(CLIENT_V4, &[port.to_string()]);
    let cport = client.numbers()[0];
    assert_eq!(server.line(), ["accepted"]);
    let mut c = PlatformCollector::with_options(LinuxOptions {
        source: SocketSource::ProcNet,
        owners: OwnerSource::ProcFd,
        scan_threads: 1,
        ..LinuxOptions::default()
    })
    .expect("collector");
    let snap = c.sample().expect("sample");
    assert_eq!(snap.diagnostics.backend, "procfs");
    let srv = addr(&format!("127.0.0.1:{port}"));
    let cli = addr(&format!("127.0.0.1:{cport}"));
    assert_owned(
        one(&snap, Proto::Tcp, addr(&format!("[::]:{port}")), None),
        SocketState::Listen,
        &[server.pid()],
    );
    let accepted = one(&snap, Proto::Tcp, srv, Some(cli));
    assert_owned(accepted, SocketState::Established, &[server.pid()]);
    assert_eq!(accepted.bytes_sent, None);
    assert_owned(
        one(&snap, Proto::Tcp, cli, Some(srv)),
        SocketState::Established,
        &[client.pid()],
    );
}

#[test]
fn local_addresses_include_loopback() {
    let snap = sample();
    assert!(snap.local_addresses.contains(&"127.0.0.1".parse().unwrap()));
    let lo = snap
        .interfaces
        .iter()
        .find(|i| i.name == "lo")
        .expect("lo interface");
    assert!(lo.addresses.contains(&"127.0.0.1".parse().unwrap()));
    if std::path::Path::new("/proc/net/if_inet6").exists()
        && std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|s| s.contains(" lo"))
    {
        assert!(snap.local_addresses.contains(&"::1".parse().unwrap()));
    }
}

const CHURN: &str = r#"
import time
print("go", flush=True)
while True:
    pid = os.fork()
    if pid == 0:
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
        os._exit(0)
    os.waitpid(pid, 0)
"#;

#[test]
fn samples_succeed_while_processes_come_and_go() {
    let mut h = Helper::spawn(CHURN, &[]);
    assert_eq!(h.line(), ["go"]);
    let mut c = Collector::new().expect("collector");
    for _ in 0..30 {
        let snap = c.sample().expect("a churning machine never fails a sample");
        for s in &snap.sockets {
            assert_eq!(s.owners.is_empty(), s.unowned_reason.is_some(), "{s:?}");
        }
    }
}

/// Runs as user `nobody` when the permission test re-invokes this binary;
/// does nothing in a normal run.
#[test]
#[ignore = "helper for unowned_permission_when_run_as_nobody"]
fn permission_probe() {
    let Ok(port) = std::env::var("PROCNET_PROBE_PORT") else {
        return;
    };
    let snap = sample();
    let local = addr(&format!("127.0.0.1:{port}"));
    let s = one(&snap, Proto::Tcp, local, None);
    // The cheap check used beside the BPF owner scan: the root helper is
    // hidden from us, our own process is not.
    let helper: u32 = std::env::var("PROCNET_PROBE_HELPER")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let dir = procnet::collect::linux::procfs::Dir::open(c"/proc").expect("open /proc");
    let denied = procnet::collect::linux::procfs::denied_pids(&dir, &[helper, std::process::id()]);
    println!(
        "PROBE uid={} reason={} owners={} denied={} cheap_denied={:?}",
        my_uid(),
        s.unowned_reason.map(|r| r.as_str()).unwrap_or("none"),
        s.owners.len(),
        snap.diagnostics.processes_denied,
        denied == [helper]
    );
}

#[test]
fn unowned_permission_when_run_as_nobody() {
    require_root("reading sockets as another user");
    assert!(
        std::path::Path::new("/usr/bin/setpriv").exists(),
        "this test runs a probe as nobody with /usr/bin/setpriv (util-linux): install it"
    );
    let mut h = Helper::spawn(LISTENERS, &[]);
    let port = h.numbers()[0];

    // A copy of this test binary that `nobody` may execute.
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("probe");
    std::fs::copy(std::env::current_exe().expect("current exe"), &exe).expect("copy");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let out = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "--exact",
            "permission_probe",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PROCNET_PROBE_PORT", port.to_string())
        .env("PROCNET_PROBE_HELPER", h.pid().to_string())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run probe as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("PROBE ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no PROBE line in {stdout}"));
    assert!(line.contains("uid=65534"), "{line}");
    assert!(line.contains("reason=permission"), "{line}");
    assert!(line.contains("owners=0"), "{line}");
    assert!(!line.contains("denied=0"), "{line}");
    assert!(line.contains("cheap_denied=true"), "{line}");
    let _ = std::io::stdout().flush();
}

/// Reason names as strings, so these tests read the same JSON the API gives.
fn reason(s: &Socket) -> Option<&'static str> {
    s.unowned_reason.map(|r| r.as_str())
}

fn diag_count(snap: &Snapshot, field: &str) -> u64 {
    serde_json::to_value(&snap.diagnostics).expect("diagnostics serialise")[field]
        .as_u64()
        .unwrap_or_else(|| panic!("diagnostics have no {field}: {:?}", snap.diagnostics))
}

const NEVER_ACCEPTS: &str = r#"
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(8)
print(l.getsockname()[1], flush=True)
hold()
"#;

const CONNECTS: &str = r#"
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(c.getsockname()[1], flush=True)
hold()
"#;

/// A connection the listener has not accepted yet sits in its accept
/// queue: no process holds it, but it is the listener's, not a leftover.
#[test]
fn unaccepted_connection_is_pending_and_belongs_to_the_listener() {
    require_root("telling pending from orphaned sockets");
    let mut server = Helper::spawn(NEVER_ACCEPTS, &[]);
    let port = server.numbers()[0];
    let mut client = Helper::spawn(CONNECTS, &[port.to_string()]);
    let cport = client.numbers()[0];
    let srv = addr(&format!("127.0.0.1:{port}"));
    let cli = addr(&format!("127.0.0.1:{cport}"));
    for owners in [OwnerSource::Auto, OwnerSource::ProcFd] {
        let mut c = PlatformCollector::with_options(LinuxOptions {
            owners,
            ..LinuxOptions::default()
        })
        .expect("collector");
        let snap = c.sample().expect("sample");
        let queued = one(&snap, Proto::Tcp, srv, Some(cli));
        assert_eq!(queued.state, SocketState::Established, "{queued:?}");
        assert!(queued.owners.is_empty(), "{queued:?}");
        assert_eq!(reason(queued), Some("pending"), "{owners:?}: {queued:?}");
        assert!(diag_count(&snap, "unownedPending") >= 1);
        assert_owned(
            one(&snap, Proto::Tcp, cli, Some(srv)),
            SocketState::Established,
            &[client.pid()],
        );
        assert_owned(
            one(&snap, Proto::Tcp, srv, None),
            SocketState::Listen,
            &[server.pid()],
        );

        // In the graph the connection goes client → listener's process.
        let rules = procnet::rules::RuleSet::default();
        let options = procnet::graph::GraphOptions::default();
        let containers = procnet::graph::ContainerLabels::default();
        let g = procnet::graph::build_graph(
            &procnet::graph::Inputs {
                snapshot: &snap,
                rules: &rules,
                options: &options,
                containers: &containers,
                traffic: None,
            },
            1,
        );
        let to_port: Vec<(&str, &str)> = g
            .edges
            .iter()
            .filter(|e| e.server_port == port as u16)
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        let (from, to) = (
            format!("pid:{}", client.pid()),
            format!("pid:{}", server.pid()),
        );
        assert_eq!(to_port, [(from.as_str(), to.as_str())], "{owners:?}");
    }
}

/// A listening socket whose only reference is an fd in flight in a unix
/// socket's queue (sent with SCM_RIGHTS, closed by the sender, never
/// received): no process holds it.
const IN_FLIGHT_ONLY: &str = r#"
a, b = socket.socketpair()
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
port = l.getsockname()[1]
socket.send_fds(a, [b"x"], [l.fileno()])
l.close()
print(port, flush=True)
hold()
"#;

#[test]
fn socket_no_process_holds_is_orphan_as_root() {
    require_root("telling orphaned sockets from unreadable ones");
    let mut h = Helper::spawn(IN_FLIGHT_ONLY, &[]);
    let port = h.numbers()[0];
    let local = addr(&format!("127.0.0.1:{port}"));
    for owners in [OwnerSource::Auto, OwnerSource::ProcFd] {
        let mut c = PlatformCollector::with_options(LinuxOptions {
            owners,
            ..LinuxOptions::default()
        })
        .expect("collector");
        let snap = c.sample().expect("sample");
        let s = one(&snap, Proto::Tcp, local, None);
        assert_eq!(s.state, SocketState::Listen, "{s:?}");
        assert_ne!(s.inode, 0, "{s:?}");
        assert!(s.owners.is_empty(), "{s:?}");
        // The BPF owner iterator sees every process's fds; the /proc scan
        // does too unless some process's fd table is denied even to root
        // (then a root-owned socket may be that process's).
        let saw_everything = snap.diagnostics.tier == Some(procnet::snapshot::Tier::T1)
            || snap.diagnostics.processes_denied == 0;
        if saw_everything {
            assert_eq!(reason(s), Some("orphan"), "{owners:?}: {s:?}");
            assert!(diag_count(&snap, "unownedOrphan") >= 1);
        } else {
            assert_eq!(reason(s), Some("permission"), "{owners:?}: {s:?}");
        }
    }
    assert!(
        can_load_bpf(),
        "the orphan case with BPF owners needs kernel BTF"
    );
}

/// `RLIMIT_NOFILE` of another process, `(soft, hard)`.
fn nofile(pid: u32) -> (u64, u64) {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads the limit into `old`; no new limit is passed.
    let rc = unsafe {
        libc::prlimit64(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut old,
        )
    };
    assert_eq!(rc, 0, "prlimit({pid}): {}", std::io::Error::last_os_error());
    (old.rlim_cur, old.rlim_max)
}

/// Sets another process's `RLIMIT_NOFILE` (as `prlimit --pid --nofile`).
fn set_nofile(pid: u32, soft: u64, hard: u64) {
    let new = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `new` is a valid rlimit; the old one is not asked for.
    let rc = unsafe {
        libc::prlimit64(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &new,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit({pid}): {}", std::io::Error::last_os_error());
}

/// The lowest fd number `pid` does not use: with the soft limit there,
/// its next `open`, `socket` or `bpf(BPF_ITER_CREATE)` fails with EMFILE.
fn lowest_free_fd(pid: u32) -> u64 {
    let used: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the server's fd table")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !used.contains(n)).expect("a free fd")
}

fn collector_health(server: &common::Server) -> serde_json::Value {
    server.get("/healthz").json()["collector"].clone()
}

/// Polls `/healthz` until `pred` holds for `collector`; its last value.
fn wait_collector(
    server: &common::Server,
    within: std::time::Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> (bool, serde_json::Value) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let c = collector_health(server);
        if pred(&c) {
            return (true, c);
        }
        if std::time::Instant::now() > deadline {
            return (false, c);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One moment without free fds makes the BPF iterators fail (EMFILE):
/// the server falls back to netlink + /proc (T2), says why in `/healthz`,
/// and goes back to the iterators (T0 for `serve`: T1 plus kernel events)
/// once fds are free again, instead of staying on the slower path for the
/// rest of its life.
#[test]
fn fd_exhaustion_falls_back_to_t2_for_a_while_then_t1_again() {
    require_root("the BPF iterator tier");
    assert!(
        can_load_bpf(),
        "this machine cannot load BPF iterators (kernel BTF, 5.9+): T1 cannot be tested"
    );
    let server = common::Server::start(&[]);
    let pid = server.child.id();
    let secs = std::time::Duration::from_secs;
    let (ok, c) = wait_collector(&server, secs(30), |c| c["tier"] == "T0");
    assert!(ok, "never T0 as root: {c}");
    assert!(c.get("tierReason").is_none(), "{c}");

    let (soft, hard) = nofile(pid);
    let mut fell_back = None;
    for _attempt in 0..5 {
        // Let the last request's connection close, then leave no fd free
        // for a few samples (0.2 s apart).
        std::thread::sleep(std::time::Duration::from_millis(300));
        set_nofile(pid, lowest_free_fd(pid), hard);
        std::thread::sleep(secs(2));
        set_nofile(pid, soft, hard);
        let (ok, c) = wait_collector(&server, secs(3), |c| c["tier"] == "T2");
        if ok {
            fell_back = Some(c);
            break;
        }
    }
    let c = fell_back.expect("the server never fell back to T2 while it had no free fd");
    let why = c["tierReason"].as_str().unwrap_or_default();
    eprintln!("fell back: {c}");
    assert!(why.contains("Too many open files"), "{c}");
    assert!(why.contains("retrying in"), "{c}");
    assert_eq!(c["backend"], "netlink", "{c}");

    let (ok, c) = wait_collector(&server, secs(120), |c| c["tier"] == "T0");
    assert!(ok, "the BPF iterators were never tried again: {c}");
    assert!(c.get("tierReason").is_none(), "{c}");
    // The walk after the retry, or an event-fed sample after it: both are
    // the BPF path again, never netlink + /proc.
    assert!(
        ["bpf+netlink", "events+netlink"].contains(&c["backend"].as_str().unwrap_or_default()),
        "{c}"
    );
}

/// `procnet snapshot --format snapshot` with `env`; its diagnostics.
fn snapshot_diagnostics(env: &[(&str, &str)]) -> serde_json::Value {
    let out = Command::new(common::BIN)
        .args(["snapshot", "--format", "snapshot", "--no-containers"])
        .env_remove("PROCNET_NO_BPF")
        .env_remove("PROCNET_TIER")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run procnet snapshot");
    assert!(
        out.status.success(),
        "procnet snapshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).expect("snapshot JSON");
    snap["diagnostics"].clone()
}

#[test]
fn procnet_tier_forces_a_tier_and_no_bpf_is_t2() {
    let t3 = snapshot_diagnostics(&[("PROCNET_TIER", "T3")]);
    assert_eq!(t3["tier"], "T3", "{t3}");
    assert_eq!(t3["backend"], "procfs", "{t3}");
    assert!(
        t3["tierReason"]
            .as_str()
            .is_some_and(|r| r.contains("PROCNET_TIER=T3")),
        "{t3}"
    );
    for env in [("PROCNET_TIER", "t2"), ("PROCNET_NO_BPF", "1")] {
        let t2 = snapshot_diagnostics(&[env]);
        assert_eq!(t2["tier"], "T2", "{env:?}: {t2}");
        assert_eq!(t2["backend"], "netlink", "{env:?}: {t2}");
        assert!(
            t2["tierReason"].as_str().is_some_and(|r| r.contains(env.0)),
            "{env:?}: {t2}"
        );
    }
    let bad = snapshot_diagnostics(&[("PROCNET_TIER", "T9")]);
    let warnings = bad["warnings"].to_string();
    assert!(
        warnings.contains("PROCNET_TIER=T9") && warnings.contains("T0, T1, T2, T3"),
        "{bad}"
    );
}

#[test]
fn root_gets_tier_t1() {
    require_root("the BPF iterator tier");
    assert!(can_load_bpf(), "this machine cannot load BPF iterators");
    let d = snapshot_diagnostics(&[]);
    assert_eq!(d["tier"], "T1", "{d}");
    assert!(d.get("tierReason").is_none(), "{d}");
}
