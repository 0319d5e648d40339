//! Limits of the live server, against a real `procnet serve` over TCP on
//! loopback: header-read and idle timeouts, the connection cap, views built
//! once per sample for parallel clients (and gzip), and a `/healthz` that
//! tells the truth about a hung or panicked sampler.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// A `procnet serve` with extra environment whose log is kept for the test.
struct LoggedServer {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl LoggedServer {
    fn start(env: &[(&str, &str)], interval: &str) -> LoggedServer {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .args(["--port", "0", "--interval", interval])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("procnet starts");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(String::new()));
        let mut port = None;
        for _ in 0..50 {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            log.lock().unwrap().push_str(&line);
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
        let port = port.unwrap_or_else(|| panic!("procnet did not start: {}", log.lock().unwrap()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let server = LoggedServer { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.health().1["samples"].as_u64().unwrap_or(0) < 1 {
            assert!(Instant::now() < deadline, "no sample within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn get(&self, path: &str) -> Response {
        http(
            self.port,
            path,
            &[("Host", &format!("127.0.0.1:{}", self.port))],
        )
    }

    fn health(&self) -> (u16, serde_json::Value) {
        let r = self.get("/healthz");
        (r.status, r.json())
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log once it contains `text` (it is read from the server's
    /// stderr by another thread, so a line can lag behind the event), or
    /// as it is after 10 s.
    fn log_with(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(text) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log()
    }

    /// A metric's value from `/metrics` (0 when absent).
    fn metric(&self, series: &str) -> f64 {
        metric_value(&self.get("/metrics").body, series)
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).expect("connect")
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// True once the server has closed `s`: EOF or a reset. Data is drained.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Waits until every stream is closed by the server; `tick` runs between
/// polls (e.g. to trickle bytes). Returns how many are still open.
fn wait_all_closed(
    streams: &mut [TcpStream],
    within: Duration,
    mut tick: impl FnMut(&mut TcpStream),
) -> usize {
    let deadline = Instant::now() + within;
    let mut open: Vec<bool> = vec![true; streams.len()];
    while Instant::now() < deadline {
        for (s, o) in streams.iter_mut().zip(open.iter_mut()) {
            if *o {
                if closed_by_server(s) {
                    *o = false;
                } else {
                    tick(s);
                }
            }
        }
        if open.iter().all(|o| !o) {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    open.iter().filter(|o| **o).count()
}

/// Issue item 6: a client that sends its request head a byte at a time
/// (slowloris) is cut off by the header-read timeout.
#[test]
fn header_read_timeout_cuts_off_slowloris_clients() {
    let s = LoggedServer::start(&[("PROCNET_HEADER_TIMEOUT_MS", "1000")], "0.2");
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut c = s.connect();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            c
        })
        .collect();
    // One more header byte every 250 ms: always sending, never finishing.
    let open = wait_all_closed(&mut slow, Duration::from_secs(20), |c| {
        let _ = c.write_all(b"X");
    });
    assert_eq!(
        open, 0,
        "{open} of 50 slowloris connections still open after 20 s"
    );
    // The server still serves.
    assert_eq!(s.get("/api/graph").status, 200);
}

/// Issue item 6: connections with no request in flight are closed, both
/// ones that never send anything and keep-alive ones after a response.
#[test]
fn idle_connections_are_closed() {
    let s = LoggedServer::start(&[("PROCNET_HEADER_TIMEOUT_MS", "1000")], "0.2");
    let mut idle: Vec<TcpStream> = (0..30).map(|_| s.connect()).collect();
    // A keep-alive connection that has had one complete exchange.
    let mut kept = s.connect();
    write!(
        kept,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        s.port
    )
    .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        kept.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .expect("content-length")
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    kept.read_exact(&mut body).unwrap();
    idle.push(kept);
    let open = wait_all_closed(&mut idle, Duration::from_secs(20), |_| {});
    assert_eq!(
        open, 0,
        "{open} of 31 idle connections still open after 20 s"
    );
}

/// The event stream is a request in flight: it outlives the idle timeout
/// and keeps delivering events.
#[test]
fn event_stream_is_exempt_from_the_idle_timeout() {
    let s = LoggedServer::start(&[("PROCNET_HEADER_TIMEOUT_MS", "1000")], "0.2");
    let mut events = EventStream::open(s.port);
    let first = events.next(Duration::from_secs(5)).expect("first event");
    assert_eq!(first.name, "graph");
    // Three idle timeouts pass with nothing new to send...
    std::thread::sleep(Duration::from_secs(3));
    // ...then something changes, and the stream still carries it.
    let (server_proc, port) = tcp_server("127.0.0.1");
    let (_client, _) = tcp_client("127.0.0.1", port, 1, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        if let Some(e) = events.next(Duration::from_secs(1)) {
            seen = e.name == "diff"
                && e.data
                    .to_string()
                    .contains(&format!("pid:{}", server_proc.pid()));
        }
    }
    assert!(seen, "no diff on the event stream after the idle timeout");
}

/// Issue item 6: over the cap, new connections get a 503 and are closed;
/// the log says so once; when some close, new ones are served again.
#[test]
fn connection_cap_refuses_and_recovers() {
    let s = LoggedServer::start(
        &[
            ("PROCNET_MAX_CONNECTIONS", "8"),
            ("PROCNET_HEADER_TIMEOUT_MS", "60000"),
        ],
        "0.2",
    );
    // Only the /metrics request itself open: the start-up requests are done.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric("procnet_http_connections") > 1.0 {
        assert!(Instant::now() < deadline, "start-up connections not closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut held: Vec<TcpStream> = (0..8).map(|_| s.connect()).collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let mut c = s.connect();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reply = Vec::new();
        let _ = c.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 503"), "over the cap: {reply:?}");
        assert!(reply.contains("too many open connections"), "{reply}");
    }
    let line = "connection limit 8 reached; refusing new connections until some close";
    let log = s.log_with(line);
    assert_eq!(
        log.matches(line).count(),
        1,
        "logged once per episode: {log}"
    );
    // Closing held connections makes room again.
    held.truncate(6);
    let deadline = Instant::now() + Duration::from_secs(10);
    let graph = loop {
        let mut c = s.connect();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            c,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            s.port
        )
        .unwrap();
        let mut reply = Vec::new();
        let _ = c.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply).to_string();
        if reply.starts_with("HTTP/1.1 200") || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        graph.starts_with("HTTP/1.1 200"),
        "not served after connections closed: {graph}"
    );
    assert!(
        metric_value(&graph, "procnet_http_connections_refused_total") >= 5.0,
        "{graph}"
    );
    let log = s.log_with("below the connection limit 8 again");
    assert!(log.contains("below the connection limit 8 again"), "{log}");
}

/// Raw GET returning status, headers and the body bytes (gzip-safe).
fn get_raw(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let (status, headers, body) = split_response(&raw);
    let headers: Vec<(String, String)> = headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let body = body.to_vec();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")),
        "views are sent whole, with a length"
    );
    (status, headers, body)
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Issue item 8: 20 parallel `/api/connections` build the view once per
/// sample, not once per request; gzip clients get the same document
/// compressed (once), with `Vary: Accept-Encoding`.
#[test]
fn parallel_connections_requests_share_one_build() {
    let (_server_proc, port) = tcp_server("127.0.0.1");
    let (_client, _) = tcp_client("127.0.0.1", port, 200, &[]);
    // A long interval: the burst falls within one or two samples.
    let s = LoggedServer::start(&[], "3");
    let builds = |s: &LoggedServer| s.metric("procnet_view_builds_total{view=\"connections\"}");
    let gzips =
        |s: &LoggedServer| s.metric("procnet_view_compressions_total{view=\"connections\"}");
    let samples = |s: &LoggedServer| s.metric("procnet_samples_total");
    let (b0, g0, n0) = (builds(&s), gzips(&s), samples(&s));
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let barrier = barrier.clone();
            let port = s.port;
            std::thread::spawn(move || {
                let enc: &[(&str, &str)] = if i % 2 == 0 {
                    &[("Accept-Encoding", "gzip, br")]
                } else {
                    &[]
                };
                barrier.wait();
                get_raw(port, "/api/connections", enc)
            })
        })
        .collect();
    let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let (b1, g1, n1) = (builds(&s), gzips(&s), samples(&s));
    let samples_during = n1 - n0;
    assert!(
        b1 - b0 <= samples_during + 1.0,
        "20 parallel requests made {} builds over {samples_during} new samples",
        b1 - b0
    );
    assert!(b1 - b0 >= 1.0);
    assert!(g1 - g0 <= samples_during + 1.0, "{} compressions", g1 - g0);
    for (i, (status, headers, body)) in replies.iter().enumerate() {
        assert_eq!(*status, 200);
        assert_eq!(header(headers, "vary"), Some("accept-encoding"));
        let doc: serde_json::Value = if i % 2 == 0 {
            assert_eq!(
                header(headers, "content-encoding"),
                Some("gzip"),
                "request {i}"
            );
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .expect("valid gzip");
            serde_json::from_slice(&plain).expect("gzip of JSON")
        } else {
            assert_eq!(header(headers, "content-encoding"), None);
            serde_json::from_slice(body).expect("JSON")
        };
        assert!(
            doc["listeners"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["port"] == port),
            "request {i} lacks the listener"
        );
        assert!(doc["connections"].as_array().unwrap().len() >= 200);
    }
    // A body too small to be worth it is sent as it is.
    let (_, headers, _) = get_raw(s.port, "/healthz", &[("Accept-Encoding", "gzip")]);
    assert_eq!(header(&headers, "content-encoding"), None);
    // gzip;q=0 means no gzip.
    let (_, headers, body) = get_raw(
        s.port,
        "/api/connections",
        &[("Accept-Encoding", "gzip;q=0")],
    );
    assert_eq!(header(&headers, "content-encoding"), None);
    assert!(body.starts_with(b"{"));
}

/// Issue item 9: a sampler that stops finishing samples (hung, as on a
/// rules file that is a FIFO) makes `/healthz` say `stalled` with 503 and
/// the age of the last sample, instead of `ok`.
#[test]
fn healthz_says_stalled_when_the_sampler_hangs() {
    let s = LoggedServer::start(&[("PROCNET_FAULT", "sampler-hang")], "0.2");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, h) = loop {
        let (status, h) = s.health();
        if h["status"] == "stalled" || Instant::now() > deadline {
            break (status, h);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(h["status"], "stalled", "{h}");
    assert_eq!(status, 503);
    let age = h["lastSampleAgeMs"].as_u64().expect("lastSampleAgeMs");
    let bound = h["stalledAfterMs"].as_u64().expect("stalledAfterMs");
    assert!(bound >= 600, "{h}");
    assert!(age > bound, "{h}");
    assert_eq!(h["samples"], 2, "{h}");
    // The age keeps growing: computed when asked, not when published.
    std::thread::sleep(Duration::from_millis(500));
    let later = s.health().1["lastSampleAgeMs"].as_u64().unwrap();
    assert!(later >= age + 400, "age {age} then {later}");
    assert!(s.metric("procnet_last_sample_age_seconds") * 1000.0 >= later as f64);
}

/// Issue item 9: a sampler that panics is restarted with a fresh collector,
/// the panic is logged once (not as a raw panic message as well), and
/// `/healthz` goes back to `ok`, showing the restart.
#[test]
fn a_panicking_sampler_is_restarted_and_reported() {
    let s = LoggedServer::start(&[("PROCNET_FAULT", "sampler-panic")], "0.2");
    let deadline = Instant::now() + Duration::from_secs(30);
    let h = loop {
        let (status, h) = s.health();
        if (status == 200 && h["samplerRestarts"] == 1 && h["samples"].as_u64().unwrap_or(0) >= 5)
            || Instant::now() > deadline
        {
            break h;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(h["samplerRestarts"], 1, "{h}");
    assert_eq!(h["status"], "ok", "{h}");
    assert!(
        h["samples"].as_u64().unwrap() >= 5,
        "sampling goes on after the restart: {h}"
    );
    let panic_text = h["lastPanic"].as_str().expect("lastPanic");
    assert!(
        panic_text.contains("injected fault (PROCNET_FAULT=sampler-panic)"),
        "{panic_text}"
    );
    assert!(
        panic_text.contains("src/serve/mod.rs:"),
        "with its place: {panic_text}"
    );
    assert_eq!(s.metric("procnet_sampler_restarts_total"), 1.0);
    // The graph is live again.
    let (server_proc, port) = tcp_server("127.0.0.1");
    let (_client, _) = tcp_client("127.0.0.1", port, 1, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let g = s.get("/api/graph").body;
        if g.contains(&format!("\"pid:{}\"", server_proc.pid())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "graph not updated after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = s.log_with("the sampler panicked");
    assert_eq!(log.matches("the sampler panicked").count(), 1, "{log}");
    assert!(!log.contains("thread 'procnet-sampler' panicked"), "{log}");
}
