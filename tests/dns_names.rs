//! Names for remote addresses end to end: a client in a network namespace
//! of its own talks to a server in another (198.18.0.0/15, joined by a
//! veth pair, so the server is an external endpoint for procnet run in
//! the client's namespace), and a real DNS server (Debian `dnsmasq`) the
//! test runs on that namespace's loopback holds the PTR record of the
//! server's address. procnet must show the name in `/api/graph` (label and
//! `hostName`, the address kept), `/api/connections` (`toHostName`),
//! `procnet snapshot` and the page; none with `--no-dns`; and a resolver
//! that never answers must not hold up `/api/graph`.
//!
//! The test process enters the client's namespace on a thread of its own
//! ([`in_netns`], `setns`), so its HTTP client, helpers and the browser all
//! run there. Needs root and dnsmasq: fails, never skips, without them.
#![cfg(target_os = "linux")]

mod common;

use common::{http, must, python, run, Proc, Response, BIN};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The name the test's resolver gives the server's address.
const NAME: &str = "peer.procnet.test";

fn require_root_and_dnsmasq() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "dns_names needs root (network namespaces, veth): run it as root (CI does)"
    );
    let found = Command::new("dnsmasq").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "dns_names needs dnsmasq (apt-get install dnsmasq; scripts/setup.sh installs it)"
    );
}

/// Runs `f` on a thread inside network namespace `ns`: sockets it opens
/// and processes it starts live there.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Two namespaces joined by a veth pair, and the resolver configuration
/// `ip netns exec` gives the client's (`/etc/netns/<ns>/resolv.conf`);
/// all removed when dropped, also when the test fails.
struct NetPair {
    client_ns: String,
    server_ns: String,
    server_ip: String,
    etc_dir: std::path::PathBuf,
}

impl NetPair {
    fn new() -> NetPair {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let pair = NetPair {
            client_ns: format!("procnet-dns-{pid}-{n}-c"),
            server_ns: format!("procnet-dns-{pid}-{n}-s"),
            server_ip: format!("198.18.{}.2", 100 + n),
            etc_dir: format!("/etc/netns/procnet-dns-{pid}-{n}-c").into(),
        };
        let client_dev = format!("pd{}c{n}", pid % 100_000);
        let server_dev = format!("pd{}s{n}", pid % 100_000);
        must(&["ip", "netns", "add", &pair.client_ns]);
        must(&["ip", "netns", "add", &pair.server_ns]);
        must(&[
            "ip",
            "link",
            "add",
            &client_dev,
            "netns",
            &pair.client_ns,
            "type",
            "veth",
            "peer",
            "name",
            &server_dev,
            "netns",
            &pair.server_ns,
        ]);
        let client_ip = format!("198.18.{}.1/30", 100 + n);
        let server_ip = format!("{}/30", pair.server_ip);
        for (ns, dev, ip) in [
            (&pair.client_ns, &client_dev, &client_ip),
            (&pair.server_ns, &server_dev, &server_ip),
        ] {
            must(&["ip", "-n", ns, "addr", "add", ip, "dev", dev]);
            must(&["ip", "-n", ns, "link", "set", dev, "up"]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // The system resolver inside the client's namespace (for `ip
        // netns exec`): the test's dnsmasq on port 53 there.
        std::fs::create_dir_all(&pair.etc_dir).expect("create /etc/netns/<ns>");
        std::fs::write(pair.etc_dir.join("resolv.conf"), "nameserver 127.0.0.1\n")
            .expect("write the namespace's resolv.conf");
        pair
    }

    /// `2.100.18.198.in-addr.arpa`: the PTR owner of the server's address.
    fn ptr_owner(&self) -> String {
        let mut octets: Vec<&str> = self.server_ip.split('.').collect();
        octets.reverse();
        format!("{}.in-addr.arpa", octets.join("."))
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.client_ns]);
        let _ = run(&["ip", "netns", "del", &self.server_ns]);
        let _ = std::fs::remove_dir_all(&self.etc_dir);
    }
}

