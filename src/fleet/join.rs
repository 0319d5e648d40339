//! The fleet map from the engine's rows: client halves joined to the
//! server host's listener on (peer_ip, peer_port, proto), giving
//! `process@hostA → process@hostB` edges; servers and clients that run no
//! procnet become placeholder nodes named by their address. Pure.
//!
//! Which half counts an edge's bytes: the **client's** when the client
//! runs procnet (its half names the server's address and port, so it joins
//! a listener), else the server's (its half names the client's address,
//! which no host claims). A server half whose client address belongs to a
//! host that runs procnet is left out: that host's client half already
//! stands for it, and counting both would double the edge.
//!
//! Node ids (docs/contract.md): a process on a fleet host is
//! `svc:<host>/<process>` (the series carry no pid: one node per process
//! name and host), a placeholder `ext:<address>`; every fleet node carries
//! its `host`, which the UI groups by.

use super::query::{self, Sample};
use crate::graph::labels::{address_description, rfc3339};
use crate::graph::model::{
    Connection, ConnectionsDoc, Edge, GraphDoc, ListenAddr, Listener, Node, NodeKind, Role,
};
use crate::snapshot::Proto;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// What the two queries answered for one instant.
#[derive(Debug, Clone, Default)]
pub struct FleetRows {
    /// The flow queries' rows ([`query::flow_queries`]).
    pub flows: Vec<Sample>,
    /// The info query's rows ([`query::info_query`]).
    pub info: Vec<Sample>,
    /// The evaluation time, seconds since the epoch.
    pub at: f64,
}

/// The views of one instant.
#[derive(Debug, Clone, Default)]
pub struct FleetView {
    pub graph: GraphDoc,
    pub connections: ConnectionsDoc,
}

/// One half-edge's values, gathered from its five rows.
#[derive(Debug, Clone, Copy, Default)]
struct Half {
    sent: f64,
    received: f64,
    open: f64,
    sent_rate: f64,
    received_rate: f64,
}

/// The label set of one half-edge (besides the `m` tag).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct HalfKey {
    host: String,
    role: String,
    proto: String,
    process: String,
    container: String,
    local_port: String,
    peer_ip: String,
    peer_port: String,
}

/// A listener as the info series show it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ListenRow {
    host: String,
    proto: String,
    ip: String,
    port: String,
    process: String,
    container: String,
}

/// The process node id of `process` on `host`.
pub fn process_id(host: &str, process: &str) -> String {
    format!("svc:{host}/{process}")
}

/// The placeholder node id of an address no procnet reports on.
pub fn placeholder_id(address: &str) -> String {
    format!("ext:{address}")
}

fn proto_of(s: &str) -> Option<Proto> {
    match s {
        "tcp" => Some(Proto::Tcp),
        "udp" => Some(Proto::Udp),
        _ => None,
    }
}

/// True for loopback and unspecified addresses: `127.0.0.1:5432` exists
/// on every host, so such an address only ever joins its own host.
fn host_local(ip: &str) -> bool {
    ip.parse::<IpAddr>()
        .map(|ip| ip.is_loopback() || ip.is_unspecified())
        .unwrap_or(false)
}

