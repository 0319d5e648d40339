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

use super::query::{AddressLabels, FlowLabels, ListenLabels, Row};
use crate::graph::labels::{address_description, rfc3339};
use crate::graph::model::{
    Connection, ConnectionsDoc, Edge, GraphDoc, ListenAddr, Listener, Node, NodeKind, Role,
};
use crate::snapshot::Proto;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// What the engine answered for one instant: plain selectors, one row
/// per series (a series two jobs scrape comes twice).
#[derive(Debug, Clone, Default)]
pub struct FleetRows {
    /// `procnet_flow_sent_bytes_total`, `…_received_bytes_total` and
    /// `procnet_flow_open_connections` at `at`.
    pub sent: Vec<Row<FlowLabels>>,
    pub received: Vec<Row<FlowLabels>>,
    pub open: Vec<Row<FlowLabels>>,
    /// The two counters `window` seconds before `at`: the rates are the
    /// differences.
    pub sent_before: Vec<Row<FlowLabels>>,
    pub received_before: Vec<Row<FlowLabels>>,
    pub window: f64,
    pub listen: Vec<Row<ListenLabels>>,
    pub addresses: Vec<Row<AddressLabels>>,
    /// The evaluation time, seconds since the epoch.
    pub at: f64,
}

/// The views of one instant.
#[derive(Debug, Clone, Default)]
pub struct FleetView {
    pub graph: GraphDoc,
    pub connections: ConnectionsDoc,
}

/// One half-edge's values, gathered from its rows.
#[derive(Debug, Clone, Copy, Default)]
struct Half {
    sent: f64,
    received: f64,
    open: f64,
    sent_rate: f64,
    received_rate: f64,
}

/// The label set of one half-edge.
type HalfKey = FlowLabels;

/// A listener as the info series show it.
type ListenRow = ListenLabels;

/// The larger of two reads of one series (two jobs scraping the same
/// procnet answer the same series twice; the larger is the newer).
fn by_key(rows: &[Row<FlowLabels>]) -> HashMap<&FlowLabels, f64> {
    let mut out: HashMap<&FlowLabels, f64> = HashMap::with_capacity(rows.len());
    for (k, v) in rows {
        let e = out.entry(k).or_insert(*v);
        *e = e.max(*v);
    }
    out
}

/// Bytes per second between two reads of a counter `window` seconds apart.
/// No earlier read (a new series: it starts from zero) or a smaller
/// current one (a reset: procnet restarted) counts from zero, as `rate()`
/// does.
fn rate(now: f64, before: Option<f64>, window: f64) -> f64 {
    if window <= 0.0 {
        return 0.0;
    }
    match before {
        Some(b) if b <= now => (now - b) / window,
        _ => now / window,
    }
}