/// dnsmasq on 127.0.0.1:`port` of the current thread's namespace, with
/// only the PTR record of the server's address; its query log is kept.
struct Dnsmasq {
    child: Child,
    log: std::path::PathBuf,
    /// Queries of the readiness probe (not procnet's).
    probes: usize,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    fn start(ptr_owner: &str, port: u16) -> Dnsmasq {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("dnsmasq.log");
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--user=root",
                "--pid-file",
                "--log-queries",
            ])
            .arg(format!("--log-facility={}", log.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--ptr-record={ptr_owner},{NAME}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dnsmasq starts");
        let mut d = Dnsmasq {
            child,
            log,
            probes: 0,
            _dir: dir,
        };
        d.wait_answers(ptr_owner, port);
        d.probes = d.logged_queries(ptr_owner);
        d
    }

    /// Until dnsmasq answers the PTR query (a DNS query by hand, so the
    /// check does not depend on the code under test).
    fn wait_answers(&self, ptr_owner: &str, port: u16) {
        let mut probe = python(DNS_PROBE, &[ptr_owner, &port.to_string()]);
        assert_eq!(probe.line(), "answered", "dnsmasq never answered");
    }

    /// How many queries for `owner` reached dnsmasq from procnet.
    fn queries_for(&self, owner: &str) -> usize {
        self.logged_queries(owner) - self.probes
    }

    fn logged_queries(&self, owner: &str) -> usize {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("query[PTR]") && l.contains(owner))
            .count()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a PTR query for argv[1] to 127.0.0.1:argv[2] until one is
/// answered; prints `answered`.
const DNS_PROBE: &str = r#"
import socket, struct, sys, time
name, port = sys.argv[1], int(sys.argv[2])
q = struct.pack(">HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
q += struct.pack(">HH", 12, 1)
for _ in range(200):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.1)
    s.sendto(q, ("127.0.0.1", port))
    try:
        if s.recv(512)[:2] == b"\x51\x51":
            print("answered", flush=True)
            break
    except OSError:
        time.sleep(0.05)
else:
    print("silent", flush=True)
"#;

/// A DNS server that never answers: binds 127.0.0.1:argv[1] (UDP and
/// TCP), prints `ready`, then `query` for each datagram it swallows.
const BLACKHOLE: &str = r#"
import socket, sys
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", port))
t = socket.socket(); t.bind(("127.0.0.1", port)); t.listen(16)  # accepts nothing
print("ready", flush=True)
while True:
    u.recv(4096)
    print("query", flush=True)
"#;

/// A server on the server's address (in its namespace) and a client
/// holding one connection to it (in the client's).
struct Peers {
    _server: Proc,
    _client: Proc,
    port: u16,
}

fn connect_peers(pair: &NetPair) -> Peers {
    let ip = pair.server_ip.clone();
    let (server, port) = in_netns(&pair.server_ns, move || common::tcp_server(&ip));
    let ip = pair.server_ip.clone();
    let (client, _) = in_netns(&pair.client_ns, move || {
        common::tcp_client(&ip, port, 1, &[])
    });
    Peers {
        _server: server,
        _client: client,
        port,
    }
}

/// `procnet serve` in the client's namespace through `ip netns exec` (so
/// its system resolver is the namespace's `resolv.conf`); killed when
/// dropped.
struct NsServer {
    child: Child,
    port: u16,
}

impl NsServer {
    fn start(pair: &NetPair, peers: &Peers, args: &[&str]) -> NsServer {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.client_ns,
                BIN,
                "serve",
                "--port",
                "0",
            ])
            .args(["--interval", "0.2", "--no-containers"])
            // Both ports are ephemeral: name the server's a service port.
            .args(["--svc-ports", &peers.port.to_string()])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("procnet serve starts");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let mut port = None;
        for _ in 0..50 {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
            if let Some(rest) = line.split("serving on http://").nth(1) {
                port = rest
                    .trim()
                    .trim_end_matches('/')
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok());
                break;
            }
        }
        let port = port.unwrap_or_else(|| panic!("procnet did not start: {seen}"));
        std::thread::spawn(move || {
            let mut sink = String::new();
            while err.read_line(&mut sink).unwrap_or(0) > 0 {
                eprint!("procnet: {sink}");
                sink.clear();
            }
        });
        NsServer { child, port }
    }

    /// GET `path` from inside the client's namespace.
    fn get(&self, pair: &NetPair, path: &str) -> Response {
        let (port, path) = (self.port, path.to_string());
        in_netns(&pair.client_ns, move || {
            http(port, &path, &[("Host", &format!("127.0.0.1:{port}"))])
        })
    }

    /// Polls `path` until `pred` holds on its JSON; returns the last answer.
    fn wait_json(
        &self,
        pair: &NetPair,
        path: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let r = self.get(pair, path);
            let v = if r.status == 200 {
                r.json()
            } else {
                Value::Null
            };
            if pred(&v) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The external node for the server's address, if the graph has it.
fn ext_node(graph: &Value, ip: &str) -> Option<Value> {
    graph["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["id"] == format!("ext:{ip}").as_str())
        .cloned()
}

/// The connection rows to the server's address.
fn rows_to(conns: &Value, ip: &str) -> Vec<Value> {
    conns["connections"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|c| c["toAddress"] == ip)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// `procnet snapshot --format <format>` in the client's namespace.
fn snapshot(pair: &NetPair, peers: &Peers, format: &str, args: &[&str]) -> Value {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.client_ns,
            BIN,
            "snapshot",
            "--no-containers",
        ])
        .args(["--format", format, "--svc-ports", &peers.port.to_string()])
        .args(args)
        .output()
        .expect("procnet snapshot runs");
    assert!(
        o.status.success(),
        "procnet snapshot --format {format} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("snapshot JSON")
}

#[test]
fn the_systems_resolver_names_the_external_endpoint_in_graph_connections_snapshot_and_page() {
    require_root_and_dnsmasq();
    let pair = NetPair::new();
    let owner = pair.ptr_owner();
    let dns = in_netns(&pair.client_ns, move || Dnsmasq::start(&owner, 53));
    let peers = connect_peers(&pair);
    let ip = pair.server_ip.clone();
    // No DNS flag: the system's configuration, here the namespace's
    // resolv.conf, which names the test's dnsmasq.
    let server = NsServer::start(&pair, &peers, &[]);
    let graph = server.wait_json(&pair, "/api/graph", Duration::from_secs(30), |g| {
        ext_node(g, &ip).is_some_and(|n| n["hostName"] == NAME)
    });
    let node = ext_node(&graph, &ip).unwrap_or_else(|| panic!("no ext:{ip} in {graph:#}"));
    assert_eq!(node["hostName"], NAME, "{node:#}");
    assert_eq!(node["label"], NAME, "the name is the label: {node:#}");
    assert_eq!(
        node["address"],
        ip.as_str(),
        "the address is kept: {node:#}"
    );
    assert!(
        dns.queries_for(&pair.ptr_owner()) >= 1,
        "the name came from dnsmasq"
    );

    let conns = server.get(&pair, "/api/connections").json();
    let rows = rows_to(&conns, &ip);
    assert!(!rows.is_empty(), "a connection to {ip}: {conns:#}");
    for row in &rows {
        assert_eq!(row["toHostName"], NAME, "{row:#}");
    }

    // The one-off views look the names up too.
    let g = snapshot(&pair, &peers, "graph", &[]);
    let n = ext_node(&g, &ip).unwrap_or_else(|| panic!("snapshot: no ext:{ip} in {g:#}"));
    assert_eq!(n["hostName"], NAME, "snapshot graph: {n:#}");
    assert_eq!(n["label"], NAME, "snapshot graph: {n:#}");
    let c = snapshot(&pair, &peers, "connections", &[]);
    let rows = rows_to(&c, &ip);
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["toHostName"] == NAME),
        "{c:#}"
    );

    let table = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.client_ns,
            BIN,
            "snapshot",
            "--no-containers",
        ])
        .args(["--format", "table", "--svc-ports", &peers.port.to_string()])
        .output()
        .expect("procnet snapshot --format table");
    let table = String::from_utf8_lossy(&table.stdout);
    // The name, then the address (cut to the column's width).
    assert!(
        table.contains(&format!("{NAME} (198.18.")),
        "table: {table}"
    );

    // The page: the node's tooltip shows the name and the address.
    let url = format!("http://127.0.0.1:{}", server.port);
    let env = vec![
        ("PROCNET_URL", url),
        ("NAMES_NODE", format!("ext:{ip}")),
        ("NAMES_NAME", NAME.to_string()),
        ("NAMES_ADDRESS", ip.clone()),
    ];
    in_netns(&pair.client_ns, move || {
        common::run_ui_tests("names.mjs", &env, 1);
    });
    common::assert_screenshots(&["names-tooltip"]);
}

