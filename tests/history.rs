//! History end to end: real connections between real processes on
//! loopback, opened and closed at known times (one living ~100 ms between
//! two samples), found by `?at=`, `/api/changes` and `/api/flows` with exact
//! pids and bytes — live, and again from the recording replayed with
//! `serve --from`, whose graph for a seq equals what live served. A torn
//! recording replays what is before the tear and says so; the byte cap
//! holds under churn with the oldest going first. A recording in block
//! format version 1 (JSON lines, before version 2) replays with the same
//! graphs as version 2, and an unknown version is named.
//!
//! Needs root (the kernel's destroy notifications, every process's fds):
//! without it these tests fail, they do not pass.
#![cfg(target_os = "linux")]

mod common;

use common::{python, Server, BIN};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One test at a time: the churn of one would starve the other's sampler
/// on a small machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "the history tests need root (destroy notifications, every process's fds); run them as root"
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `?at=` as Unix seconds with milliseconds.
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Accepts connections; on each sends 3000 bytes, then reads to EOF.
const SERVER: &str = r#"
import socket, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    c.sendall(b"s" * 3000)
    while c.recv(65536):
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Commands on stdin: `open` (connect, send 100000, read 3000, hold),
/// `close` (close it), `short` (connect, send 50000, read 3000, close,
/// all within ~100 ms). Prints the local port after each.
const CLIENT: &str = r#"
import socket, sys, time
port = int(sys.argv[1])
held = None
def talk(n):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"c" * n)
    got = 0
    while got < 3000:
        got += len(c.recv(65536))
    return c
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "open":
        held = talk(100000)
        print(held.getsockname()[1], flush=True)
    elif cmd == "close":
        p = held.getsockname()[1]
        held.close()
        print(p, flush=True)
    elif cmd == "short":
        c = talk(50000)
        p = c.getsockname()[1]
        time.sleep(0.1)
        c.close()
        print(p, flush=True)
"#;

struct Client {
    proc_: common::Proc,
}

impl Client {
    fn cmd(&mut self, c: &str) -> u16 {
        let stdin = self.proc_.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{c}").unwrap();
        stdin.flush().unwrap();
        self.proc_.line().parse().unwrap()
    }
}

