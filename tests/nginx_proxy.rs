//! Real nginx from Debian proxying to a local pre-fork backend (3 Python
//! workers sharing one listening socket), one new upstream connection per
//! request, 200 requests/s for 10 s, sampled once a second at tier T0.
//! Every upstream connection must keep its owners on both ends (the nginx
//! worker that opened it, the backend worker that served it), bytes must be
//! credited once (per-process totals equal per-socket totals), and the
//! graph of a running `procnet serve` must show the edge nginx → backend
//! with its bytes. Needs root and nginx (CI has both); fails without them.
#![cfg(target_os = "linux")]

mod common;

use procnet::collect::linux::{LinuxOptions, PlatformCollector};
use procnet::graph::traffic::TrafficTracker;
use procnet::snapshot::{Proto, Snapshot, Tier};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REQUESTS: usize = 2000;
const RATE: usize = 200;
const BODY: usize = 5000;

/// The pre-fork backend: the parent binds and listens, then forks 3
/// workers that all accept on that socket; each answers one HTTP request
/// per connection and prints `pid peer-port` for it.
const BACKEND: &str = r#"
import ctypes, os, signal, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(1024)
body = b"b" * int(sys.argv[1])
reply = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        while True:
            c, peer = s.accept()
            req = b""
            while b"\r\n\r\n" not in req:
                d = c.recv(65536)
                if not d:
                    break
                req += d
            c.sendall(reply)
            c.close()
            os.write(1, b"%d %d\n" % (os.getpid(), peer[1]))
    kids.append(pid)
print(s.getsockname()[1], " ".join(map(str, kids)), flush=True)
sys.stdin.read()
"#;

/// HTTP/1.0 GETs at RATE per second, each on a new connection.
const LOAD: &str = r#"
import socket, sys, time
port, n, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ok = 0
start = time.monotonic()
for i in range(n):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    c.close()
    if got.startswith(b"HTTP/1.1 200"):
        ok += 1
print(ok, flush=True)
"#;

fn require_root_and_nginx() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "needs root (CI runs as root)"
    );
    assert!(
        Command::new("nginx").arg("-v").output().is_ok(),
        "needs nginx (Debian package nginx; scripts/setup.sh installs it)"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A child killed (with its process group) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        // SAFETY: signals our own child's process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_group(cmd: &mut Command) -> Killed {
    use std::os::unix::process::CommandExt;
    Killed(cmd.process_group(0).spawn().expect("spawn"))
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            kids.push(p);
        }
    }
    kids
}