#[test]
fn dns_server_points_the_lookups_at_another_resolver() {
    require_root_and_dnsmasq();
    let pair = NetPair::new();
    // Port 53 answers nothing here: only --dns-server finds the name.
    std::fs::remove_dir_all(&pair.etc_dir).expect("drop the namespace's resolv.conf");
    let owner = pair.ptr_owner();
    let dns = in_netns(&pair.client_ns, move || Dnsmasq::start(&owner, 5353));
    let peers = connect_peers(&pair);
    let ip = pair.server_ip.clone();
    let server = NsServer::start(&pair, &peers, &["--dns-server", "127.0.0.1:5353"]);
    let graph = server.wait_json(&pair, "/api/graph", Duration::from_secs(30), |g| {
        ext_node(g, &ip).is_some_and(|n| n["hostName"] == NAME)
    });
    let node = ext_node(&graph, &ip).unwrap_or_else(|| panic!("no ext:{ip} in {graph:#}"));
    assert_eq!(node["label"], NAME, "{node:#}");
    assert!(dns.queries_for(&pair.ptr_owner()) >= 1);
    let g = snapshot(&pair, &peers, "graph", &["--dns-server", "127.0.0.1:5353"]);
    assert_eq!(ext_node(&g, &ip).expect("snapshot node")["hostName"], NAME);
}

