//! HTTP tests against a real `procnet serve` on loopback, with real test
//! processes holding real sockets.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::time::Duration;

fn has_edge(g: &serde_json::Value, from: u32, to: u32, port: u16) -> bool {
    g["edges"].as_array().unwrap().iter().any(|e| {
        e["from"] == format!("pid:{from}")
            && e["to"] == format!("pid:{to}")
            && e["serverPort"] == port
    })
}

#[test]
fn routes_shapes_and_cache_headers() {
    let (server_proc, port) = tcp_server("127.0.0.1");
    let (client, _) = tcp_client("127.0.0.1", port, 2, &[]);
    let icons = tempfile::tempdir().unwrap();
    std::fs::write(icons.path().join("database.png"), b"\x89PNG database").unwrap();
    std::fs::write(icons.path().join("service.png"), b"\x89PNG service").unwrap();
    let s = Server::start(&["--icons-dir", icons.path().to_str().unwrap()]);

    let g = s.wait_graph(Duration::from_secs(5), |g| {
        has_edge(g, client.pid(), server_proc.pid(), port)
    });
    assert!(g["seq"].as_u64().unwrap() >= 1);
    assert!(g["timestamp"].as_str().unwrap().ends_with('Z'));
    let edge = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == format!("pid:{}", client.pid()))
        .expect("client edge");
    assert_eq!(edge["to"], format!("pid:{}", server_proc.pid()));
    assert_eq!(
        (edge["proto"].as_str(), edge["count"].as_u64()),
        (Some("tcp"), Some(2))
    );
    let node = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == format!("pid:{}", server_proc.pid()))
        .unwrap();
    assert_eq!(node["kind"], "process");
    assert_eq!(node["type"], "app");
    assert!(node["startTime"].as_u64().unwrap() > 1_600_000_000);
    assert!(node["name"].as_str().unwrap().starts_with("python"));

    let c = s.get("/api/connections").json();
    let l = c["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == port)
        .expect("listener");
    assert_eq!(l["pid"], server_proc.pid());
    assert_eq!(l["address"], "127.0.0.1");
    assert_eq!(l["addressDescription"], "Localhost only (IPv4)");
    assert!(c["connections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["fromPid"] == client.pid()
            && x["toPort"] == port
            && x["toAddress"] == "127.0.0.1"));

    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    // Every asset the page names is served, immutable.
    let assets: Vec<&str> = page
        .body
        .split(['"', '\''])
        .filter(|p| p.starts_with("/assets/"))
        .collect();
    for a in &assets {
        let r = s.get(a);
        assert_eq!(r.status, 200, "{a}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{a}"
        );
    }

    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(m
        .body
        .contains("procnet_sockets{proto=\"tcp\",state=\"LISTEN\"}"));

    let h = s.get("/healthz").json();
    assert_eq!(h["status"], "ok");

    let icon = s.get("/icons/database.png");
    assert_eq!(
        (icon.status, icon.body.as_str()),
        (200, "\u{fffd}PNG database")
    );
    assert_eq!(icon.header("content-type"), Some("image/png"));
    assert_eq!(
        s.get("/icons/cache.png").body,
        "\u{fffd}PNG service",
        "falls back to service.png"
    );
    assert_eq!(s.get("/icons/..%2fsecret.png").status, 404);
    assert_eq!(s.get("/icons/database.txt").status, 404);
    assert_eq!(s.get("/nope").status, 404);
}

#[test]
fn icons_404_without_service_png() {
    let icons = tempfile::tempdir().unwrap();
    let s = Server::start(&["--icons-dir", icons.path().to_str().unwrap()]);
    assert_eq!(s.get("/icons/app.png").status, 404);
}

#[test]
fn host_and_origin_are_checked() {
    let s = Server::start(&[]);
    let port = s.port.to_string();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(
            s.get_with("/api/graph", &[("Host", &host)]).status,
            200,
            "{host}"
        );
    }
    // DNS rebinding: a foreign name resolving to 127.0.0.1.
    let r = s.get_with(
        "/api/graph",
        &[("Host", &format!("attacker.example:{port}"))],
    );
    assert_eq!(r.status, 421);
    assert_eq!(s.get_with("/", &[("Host", "attacker.example")]).status, 421);
    assert_eq!(s.get_with("/api/graph", &[]).status, 421, "no Host at all");
    let host = format!("127.0.0.1:{port}");
    let same = format!("http://127.0.0.1:{port}");
    assert_eq!(
        s.get_with("/api/graph", &[("Host", &host), ("Origin", &same)])
            .status,
        200
    );
    for path in ["/api/graph", "/api/connections", "/api/events", "/metrics"] {
        let r = s.get_with(path, &[("Host", &host), ("Origin", "http://evil.example")]);
        assert_eq!(r.status, 403, "{path}");
    }
}

#[test]
fn token_is_enforced() {
    let s = Server::start(&["--token", "s3cret-token"]);
    let host = format!("127.0.0.1:{}", s.port);
    assert_eq!(s.get_with("/api/graph", &[("Host", &host)]).status, 401);
    assert_eq!(s.get_with("/", &[("Host", &host)]).status, 401);
    let bad = s.get_with(
        "/api/graph",
        &[("Host", &host), ("Authorization", "Bearer nope")],
    );
    assert_eq!(bad.status, 401);
    let ok = s.get_with(
        "/api/graph",
        &[("Host", &host), ("Authorization", "Bearer s3cret-token")],
    );
    assert_eq!(ok.status, 200);
    // One-time ?token= sets an HttpOnly, SameSite=Strict cookie and drops
    // the token from the address.
    let login = s.get_with("/?token=s3cret-token", &[("Host", &host)]);
    assert_eq!(login.status, 303);
    assert_eq!(login.header("location"), Some("/"));
    let cookie = login.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(
        s.get_with("/api/graph", &[("Host", &host), ("Cookie", pair)])
            .status,
        200
    );
    assert_eq!(
        s.get_with("/", &[("Host", &host), ("Cookie", pair)]).status,
        200
    );
    assert_eq!(s.get_with("/healthz", &[("Host", &host)]).status, 200);
}

