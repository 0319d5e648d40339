//! The graph engine on recorded snapshots (`tests/fixtures/*.json`): every
//! direction rule, pairing, listener resolution, options and labels. No OS.

use procnet::graph::diff::{apply, diff};
use procnet::graph::model::{GraphDoc, NodeKind, Role};
use procnet::graph::ports::ServicePorts;
use procnet::graph::{build_connections, build_graph, ContainerLabels, GraphOptions, Inputs};
use procnet::rules::RuleSet;
use procnet::snapshot::Snapshot;

fn fixture(name: &str) -> Snapshot {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture parses")
}

fn graph_with(snap: &Snapshot, rules: &RuleSet, options: GraphOptions) -> GraphDoc {
    let containers = ContainerLabels::default();
    build_graph(
        &Inputs {
            snapshot: snap,
            rules,
            options: &options,
            containers: &containers,
            traffic: None,
        },
        1,
    )
}

/// `(from, to, proto, serverPort, count)` of every edge, sorted.
fn edges(g: &GraphDoc) -> Vec<(String, String, String, u16, u32)> {
    let mut v: Vec<_> = g
        .edges
        .iter()
        .map(|e| {
            (
                e.from.clone(),
                e.to.clone(),
                e.proto.as_str().to_string(),
                e.server_port,
                e.count,
            )
        })
        .collect();
    v.sort();
    v
}

fn e(
    from: &str,
    to: &str,
    proto: &str,
    port: u16,
    count: u32,
) -> (String, String, String, u16, u32) {
    (from.into(), to.into(), proto.into(), port, count)
}

#[test]
fn every_direction_rule_on_the_recorded_snapshot() {
    let snap = fixture("directions.json");
    let g = graph_with(&snap, &RuleSet::default(), GraphOptions::default());
    let expected = vec![
        // equal ports 7000: the lower address (this host, 192.168.1.5) serves
        e("ext:198.51.100.9", "pid:800", "tcp", 7000, 1),
        // incoming on sshd's 0.0.0.0:22 listener from outside
        e("ext:203.0.113.9", "pid:900", "tcp", 22, 1),
        // ::ffff:127.0.0.1 pairs with 127.0.0.1
        e("pid:1200", "pid:100", "tcp", 5432, 1),
        // two sockets, one edge with count 2 (client of a 0.0.0.0 listener)
        e("pid:200", "pid:100", "tcp", 5432, 2),
        // ::1 pair
        e("pid:400", "pid:300", "tcp", 8080, 1),
        // a socket shared after fork belongs to both processes
        e("pid:500", "pid:100", "tcp", 5432, 1),
        e("pid:501", "pid:100", "tcp", 5432, 1),
        // the listener rule beats the lower-port rule (40000 serves 35000)
        e("pid:700", "pid:600", "tcp", 40000, 1),
        // lower port (no listener, no service port): 20000 serves 23000
        e("pid:800", "ext:198.51.100.7", "tcp", 20000, 1),
        // lower port: 41000 serves 45000
        e("pid:800", "ext:198.51.100.8", "tcp", 41000, 1),
        // service port 443
        e("pid:800", "ext:93.184.216.34", "tcp", 443, 1),
        // an unowned client is a node that says why, not dropped
        e("unknown:permission:uid0", "pid:100", "tcp", 5432, 1),
    ];
    assert_eq!(edges(&g), expected);
    let unknown = g
        .nodes
        .iter()
        .find(|n| n.id == "unknown:permission:uid0")
        .unwrap();
    assert_eq!(unknown.kind, NodeKind::Unknown);
    assert_eq!(unknown.reason.map(|r| r.as_str()), Some("permission"));
    // The unowned 127.0.0.1:9999 listener is shown too, on an unknown node.
    assert!(unknown.listeners.iter().any(|l| l.port == 9999));
    // TIME_WAIT leftovers make no edge.
    assert!(g.nodes.iter().all(|n| n.id != "unknown:exited"));
    // Byte counters seen from the client: psql sent 1000, received 5000.
    let psql = g.edges.iter().find(|e| e.from == "pid:200").unwrap();
    assert_eq!((psql.tx_bytes, psql.rx_bytes), (Some(1000), Some(5000)));
    assert_eq!(psql.states.get("ESTABLISHED"), Some(&2));
    assert_eq!(psql.sockets.len(), 2);
}

#[test]
fn svc_ports_flip_the_lower_port_rule() {
    let snap = fixture("directions.json");
    let options = GraphOptions {
        service_ports: ServicePorts::new([23000]),
        ..GraphOptions::default()
    };
    let g = graph_with(&snap, &RuleSet::default(), options);
    assert!(edges(&g).contains(&e("ext:198.51.100.7", "pid:800", "tcp", 23000, 1)));
    assert!(!edges(&g).iter().any(|x| x.1 == "ext:198.51.100.7"));
}