#[test]
fn no_dns_shows_addresses_and_asks_no_resolver() {
    require_root_and_dnsmasq();
    let pair = NetPair::new();
    let owner = pair.ptr_owner();
    let dns = in_netns(&pair.client_ns, move || Dnsmasq::start(&owner, 53));
    let peers = connect_peers(&pair);
    let ip = pair.server_ip.clone();
    let server = NsServer::start(&pair, &peers, &["--no-dns"]);
    // Many samples after the endpoint appeared: a name would be there by now.
    let graph = server.wait_json(&pair, "/api/graph", Duration::from_secs(30), |g| {
        ext_node(g, &ip).is_some() && g["seq"].as_u64().unwrap_or(0) >= 1
    });
    assert!(ext_node(&graph, &ip).is_some(), "no ext:{ip} in {graph:#}");
    let health = server.wait_json(&pair, "/healthz", Duration::from_secs(30), |h| {
        h["samples"].as_u64().unwrap_or(0) >= 15
    });
    assert!(health["samples"].as_u64().unwrap_or(0) >= 15, "{health:#}");
    let graph = server.get(&pair, "/api/graph").json();
    let node = ext_node(&graph, &ip).unwrap_or_else(|| panic!("no ext:{ip} in {graph:#}"));
    assert_eq!(node.get("hostName"), None, "{node:#}");
    assert_eq!(node["label"], ip.as_str(), "{node:#}");
    let conns = server.get(&pair, "/api/connections").json();
    let rows = rows_to(&conns, &ip);
    assert!(!rows.is_empty(), "{conns:#}");
    assert!(
        rows.iter().all(|r| r.get("toHostName").is_none()),
        "{conns:#}"
    );

    let g = snapshot(&pair, &peers, "graph", &["--no-dns"]);
    let n = ext_node(&g, &ip).expect("snapshot node");
    assert_eq!(n.get("hostName"), None, "{n:#}");
    assert_eq!(n["label"], ip.as_str());
    assert_eq!(
        dns.queries_for(&pair.ptr_owner()),
        0,
        "--no-dns asked the resolver nothing"
    );
}