#[test]
fn secrets_are_redacted_unless_asked() {
    let (_server, port) = tcp_server("127.0.0.1");
    let (client, _) = tcp_client(
        "127.0.0.1",
        port,
        1,
        &["--password=hunter2", "token=abc123"],
    );
    let check = |args: &[&str], visible: bool| {
        let s = Server::start(args);
        let g = s.wait_graph(Duration::from_secs(5), |g| {
            g["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["pid"] == client.pid())
        });
        let c = s.get("/api/connections").body;
        let text = g.to_string();
        assert_eq!(text.contains("hunter2"), visible, "{text}");
        assert_eq!(text.contains("abc123"), visible);
        assert!(!c.contains("hunter2") || visible);
        if !visible {
            assert!(text.contains("--password=***") && text.contains("token=***"));
        }
    };
    check(&[], false);
    check(&["--show-secrets"], true);
}

#[test]
fn event_stream_adds_then_removes_an_edge() {
    let (server_proc, port) = tcp_server("127.0.0.1");
    let s = Server::start(&[]);
    let mut events = EventStream::open(s.port);
    let first = events
        .next(Duration::from_secs(5))
        .expect("full graph on connect");
    assert_eq!(first.name, "graph");
    let mut seq = first.data["seq"].as_u64().unwrap();

    let (client, _) = tcp_client("127.0.0.1", port, 1, &[]);
    let edge_id = format!("tcp:pid:{}->pid:{}:{port}", client.pid(), server_proc.pid());
    let mut added = false;
    for _ in 0..100 {
        let Some(ev) = events.next(Duration::from_secs(5)) else {
            break;
        };
        if ev.name != "diff" {
            continue;
        }
        assert_eq!(ev.data["base"].as_u64(), Some(seq), "diffs chain by seq");
        seq = ev.data["seq"].as_u64().unwrap();
        if ev.data["addedEdges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == edge_id)
        {
            added = true;
            break;
        }
    }
    assert!(added, "a diff adds {edge_id}");
    drop(client);
    let mut removed = false;
    for _ in 0..100 {
        let Some(ev) = events.next(Duration::from_secs(5)) else {
            break;
        };
        if ev.name != "diff" {
            continue;
        }
        assert_eq!(ev.data["base"].as_u64(), Some(seq));
        seq = ev.data["seq"].as_u64().unwrap();
        if ev.data["removedEdges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| *e == edge_id)
        {
            removed = true;
            break;
        }
    }
    assert!(removed, "a diff removes {edge_id}");
}

#[test]
fn rules_reload_keeps_last_good_rules() {
    let (server_proc, _port) = tcp_server("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let pid = server_proc.pid();
    std::fs::write(
        &rules,
        format!("- {{match_pid: {pid}, type: database, label: First}}\n"),
    )
    .unwrap();
    let s = Server::start(&["--rules", rules.to_str().unwrap()]);
    let label_of = |g: &serde_json::Value| {
        g["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["pid"] == pid)
            .map(|n| n["label"].as_str().unwrap_or("").to_string())
    };
    let g = s.wait_graph(Duration::from_secs(5), |g| {
        label_of(g).as_deref() == Some("First")
    });
    assert_eq!(label_of(&g).as_deref(), Some("First"));
    // No sleeping for the mtime to tick: an edit is seen by its size,
    // inode or ctime too.
    std::fs::write(
        &rules,
        format!("- {{match_pid: {pid}, type: cache, label: Second}}\n"),
    )
    .unwrap();
    let g = s.wait_graph(Duration::from_secs(5), |g| {
        label_of(g).as_deref() == Some("Second")
    });
    assert_eq!(label_of(&g).as_deref(), Some("Second"));
    // An atomic replace (write a temporary file, rename it over) that keeps
    // the mtime and the size, as some editors and deploy tools do.
    let mtime = std::fs::metadata(&rules).unwrap().modified().unwrap();
    let tmp = dir.path().join("rules.yaml.tmp");
    std::fs::write(
        &tmp,
        format!("- {{match_pid: {pid}, type: cache, label: Latest}}\n"),
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&tmp, &rules).unwrap();
    assert_eq!(
        std::fs::metadata(&rules).unwrap().modified().unwrap(),
        mtime
    );
    let g = s.wait_graph(Duration::from_secs(5), |g| {
        label_of(g).as_deref() == Some("Latest")
    });
    assert_eq!(label_of(&g).as_deref(), Some("Latest"));
    std::fs::write(&rules, "- {match_name: '/(/', type: x}\n").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut health = s.get("/healthz").json();
    while health["rulesError"].is_null() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        health = s.get("/healthz").json();
    }
    assert!(
        health["rulesError"]
            .as_str()
            .unwrap()
            .contains("invalid regex"),
        "{health}"
    );
    let g = s.get("/api/graph").json();
    assert_eq!(
        label_of(&g).as_deref(),
        Some("Latest"),
        "last good rules stay"
    );
}