fn client(port: u16) -> Client {
    let mut child = Command::new("python3")
        .args(["-u", "-c", CLIENT, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    Client {
        proc_: common::Proc { child, out },
    }
}

/// Stops a server the way an operator does (SIGTERM), so it writes the
/// last block of its recording, and waits for it to exit.
fn stop(mut server: Server) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not stop on SIGTERM");
}

fn get(server: &Server, path: &str) -> Value {
    let r = server.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

fn has_edge(graph: &Value, from: &str, to: &str) -> bool {
    graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["from"] == from && e["to"] == to)
}

fn within_1pct(got: &Value, want: u64) -> bool {
    got.as_u64()
        .is_some_and(|g| (g as f64 - want as f64).abs() <= want as f64 * 0.01)
}

/// What happened, for the checks made live and on the replay.
struct Story {
    client_pid: u32,
    server_pid: u32,
    long_port: u16,
    short_port: u16,
    t_open: u64,
    t_mid: u64,
    t_close: u64,
    t_closed_seen: u64,
    t_short: u64,
    t_end: u64,
}

fn check_story(server: &Server, s: &Story, what: &str) {
    let (c, sv) = (
        format!("pid:{}", s.client_pid),
        format!("pid:{}", s.server_pid),
    );
    let mid = get(server, &format!("/api/graph?at={}", secs(s.t_mid)));
    assert!(
        has_edge(&mid, &c, &sv),
        "{what}: the open connection is in the graph at t_mid"
    );
    let end = get(server, &format!("/api/graph?at={}", secs(s.t_end)));
    assert!(
        !has_edge(&end, &c, &sv),
        "{what}: no connection is left at the end"
    );
    let conns = get(server, &format!("/api/connections?at={}", secs(s.t_mid)));
    assert!(
        conns["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["fromPid"] == s.client_pid && x["fromPort"] == s.long_port),
        "{what}: /api/connections?at= lists the open connection"
    );

    let changes = get(
        server,
        &format!("/api/changes?from={}&to={}", secs(s.t_mid), secs(s.t_end)),
    );
    let vanished = changes["vanishedEdges"].as_array().unwrap();
    assert!(
        vanished.iter().any(|e| e["from"] == c && e["to"] == sv),
        "{what}: /api/changes says the edge vanished: {changes}"
    );
    assert!(changes["closedConnections"].as_u64().unwrap() >= 2);
    let opened = get(
        server,
        &format!(
            "/api/changes?from={}&to={}",
            secs(s.t_open.saturating_sub(1)),
            secs(s.t_mid)
        ),
    );
    let edge_bytes = opened["edgeBytes"].as_array().unwrap();
    let e = edge_bytes
        .iter()
        .find(|e| e["from"] == c && e["to"] == sv)
        .unwrap_or_else(|| panic!("{what}: bytes of the new edge: {opened}"));
    assert!(within_1pct(&e["txBytes"], 100_000), "{what}: {e}");
    assert!(within_1pct(&e["rxBytes"], 3000), "{what}: {e}");

    let flows = get(
        server,
        &format!(
            "/api/flows?since={}&until={}",
            secs(s.t_open),
            secs(s.t_end)
        ),
    );
    let list = flows["flows"].as_array().unwrap();
    let find = |port: u16| {
        list.iter()
            .find(|f| f["client"]["port"] == port && f["server"]["pid"] == s.server_pid)
            .unwrap_or_else(|| panic!("{what}: no flow from port {port}: {flows}"))
    };
    let long = find(s.long_port);
    assert_eq!(long["client"]["pid"], s.client_pid, "{what}: {long}");
    assert!(long["client"]["startTime"].is_u64(), "{what}: {long}");
    assert!(within_1pct(&long["clientBytes"], 100_000), "{what}: {long}");
    assert!(within_1pct(&long["serverBytes"], 3000), "{what}: {long}");
    let (start, end) = (
        long["startMs"].as_u64().unwrap(),
        long["endMs"].as_u64().unwrap(),
    );
    assert!(
        start >= s.t_open && start <= s.t_mid,
        "{what}: started at the first sample after it opened: {long}"
    );
    assert!(
        end >= s.t_close && end <= s.t_closed_seen,
        "{what}: ended at the first sample after it closed: {long}"
    );
    let short = find(s.short_port);
    // The kernel's destroy report names no owner; the collector knows the
    // client's pid only when a dump caught the connection alive — never
    // a wrong one.
    assert!(
        short["client"]["pid"].is_null() || short["client"]["pid"] == s.client_pid,
        "{what}: {short}"
    );
    assert!(
        within_1pct(&short["clientBytes"], 50_000),
        "{what}: {short}"
    );
    assert!(within_1pct(&short["serverBytes"], 3000), "{what}: {short}");
    let end = short["endMs"].as_u64().unwrap();
    assert!(end >= s.t_short && end <= s.t_end, "{what}: {short}");

    // NDJSON, paged.
    let r = server.get_with(
        &format!("/api/flows?since={}&limit=1", secs(s.t_open)),
        &[
            ("Host", &format!("127.0.0.1:{}", server.port)),
            ("Accept", "application/x-ndjson"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.lines().count(), 1, "{}", r.body);
    let total: usize = r.header("x-total-count").unwrap().parse().unwrap();
    assert!(total >= 2);
    serde_json::from_str::<Value>(r.body.lines().next().unwrap()).unwrap();

    // Outside the kept range: 416 with the range.
    let r = server.get("/api/graph?at=1000000000");
    assert_eq!(r.status, 416, "{what}: {}", r.body);
    let body = r.json();
    assert!(
        body["oldestMs"].is_u64() && body["newestMs"].is_u64(),
        "{body}"
    );
    let r = server.get("/api/graph?at=yesterday");
    assert_eq!(r.status, 400, "{}", r.body);
}

/// Waits until history has a sample taken after `t`; returns its time.
fn sample_after(server: &Server, t: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let newest = get(server, "/api/history")["newestMs"].as_u64();
        if let Some(n) = newest.filter(|n| *n > t) {
            return n;
        }
        assert!(Instant::now() < deadline, "no sample after {t} within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The (at_ms, seq) pairs history kept.
fn seqs(server: &Server) -> Vec<(u64, u64)> {
    get(server, "/api/history")["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect()
}

#[test]
fn connections_are_found_live_and_in_the_replayed_recording() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let rec_s = rec.to_str().unwrap();
    let live = Server::start_with_interval(
        &[
            "--no-containers",
            "--record",
            rec_s,
            "--keyframe-interval",
            "2",
        ],
        "0.5",
    );
    let mut srv = python(SERVER, &[]);
    let port: u16 = srv.line().parse().unwrap();
    let mut cl = client(port);
    sample_after(&live, now_ms());

    // Times are those of the samples that saw each step (a busy machine
    // samples late; the checks never depend on sleeping long enough).
    let t_open = now_ms();
    let long_port = cl.cmd("open");
    // What live serves, by seq, while the connection is open.
    let mut served: BTreeMap<u64, Value> = BTreeMap::new();
    let mut t_mid = 0;
    for _ in 0..3 {
        t_mid = sample_after(&live, t_mid.max(t_open));
        let g = get(&live, "/api/graph");
        served.insert(g["seq"].as_u64().unwrap(), g);
    }
    let t_close = now_ms();
    assert_eq!(cl.cmd("close"), long_port);
    let t_closed_seen = sample_after(&live, t_close);
    sample_after(&live, t_closed_seen);
    let t_short = now_ms();
    let short_port = cl.cmd("short");
    let t_end = sample_after(&live, sample_after(&live, t_short + 150));
    let story = Story {
        client_pid: cl.proc_.pid(),
        server_pid: srv.pid(),
        long_port,
        short_port,
        t_open,
        t_mid,
        t_close,
        t_closed_seen,
        t_short,
        t_end,
    };
    check_story(&live, &story, "live");
    let live_seqs = seqs(&live);
    stop(live);

    // The recording replayed: the same answers, the same graphs.
    let replay = Server::start_with_interval(&["--from", rec_s], "0.5");
    let deadline = Instant::now() + Duration::from_secs(60);
    while seqs(&replay).len() < live_seqs.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = get(&replay, "/api/history");
    assert_eq!(history["live"], false);
    let replayed = seqs(&replay);
    assert!(
        replayed.len() >= live_seqs.len() && replayed[..live_seqs.len()] == live_seqs[..],
        "every sample is in the recording"
    );
    check_story(&replay, &story, "replay");
    let mut compared = 0;
    for (seq, graph) in &served {
        let stamp = graph["timestamp"].as_str().unwrap();
        // The last sample served with this seq in that second.
        let Some((at, _)) = live_seqs.iter().rev().find(|(at, s)| {
            s == seq && procnet::history::time::rfc3339_ms(*at)[..19] == stamp[..19]
        }) else {
            continue;
        };
        let replayed = get(&replay, &format!("/api/graph?at={}", secs(*at)));
        assert_eq!(&replayed, graph, "the replayed graph of seq {seq}");
        compared += 1;
    }
    assert!(
        compared >= 2,
        "compared {compared} graphs of {:?}",
        served.keys()
    );

    // The CLI answers from the recording too.
    let out = Command::new(BIN)
        .args(["flows", "--from", rec_s, "--format", "ndjson", "--since"])
        .arg(secs(t_open))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let flows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for port in [long_port, short_port] {
        assert!(
            flows
                .iter()
                .any(|f| f["client"]["port"] == port && f["server"]["pid"] == story.server_pid),
            "procnet flows lists port {port}: {text}"
        );
    }
    let out = Command::new(BIN)
        .args(["snapshot", "--from", rec_s, "--at"])
        .arg(secs(t_mid))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(has_edge(
        &g,
        &format!("pid:{}", story.client_pid),
        &format!("pid:{}", story.server_pid)
    ));
    let out = Command::new(BIN)
        .args(["snapshot", "--from", rec_s, "--at", "1000000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not in the recording"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(replay);
    check_torn(&rec);
}

/// `/api/history` of a replay once it is done: `done` holds, or the sample
/// count stayed the same for a second (bounded: 60 s).
fn replayed(server: &Server, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = get(server, "/api/history");
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let h = get(server, "/api/history");
        if done(&h) || (h["samples"] == last["samples"] && h["samples"].as_u64() > Some(0)) {
            return h;
        }
        assert!(Instant::now() < deadline, "the replay did not finish: {h}");
        last = h;
    }
}

/// Truncates the newest segment mid-block: the replay keeps every block
/// before the tear and says so.
fn check_torn(rec: &Path) {
    let mut segs: Vec<_> = std::fs::read_dir(rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let seg = segs.last().unwrap();
    let len = std::fs::metadata(seg).unwrap().len();
    let before = {
        let s = Server::start_with_interval(&["--from", rec.to_str().unwrap()], "0.5");
        replayed(&s, |_| false)
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let s = Server::start_with_interval(&["--from", rec.to_str().unwrap()], "0.5");
    let after = replayed(&s, |h| !h["warnings"].as_array().unwrap().is_empty());
    let warnings = after["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("torn")),
        "the replay says the recording is torn: {after}"
    );
    let (b, a) = (
        before["samples"].as_u64().unwrap(),
        after["samples"].as_u64().unwrap(),
    );
    assert!(a > 0 && a < b, "fewer samples, but not none: {a} of {b}");
    assert_eq!(after["oldestMs"], before["oldestMs"], "earlier data intact");
    assert!(after["newestMs"].as_u64() < before["newestMs"].as_u64());
}

/// Opens and closes connections as fast as it can for `argv[2]` seconds.
const CHURN: &str = r#"
import socket, sys, time, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1024)
def accept():
    while True:
        c, _ = s.accept()
        c.close()
threading.Thread(target=accept, daemon=True).start()
port = s.getsockname()[1]
end = time.time() + float(sys.argv[1])
print("go", flush=True)
while time.time() < end:
    batch = []
    for _ in range(100):
        c = socket.socket()
        c.connect(("127.0.0.1", port))
        c.sendall(b"x" * 100)
        batch.append(c)
    time.sleep(0.1)
    for c in batch:
        c.close()
print("done", flush=True)
"#;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn the_byte_cap_holds_under_churn_and_the_oldest_goes_first() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let cap: u64 = 4 << 20;
    let server = Server::start_with_interval(
        &[
            "--no-containers",
            "--history-size",
            "4MiB",
            "--keyframe-interval",
            "3",
        ],
        "0.25",
    );
    sample_after(&server, sample_after(&server, 0));
    let rss_start = rss_kib(server.child.id());
    let mut churn = python(CHURN, &["25"]);
    assert_eq!(churn.line(), "go");
    let mut oldest = Vec::new();
    let mut peak = 0u64;
    let mut dropped = 0;
    for _ in 0..25 {
        std::thread::sleep(Duration::from_secs(1));
        let h = get(&server, "/api/history");
        let bytes = h["bytes"].as_u64().unwrap();
        assert!(
            bytes <= cap,
            "history holds {bytes} bytes, over the cap {cap}"
        );
        assert_eq!(h["capBytes"].as_u64(), Some(cap));
        peak = peak.max(bytes);
        dropped = h["droppedBlocks"].as_u64().unwrap();
        oldest.push(h["oldestMs"].as_u64().unwrap());
    }
    assert_eq!(churn.line(), "done");
    assert!(dropped > 0, "the cap was reached (peak {peak} bytes)");
    assert!(peak > cap / 2, "history filled up to the cap: {peak}");
    assert!(
        oldest.windows(2).all(|w| w[0] <= w[1]) && oldest.last() > oldest.first(),
        "the oldest goes first: {oldest:?}"
    );
    // The oldest kept moment still answers; one before it is a 416.
    let first = *oldest.last().unwrap();
    let h = get(&server, "/api/history");
    let kept = h["oldestMs"].as_u64().unwrap();
    assert!(kept >= first);
    assert_eq!(
        server.get(&format!("/api/graph?at={}", secs(kept))).status,
        200
    );
    assert_eq!(
        server
            .get(&format!("/api/graph?at={}", secs(kept - 1)))
            .status,
        416
    );
    // Stated overhead beyond the cap: 48 MiB for the allocator's slack,
    // the views of the last sample and the churn's socket tables.
    let growth = rss_kib(server.child.id()).saturating_sub(rss_start) * 1024;
    assert!(
        growth <= cap + (48 << 20),
        "RSS grew by {growth} bytes (cap {cap} + 48 MiB)"
    );
}

/// The samples of a small machine over `n` seconds from `t0_ms`: a server
/// (pid 200) and a client (pid 100) with one connection whose counters
/// grow, and one more connection from second 3 on.
fn recorded_samples(t0_ms: u64, n: u64) -> Vec<procnet::snapshot::Snapshot> {
    use procnet::snapshot::{Process, Proto, Snapshot, Socket, SocketState};
    let sock = |local: &str, remote: Option<&str>, inode: u64, pid: u32, bytes: u64| Socket {
        proto: Proto::Tcp,
        local: local.parse().unwrap(),
        remote: remote.map(|r| r.parse().unwrap()),
        state: if remote.is_some() {
            SocketState::Established
        } else {
            SocketState::Listen
        },
        inode,
        uid: Some(0),
        owners: smallvec::smallvec![pid],
        unowned_reason: None,
        bytes_sent: remote.map(|_| bytes),
        bytes_received: remote.map(|_| bytes / 2),
        tcp_health: None,
        closed: false,
        io_owner: None,
    };
    let process = |pid: u32, name: &str| Process {
        pid,
        start_time: Some(5),
        name: name.into(),
        cmdline: vec![name.into(), "--port".into(), "8080".into()],
        exe: Some(format!("/usr/bin/{name}")),
        uid: Some(0),
        user: Some("root".into()),
        ppid: Some(1),
        container_id: None,
    };
    (0..n)
        .map(|i| {
            let mut sockets = vec![
                sock("127.0.0.1:8080", None, 1, 200, 0),
                sock("127.0.0.1:40000", Some("127.0.0.1:8080"), 2, 100, 1000 * i),
                sock("127.0.0.1:8080", Some("127.0.0.1:40000"), 3, 200, 500 * i),
            ];
            if i >= 3 {
                sockets.push(sock("127.0.0.1:40001", Some("127.0.0.1:8080"), 4, 100, 7));
                sockets.push(sock("127.0.0.1:8080", Some("127.0.0.1:40001"), 5, 200, 9));
            }
            Snapshot {
                taken_at_ms: t0_ms + 1000 * i,
                local_addresses: vec!["127.0.0.1".parse().unwrap()],
                processes: vec![process(100, "curl"), process(200, "nginx")],
                sockets: sockets.into(),
                ..Snapshot::default()
            }
        })
        .collect()
}

/// `procnet snapshot --from DIR --at T`: its graph, or its error.
fn snapshot_from(dir: &Path, at_ms: u64) -> Result<Value, String> {
    let out = Command::new(BIN)
        .args(["snapshot", "--from"])
        .arg(dir)
        .arg("--at")
        .arg(secs(at_ms))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn a_recording_in_block_format_version_1_replays_as_version_2_does() {
    use procnet::graph::ContainerLabels;
    use procnet::history::codec::{compress_block_json, encode_frame_json};
    use procnet::history::frame::{delta, Frame, FrameBody, SampleMeta};
    use procnet::history::record::Recorder;
    use procnet::history::store::{HistoryWriter, SealedBlock};
    use procnet::history::HistoryConfig;
    use std::sync::Arc;

    let t0 = 1_700_000_000_000;
    let samples = recorded_samples(t0, 8);
    let meta = |i: usize| SampleMeta {
        at_ms: samples[i].taken_at_ms,
        seq: i as u64 + 1,
        edges: 1,
        bytes_total: 0,
    };
    let week = Duration::from_secs(7 * 86_400);
    // Version 1, as procnet wrote it before: JSON lines.
    let v1 = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let frame = Frame {
                meta: meta(i),
                containers: (i == 0).then(Default::default),
                body: if i == 0 {
                    FrameBody::Key(Box::new(s.clone()))
                } else {
                    FrameBody::Delta(Box::new(delta(&samples[i - 1], s)))
                },
            };
            encode_frame_json(&frame.borrowed())
        })
        .collect();
    let block = SealedBlock {
        metas: (0..samples.len()).map(meta).collect(),
        data: compress_block_json(frames.iter().map(|l| l.as_slice())),
    };
    Recorder::open(v1.path(), week)
        .unwrap()
        .append(&block, t0)
        .unwrap();
    // Version 2, as procnet writes now.
    let v2 = tempfile::tempdir().unwrap();
    let mut writer = HistoryWriter::new(&HistoryConfig {
        cap_bytes: 64 << 20,
        keyframe_every: Duration::from_secs(60),
        grace: Duration::from_secs(2),
        service_ports: procnet::graph::ports::ServicePorts::new([]),
    });
    for (i, s) in samples.iter().enumerate() {
        writer.encode(Arc::new(s.clone()), &ContainerLabels::default(), meta(i));
    }
    let sealed = writer.flush().sealed.expect("a block");
    Recorder::open(v2.path(), week)
        .unwrap()
        .append(&sealed, t0)
        .unwrap();

    for i in [0, 2, 3, 7] {
        let at = samples[i].taken_at_ms;
        let old = snapshot_from(v1.path(), at).unwrap();
        let new = snapshot_from(v2.path(), at).unwrap();
        assert_eq!(old, new, "second {i}: both versions give the same graph");
        assert!(has_edge(&new, "pid:100", "pid:200"), "second {i}: {new}");
        assert_eq!(new["seq"], i as u64 + 1, "second {i}");
    }

    // A block of a version this procnet does not know is named, not
    // taken for a torn file.
    let v9 = tempfile::tempdir().unwrap();
    let unknown = SealedBlock {
        metas: block.metas.clone(),
        data: zstd::bulk::compress(&[9, 1, 2, 3], 3).unwrap(),
    };
    Recorder::open(v9.path(), week)
        .unwrap()
        .append(&unknown, t0)
        .unwrap();
    let e = snapshot_from(v9.path(), t0).unwrap_err();
    assert!(e.contains("format version 9"), "{e}");
}