#[test]
fn udp_only_with_the_flag_and_p2p_only_drops_external() {
    let snap = fixture("directions.json");
    let without = graph_with(&snap, &RuleSet::default(), GraphOptions::default());
    assert!(without.edges.iter().all(|e| e.proto.as_str() == "tcp"));
    let options = GraphOptions {
        udp: true,
        p2p_only: true,
        ..GraphOptions::default()
    };
    let g = graph_with(&snap, &RuleSet::default(), options);
    assert!(edges(&g).contains(&e("pid:1000", "pid:1100", "udp", 5353, 1)));
    assert!(g
        .edges
        .iter()
        .all(|e| !e.from.starts_with("ext:") && !e.to.starts_with("ext:")));
    assert!(g.nodes.iter().all(|n| n.kind != NodeKind::External));
}

#[test]
fn rules_give_type_and_label_and_secrets_are_redacted() {
    let snap = fixture("directions.json");
    let rules = RuleSet::parse(
        "- {match_name: postgres, type: database, label: Local Postgres}\n- {match_cmd: '/^curl/', type: app}\n",
        "inline",
    )
    .unwrap();
    let g = graph_with(&snap, &rules, GraphOptions::default());
    let pg = g.nodes.iter().find(|n| n.id == "pid:100").unwrap();
    assert_eq!(
        (pg.node_type.as_str(), pg.label.as_str()),
        ("database", "Local Postgres")
    );
    assert_eq!(
        pg.cmdline.as_deref(),
        Some("postgres -D /var/lib/pg --password=***")
    );
    assert_eq!(pg.start_time, Some(1_700_000_000));
    let curl = g.nodes.iter().find(|n| n.id == "pid:400").unwrap();
    assert_eq!(
        (curl.node_type.as_str(), curl.label.as_str()),
        ("app", "curl")
    );
    let shown = graph_with(
        &snap,
        &rules,
        GraphOptions {
            show_secrets: true,
            ..GraphOptions::default()
        },
    );
    let pg = shown.nodes.iter().find(|n| n.id == "pid:100").unwrap();
    assert!(pg.cmdline.as_deref().unwrap().contains("hunter2"));
    let ext = g
        .nodes
        .iter()
        .find(|n| n.id == "ext:93.184.216.34")
        .unwrap();
    assert_eq!(
        (ext.kind, ext.node_type.as_str()),
        (NodeKind::External, "external")
    );
    assert_eq!(g.timestamp, "2026-11-24T15:00:00Z");
}

#[test]
fn connections_view_in_psys_shape() {
    let snap = fixture("directions.json");
    let containers = ContainerLabels::default();
    let doc = build_connections(&Inputs {
        snapshot: &snap,
        rules: &RuleSet::default(),
        options: &GraphOptions::default(),
        containers: &containers,
        traffic: None,
    });
    let pg = doc.listeners.iter().find(|l| l.port == 5432).unwrap();
    assert_eq!((pg.pid, pg.process_name.as_str()), (100, "postgres"));
    assert_eq!(pg.address_description, "Listening on all IPv4 interfaces");
    assert_eq!(pg.process_icon_type.as_deref(), Some("postgres"));
    assert_eq!(
        pg.service_label, None,
        "a known process needs no service label"
    );
    let hidden = doc.listeners.iter().find(|l| l.port == 9999).unwrap();
    assert_eq!((hidden.pid, hidden.process_name.as_str()), (0, "?"));
    assert_eq!(hidden.service_label.as_deref(), Some("9999 (unknown)"));
    // Outgoing psql connection: known service label wins over process name.
    let c = doc
        .connections
        .iter()
        .find(|c| c.from_pid == 200 && c.from_port == 50122)
        .unwrap();
    assert_eq!((c.to_address.as_str(), c.to_port), ("127.0.0.1", 5432));
    assert_eq!(c.to_label.as_deref(), Some("PostgreSQL"));
    assert_eq!((c.role, c.to_pid), (Role::Client, Some(100)));
    // Loopback target on an unknown port: the local process's name.
    let c = doc.connections.iter().find(|c| c.from_pid == 700).unwrap();
    assert_eq!(c.to_label.as_deref(), Some("highsrv"));
    // The shared socket is listed for each owner; the unowned one as pid 0.
    assert!(doc
        .connections
        .iter()
        .any(|c| c.from_pid == 500 && c.from_port == 50200));
    assert!(doc
        .connections
        .iter()
        .any(|c| c.from_pid == 501 && c.from_port == 50200));
    assert!(doc
        .connections
        .iter()
        .any(|c| c.from_pid == 0 && c.from_process_name == "?"));
    // The server's accepted socket is there too, marked as the server end.
    let s = doc
        .connections
        .iter()
        .find(|c| c.from_pid == 100 && c.to_port == 50122)
        .unwrap();
    assert_eq!(s.role, Role::Server);
}

