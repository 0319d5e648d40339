//! Fleet mode end to end, with real engines: hosts are network namespaces
//! this test creates, joined by a bridge inside a hub namespace of its own
//! (198.18.0.0/15, benchmark space: nothing is routed to this machine's
//! interfaces); one `procnet serve` per host namespace; a real Prometheus
//! (Debian's `prometheus`) or VictoriaMetrics (`victoria-metrics`) in the
//! hub scrapes them every second. A `procnet serve --fleet` reads the
//! engine through a forwarder into the hub.
//!
//! Workload: a client on A talks to a server on B, a client on C talks to
//! a server on A, and the client on C talks to an address with no procnet
//! (namespace D). The fleet `/api/graph` must show `apiclient@A →
//! pgserver@B` and `worker@C → webserver@A` with bytes within 10 % of what
//! moved, the procnet-less peer as a placeholder, and `?at=` before the
//! workload none of it. With Prometheus stopped, the fleet server keeps
//! serving the last map with a banner and `/healthz` says why.
//!
//! Needs root (namespaces, veth, bridge) and both engines installed: fails,
//! never skips, without them.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the clients send and the servers answer, per connection.
const API_SENDS: u64 = 2_000_000;
const PG_REPLIES: u64 = 300_000;
const WORKER_SENDS: u64 = 1_000_000;
const WEB_REPLIES: u64 = 500_000;
const OUTSIDE_SENDS: u64 = 10_000;
const OUTSIDE_REPLIES: u64 = 1_000;

/// The scrape token of the host procnets (they bind off loopback).
const SCRAPE_TOKEN: &str = "fleet-test-scrape-token";

/// One fleet at a time: each is 5 namespaces, 4 procnets and an engine
/// on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn require_root() {
    common::require_root("fleet_mode (network namespaces, veth, bridge)");
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A background child killed when dropped.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A hub namespace with a bridge and host namespaces on it, each with one
/// veth into the bridge; all removed when dropped, also on failure.
struct Fleet {
    hub: String,
    hosts: Vec<String>,
    net: u32,
    dir: tempfile::TempDir,
}

