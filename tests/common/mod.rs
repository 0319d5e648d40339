//! Shared helpers for integration tests: real processes holding real
//! loopback sockets, a running `procnet serve`, and a tiny HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_procnet");

/// Fails the test, naming `what` needs root, unless it runs as root: CI
/// runs as root, so a test that needs it must fail there without it, never
/// pass by doing nothing.
#[cfg(unix)]
pub fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(uid, 0, "{what} needs root: run this test as root (CI does)");
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub out: BufReader<ChildStdout>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads one line the process printed (e.g. the port it bound).
    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read child output");
        s.trim().to_string()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a python3 script with arguments; its stdout is piped.
pub fn python(script: &str, args: &[&str]) -> Proc {
    let mut child = Command::new("python3")
        .arg("-u")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let out = BufReader::new(child.stdout.take().unwrap());
    Proc { child, out }
}

/// A TCP listener on `addr` (port 0 = any) that accepts and holds every
/// connection. Prints its port.
pub const TCP_SERVER: &str = r#"
import socket, sys, threading
host = sys.argv[1]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6 and host == "::":
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((host, int(sys.argv[2]) if len(sys.argv) > 2 else 0))
s.listen(128)
print(s.getsockname()[1], flush=True)
held = []
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
while True:
    c, _ = s.accept()
    held.append(c)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Connects to `host port` N times (argv[3], default 1), prints its local
/// ports, then holds the connections until stdin closes or it is killed.
pub const TCP_CLIENT: &str = r#"
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
held = []
for _ in range(n):
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.connect((host, port))
    held.append(c)
print(" ".join(str(c.getsockname()[1]) for c in held), flush=True)
while True:
    time.sleep(3600)
"#;

pub fn tcp_server(host: &str) -> (Proc, u16) {
    let mut p = python(TCP_SERVER, &[host]);
    let port = p.line().parse().expect("server prints its port");
    (p, port)
}

pub fn tcp_client(host: &str, port: u16, n: usize, extra_args: &[&str]) -> (Proc, Vec<u16>) {
    let port_s = port.to_string();
    let n_s = n.to_string();
    let mut args = vec![host, port_s.as_str(), n_s.as_str()];
    args.extend_from_slice(extra_args);
    let mut p = python(TCP_CLIENT, &args);
    let ports = p
        .line()
        .split_whitespace()
        .map(|s| s.parse().expect("client prints its ports"))
        .collect();
    (p, ports)
}

