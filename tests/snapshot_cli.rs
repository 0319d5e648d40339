//! `procnet snapshot` against real processes on loopback: the exact edges
//! (from pid, to pid, proto, serverPort, count) it prints.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::process::Command;

fn snapshot(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("snapshot")
        .args(args)
        .output()
        .expect("procnet runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Edges touching any of `pids`, as (from, to, proto, serverPort, count).
fn edges_of(g: &serde_json::Value, pids: &[u32]) -> Vec<(String, String, String, u64, u64)> {
    let ids: Vec<String> = pids.iter().map(|p| format!("pid:{p}")).collect();
    let mut v: Vec<_> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ids.iter().any(|i| e["from"] == *i || e["to"] == *i))
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
                e["proto"].as_str().unwrap().to_string(),
                e["serverPort"].as_u64().unwrap(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn edge(
    from: u32,
    to: u32,
    proto: &str,
    port: u16,
    count: u64,
) -> (String, String, String, u64, u64) {
    (
        format!("pid:{from}"),
        format!("pid:{to}"),
        proto.into(),
        u64::from(port),
        count,
    )
}

#[test]
fn tcp_listeners_on_every_kind_of_address() {
    let (s4, p4) = tcp_server("127.0.0.1");
    let (s6, p6) = tcp_server("::1");
    let (sany, pany) = tcp_server("0.0.0.0");
    let (sdual, pdual) = tcp_server("::");
    let (c4, _) = tcp_client("127.0.0.1", p4, 2, &[]);
    let (c6, _) = tcp_client("::1", p6, 1, &[]);
    let (cany, _) = tcp_client("127.0.0.1", pany, 3, &[]);
    // A v4 client of a dual-stack :: listener: the server sees ::ffff:127.0.0.1.
    let (cdual, _) = tcp_client("127.0.0.1", pdual, 1, &[]);
    let pids = [
        s4.pid(),
        s6.pid(),
        sany.pid(),
        sdual.pid(),
        c4.pid(),
        c6.pid(),
        cany.pid(),
        cdual.pid(),
    ];
    let g = snapshot(&[]);
    let mut expected = vec![
        edge(c4.pid(), s4.pid(), "tcp", p4, 2),
        edge(c6.pid(), s6.pid(), "tcp", p6, 1),
        edge(cany.pid(), sany.pid(), "tcp", pany, 3),
        edge(cdual.pid(), sdual.pid(), "tcp", pdual, 1),
    ];
    expected.sort();
    assert_eq!(edges_of(&g, &pids), expected);

    let c = snapshot(&["--format", "connections"]);
    let listener = |port: u16| {
        c["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["port"] == port)
            .unwrap_or_else(|| panic!("listener {port}"))
            .clone()
    };
    assert_eq!(listener(p4)["address"], "127.0.0.1");
    assert_eq!(listener(p6)["address"], "::1");
    assert_eq!(listener(pany)["address"], "0.0.0.0");
    assert_eq!(listener(pdual)["address"], "::");
    assert_eq!(listener(pdual)["pid"], sdual.pid());
    // The dual-stack server's accepted socket is reported as plain IPv4.
    let accepted = c["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["fromPid"] == sdual.pid())
        .expect("accepted socket");
    assert_eq!(accepted["fromAddress"], "127.0.0.1");
    assert_eq!(accepted["role"], "server");
}

#[test]
fn udp_pair_only_with_the_flag() {
    const UDP_SERVER: &str = r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    s.recvfrom(100)
"#;
    const UDP_CLIENT: &str = r#"
import socket, sys, time
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.connect(("127.0.0.1", int(sys.argv[1])))
c.send(b"hi")
print(c.getsockname()[1], flush=True)
time.sleep(3600)
"#;
    let mut server = python(UDP_SERVER, &[]);
    let port: u16 = server.line().parse().unwrap();
    let mut client = python(UDP_CLIENT, &[&port.to_string()]);
    client.line();
    let pids = [server.pid(), client.pid()];
    assert_eq!(
        edges_of(&snapshot(&[]), &pids),
        vec![],
        "no UDP without --udp"
    );
    assert_eq!(
        edges_of(&snapshot(&["--udp"]), &pids),
        vec![edge(client.pid(), server.pid(), "udp", port, 1)]
    );
}

#[test]
fn socket_shared_by_parent_and_child_belongs_to_both() {
    const FORKING_CLIENT: &str = r#"
import os, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
pid = os.fork()
if pid == 0:
    time.sleep(3600)
    os._exit(0)
print(pid, flush=True)
try:
    time.sleep(3600)
finally:
    os.kill(pid, 9)
"#;
    let (server, port) = tcp_server("127.0.0.1");
    let mut parent = python(FORKING_CLIENT, &[&port.to_string()]);
    let child: u32 = parent.line().parse().unwrap();
    let g = snapshot(&[]);
    let found = edges_of(&g, &[server.pid()]);
    // Killing the child too when the test ends.
    let _reap = ChildGuard(child);
    let mut expected = vec![
        edge(parent.pid(), server.pid(), "tcp", port, 1),
        edge(child, server.pid(), "tcp", port, 1),
    ];
    expected.sort();
    assert_eq!(found, expected);
    let c = snapshot(&["--format", "connections"]);
    let rows: Vec<u64> = c["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["toPort"] == port)
        .map(|x| x["fromPid"].as_u64().unwrap())
        .collect();
    assert!(
        rows.contains(&u64::from(parent.pid())) && rows.contains(&u64::from(child)),
        "{rows:?}"
    );
}

struct ChildGuard(u32);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a pid we created; failure is harmless.
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

#[test]
fn kernel_byte_counters_are_exact() {
    const SENDER: &str = r#"
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"x" * 10_000_000)
got = 0
while got < 3_000_000:
    got += len(c.recv(1 << 20))
print("done", flush=True)
import time; time.sleep(3600)
"#;
    const ECHOER: &str = r#"
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
got = 0
while got < 10_000_000:
    got += len(c.recv(1 << 20))
c.sendall(b"y" * 3_000_000)
import time; time.sleep(3600)
"#;
    let mut server = python(ECHOER, &[]);
    let port: u16 = server.line().parse().unwrap();
    let mut client = python(SENDER, &[&port.to_string()]);
    assert_eq!(client.line(), "done");
    let g = snapshot(&[]);
    let e = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == format!("pid:{}", client.pid()))
        .expect("edge");
    let (tx, rx) = (
        e["txBytes"].as_f64().unwrap(),
        e["rxBytes"].as_f64().unwrap(),
    );
    assert!((tx - 10e6).abs() / 10e6 < 0.01, "tx {tx}");
    assert!((rx - 3e6).abs() / 3e6 < 0.01, "rx {rx}");
    let node = |pid: u32| {
        g["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["pid"] == pid)
            .unwrap()
            .clone()
    };
    let c = node(client.pid());
    assert!((c["txBytes"].as_f64().unwrap() - 10e6).abs() / 10e6 < 0.01);
    let s = node(server.pid());
    assert!((s["rxBytes"].as_f64().unwrap() - 10e6).abs() / 10e6 < 0.01);
    assert!((s["txBytes"].as_f64().unwrap() - 3e6).abs() / 3e6 < 0.01);
}

#[test]
fn table_is_readable_on_100_columns() {
    let (_s, port) = tcp_server("127.0.0.1");
    let (_c, _) = tcp_client("127.0.0.1", port, 1, &[]);
    let out = Command::new(BIN)
        .args(["snapshot", "--format", "table"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("LISTENING"));
    assert!(text.contains(&port.to_string()));
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "too wide: {line}");
    }
}

fn listener_at(c: &serde_json::Value, port: u16) -> serde_json::Value {
    c["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == port)
        .unwrap_or_else(|| panic!("listener {port} in {c}"))
        .clone()
}

#[test]
fn p2p_only_drops_edges_to_unknown_owners_and_counts_them() {
    // The client closes first: its socket lingers in FIN_WAIT2 with no
    // owning process, so the server's connection is to an unknown owner.
    const CLOSER: &str = r#"
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.close()
print("closed", flush=True)
import time; time.sleep(3600)
"#;
    let (server, port) = tcp_server("127.0.0.1");
    let mut closer = python(CLOSER, &[&port.to_string()]);
    assert_eq!(closer.line(), "closed");
    // A pid↔pid edge that --p2p-only keeps.
    let (client, _) = tcp_client("127.0.0.1", port, 1, &[]);
    let to_server = |g: &serde_json::Value| -> Vec<String> {
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["to"] == format!("pid:{}", server.pid()))
            .map(|e| e["from"].as_str().unwrap().to_string())
            .collect()
    };
    let all = snapshot(&[]);
    let froms = to_server(&all);
    assert!(
        froms.iter().any(|f| f.starts_with("unknown:")),
        "setup: an edge from an unknown owner exists without the flag: {froms:?}"
    );
    assert!(
        all.get("p2pHiddenEdges").is_none(),
        "absent without the flag"
    );

    let p2p = snapshot(&["--p2p-only"]);
    assert_eq!(to_server(&p2p), vec![format!("pid:{}", client.pid())]);
    let edges = p2p["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .all(|e| e["from"].as_str().unwrap().starts_with("pid:")
                && e["to"].as_str().unwrap().starts_with("pid:")),
        "only pid↔pid edges: {edges:?}"
    );
    assert!(
        p2p["p2pHiddenEdges"].as_u64().unwrap_or(0) >= 1,
        "the hidden edges are counted: {}",
        p2p["p2pHiddenEdges"]
    );
    // A live server says the same in /healthz (the graph hides them; the
    // health report keeps the count).
    let live = Server::start(&["--p2p-only", "--no-containers"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let hidden = loop {
        let h = live.get("/healthz").json();
        let n = h["p2pHiddenEdges"].as_u64().unwrap_or(0);
        if n >= 1 || std::time::Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(hidden >= 1, "/healthz counts the hidden edges");
}

#[test]
fn listener_descriptions_icons_and_labels_as_psys() {
    let (_s53, p53) = tcp_server("127.0.0.53");
    let (_s2, p2) = tcp_server("127.0.0.2");
    let (_s1, p1) = tcp_server("127.0.0.1");
    let (_s6, p6) = tcp_server("::1");
    let (_sany, pany) = tcp_server("0.0.0.0");
    let script = TCP_SERVER.to_string();
    // Next.js as it runs: `node …/node_modules/.bin/next dev`.
    let (mut next, _d1) = named_python(
        "node",
        &script,
        &["127.0.0.1", "0", "/app/node_modules/.bin/next", "dev"],
    );
    let next_port: u16 = next.line().parse().unwrap();
    let (mut plain, _d2) = named_python("node", &script, &["127.0.0.1", "0", "server.js"]);
    let plain_port: u16 = plain.line().parse().unwrap();
    let procnet = Server::start(&[]);

    let c = snapshot(&["--format", "connections"]);
    let desc = |port| listener_at(&c, port)["addressDescription"].clone();
    assert_eq!(desc(p53), "systemd-resolved (local DNS)");
    assert_eq!(desc(p2), "Localhost only (IPv4)");
    assert_eq!(desc(p1), "Localhost only (IPv4)");
    assert_eq!(desc(p6), "Localhost only (IPv6)");
    assert_eq!(desc(pany), "Listening on all IPv4 interfaces");
    assert_eq!(listener_at(&c, next_port)["processIconType"], "next");
    assert_eq!(listener_at(&c, plain_port)["processIconType"], "node");
    // procnet labels itself, as psys does ("psys").
    let me = listener_at(&c, procnet.port);
    assert_eq!(me["pid"], procnet.child.id());
    assert_eq!(me["serviceLabel"], "procnet");
    assert_eq!(me["processIconType"], "procnet");
    assert_eq!(me["label"], "procnet");
}

#[test]
fn one_label_per_process_in_listeners_and_connections() {
    // A client bound to a well-known port number (as an ephemeral port
    // may happen to be): the server's view of it must not be named after
    // that service.
    const CLIENT_ON_SERVICE_PORT: &str = r#"
import socket, sys, time
for p in (9200, 11211, 27017, 5672, 15672, 9300):
    c = socket.socket()
    try:
        c.bind(("127.0.0.1", p))
        break
    except OSError:
        c.close()
c.connect(("127.0.0.1", int(sys.argv[1])))
print(c.getsockname()[1], flush=True)
time.sleep(3600)
"#;
    let (mut db, _d) = named_python("dbproxy", TCP_SERVER, &["127.0.0.1"]);
    let db_port: u16 = db.line().parse().unwrap();
    let (mut webapp, _w) = named_python("webapp", CLIENT_ON_SERVICE_PORT, &[&db_port.to_string()]);
    let client_port: u16 = webapp.line().parse().unwrap();
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rules.path(),
        "- {match_name: dbproxy, type: database, label: DB (Public)}\n",
    )
    .unwrap();
    let rules_path = rules.path().to_str().unwrap();
    let c = snapshot(&["--format", "connections", "--rules", rules_path]);
    let l = listener_at(&c, db_port);
    assert_eq!(l["label"], "DB (Public)");
    let conns = c["connections"].as_array().unwrap();
    let out = conns
        .iter()
        .find(|x| x["fromPid"] == webapp.pid() && x["toPort"] == db_port)
        .expect("the client's connection");
    assert_eq!(out["toProcessLabel"], "DB (Public)", "the listener's label");
    assert_eq!(
        out["toLabel"], "dbproxy",
        "psys's toLabel: the process name"
    );
    let inbound = conns
        .iter()
        .find(|x| x["fromPid"] == db.pid() && x["toPort"] == client_port)
        .expect("the server's accepted connection");
    assert_eq!(inbound["role"], "server");
    assert_eq!(inbound["toProcessLabel"], "webapp");
    assert_eq!(
        inbound["toLabel"], "webapp",
        "a client's port {client_port} names no service"
    );
    // The graph node carries the same label.
    let g = snapshot(&["--rules", rules_path]);
    let node = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["pid"] == db.pid())
        .unwrap()
        .clone();
    assert_eq!(node["label"], "DB (Public)");
}