#[test]
fn diff_applies_to_the_next_graph() {
    let snap = fixture("directions.json");
    let before = graph_with(&snap, &RuleSet::default(), GraphOptions::default());
    let mut changed = snap.clone();
    changed
        .sockets
        .retain(|s| s.local.port() != 35000 && s.remote.map(|r| r.port()) != Some(35000));
    changed.sockets[5].bytes_sent = Some(2000);
    let mut after = graph_with(&changed, &RuleSet::default(), GraphOptions::default());
    after.seq = 2;
    let d = diff(&before, &after);
    assert_eq!((d.base, d.seq), (1, 2));
    assert!(d
        .removed_edges
        .contains(&"tcp:pid:700->pid:600:40000".to_string()));
    assert!(d.removed_nodes.contains(&"pid:700".to_string()));
    assert!(d.updated_edges.iter().any(|e| e.from == "pid:200"));
    let mut applied = before.clone();
    apply(&mut applied, &d);
    assert_eq!(applied, after);
    assert!(diff(&after, &after).is_empty());
}

#[test]
fn p2p_only_drops_edges_to_unknown_owners_and_counts_them() {
    let snap = fixture("directions.json");
    let all = graph_with(&snap, &RuleSet::default(), GraphOptions::default());
    assert!(edges(&all).contains(&e("unknown:permission:uid0", "pid:100", "tcp", 5432, 1)));
    assert_eq!(all.p2p_hidden_edges, None);
    let options = GraphOptions {
        p2p_only: true,
        ..GraphOptions::default()
    };
    let g = graph_with(&snap, &RuleSet::default(), options.clone());
    assert!(
        g.edges
            .iter()
            .all(|e| e.from.starts_with("pid:") && e.to.starts_with("pid:")),
        "{:?}",
        edges(&g)
    );
    assert!(edges(&g).contains(&e("pid:200", "pid:100", "tcp", 5432, 2)));
    assert_eq!(g.p2p_hidden_edges, Some(1));
    // The count travels in diffs when it changes, and only then.
    let mut fewer = snap.clone();
    // Both ends of the connection from the unreadable owner go.
    fewer
        .sockets
        .retain(|s| s.local.port() != 50400 && s.remote.map(|r| r.port()) != Some(50400));
    let mut after = graph_with(&fewer, &RuleSet::default(), options);
    after.seq = 2;
    assert_eq!(after.p2p_hidden_edges, Some(0));
    let d = diff(&g, &after);
    assert_eq!(d.p2p_hidden_edges, Some(0));
    assert!(!d.is_empty());
    let mut applied = g.clone();
    apply(&mut applied, &d);
    assert_eq!(applied, after);
    assert_eq!(diff(&after, &after).p2p_hidden_edges, None);
}

#[test]
fn one_label_per_process_in_both_views() {
    let snap = fixture("directions.json");
    let rules = RuleSet::parse(
        "- {match_name: postgres, type: database, label: DB (Public)}\n",
        "inline",
    )
    .unwrap();
    let containers = ContainerLabels::default();
    let doc = build_connections(&Inputs {
        snapshot: &snap,
        rules: &rules,
        options: &GraphOptions::default(),
        containers: &containers,
        traffic: None,
    });
    let g = graph_with(&snap, &rules, GraphOptions::default());
    let node = g.nodes.iter().find(|n| n.id == "pid:100").unwrap();
    let pg = doc.listeners.iter().find(|l| l.port == 5432).unwrap();
    assert_eq!(
        (pg.label.as_str(), node.label.as_str()),
        ("DB (Public)", "DB (Public)")
    );
    let c = doc
        .connections
        .iter()
        .find(|c| c.from_pid == 200 && c.from_port == 50122)
        .unwrap();
    assert_eq!(c.to_process_label.as_deref(), Some("DB (Public)"));
    assert_eq!(
        c.to_label.as_deref(),
        Some("PostgreSQL"),
        "psys's toLabel kept"
    );
    // The server's end names its client by the client's label.
    let s = doc
        .connections
        .iter()
        .find(|c| c.from_pid == 100 && c.to_port == 50122)
        .unwrap();
    assert_eq!(s.to_process_label.as_deref(), Some("psql"));
    let hidden = doc.listeners.iter().find(|l| l.port == 9999).unwrap();
    assert_eq!(hidden.label, "9999 (unknown)");
}