#[test]
fn a_resolver_that_never_answers_does_not_hold_up_the_graph() {
    require_root_and_dnsmasq();
    let pair = NetPair::new();
    std::fs::remove_dir_all(&pair.etc_dir).expect("drop the namespace's resolv.conf");
    let mut hole = in_netns(&pair.client_ns, || python(BLACKHOLE, &["5353"]));
    assert_eq!(hole.line(), "ready");
    let peers = connect_peers(&pair);
    let ip = pair.server_ip.clone();
    let server = NsServer::start(&pair, &peers, &["--dns-server", "127.0.0.1:5353"]);
    // The lookup has started and will never be answered...
    assert_eq!(hole.line(), "query", "procnet asked the resolver");
    // (The sampler queues the lookup just before it publishes that first
    // sample: on a loaded machine the query can arrive first.)
    server.wait_json(&pair, "/api/graph", Duration::from_secs(30), |g| {
        g["seq"].as_u64().unwrap_or(0) >= 1
    });
    // ...and meanwhile every request is answered (the client's read
    // timeout, 10 s, is far above the lookup's bound of 3 s: an answer
    // held up by DNS would still arrive, so it is the content and the
    // sequence numbers that show the sampler kept going).
    let mut seqs = Vec::new();
    for _ in 0..10 {
        let r = server.get(&pair, "/api/graph");
        assert_eq!(r.status, 200, "{}", r.body);
        let g = r.json();
        let node = ext_node(&g, &ip).unwrap_or_else(|| panic!("no ext:{ip} in {g:#}"));
        assert_eq!(node.get("hostName"), None, "{node:#}");
        assert_eq!(node["label"], ip.as_str());
        // (Its status may say a sample was slow on a loaded machine; the
        // count of samples is what tells the sampler went on.)
        let h = server.get(&pair, "/healthz").json();
        seqs.push(h["samples"].as_u64().unwrap_or_else(|| panic!("{h:#}")));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        seqs.last() > seqs.first(),
        "samples went on while the resolver was silent: {seqs:?}"
    );
    let conns = server.get(&pair, "/api/connections");
    assert_eq!(conns.status, 200);
    assert!(!rows_to(&conns.json(), &ip).is_empty());
    // A one-off snapshot gives up on the name and still prints.
    let g = snapshot(&pair, &peers, "graph", &["--dns-server", "127.0.0.1:5353"]);
    assert_eq!(
        ext_node(&g, &ip).expect("snapshot node")["label"],
        ip.as_str()
    );
}

#[test]
fn a_bad_dns_server_or_both_dns_flags_is_a_usage_error() {
    for (args, needle) in [
        (
            vec!["serve", "--dns-server", "dns.example"],
            "127.0.0.1:5353",
        ),
        (
            vec!["snapshot", "--dns-server", "127.0.0.1:99999"],
            "127.0.0.1:5353",
        ),
        (
            vec!["serve", "--no-dns", "--dns-server", "127.0.0.1"],
            "cannot be used with",
        ),
    ] {
        let o = Command::new(BIN)
            .args(&args)
            .output()
            .expect("procnet runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