impl Fleet {
    fn new(hosts: usize) -> Fleet {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let fleet = Fleet {
            hub: format!("procnet-f-{tag}-hub"),
            hosts: (0..hosts)
                .map(|i| format!("procnet-f-{tag}-h{i}"))
                .collect(),
            // The namespaces are the test's own: any /24 of 198.19.0.0/16.
            net: 200 + n,
            dir: tempfile::tempdir().unwrap(),
        };
        must(&["ip", "netns", "add", &fleet.hub]);
        must(&["ip", "-n", &fleet.hub, "link", "set", "lo", "up"]);
        must(&[
            "ip", "-n", &fleet.hub, "link", "add", "br0", "type", "bridge",
        ]);
        must(&["ip", "-n", &fleet.hub, "link", "set", "br0", "up"]);
        let hub_ip = format!("{}/24", fleet.hub_ip());
        must(&["ip", "-n", &fleet.hub, "addr", "add", &hub_ip, "dev", "br0"]);
        for (i, ns) in fleet.hosts.iter().enumerate() {
            let port = format!("p{i}");
            must(&["ip", "netns", "add", ns]);
            must(&[
                "ip", "link", "add", &port, "netns", &fleet.hub, "type", "veth", "peer", "name",
                "eth0", "netns", ns,
            ]);
            must(&[
                "ip", "-n", &fleet.hub, "link", "set", &port, "master", "br0",
            ]);
            must(&["ip", "-n", &fleet.hub, "link", "set", &port, "up"]);
            let ip = format!("{}/24", fleet.ip(i));
            must(&["ip", "-n", ns, "addr", "add", &ip, "dev", "eth0"]);
            must(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        fleet
    }

    fn ip(&self, host: usize) -> String {
        format!("198.19.{}.{}", self.net, host + 1)
    }

    fn hub_ip(&self) -> String {
        format!("198.19.{}.254", self.net)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The last lines of every log file of this fleet, for a failure message.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for p in entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
        {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("--- {} (last 15 lines)\n{tail}\n", p.display()));
        }
        out
    }

    /// Runs `program args` in namespace `ns`; stderr to a log file.
    fn spawn(&self, ns: &str, program: &Path, args: &[&str], log: &str) -> Bg {
        let err = std::fs::File::create(self.dir.path().join(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("ip netns exec");
        Bg(child)
    }

    /// A python script under another process name, in namespace `ns`;
    /// returns once it printed its first line (ready).
    fn python(&self, ns: &str, name: &str, script: &str, args: &[&str]) -> Proc {
        let exe = self.dir.path().join(name);
        if !exe.exists() {
            std::os::unix::fs::symlink(python_interpreter(), &exe).unwrap();
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .args(["-u", "-c", script])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python in a namespace");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut p = Proc { child, out };
        let line = p.line();
        assert!(
            !line.is_empty(),
            "{name} in {ns} exited before it was ready"
        );
        p
    }

    /// The host procnet of `host` (`--host-name name`), scraped on :9100.
    fn procnet(&self, host: usize, name: &str) -> Bg {
        // Written once: rewriting it (truncate, then write) while the
        // procnet started before reads it would give that one an empty
        // token.
        let token = self.dir.path().join("scrape-token");
        if !token.exists() {
            self.file("scrape-token", SCRAPE_TOKEN);
        }
        self.spawn(
            &self.hosts[host],
            Path::new(BIN),
            &[
                "serve",
                "--bind",
                "0.0.0.0",
                "--port",
                "9100",
                "--token-file",
                token.to_str().unwrap(),
                "--host-name",
                name,
                "--fleet-networks",
                "198.18.0.0/15",
                "--interval",
                "0.5",
                "--no-containers",
            ],
            &format!("procnet-{name}.log"),
        )
    }

    fn scrape_config(&self, hosts: usize) -> PathBuf {
        let targets: Vec<String> = (0..hosts)
            .map(|i| format!("'{}:9100'", self.ip(i)))
            .collect();
        self.file(
            "scrape.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: procnet\n    bearer_token: {SCRAPE_TOKEN}\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends and the bridge.
        for ns in self.hosts.iter().chain([&self.hub]) {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

/// Runs `f` on a thread that entered namespace `ns` (a thread's network
/// namespace is its own: the rest of the test stays where it is).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: a valid namespace fd; affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// A TCP forwarder: 127.0.0.1:<port> here → `target` inside `ns`. Lives
/// as long as the test process.
fn forward_into(ns: &str, target: SocketAddr) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ns = ns.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let ns = ns.clone();
            std::thread::spawn(move || {
                let upstream = in_netns(&ns, move || {
                    TcpStream::connect_timeout(&target, Duration::from_secs(2))
                });
                let Ok(upstream) = upstream else {
                    return; // the engine is down: the client sees the close
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    })
                };
                let a = pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let b = pipe(upstream, client);
                let _ = a.join();
                let _ = b.join();
            });
        }
    });
    port
}

/// Accepts connections; on each sends argv[3] bytes, then reads until EOF.
/// Binds argv[1]:argv[2]; prints "ready".
const SERVER: &str = r#"
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
reply = b"r" * int(sys.argv[3])
print("ready", flush=True)
held = []
def serve(c):
    c.sendall(reply)
    while c.recv(65536):
        pass
while True:
    c, _ = s.accept(); held.append(c)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// For each argument `ip:port:send:expect`: connects, sends `send` bytes,
/// reads `expect` bytes. Prints "ready", then holds the connections.
const CLIENT: &str = r#"
import socket, sys, time
print("ready", flush=True)
held = []
for spec in sys.argv[1:]:
    ip, port, send, expect = spec.split(":")
    c = socket.create_connection((ip, int(port)), timeout=30)
    c.sendall(b"x" * int(send))
    got = 0
    while got < int(expect):
        d = c.recv(65536)
        if not d:
            break
        got += len(d)
    held.append(c)
print("done", flush=True)
while True:
    time.sleep(3600)
"#;

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Prometheus,
    VictoriaMetrics,
}

/// The engine in the hub, listening on 127.0.0.1:<port> there.
fn start_engine(fleet: &Fleet, engine: Engine, config: &Path) -> (Bg, u16) {
    let data = fleet.dir.path().join("tsdb");
    match engine {
        Engine::Prometheus => (
            fleet.spawn(
                &fleet.hub,
                Path::new("/usr/bin/prometheus"),
                &[
                    &format!("--config.file={}", config.display()),
                    &format!("--storage.tsdb.path={}", data.display()),
                    "--web.listen-address=127.0.0.1:9090",
                    "--log.level=warn",
                ],
                "engine.log",
            ),
            9090,
        ),
        Engine::VictoriaMetrics => (
            fleet.spawn(
                &fleet.hub,
                Path::new("/usr/bin/victoria-metrics"),
                &[
                    &format!("-promscrape.config={}", config.display()),
                    "-promscrape.config.strictParse=false",
                    // VictoriaMetrics hides the newest 30 s by default.
                    "-search.latencyOffset=1s",
                    "-httpListenAddr=127.0.0.1:8428",
                    &format!("-storageDataPath={}", data.display()),
                    "-httpAuth.username=fleet",
                    "-httpAuth.password=fleet-test-password",
                    "-loggerLevel=ERROR",
                ],
                "engine.log",
            ),
            8428,
        ),
    }
}

fn graph_of(server: &Server, path: &str) -> Value {
    let r = server.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

fn edge<'a>(g: &'a Value, from: &str, to: &str) -> Option<&'a Value> {
    g["edges"]
        .as_array()?
        .iter()
        .find(|e| e["from"] == from && e["to"] == to)
}