#[test]
fn nginx_upstream_connections_keep_their_owners_and_bytes_count_once() {
    require_root_and_nginx();
    let dir = tempfile::tempdir().unwrap();
    let mut backend = spawn_group(
        Command::new("python3")
            .args(["-u", "-c", BACKEND, &BODY.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let backend_master = backend.0.id();
    let mut out = BufReader::new(backend.0.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let mut fields = first.split_whitespace().map(|f| f.parse::<u32>().unwrap());
    let backend_port = fields.next().unwrap() as u16;
    let workers: HashSet<u32> = fields.collect();
    assert_eq!(workers.len(), 3);
    // Which worker served which nginx port, as the workers say.
    // (nginx port, worker pid) per request; nginx reuses its ports, so a
    // pair can come more than once.
    let served: Arc<Mutex<Vec<(u16, u32)>>> = Arc::default();
    {
        let served = Arc::clone(&served);
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let mut f = line.split_whitespace().map(|f| f.parse::<u32>().unwrap());
                let (pid, port) = (f.next().unwrap(), f.next().unwrap() as u16);
                served.lock().unwrap().push((port, pid));
            }
        });
    }

    let nginx_port = free_port();
    let d = dir.path().display();
    let conf = format!(
        "worker_processes 2;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         server {{ listen 127.0.0.1:{nginx_port}; location / {{ proxy_pass http://127.0.0.1:{backend_port}; }} }}\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let nginx = spawn_group(
        Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null()),
    );
    let nginx_master = nginx.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut nginx_workers = Vec::new();
    while Instant::now() < deadline {
        nginx_workers = children_of(nginx_master);
        if nginx_workers.len() == 2
            && std::net::TcpStream::connect(("127.0.0.1", nginx_port)).is_ok()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        nginx_workers.len(),
        2,
        "nginx did not start: {:?}",
        std::fs::read_to_string(dir.path().join("error.log"))
    );

    let server = common::Server::start_with_interval(&[], "1");
    let mut collector = PlatformCollector::with_options(LinuxOptions {
        events: true,
        ..LinuxOptions::default()
    })
    .unwrap();
    let mut tracker = TrafficTracker::default();
    let mut snaps: Vec<Snapshot> = Vec::new();
    let mut take = |snaps: &mut Vec<Snapshot>| {
        let s = collector.sample().unwrap();
        assert_eq!(
            s.diagnostics.tier,
            Some(Tier::T0),
            "{:?}",
            s.diagnostics.tier_reason
        );
        tracker.observe(&s);
        snaps.push(s);
    };
    take(&mut snaps);

    let mut load = spawn_group(
        Command::new("python3")
            .args([
                "-u",
                "-c",
                LOAD,
                &nginx_port.to_string(),
                &REQUESTS.to_string(),
                &RATE.to_string(),
            ])
            .stdout(Stdio::piped()),
    );
    let mut edge: Option<serde_json::Value> = None;
    let started = Instant::now();
    while load.0.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(1));
        take(&mut snaps);
        if edge.is_none() {
            let g = server.get("/api/graph").json();
            let pid_of = |id: &str| {
                g["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|n| n["id"] == id)
                    .and_then(|n| n["pid"].as_u64())
            };
            edge = g["edges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| {
                    let from = pid_of(e["from"].as_str().unwrap()).map(|p| p as u32);
                    let to = pid_of(e["to"].as_str().unwrap()).map(|p| p as u32);
                    from.is_some_and(|p| nginx_workers.contains(&p))
                        && to.is_some_and(|p| workers.contains(&p))
                        && e["txBytes"].as_u64().unwrap_or(0) > 0
                        && e["rxBytes"].as_u64().unwrap_or(0) >= BODY as u64
                })
                .cloned();
        }
    }
    let mut ok = String::new();
    BufReader::new(load.0.stdout.take().unwrap())
        .read_line(&mut ok)
        .unwrap();
    let ok: usize = ok.trim().parse().expect("the load generator finished");
    assert!(
        ok >= REQUESTS * 99 / 100,
        "only {ok} of {REQUESTS} requests succeeded"
    );
    std::thread::sleep(Duration::from_millis(1100));
    take(&mut snaps);
    let edge = edge.expect(
        "the graph of procnet serve showed the edge nginx worker → backend worker with its bytes",
    );
    eprintln!("edge: {}", edge["id"]);

    // Every upstream connection, both ends, as reported closed.
    let served = served.lock().unwrap().clone();
    assert!(served.len() >= ok * 99 / 100, "{} served", served.len());
    let mut nginx_end: Vec<Vec<u32>> = Vec::new();
    let mut backend_end: HashMap<(u16, u32), usize> = HashMap::new();
    let mut backend_socket_sent = 0u64;
    let mut unknown_exited = 0usize;
    for s in snaps
        .iter()
        .flat_map(|s| &s.sockets)
        .filter(|s| s.closed && s.proto == Proto::Tcp)
    {
        let Some(remote) = s.remote else { continue };
        if remote.port() == backend_port && s.local.ip().is_loopback() {
            nginx_end.push(s.owners.to_vec());
            unknown_exited += usize::from(s.owners.is_empty());
        } else if s.local.port() == backend_port {
            if let [pid] = s.owners[..] {
                *backend_end.entry((remote.port(), pid)).or_default() += 1;
            }
            unknown_exited += usize::from(s.owners.is_empty());
            backend_socket_sent += s.bytes_sent.unwrap_or(0);
        }
    }
    let mut want: HashMap<(u16, u32), usize> = HashMap::new();
    for &k in &served {
        *want.entry(k).or_default() += 1;
    }
    let n = served.len();
    let right_backend: usize = want
        .iter()
        .map(|(k, &w)| w.min(backend_end.get(k).copied().unwrap_or(0)))
        .sum();
    let right_nginx = nginx_end
        .iter()
        .filter(|o| o.len() == 1 && nginx_workers.contains(&o[0]))
        .count();
    let credited_elsewhere: usize = backend_end
        .iter()
        .map(|(k, &got)| got.saturating_sub(want.get(k).copied().unwrap_or(0)))
        .sum();
    eprintln!(
        "{n} upstream connections: backend end right {right_backend}, nginx end right {right_nginx} of {}, unowned {unknown_exited}",
        nginx_end.len()
    );
    assert!(
        right_backend * 100 >= n * 99 && right_nginx * 100 >= n * 99,
        "fewer than 99 % of {n} attributed: backend {right_backend}, nginx {right_nginx}"
    );
    assert_eq!(unknown_exited, 0, "upstream sockets without owner");
    assert_eq!(
        credited_elsewhere, 0,
        "a backend worker was credited another's connection"
    );

    // Bytes are credited once: the backend workers' totals are the bytes
    // their sockets sent, and the master (a holder of the listening
    // socket) is credited nothing.
    let totals = tracker.totals();
    let sent_by = |pids: &dyn Fn(u32) -> bool| -> u64 {
        totals.iter().filter(|t| pids(t.pid)).map(|t| t.send).sum()
    };
    let workers_sent = sent_by(&|p| workers.contains(&p));
    let master_total: u64 = totals
        .iter()
        .filter(|t| t.pid == backend_master || t.pid == nginx_master)
        .map(|t| t.send + t.recv)
        .sum();
    eprintln!("backend workers sent {workers_sent} B; their sockets sent {backend_socket_sent} B");
    assert_eq!(
        master_total, 0,
        "a master that only holds the listener was credited bytes"
    );
    let diff = workers_sent.abs_diff(backend_socket_sent) as f64;
    assert!(
        diff <= backend_socket_sent as f64 * 0.01,
        "per-process {workers_sent} B vs per-socket {backend_socket_sent} B"
    );
    assert!(backend_socket_sent >= (n * BODY) as u64);
    drop(nginx);
    drop(backend);
}