/// A running `procnet serve` on a free loopback port.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_interval(args, "0.2")
    }

    /// Starts with a sampling interval in seconds.
    pub fn start_with_interval(args: &[&str], interval: &str) -> Server {
        Server::start_with_env(args, interval, &[])
    }

    /// Starts with a sampling interval and these environment variables
    /// set for the server alone (e.g. `PROCNET_TIER`).
    pub fn start_with_env(args: &[&str], interval: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--port", "0", "--interval", interval])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("procnet starts");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut port = None;
        let mut seen = String::new();
        for _ in 0..50 {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
            if let Some(rest) = line.split("serving on http://").nth(1) {
                let addr = rest.trim().trim_end_matches('/');
                port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
                break;
            }
        }
        let port = port.unwrap_or_else(|| panic!("procnet did not start: {seen}"));
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while err.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        let server = Server { child, port };
        server.wait_for_first_sample();
        server
    }

    fn wait_for_first_sample(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let r = self.get("/healthz");
            if r.status == 200 && r.json()["samples"].as_u64().unwrap_or(0) >= 1 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no sample within 30 s");
    }

    pub fn get(&self, path: &str) -> Response {
        http(
            self.port,
            path,
            &[("Host", &format!("127.0.0.1:{}", self.port))],
        )
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http(self.port, path, headers)
    }

    /// Polls `/api/graph` until `pred` holds (or the deadline passes).
    pub fn wait_graph(
        &self,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let g: serde_json::Value = serde_json::from_str(&self.get("/api/graph").body).unwrap();
            if pred(&g) || Instant::now() > deadline {
                return g;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 GET with exactly the given headers (a `Host` must be among
/// them to be sent at all).
pub fn http(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

/// Splits a raw HTTP/1.1 response into its status, headers (names as
/// sent) and body bytes (as sent: still chunked or compressed).
pub fn split_response(raw: &[u8]) -> (u16, Vec<(String, String)>, &[u8]) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers, &raw[split + 4..])
}

fn parse_response(raw: &[u8]) -> Response {
    let (status, headers, body) = split_response(raw);
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = &b[(end + 2).min(b.len())..];
    }
    out
}

/// A Server-Sent Events reader on `/api/events`.
pub struct EventStream {
    reader: BufReader<TcpStream>,
    pending: String,
}

/// One event: its name and its data parsed as JSON.
#[derive(Debug)]
pub struct SseEvent {
    pub name: String,
    pub data: serde_json::Value,
}

impl EventStream {
    pub fn open(port: u16) -> EventStream {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let req = format!("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        // Skip the response head.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(_) if line == "\r\n" => break,
                Ok(0) => panic!("event stream closed"),
                _ if Instant::now() > deadline => panic!("no event stream head"),
                _ => {}
            }
        }
        EventStream {
            reader,
            pending: String::new(),
        }
    }

    /// The next event, or `None` if none comes within `within`.
    pub fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + within;
        let (mut name, mut data) = (String::new(), String::new());
        while Instant::now() < deadline {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(_) => continue, // read timeout: poll again
            }
            self.pending.push_str(&line);
            if !self.pending.ends_with('\n') {
                continue;
            }
            let l = std::mem::take(&mut self.pending);
            let l = l.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            } else if l.is_empty() && !data.is_empty() {
                let parsed = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
                return Some(SseEvent { name, data: parsed });
            }
            // Chunk-size lines and comments are skipped.
        }
        None
    }
}

/// The python interpreter itself (python3 may be a wrapper script, e.g.
/// pyenv's), for symlinks that give a test process another name.
#[cfg(unix)]
pub fn python_interpreter() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .expect("python3 runs");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs a python3 script under another process name (`comm`), through a
/// symlink called `name` to the interpreter, as a real `postgres` or
/// `node` would appear. Keep the directory alive as long as the process.
#[cfg(unix)]
pub fn named_python(name: &str, script: &str, args: &[&str]) -> (Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join(name);
    std::os::unix::fs::symlink(python_interpreter(), &exe).unwrap();
    let mut child = Command::new(&exe)
        .arg("-u")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs under another name");
    let out = BufReader::new(child.stdout.take().unwrap());
    (Proc { child, out }, dir)
}

/// Runs one of the UI's browser test files (`web/test/<file>`: node's test
/// runner driving headless Chromium) with `env`, prints its report and
/// fails unless it passed with `passes` checks run (none skipped).
pub fn run_ui_tests(file: &str, env: &[(&str, String)], passes: usize) -> String {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=spec"])
        .arg(format!("test/{file}"))
        .current_dir(web)
        .env_remove("PROCNET_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "browser checks failed:\n{report}");
    assert!(
        report.contains(&format!("pass {passes}")) && report.contains("fail 0"),
        "all {passes} checks ran (none skipped):\n{report}"
    );
    report
}

/// Fails unless each screenshot (`target/ui-screenshots/<name>.png`) was written.
pub fn assert_screenshots(names: &[&str]) {
    for name in names {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/ui-screenshots")
            .join(format!("{name}.png"));
        assert!(
            path.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
            "{name} screenshot"
        );
    }
}

/// Runs a command (program and arguments) to the end; panics only when it
/// cannot be started.
pub fn run(cmd: &[&str]) -> Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Runs a command that must succeed (set-up: `ip netns add`, …); fails the
/// test with its stderr otherwise.
pub fn must(cmd: &[&str]) {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