/// Bytes as the document's integers (counters are whole numbers; a
/// negative or huge float from an engine cannot wrap).
fn bytes(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Builds the fleet map of one instant. `seq` numbers the document.
pub fn build(rows: &FleetRows, seq: u64) -> FleetView {
    let mut halves: BTreeMap<HalfKey, Half> = BTreeMap::new();
    for r in &rows.flows {
        let key = HalfKey {
            host: r.label("host").to_string(),
            role: r.label("role").to_string(),
            proto: r.label("proto").to_string(),
            process: r.label("process").to_string(),
            container: r.label("container").to_string(),
            local_port: r.label("local_port").to_string(),
            peer_ip: r.label("peer_ip").to_string(),
            peer_port: r.label("peer_port").to_string(),
        };
        if key.host.is_empty() {
            continue;
        }
        let h = halves.entry(key).or_default();
        match r.label("m") {
            query::SENT => h.sent = r.value,
            query::RECEIVED => h.received = r.value,
            query::OPEN => h.open = r.value,
            query::SENT_RATE => h.sent_rate = r.value,
            query::RECEIVED_RATE => h.received_rate = r.value,
            _ => {}
        }
    }
    // Host addresses, and which host each address belongs to.
    let mut host_addresses: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut address_host: HashMap<&str, &str> = HashMap::new();
    let mut listen_rows = Vec::new();
    for r in &rows.info {
        match r.label("m") {
            query::ADDRESS if !r.label("host").is_empty() => {
                host_addresses
                    .entry(r.label("host"))
                    .or_default()
                    .push(r.label("ip"));
                address_host.entry(r.label("ip")).or_insert(r.label("host"));
            }
            query::LISTEN if !r.label("host").is_empty() => listen_rows.push(ListenRow {
                host: r.label("host").into(),
                proto: r.label("proto").into(),
                ip: r.label("ip").into(),
                port: r.label("port").into(),
                process: r.label("process").into(),
                container: r.label("container").into(),
            }),
            _ => {}
        }
    }
    listen_rows.sort();
    listen_rows.dedup();
    // (proto, ip, port) → listeners; a wildcard listener is reachable on
    // every address of its host.
    let mut by_addr: HashMap<(&str, &str, &str), Vec<&ListenRow>> = HashMap::new();
    for l in &listen_rows {
        let ips: Vec<&str> = match l.ip.as_str() {
            "0.0.0.0" => host_addresses
                .get(l.host.as_str())
                .map(|a| a.iter().copied().filter(|ip| !ip.contains(':')).collect())
                .unwrap_or_default(),
            "::" => host_addresses
                .get(l.host.as_str())
                .cloned()
                .unwrap_or_default(),
            ip => vec![ip],
        };
        for ip in ips {
            by_addr
                .entry((l.proto.as_str(), ip, l.port.as_str()))
                .or_default()
                .push(l);
        }
    }
    let managed_hosts: HashSet<&str> = halves.keys().map(|k| k.host.as_str()).collect();

    let mut graph = GraphBuilder::default();
    let mut connections = Vec::new();
    for l in &listen_rows {
        graph.process(&l.host, &l.process, &l.container);
        if let (Some(proto), Ok(port)) = (proto_of(&l.proto), l.port.parse::<u16>()) {
            graph.listen(&l.host, &l.process, proto, &l.ip, port);
        }
    }
    for (k, h) in &halves {
        let Some(proto) = proto_of(&k.proto) else {
            continue;
        };
        if h.open <= 0.0 && h.sent_rate <= 0.0 && h.received_rate <= 0.0 {
            // Idle: the exporter keeps a closed half's totals for a while,
            // but the map shows what is connected or moving now.
            continue;
        }
        match k.role.as_str() {
            "client" => {
                let Ok(port) = k.peer_port.parse::<u16>() else {
                    continue;
                };
                let from = graph.process(&k.host, &k.process, &k.container);
                let server = by_addr
                    .get(&(k.proto.as_str(), k.peer_ip.as_str(), k.peer_port.as_str()))
                    .and_then(|ls| {
                        ls.iter()
                            .find(|l| !host_local(&k.peer_ip) || l.host == k.host)
                            .copied()
                    });
                let to = match server {
                    Some(l) => graph.process(&l.host, &l.process, &l.container),
                    None => graph.placeholder(&k.peer_ip, address_host.get(k.peer_ip.as_str())),
                };
                graph.edge(&from, &to, proto, port, h.sent, h.received, h, false);
                connections.push(Connection {
                    from_pid: 0,
                    from_process_name: k.process.clone(),
                    from_address: host_addresses
                        .get(k.host.as_str())
                        .and_then(|a| a.first())
                        .map_or_else(String::new, |a| a.to_string()),
                    from_port: 0,
                    to_address: k.peer_ip.clone(),
                    to_port: port,
                    to_host_name: None,
                    to_label: Some(server.map_or_else(
                        || k.peer_ip.clone(),
                        |l| format!("{}@{}", l.process, l.host),
                    )),
                    proto,
                    state: if h.open > 0.0 {
                        "ESTABLISHED"
                    } else {
                        "CLOSED"
                    }
                    .into(),
                    role: Role::Client,
                    to_pid: None,
                    to_process_label: server.map(|l| format!("{}@{}", l.process, l.host)),
                    tx_bytes: Some(bytes(h.sent)),
                    rx_bytes: Some(bytes(h.received)),
                    rtt_ms: None,
                    retransmits: None,
                });
            }
            "server" => {
                // The client's own half stands for it when it runs procnet.
                if address_host
                    .get(k.peer_ip.as_str())
                    .is_some_and(|h| managed_hosts.contains(h))
                {
                    continue;
                }
                let Ok(port) = k.local_port.parse::<u16>() else {
                    continue;
                };
                let to = graph.process(&k.host, &k.process, &k.container);
                let from = graph.placeholder(&k.peer_ip, None);
                // Seen from the client: what the server received is what
                // the client sent.
                let flipped = Half {
                    sent_rate: h.received_rate,
                    received_rate: h.sent_rate,
                    ..*h
                };
                graph.edge(&from, &to, proto, port, h.received, h.sent, &flipped, true);
            }
            _ => {}
        }
    }
    let listeners = listen_rows
        .iter()
        .filter_map(|l| {
            let proto = proto_of(&l.proto)?;
            let port = l.port.parse().ok()?;
            let label = format!("{}@{}", l.process, l.host);
            Some(Listener {
                pid: 0,
                process_name: l.process.clone(),
                label: label.clone(),
                service_label: Some(label),
                container_name: (!l.container.is_empty()).then(|| l.container.clone()),
                process_icon_type: None,
                address: l.ip.clone(),
                address_description: l
                    .ip
                    .parse::<IpAddr>()
                    .map(|ip| address_description(ip).to_string())
                    .unwrap_or_default(),
                port,
                cmdline: None,
                proto,
                pids: Vec::new(),
                reason: None,
            })
        })
        .collect();
    let at_ms = (rows.at.max(0.0) * 1000.0) as u64;
    FleetView {
        graph: graph.finish(seq, rfc3339(at_ms)),
        connections: ConnectionsDoc {
            listeners,
            connections,
        },
    }
}

/// Collects nodes and edges, merging repeats.
#[derive(Default)]
struct GraphBuilder {
    nodes: BTreeMap<String, Node>,
    edges: BTreeMap<String, Edge>,
}

impl GraphBuilder {
    fn process(&mut self, host: &str, process: &str, container: &str) -> String {
        let id = process_id(host, process);
        self.nodes.entry(id.clone()).or_insert_with(|| {
            let mut n = Node::bare(
                id.clone(),
                NodeKind::Process,
                "app",
                format!("{process}@{host}"),
            );
            n.name = Some(process.to_string());
            n.host = Some(host.to_string());
            n.container = (!container.is_empty()).then(|| container.to_string());
            n
        });
        id
    }

    /// `host`: the fleet host that has this address, when one does (a
    /// host whose procnet reports addresses but not this flow).
    fn placeholder(&mut self, address: &str, host: Option<&&str>) -> String {
        let id = placeholder_id(address);
        self.nodes.entry(id.clone()).or_insert_with(|| {
            let mut n = Node::bare(id.clone(), NodeKind::External, "external", address.into());
            n.address = Some(address.to_string());
            n.host = host.map(|h| h.to_string());
            n
        });
        id
    }

    fn listen(&mut self, host: &str, process: &str, proto: Proto, ip: &str, port: u16) {
        if let Some(n) = self.nodes.get_mut(&process_id(host, process)) {
            let l = ListenAddr {
                proto,
                address: ip.to_string(),
                port,
            };
            if !n.listeners.contains(&l) {
                n.listeners.push(l);
            }
        }
    }

    /// Adds (or merges into) the edge `from → to`; `tx`/`rx` are client →
    /// server and server → client. Node totals are summed from edges.
    #[allow(clippy::too_many_arguments)]
    fn edge(
        &mut self,
        from: &str,
        to: &str,
        proto: Proto,
        port: u16,
        tx: f64,
        rx: f64,
        h: &Half,
        _from_server_half: bool,
    ) {
        let proto_name = match proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        let id = format!("{from}>{to}/{proto_name}/{port}");
        let e = self.edges.entry(id.clone()).or_insert_with(|| Edge {
            id,
            from: from.to_string(),
            to: to.to_string(),
            proto,
            server_port: port,
            count: 0,
            states: BTreeMap::new(),
            sockets: Vec::new(),
            tx_bytes: Some(0),
            rx_bytes: Some(0),
            tx_rate: Some(0.0),
            rx_rate: Some(0.0),
            rtt_ms: None,
            retransmits: None,
        });
        let open = bytes(h.open).min(u32::MAX as u64) as u32;
        e.count = e.count.saturating_add(open);
        if open > 0 {
            *e.states.entry("ESTABLISHED".into()).or_default() += open;
        }
        e.tx_bytes = Some(e.tx_bytes.unwrap_or(0).saturating_add(bytes(tx)));
        e.rx_bytes = Some(e.rx_bytes.unwrap_or(0).saturating_add(bytes(rx)));
        e.tx_rate = Some(e.tx_rate.unwrap_or(0.0) + h.sent_rate.max(0.0));
        e.rx_rate = Some(e.rx_rate.unwrap_or(0.0) + h.received_rate.max(0.0));
    }

    fn finish(mut self, seq: u64, timestamp: String) -> GraphDoc {
        for e in self.edges.values() {
            for (id, tx, rx, txr, rxr) in [
                (&e.from, e.tx_bytes, e.rx_bytes, e.tx_rate, e.rx_rate),
                (&e.to, e.rx_bytes, e.tx_bytes, e.rx_rate, e.tx_rate),
            ] {
                if let Some(n) = self.nodes.get_mut(id) {
                    n.tx_bytes = Some(n.tx_bytes.unwrap_or(0) + tx.unwrap_or(0));
                    n.rx_bytes = Some(n.rx_bytes.unwrap_or(0) + rx.unwrap_or(0));
                    n.tx_rate = Some(n.tx_rate.unwrap_or(0.0) + txr.unwrap_or(0.0));
                    n.rx_rate = Some(n.rx_rate.unwrap_or(0.0) + rxr.unwrap_or(0.0));
                }
            }
        }
        GraphDoc {
            seq,
            timestamp,
            nodes: self.nodes.into_values().collect(),
            edges: self.edges.into_values().collect(),
            p2p_hidden_edges: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(m: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert("m".into(), m.into());
        Sample {
            labels: l,
            time: 1_795_532_400.0,
            value,
        }
    }

    fn half(
        m: &str,
        host: &str,
        role: &str,
        process: &str,
        peer: (&str, &str),
        lport: &str,
        v: f64,
    ) -> Sample {
        row(
            m,
            &[
                ("host", host),
                ("role", role),
                ("proto", "tcp"),
                ("process", process),
                ("container", ""),
                ("local_port", lport),
                ("peer_ip", peer.0),
                ("peer_port", peer.1),
            ],
            v,
        )
    }

    fn addr(host: &str, ip: &str) -> Sample {
        row(query::ADDRESS, &[("host", host), ("ip", ip)], 1.0)
    }

    fn listen(host: &str, ip: &str, port: &str, process: &str) -> Sample {
        row(
            query::LISTEN,
            &[
                ("host", host),
                ("proto", "tcp"),
                ("ip", ip),
                ("port", port),
                ("process", process),
                ("container", ""),
            ],
            1.0,
        )
    }

    /// A client half with its five rows.
    fn client(
        host: &str,
        process: &str,
        peer: (&str, &str),
        sent: f64,
        recv: f64,
        open: f64,
    ) -> Vec<Sample> {
        vec![
            half(query::SENT, host, "client", process, peer, "", sent),
            half(query::RECEIVED, host, "client", process, peer, "", recv),
            half(query::OPEN, host, "client", process, peer, "", open),
            half(
                query::SENT_RATE,
                host,
                "client",
                process,
                peer,
                "",
                sent / 10.0,
            ),
            half(
                query::RECEIVED_RATE,
                host,
                "client",
                process,
                peer,
                "",
                recv / 10.0,
            ),
        ]
    }

    fn server(
        host: &str,
        process: &str,
        lport: &str,
        peer_ip: &str,
        sent: f64,
        recv: f64,
    ) -> Vec<Sample> {
        let p = (peer_ip, "");
        vec![
            half(query::SENT, host, "server", process, p, lport, sent),
            half(query::RECEIVED, host, "server", process, p, lport, recv),
            half(query::OPEN, host, "server", process, p, lport, 1.0),
            half(query::SENT_RATE, host, "server", process, p, lport, 1.0),
            half(query::RECEIVED_RATE, host, "server", process, p, lport, 1.0),
        ]
    }

    fn edge<'a>(g: &'a GraphDoc, from: &str, to: &str) -> &'a Edge {
        g.edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .unwrap_or_else(|| panic!("no edge {from} → {to} in {:#?}", g.edges))
    }

    fn three_hosts() -> FleetRows {
        let mut flows = Vec::new();
        // api@A → postgres@B (B listens on 0.0.0.0: matches B's address).
        flows.extend(client(
            "A",
            "api",
            ("198.18.0.2", "5432"),
            1000.0,
            50.0,
            2.0,
        ));
        flows.extend(server("B", "postgres", "5432", "198.18.0.1", 50.0, 1000.0));
        // worker@C → web@A (A listens on its own address).
        flows.extend(client(
            "C",
            "worker",
            ("198.18.0.1", "8080"),
            300.0,
            7000.0,
            1.0,
        ));
        flows.extend(server("A", "web", "8080", "198.18.0.3", 7000.0, 300.0));
        // worker@C → 198.18.0.99:443 (no procnet there).
        flows.extend(client(
            "C",
            "worker",
            ("198.18.0.99", "443"),
            10.0,
            20.0,
            1.0,
        ));
        // A client without procnet → postgres@B.
        flows.extend(server("B", "postgres", "5432", "198.18.0.50", 5.0, 600.0));
        let info = vec![
            addr("A", "198.18.0.1"),
            addr("B", "198.18.0.2"),
            addr("C", "198.18.0.3"),
            listen("B", "0.0.0.0", "5432", "postgres"),
            listen("A", "198.18.0.1", "8080", "web"),
        ];
        FleetRows {
            flows,
            info,
            at: 1_795_532_400.0,
        }
    }

    #[test]
    fn client_halves_join_the_server_hosts_listener() {
        let v = build(&three_hosts(), 7);
        let g = &v.graph;
        assert_eq!((g.seq, g.timestamp.as_str()), (7, "2026-11-24T15:00:00Z"));
        let e = edge(g, "svc:A/api", "svc:B/postgres");
        assert_eq!(
            (e.server_port, e.count, e.tx_bytes, e.rx_bytes, e.tx_rate),
            (5432, 2, Some(1000), Some(50), Some(100.0))
        );
        let e = edge(g, "svc:C/worker", "svc:A/web");
        assert_eq!(
            (e.server_port, e.tx_bytes, e.rx_bytes),
            (8080, Some(300), Some(7000))
        );
        let n = g.nodes.iter().find(|n| n.id == "svc:B/postgres").unwrap();
        assert_eq!(
            (
                n.kind,
                n.name.as_deref(),
                n.host.as_deref(),
                n.label.as_str()
            ),
            (NodeKind::Process, Some("postgres"), Some("B"), "postgres@B")
        );
        assert_eq!(n.listeners.len(), 1);
        // The server halves of managed clients are not edges of their own.
        assert!(!g
            .edges
            .iter()
            .any(|e| e.from == "ext:198.18.0.1" || e.from == "ext:198.18.0.3"));
    }

    #[test]
    fn peers_without_procnet_are_placeholders_named_by_address() {
        let g = build(&three_hosts(), 1).graph;
        let e = edge(&g, "svc:C/worker", "ext:198.18.0.99");
        assert_eq!((e.server_port, e.tx_bytes), (443, Some(10)));
        // An unmanaged client seen from the server: the server's received
        // bytes are what the client sent.
        let e = edge(&g, "ext:198.18.0.50", "svc:B/postgres");
        assert_eq!((e.tx_bytes, e.rx_bytes), (Some(600), Some(5)));
        let p = g.nodes.iter().find(|n| n.id == "ext:198.18.0.99").unwrap();
        assert_eq!(
            (p.kind, p.address.as_deref(), p.host.as_deref()),
            (NodeKind::External, Some("198.18.0.99"), None)
        );
        assert_eq!(g.edges.len(), 4, "{:#?}", g.edges);
    }

    #[test]
    fn loopback_only_joins_its_own_host_and_idle_halves_are_left_out() {
        let mut flows = client("A", "api", ("127.0.0.1", "6379"), 5.0, 5.0, 1.0);
        flows.extend(
            client("A", "old", ("198.18.0.2", "5432"), 5.0, 5.0, 0.0)
                .into_iter()
                .map(|mut s| {
                    if s.label("m").ends_with("rate") {
                        s.value = 0.0;
                    }
                    s
                }),
        );
        let info = vec![
            listen("B", "127.0.0.1", "6379", "redis"),
            listen("A", "127.0.0.1", "6379", "redis"),
        ];
        let g = build(
            &FleetRows {
                flows,
                info,
                at: 0.0,
            },
            1,
        )
        .graph;
        assert_eq!(g.edges.len(), 1, "{:#?}", g.edges);
        assert_eq!(g.edges[0].to, "svc:A/redis");
    }

    #[test]
    fn a_wildcard_v6_listener_matches_both_families_of_its_host() {
        let mut flows = client("A", "api", ("198.18.0.2", "80"), 1.0, 1.0, 1.0);
        flows.extend(client("A", "api", ("fd00::2", "80"), 1.0, 1.0, 1.0));
        let info = vec![
            addr("B", "198.18.0.2"),
            addr("B", "fd00::2"),
            listen("B", "::", "80", "nginx"),
        ];
        let g = build(
            &FleetRows {
                flows,
                info,
                at: 0.0,
            },
            1,
        )
        .graph;
        assert_eq!(g.edges.len(), 1);
        assert_eq!(
            (g.edges[0].to.as_str(), g.edges[0].count),
            ("svc:B/nginx", 2)
        );
    }

    #[test]
    fn connections_list_listeners_and_client_halves() {
        let c = build(&three_hosts(), 1).connections;
        assert_eq!(c.listeners.len(), 2);
        let pg = c.listeners.iter().find(|l| l.port == 5432).unwrap();
        assert_eq!(
            (pg.label.as_str(), pg.address.as_str()),
            ("postgres@B", "0.0.0.0")
        );
        let to_pg = c.connections.iter().find(|x| x.to_port == 5432).unwrap();
        assert_eq!(
            (
                to_pg.from_process_name.as_str(),
                to_pg.from_address.as_str(),
                to_pg.to_label.as_deref()
            ),
            ("api", "198.18.0.1", Some("postgres@B"))
        );
        assert_eq!(c.connections.len(), 3);
    }

    #[test]
    fn rows_recorded_from_prometheus_join() {
        let flows = query::parse_vector(include_str!("testdata/prometheus_flows.json")).unwrap();
        let info = query::parse_vector(include_str!("testdata/prometheus_info.json")).unwrap();
        let g = build(
            &FleetRows {
                flows,
                info,
                at: 0.0,
            },
            1,
        )
        .graph;
        let e = edge(&g, "svc:hostA/fleetclient", "svc:hostB/fleetserver");
        assert!(e.tx_bytes.unwrap_or(0) > 0 && e.count > 0, "{e:?}");
    }
}
