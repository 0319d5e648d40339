//! The web UI in headless Debian Chromium against a real server and real
//! processes: runs `web/test/live.mjs` (node's test runner, playwright-core)
//! and the UI's own checks against its fake server (`web/test/e2e.mjs`).
//! Screenshots land in `target/ui-screenshots/`.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::process::Command;

/// Listens, and holds 7 outgoing connections to 7 other listeners: its
/// table row must show 5 badges and "+2".
const HUB: &str = r#"
import socket, sys, time
targets = [int(p) for p in sys.argv[1:]]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
held = [socket.create_connection(("127.0.0.1", p)) for p in targets]
print(s.getsockname()[1], flush=True)
time.sleep(3600)
"#;

fn web_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

#[test]
fn ui_in_chromium_against_the_real_server() {
    let (server_proc, server_port) = tcp_server("127.0.0.1");
    let targets: Vec<(Proc, u16)> = (0..7).map(|_| tcp_server("127.0.0.1")).collect();
    let ports: Vec<String> = targets.iter().map(|(_, p)| p.to_string()).collect();
    let port_args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let mut hub = python(HUB, &port_args);
    let hub_port: u16 = hub.line().parse().unwrap();
    let server = Server::start_with_interval(&[], "1.0");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "test/live.mjs"])
        .current_dir(web_dir())
        .env("PROCNET_URL", format!("http://127.0.0.1:{}", server.port))
        .env("PROCNET_SERVER_PID", server_proc.pid().to_string())
        .env("PROCNET_SERVER_PORT", server_port.to_string())
        .env("PROCNET_HUB_PID", hub.pid().to_string())
        .env("PROCNET_HUB_PORT", hub_port.to_string())
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "browser checks failed:\n{report}");
    assert!(
        report.contains("pass 2"),
        "both checks ran (none skipped):\n{report}"
    );
    for view in ["graph", "table", "diagram"] {
        let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/ui-screenshots")
            .join(format!("{view}.png"));
        assert!(
            shot.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
            "{view} screenshot"
        );
    }
}

#[test]
fn ui_checks_against_canned_data() {
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "test/e2e.mjs"])
        .current_dir(web_dir())
        .env_remove("PROCNET_URL")
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "UI checks failed:\n{report}");
    assert!(report.contains("fail 0"), "{report}");
}
