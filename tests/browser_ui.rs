//! The web UI in headless Debian Chromium against a real server and real
//! processes: runs `web/test/live.mjs` (node's test runner, playwright-core)
//! and the UI's own checks against its fake server (`web/test/e2e.mjs`).
//! Screenshots land in `target/ui-screenshots/`.
#![cfg(target_os = "linux")]

mod common;

use common::*;

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

#[test]
fn ui_in_chromium_against_the_real_server() {
    let (server_proc, server_port) = tcp_server("127.0.0.1");
    let targets: Vec<(Proc, u16)> = (0..7).map(|_| tcp_server("127.0.0.1")).collect();
    let ports: Vec<String> = targets.iter().map(|(_, p)| p.to_string()).collect();
    let port_args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let mut hub = python(HUB, &port_args);
    let hub_port: u16 = hub.line().parse().unwrap();
    let server = Server::start_with_interval(&[], "1.0");
    run_ui_tests(
        "live.mjs",
        &[
            ("PROCNET_URL", format!("http://127.0.0.1:{}", server.port)),
            ("PROCNET_SERVER_PID", server_proc.pid().to_string()),
            ("PROCNET_SERVER_PORT", server_port.to_string()),
            ("PROCNET_HUB_PID", hub.pid().to_string()),
            ("PROCNET_HUB_PORT", hub_port.to_string()),
        ],
        2,
    );
    assert_screenshots(&["graph", "table", "diagram"]);
}

#[test]
fn ui_checks_against_canned_data() {
    // Against its own fake server: PROCNET_URL unset (run_ui_tests removes it).
    run_ui_tests("e2e.mjs", &[], 7);
}

/// Closes its connection at once: its socket lingers in FIN_WAIT2 with no
/// owning process, an edge to an unknown owner.
const CLOSER: &str = r#"
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.close()
print("closed", flush=True)
import time; time.sleep(3600)
"#;

/// Issue 15 (psys and Procnet Live parity) in the browser: the table's
/// Clients and Connects-to columns, one label per process in the diagram,
/// containers drawn as icons, and the `--p2p-only` status line.
#[test]
fn ui_parity_with_psys_and_procnet_live() {
    // The database, labelled by a rule, and a container's published port
    // (a docker-proxy command line names the container).
    let (mut db, _d1) = named_python("dbproxy", TCP_SERVER, &["127.0.0.1"]);
    let db_port: u16 = db.line().parse().unwrap();
    let docker_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dp = docker_port.to_string();
    let (mut docker, _d2) = named_python(
        "docker-proxy",
        TCP_SERVER,
        &[
            "127.0.0.1",
            &dp,
            "-proto",
            "tcp",
            "-host-ip",
            "127.0.0.1",
            "-host-port",
            &dp,
            "-container-ip",
            "172.17.0.2",
            "-container-port",
            "80",
        ],
    );
    assert_eq!(docker.line(), dp);
    // webapp listens, holds 7 connections to the database and 1 to the container.
    let dbp = db_port.to_string();
    let mut targets = vec![dbp.as_str(); 7];
    targets.push(&dp);
    let (mut web, _d3) = named_python("webapp", HUB, &targets);
    let web_port: u16 = web.line().parse().unwrap();
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rules.path(),
        "- {match_name: dbproxy, type: database, label: DB (Public)}\n",
    )
    .unwrap();
    let server = Server::start_with_interval(&["--rules", rules.path().to_str().unwrap()], "0.5");

    // --p2p-only: a pid↔pid edge, and one to an unknown owner.
    let (p2p_target, p2p_port) = tcp_server("127.0.0.1");
    let (_p2p_client, _) = tcp_client("127.0.0.1", p2p_port, 1, &[]);
    let mut closer = python(CLOSER, &[&p2p_port.to_string()]);
    assert_eq!(closer.line(), "closed");
    let p2p = Server::start_with_interval(&["--p2p-only"], "0.5");
    let _ = p2p_target;

    run_ui_tests(
        "parity.mjs",
        &[
            ("PROCNET_URL", format!("http://127.0.0.1:{}", server.port)),
            ("PROCNET_P2P_URL", format!("http://127.0.0.1:{}", p2p.port)),
            ("PARITY_DB_PID", db.pid().to_string()),
            ("PARITY_DB_PORT", db_port.to_string()),
            ("PARITY_WEB_PID", web.pid().to_string()),
            ("PARITY_WEB_PORT", web_port.to_string()),
            ("PARITY_DOCKER_PORT", dp.to_string()),
        ],
        3,
    );
    assert_screenshots(&["parity-table", "parity-diagram", "parity-p2p"]);
}
