//! Issue 16 items 2 and 3 in headless Debian Chromium against the real
//! server: rates you can read (a process moving 10 MB/s and one moving
//! 10 KB/s over loopback get visibly different edges, and the Top talkers
//! panel orders them) and services, not pids (Debian's nginx with
//! `worker_processes 4`, run as this test's own instance, is one service
//! node that expands to its master and 4 workers; the layout stays put).
//! Runs `web/test/rates.mjs`; screenshots land in `target/ui-screenshots/`.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Connects to `127.0.0.1:argv[1]` and sends `argv[2]` bytes per second,
/// paced in 100 slices a second, until killed.
const TALKER: &str = r#"
import socket, sys, time
port, rate = int(sys.argv[1]), int(sys.argv[2])
c = socket.create_connection(("127.0.0.1", port))
print("connected", flush=True)
chunk = max(1, rate // 100)
buf = b"x" * chunk
t0 = time.monotonic(); sent = 0
while True:
    c.sendall(buf); sent += chunk
    ahead = sent / rate - (time.monotonic() - t0)
    if ahead > 0:
        time.sleep(ahead)
"#;

/// This test's own nginx (`master_process on; worker_processes 4;`) on a
/// loopback port, everything it writes in a temp dir. Stopped (master and
/// workers) when dropped.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start() -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        // Workers run as `nobody`: they must be able to enter the prefix.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let d = dir.path().display();
        let conf = format!(
            "master_process on;\nworker_processes 4;\ndaemon off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             \x20 server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx runs (Debian's nginx: apt-get install nginx)");
        let nginx = Nginx {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while nginx.workers().len() < 4
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "nginx did not start 4 workers listening on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn master(&self) -> u32 {
        self.child.id()
    }

    /// The master's children (its workers), from /proc.
    fn workers(&self) -> Vec<u32> {
        let path = format!("/proc/{0}/task/{0}/children", self.master());
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.master().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rates_you_can_read_and_services_not_pids() {
    let (sink, sink_port) = tcp_server("127.0.0.1");
    let sp = sink_port.to_string();
    let (mut fast, _d1) = named_python("fasttalker", TALKER, &[&sp, "10000000"]);
    let (mut slow, _d2) = named_python("slowtalker", TALKER, &[&sp, "10000"]);
    assert_eq!(fast.line(), "connected");
    assert_eq!(slow.line(), "connected");
    let nginx = Nginx::start();
    let workers = nginx.workers();
    assert_eq!(workers.len(), 4, "nginx runs 4 workers: {workers:?}");
    // A client of nginx, so the service node has an edge.
    let (_web_client, _) = tcp_client("127.0.0.1", nginx.port, 2, &[]);
    let server = Server::start_with_interval(&[], "0.5");
    // A few seconds of rates before the page opens: its sparklines must show them.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let workers_csv = workers
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    run_ui_tests(
        "rates.mjs",
        &[
            ("PROCNET_URL", format!("http://127.0.0.1:{}", server.port)),
            ("RATES_SINK_PID", sink.pid().to_string()),
            ("RATES_SINK_PORT", sink_port.to_string()),
            ("RATES_FAST_PID", fast.pid().to_string()),
            ("RATES_SLOW_PID", slow.pid().to_string()),
            ("RATES_NGINX_MASTER", nginx.master().to_string()),
            ("RATES_NGINX_WORKERS", workers_csv),
        ],
        2,
    );
    assert_screenshots(&["rates", "rates-service", "rates-service-expanded"]);
    // /api/rates over HTTP: the fast talker's series, and a bad query named.
    let fast_id = format!("pid:{}", fast.pid());
    let doc = server
        .get(&format!("/api/rates?id={}", fast_id.replace(':', "%3A")))
        .json();
    let series = doc["series"][&fast_id].as_array().expect("series").clone();
    assert_eq!(series.len(), doc["atMs"].as_array().unwrap().len());
    assert!(
        series.iter().filter(|r| r.as_f64().unwrap() > 5e6).count() >= 3,
        "{doc}"
    );
    let bad = server.get("/api/rates?ids=x");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("unknown parameter"), "{}", bad.body);
    assert_eq!(server.get("/api/rates").status, 400);
}

/// The default grouping at scale: services folded, diffs applied to the
/// grouped view in place, and the result equal to a fresh build of the
/// final graph (`web/test/rates-grouped.mjs`, against the UI's fake server).
#[test]
fn grouped_view_follows_diffs_in_place() {
    run_ui_tests("rates-grouped.mjs", &[], 1);
}