fn bytes(e: &Value, field: &str) -> u64 {
    e[field].as_u64().unwrap_or(0)
}

fn within_10_percent(got: u64, want: u64) -> bool {
    (got as f64 - want as f64).abs() <= want as f64 * 0.10
}

/// Polls until `pred` holds on the fleet graph; fails with the last one
/// and the ends of the fleet's logs (host procnets, engine).
fn wait_for(
    server: &Server,
    fleet: &Fleet,
    within: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let g = graph_of(server, "/api/graph");
        if pred(&g) {
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not within {within:?}; last fleet graph:\n{g:#}\n{}\nfleet server /healthz: {}",
            fleet.log_tails(),
            server.get("/healthz").body
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

/// Runs the whole scenario on `engine`; `then` gets the fleet server, the
/// engine, the fleet and a moment before the workload for extra checks.
fn scenario(engine: Engine, then: impl FnOnce(&Server, Bg, &Fleet, f64)) {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Dropped last: every process below is gone before the namespaces.
    let fleet = Fleet::new(4);
    let procnets: Vec<Bg> = [(A, "A"), (B, "B"), (C, "C")]
        .iter()
        .map(|&(i, name)| fleet.procnet(i, name))
        .collect();
    let config = fleet.scrape_config(3);
    let (engine_proc, engine_port) = start_engine(&fleet, engine, &config);
    let forward = forward_into(&fleet.hub, ([127, 0, 0, 1], engine_port).into());
    let url = format!("http://127.0.0.1:{forward}");
    let mut args = vec!["--fleet".to_string(), url.clone()];
    if engine == Engine::VictoriaMetrics {
        let auth = fleet.file("basic-auth", "fleet:fleet-test-password\n");
        args.extend(["--fleet-basic-auth-file".into(), auth.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The engine needs a moment to listen: the fleet server retries, and
    // `start` waits for its first good answer.
    let server = Server::start_with_interval(&args, "0.5");

    // Every host's procnet is sampled and scraped (its listener is known).
    wait_for(
        &server,
        &fleet,
        Duration::from_secs(120),
        "the three host procnets",
        |g| {
            ["svc:A/procnet", "svc:B/procnet", "svc:C/procnet"]
                .iter()
                .all(|id| {
                    g["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n["id"] == *id)
                })
        },
    );
    let before = now_secs();
    std::thread::sleep(Duration::from_millis(1500));

    let (ip_a, ip_b, ip_d) = (fleet.ip(A), fleet.ip(B), fleet.ip(D));
    let _pg = fleet.python(
        &fleet.hosts[B],
        "pgserver",
        SERVER,
        &["0.0.0.0", "5432", &PG_REPLIES.to_string()],
    );
    let _web = fleet.python(
        &fleet.hosts[A],
        "webserver",
        SERVER,
        &[&ip_a, "8080", &WEB_REPLIES.to_string()],
    );
    let _outside = fleet.python(
        &fleet.hosts[D],
        "noprocnet",
        SERVER,
        &["0.0.0.0", "443", &OUTSIDE_REPLIES.to_string()],
    );
    let mut api = fleet.python(
        &fleet.hosts[A],
        "apiclient",
        CLIENT,
        &[&format!("{ip_b}:5432:{API_SENDS}:{PG_REPLIES}")],
    );
    let mut worker = fleet.python(
        &fleet.hosts[C],
        "worker",
        CLIENT,
        &[
            &format!("{ip_a}:8080:{WORKER_SENDS}:{WEB_REPLIES}"),
            &format!("{ip_d}:443:{OUTSIDE_SENDS}:{OUTSIDE_REPLIES}"),
        ],
    );
    assert_eq!(api.line(), "done");
    assert_eq!(worker.line(), "done");

    let outside = format!("ext:{ip_d}");
    let g = wait_for(
        &server,
        &fleet,
        Duration::from_secs(120),
        "the workload's edges with their bytes",
        |g| {
            let full = |from, to, tx: u64, rx: u64| {
                edge(g, from, to).is_some_and(|e| {
                    bytes(e, "txBytes") as f64 >= tx as f64 * 0.9
                        && bytes(e, "rxBytes") as f64 >= rx as f64 * 0.9
                })
            };
            full("svc:A/apiclient", "svc:B/pgserver", API_SENDS, PG_REPLIES)
                && full("svc:C/worker", "svc:A/webserver", WORKER_SENDS, WEB_REPLIES)
                && full("svc:C/worker", &outside, OUTSIDE_SENDS, OUTSIDE_REPLIES)
        },
    );
    for (from, to, port, tx, rx) in [
        (
            "svc:A/apiclient",
            "svc:B/pgserver",
            5432,
            API_SENDS,
            PG_REPLIES,
        ),
        (
            "svc:C/worker",
            "svc:A/webserver",
            8080,
            WORKER_SENDS,
            WEB_REPLIES,
        ),
        (
            "svc:C/worker",
            outside.as_str(),
            443,
            OUTSIDE_SENDS,
            OUTSIDE_REPLIES,
        ),
    ] {
        let e = edge(&g, from, to).unwrap();
        assert_eq!(
            (e["serverPort"].as_u64(), e["count"].as_u64()),
            (Some(port), Some(1)),
            "{e}"
        );
        assert!(
            within_10_percent(bytes(e, "txBytes"), tx)
                && within_10_percent(bytes(e, "rxBytes"), rx),
            "{from} → {to}: moved {tx} / {rx} bytes, the fleet map says {e}"
        );
    }
    let node = |id: &str| -> Value {
        g["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no node {id}"))
    };
    for (id, name, host) in [
        ("svc:A/apiclient", "apiclient", "A"),
        ("svc:B/pgserver", "pgserver", "B"),
        ("svc:C/worker", "worker", "C"),
        ("svc:A/webserver", "webserver", "A"),
    ] {
        let n = node(id);
        assert_eq!(
            (n["kind"].as_str(), n["name"].as_str(), n["host"].as_str()),
            (Some("process"), Some(name), Some(host)),
            "{n}"
        );
    }
    let placeholder = node(&outside);
    assert_eq!(
        (
            placeholder["kind"].as_str(),
            placeholder["address"].as_str()
        ),
        (Some("external"), Some(ip_d.as_str())),
        "{placeholder}"
    );
    assert!(placeholder.get("host").is_none(), "{placeholder}");

    // Before the workload: none of it.
    let past = graph_of(&server, &format!("/api/graph?at={before:.3}"));
    for (from, to) in [
        ("svc:A/apiclient", "svc:B/pgserver"),
        ("svc:C/worker", "svc:A/webserver"),
        ("svc:C/worker", outside.as_str()),
    ] {
        assert!(
            edge(&past, from, to).is_none(),
            "{from} → {to} at {before} (before the workload): {past:#}"
        );
    }
    assert!(past["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["id"] != "svc:A/apiclient"));
    fleet_history_checks(&server, before);
    // What changed since then: the three edges are new.
    let changes = graph_of(&server, &format!("/api/changes?from={before:.3}"));
    let added: Vec<(&str, &str)> = changes["newEdges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap()))
        .collect();
    for want in [
        ("svc:A/apiclient", "svc:B/pgserver"),
        ("svc:C/worker", "svc:A/webserver"),
    ] {
        assert!(added.contains(&want), "{want:?} in {added:?}");
    }
    // Connections: the client halves, named by the server they reach.
    let conns = graph_of(&server, "/api/connections");
    assert!(
        conns["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["fromProcessName"] == "apiclient"
                && c["toAddress"] == ip_b.as_str()
                && c["toPort"] == 5432
                && c["toLabel"] == "pgserver@B"),
        "{conns:#}"
    );
    let bad = server.get("/api/graph?at=yesterday");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("RFC 3339"), "{}", bad.body);

    then(&server, engine_proc, &fleet, before);
    drop(procnets);
}

/// `/api/history` from the engine, in a single host's shape: the range
/// covers the whole run, the steps are the interval (0.5 s) apart, the
/// strip saw the workload; `?at=` outside the range is a 416 that gives
/// it, and a step of the time bar is a moment `?at=` answers.
fn fleet_history_checks(server: &Server, before: f64) {
    let h = graph_of(server, "/api/history");
    let ms = |k: &str| {
        h[k].as_u64()
            .unwrap_or_else(|| panic!("{k} in /api/history: {h:#}"))
    };
    let (oldest, newest) = (ms("oldestMs"), ms("newestMs"));
    let before_ms = (before * 1000.0) as u64;
    let now_ms = (now_secs() * 1000.0) as u64;
    assert!(
        oldest < before_ms && newest > before_ms + 1_500 && newest <= now_ms + 1_000,
        "the range {oldest}..{newest} covers the run ({before_ms}..{now_ms}): {h:#}"
    );
    assert_eq!(
        (h["live"].as_bool(), h["intervalMs"].as_u64()),
        (Some(true), Some(500)),
        "{h:#}"
    );
    assert!(
        h["oldest"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{h:#}"
    );
    let seqs: Vec<(u64, u64)> = h["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_u64().unwrap(), s[1].as_u64().unwrap()))
        .collect();
    // The range spans more than 1.5 s (checked above), so at least 3 steps
    // of 0.5 s; a fast machine gets here a few seconds after the engine's
    // first scrape, so no more is certain.
    assert!(seqs.len() >= 3, "{h:#}");
    assert_eq!(seqs.len() as u64, h["samples"].as_u64().unwrap());
    assert!(seqs
        .windows(2)
        .all(|w| w[1].0 - w[0].0 == 500 && w[1].1 == w[0].1 + 1));
    assert!(seqs[0].0 >= oldest && seqs.last().unwrap().0 <= newest);
    let activity = h["activity"].as_array().unwrap();
    assert!(!activity.is_empty() && activity.len() <= 120, "{h:#}");
    let after_workload = |a: &&Value| a["endMs"].as_u64().unwrap() > before_ms + 1_500;
    // The workload's 3.8 MB moved after `before`.
    let moved: u64 = activity
        .iter()
        .filter(after_workload)
        .map(|a| a["bytes"].as_u64().unwrap())
        .sum();
    assert!(
        moved >= API_SENDS + WORKER_SENDS,
        "bytes after the workload began: {moved}: {h:#}"
    );
    assert!(
        activity
            .iter()
            .filter(after_workload)
            .any(|a| a["edges"].as_u64() >= Some(3)),
        "{h:#}"
    );
    let other = server.get("/api/history?buckets=7");
    assert_eq!(other.status, 200, "{}", other.body);
    assert!(other.json()["activity"].as_array().unwrap().len() <= 7);
    assert_eq!(server.get("/api/history?buckets=0").status, 400);

    // Outside the engine's data: 416 with the range, as on one host.
    for at in [oldest as f64 / 1000.0 - 3600.0, now_secs() + 3600.0] {
        let r = server.get(&format!("/api/graph?at={at:.3}"));
        assert_eq!(r.status, 416, "?at={at}: {}", r.body);
        let body = r.json();
        assert!(
            body["oldestMs"]
                .as_u64()
                .is_some_and(|o| o.abs_diff(oldest) < 2_000),
            "{body}"
        );
        assert!(
            body["error"].as_str().unwrap().contains("outside"),
            "{body}"
        );
        let r = server.get(&format!("/api/connections?at={at:.3}"));
        assert_eq!(r.status, 416, "{}", r.body);
    }
    // A step of the time bar is a moment `?at=` answers, as that step
    // (its seq), also when asked a little after it.
    let (t, seq) = seqs[seqs.len() / 2];
    let g = graph_of(
        server,
        &format!("/api/graph?at={:.3}", t as f64 / 1000.0 + 0.2),
    );
    assert_eq!(g["seq"].as_u64(), Some(seq), "{}", g["timestamp"]);
    let stamp = humantime::parse_rfc3339(g["timestamp"].as_str().unwrap()).unwrap();
    let stamp = stamp
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(stamp, t / 1000, "{}", g["timestamp"]);
    // Asked again (a settled moment comes from the cache): the same.
    let again = graph_of(server, &format!("/api/graph?at={:.3}", t as f64 / 1000.0));
    assert_eq!(again, g);
}

#[test]
fn fleet_map_from_prometheus() {
    scenario(Engine::Prometheus, |server, engine, _fleet, before| {
        // The map in a real browser: it opens grouped by host (expanded, a
        // small fleet), and a bigger synthetic fleet opens collapsed.
        let nodes = serde_json::json!([
            "svc:A/apiclient",
            "svc:B/pgserver",
            "svc:C/worker",
            "svc:A/webserver"
        ]);
        run_ui_tests(
            "fleet.mjs",
            &[
                ("PROCNET_URL", format!("http://127.0.0.1:{}", server.port)),
                ("PROCNET_FLEET_NODES", nodes.to_string()),
                ("PROCNET_FLEET_BEFORE", format!("{before:.3}")),
                (
                    "PROCNET_FLEET_EDGE",
                    serde_json::json!(["svc:A/apiclient", "svc:B/pgserver"]).to_string(),
                ),
            ],
            3,
        );
        assert_screenshots(&[
            "fleet-map",
            "fleet-grouped",
            "fleet-big-collapsed",
            "fleet-timebar-back",
            "fleet-timebar-before",
        ]);

        // Prometheus goes away: the server keeps serving the last map,
        // says so in a banner and in /healthz.
        drop(engine);
        let deadline = Instant::now() + Duration::from_secs(20);
        let health = loop {
            let r = server.get("/healthz");
            if r.status == 503 {
                break r.json();
            }
            assert!(
                Instant::now() < deadline,
                "healthz still {} after Prometheus stopped: {}",
                r.status,
                r.body
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(health["status"], "degraded", "{health:#}");
        assert_eq!(health["fleet"]["engine"], "unreachable", "{health:#}");
        let g = graph_of(server, "/api/graph");
        assert!(
            edge(&g, "svc:A/apiclient", "svc:B/pgserver").is_some(),
            "the last map is kept: {g:#}"
        );
        let mut events = EventStream::open(server.port);
        let mut banner = None;
        while let Some(ev) = events.next(Duration::from_secs(5)) {
            if ev.name == "status" {
                banner = ev.data["warnings"][0].as_str().map(String::from);
                break;
            }
        }
        let banner = banner.expect("a status event with a warning");
        assert!(
            banner.contains("cannot reach Prometheus") && banner.contains("not the fleet now"),
            "{banner}"
        );
        // A moment inside the engine's data (the range is known), asked
        // of an engine that is gone.
        let past = server.get(&format!("/api/graph?at={:.3}", now_secs() - 1.0));
        assert_eq!(past.status, 502, "{}", past.body);
        assert!(past.body.contains("Prometheus"), "{}", past.body);
        let h = server.get("/api/history");
        assert_eq!(h.status, 502, "{}", h.body);
        assert_eq!(server.get("/").status, 200, "the page is still served");
    });
}

#[test]
fn fleet_map_from_victoriametrics() {
    scenario(Engine::VictoriaMetrics, |_, _, _, _| {});
}

/// Bad `--fleet*` values exit 2 with a message that names the flag and
/// says what to give instead.
#[test]
fn fleet_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let no_colon = dir.path().join("no-colon");
    std::fs::write(&no_colon, "justauser\n").unwrap();
    let empty = empty.to_str().unwrap();
    let no_colon = no_colon.to_str().unwrap();
    for (args, says) in [
        (vec!["--fleet", "prometheus:9090"], "not an http:// URL"),
        (vec!["--fleet", "http://"], "not an http:// URL"),
        (vec!["--fleet-token-file", empty], "--fleet"),
        (
            vec!["--fleet", "http://127.0.0.1:9", "--fleet-token-file", empty],
            "first line is empty",
        ),
        (
            vec![
                "--fleet",
                "http://127.0.0.1:9",
                "--fleet-token-file",
                "/nonexistent/t",
            ],
            "--fleet-token-file",
        ),
        (
            vec![
                "--fleet",
                "http://127.0.0.1:9",
                "--fleet-basic-auth-file",
                no_colon,
            ],
            "not user:password",
        ),
        (
            vec!["--fleet", "http://127.0.0.1:9", "--fleet-timeout", "0"],
            "0.1 to 600",
        ),
        (
            vec!["--fleet", "http://127.0.0.1:9", "--fleet-rate-window", "1s"],
            "at least 2s",
        ),
    ] {
        let out = Command::new(BIN)
            .arg("serve")
            .args(["--port", "0"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