/// The half-edges of `rows`, their values merged.
fn gather_halves(rows: &FleetRows) -> BTreeMap<HalfKey, Half> {
    let sent_before = by_key(&rows.sent_before);
    let received_before = by_key(&rows.received_before);
    let mut halves: BTreeMap<HalfKey, Half> = BTreeMap::new();
    for (family, values) in [
        (0, by_key(&rows.sent)),
        (1, by_key(&rows.received)),
        (2, by_key(&rows.open)),
    ] {
        for (k, v) in values {
            if k.host.is_empty() {
                continue;
            }
            let h = halves.entry(k.clone()).or_default();
            match family {
                0 => {
                    h.sent = v;
                    h.sent_rate = rate(v, sent_before.get(k).copied(), rows.window);
                }
                1 => {
                    h.received = v;
                    h.received_rate = rate(v, received_before.get(k).copied(), rows.window);
                }
                _ => h.open = v,
            }
        }
    }
    halves
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
    let halves = gather_halves(rows);
    // Host addresses, and which host each address belongs to.
    let mut host_addresses: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut address_host: HashMap<&str, &str> = HashMap::new();
    for (a, _) in &rows.addresses {
        if a.host.is_empty() {
            continue;
        }
        let ips = host_addresses.entry(&a.host).or_default();
        if !ips.contains(&a.ip.as_str()) {
            ips.push(&a.ip);
        }
        address_host.entry(&a.ip).or_insert(&a.host);
    }
    for ips in host_addresses.values_mut() {
        ips.sort_unstable();
    }
    let mut listen_rows: Vec<ListenRow> = rows
        .listen
        .iter()
        .filter(|(l, _)| !l.host.is_empty())
        .map(|(l, _)| l.clone())
        .collect();
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
    use crate::fleet::query;

    /// The rows of a fleet, built up half by half.
    #[derive(Default)]
    struct Fleet(FleetRows);

    impl Fleet {
        fn new() -> Fleet {
            Fleet(FleetRows {
                window: 10.0,
                at: 1_795_532_400.0,
                ..FleetRows::default()
            })
        }

        /// A half-edge: its totals now, its open connections, and its
        /// totals one window (10 s) ago.
        #[allow(clippy::too_many_arguments)]
        fn half(
            mut self,
            host: &str,
            role: &str,
            process: &str,
            (peer_ip, peer_port): (&str, &str),
            local_port: &str,
            (sent, received, open): (f64, f64, f64),
            (sent_before, received_before): (f64, f64),
        ) -> Fleet {
            let key = FlowLabels {
                host: host.into(),
                role: role.into(),
                proto: "tcp".into(),
                process: process.into(),
                local_port: local_port.into(),
                peer_ip: peer_ip.into(),
                peer_port: peer_port.into(),
                ..FlowLabels::default()
            };
            let r = &mut self.0;
            r.sent.push((key.clone(), sent));
            r.received.push((key.clone(), received));
            r.open.push((key.clone(), open));
            r.sent_before.push((key.clone(), sent_before));
            r.received_before.push((key, received_before));
            self
        }

        /// A client half whose rates are a tenth of its totals a second.
        fn client(
            self,
            host: &str,
            process: &str,
            peer: (&str, &str),
            totals: (f64, f64, f64),
        ) -> Fleet {
            self.half(host, "client", process, peer, "", totals, (0.0, 0.0))
        }

        /// A server half with one open connection moving a byte a second
        /// each way.
        fn server(
            self,
            host: &str,
            process: &str,
            lport: &str,
            peer_ip: &str,
            (sent, received): (f64, f64),
        ) -> Fleet {
            self.half(
                host,
                "server",
                process,
                (peer_ip, ""),
                lport,
                (sent, received, 1.0),
                (sent - 10.0, received - 10.0),
            )
        }

        fn addr(mut self, host: &str, ip: &str) -> Fleet {
            self.0.addresses.push((
                AddressLabels {
                    host: host.into(),
                    ip: ip.into(),
                },
                1.0,
            ));
            self
        }

        fn listen(mut self, host: &str, ip: &str, port: &str, process: &str) -> Fleet {
            self.0.listen.push((
                ListenLabels {
                    host: host.into(),
                    proto: "tcp".into(),
                    ip: ip.into(),
                    port: port.into(),
                    process: process.into(),
                    container: String::new(),
                },
                1.0,
            ));
            self
        }

        fn graph(&self) -> GraphDoc {
            build(&self.0, 1).graph
        }
    }

    fn edge<'a>(g: &'a GraphDoc, from: &str, to: &str) -> &'a Edge {
        g.edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .unwrap_or_else(|| panic!("no edge {from} → {to} in {:#?}", g.edges))
    }

    fn three_hosts() -> FleetRows {
        Fleet::new()
            // api@A → postgres@B (B listens on 0.0.0.0: matches B's address).
            .client("A", "api", ("198.18.0.2", "5432"), (1000.0, 50.0, 2.0))
            .server("B", "postgres", "5432", "198.18.0.1", (50.0, 1000.0))
            // worker@C → web@A (A listens on its own address).
            .client("C", "worker", ("198.18.0.1", "8080"), (300.0, 7000.0, 1.0))
            .server("A", "web", "8080", "198.18.0.3", (7000.0, 300.0))
            // worker@C → 198.18.0.99:443 (no procnet there).
            .client("C", "worker", ("198.18.0.99", "443"), (10.0, 20.0, 1.0))
            // A client without procnet → postgres@B.
            .server("B", "postgres", "5432", "198.18.0.50", (5.0, 600.0))
            .addr("A", "198.18.0.1")
            .addr("B", "198.18.0.2")
            .addr("C", "198.18.0.3")
            .listen("B", "0.0.0.0", "5432", "postgres")
            .listen("A", "198.18.0.1", "8080", "web")
            .0
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
        let g = Fleet::new()
            .client("A", "api", ("127.0.0.1", "6379"), (5.0, 5.0, 1.0))
            // Closed and idle: no open connection, no bytes in the window.
            .half(
                "A",
                "client",
                "old",
                ("198.18.0.2", "5432"),
                "",
                (5.0, 5.0, 0.0),
                (5.0, 5.0),
            )
            .listen("B", "127.0.0.1", "6379", "redis")
            .listen("A", "127.0.0.1", "6379", "redis")
            .graph();
        assert_eq!(g.edges.len(), 1, "{:#?}", g.edges);
        assert_eq!(g.edges[0].to, "svc:A/redis");
    }

    #[test]
    fn a_wildcard_v6_listener_matches_both_families_of_its_host() {
        let g = Fleet::new()
            .client("A", "api", ("198.18.0.2", "80"), (1.0, 1.0, 1.0))
            .client("A", "api", ("fd00::2", "80"), (1.0, 1.0, 1.0))
            .addr("B", "198.18.0.2")
            .addr("B", "fd00::2")
            .listen("B", "::", "80", "nginx")
            .graph();
        assert_eq!(g.edges.len(), 1);
        assert_eq!(
            (g.edges[0].to.as_str(), g.edges[0].count),
            ("svc:B/nginx", 2)
        );
    }

    #[test]
    fn rates_are_counter_differences_over_the_window() {
        let g = Fleet::new()
            // 500 bytes sent in the 10 s window; the received counter was
            // reset (procnet restarted), so it counts from zero.
            .half(
                "A",
                "client",
                "api",
                ("198.18.0.2", "80"),
                "",
                (1500.0, 40.0, 1.0),
                (1000.0, 900.0),
            )
            .graph();
        let e = &g.edges[0];
        assert_eq!((e.tx_rate, e.rx_rate), (Some(50.0), Some(4.0)));
        assert_eq!(rate(10.0, None, 10.0), 1.0, "a new series starts from zero");
        assert_eq!(rate(10.0, Some(5.0), 0.0), 0.0);
    }

    #[test]
    fn a_series_two_jobs_scrape_counts_once() {
        let mut f = Fleet::new().client("A", "api", ("198.18.0.9", "80"), (100.0, 10.0, 1.0));
        // The second job's read of the same series, a scrape older.
        let again = f.0.sent[0].0.clone();
        f.0.sent.push((again.clone(), 90.0));
        f.0.open.push((again, 1.0));
        let e = &f.graph().edges[0];
        assert_eq!((e.tx_bytes, e.count), (Some(100), 1));
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
        // Recorded from the earlier tagged queries: the `m` label says
        // which family a row is.
        #[derive(serde::Deserialize)]
        struct Tagged {
            #[serde(default)]
            m: String,
            #[serde(flatten)]
            flow: FlowLabels,
        }
        let tagged: Vec<Row<Tagged>> =
            query::parse_vector(include_str!("testdata/prometheus_flows.json")).unwrap();
        let family = |m: &str| -> Vec<Row<FlowLabels>> {
            tagged
                .iter()
                .filter(|(t, _)| t.m == m)
                .map(|(t, v)| (t.flow.clone(), *v))
                .collect()
        };
        let info = include_str!("testdata/prometheus_info.json");
        let rows = FleetRows {
            sent: family("sent"),
            received: family("received"),
            open: family("open"),
            window: 10.0,
            listen: query::parse_vector::<ListenLabels>(info)
                .unwrap()
                .into_iter()
                .filter(|(l, _)| !l.port.is_empty())
                .collect(),
            addresses: query::parse_vector::<AddressLabels>(info)
                .unwrap()
                .into_iter()
                .filter(|(a, _)| !a.ip.is_empty())
                .collect(),
            ..FleetRows::default()
        };
        let g = build(&rows, 1).graph;
        let e = edge(&g, "svc:hostA/fleetclient", "svc:hostB/fleetserver");
        assert!(e.tx_bytes.unwrap_or(0) > 0 && e.count > 0, "{e:?}");
    }
}
