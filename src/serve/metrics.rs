//! `/metrics` in the Prometheus text exposition format. Label cardinality is
//! bounded: per-process series only for the top processes by traffic; the
//! fleet series (`procnet_flow_*`, `procnet_listen_info`,
//! `procnet_host_address_info`) carry no pid and no client port (see
//! [`crate::graph::fleet`]).

use crate::graph::fleet::{FleetExport, FlowKey};
use crate::graph::model::GraphDoc;
use crate::graph::traffic::TrafficTracker;
use crate::snapshot::{Proto, Snapshot, SocketState};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// How many processes get their own traffic series.
pub const TOP_PROCESSES: usize = 20;

/// Upper bounds (seconds) of the collector duration histogram.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Per-process traffic, as published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessTraffic {
    pub pid: u32,
    pub name: String,
    pub sent: u64,
    pub received: u64,
}

/// What one sample contributes to `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct MetricsData {
    /// Sockets by (proto, state).
    pub sockets: BTreeMap<(&'static str, &'static str), u64>,
    pub listeners: u64,
    pub processes: u64,
    pub nodes: u64,
    pub edges: u64,
    pub top_processes: Vec<ProcessTraffic>,
    /// Everything not in `top_processes` (including exited processes).
    pub other: ProcessTraffic,
    pub collect_seconds: f64,
    /// The fleet series of this sample.
    pub fleet: FleetExport,
}

impl MetricsData {
    /// Summarises a sample; traffic counters come from the tracker's
    /// totals, which only grow.
    pub fn from_snapshot(
        snap: &Snapshot,
        graph: &GraphDoc,
        traffic: &TrafficTracker,
        took: Duration,
    ) -> MetricsData {
        let mut sockets: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
        let mut listeners = 0;
        for s in &snap.sockets {
            if s.closed {
                continue;
            }
            let state = match (s.proto, s.state) {
                (Proto::Udp, SocketState::Close) => "UNCONN",
                (_, st) => st.as_str(),
            };
            *sockets.entry((s.proto.as_str(), state)).or_default() += 1;
            if s.state == SocketState::Listen || (s.proto == Proto::Udp && s.remote.is_none()) {
                listeners += 1;
            }
        }
        let mut per_process: BTreeMap<(u32, Option<u64>), ProcessTraffic> = BTreeMap::new();
        for t in traffic.totals() {
            let e = per_process
                .entry((t.pid, t.start_time))
                .or_insert_with(|| ProcessTraffic {
                    pid: t.pid,
                    name: t.name.clone(),
                    ..ProcessTraffic::default()
                });
            e.sent += t.send;
            e.received += t.recv;
        }
        let mut top: Vec<ProcessTraffic> = per_process
            .into_values()
            .filter(|p| p.sent + p.received > 0)
            .collect();
        top.sort_by(|a, b| {
            (b.sent + b.received)
                .cmp(&(a.sent + a.received))
                .then(a.pid.cmp(&b.pid))
        });
        top.truncate(TOP_PROCESSES);
        let shown = top
            .iter()
            .fold((0, 0), |acc, p| (acc.0 + p.sent, acc.1 + p.received));
        let other = ProcessTraffic {
            pid: 0,
            name: "other".into(),
            sent: traffic.grand_total.0.saturating_sub(shown.0),
            received: traffic.grand_total.1.saturating_sub(shown.1),
        };
        MetricsData {
            sockets,
            listeners,
            processes: snap.processes.len() as u64,
            nodes: graph.nodes.len() as u64,
            edges: graph.edges.len() as u64,
            top_processes: top,
            other,
            collect_seconds: took.as_secs_f64(),
            fleet: FleetExport::default(),
        }
    }
}

/// Cumulative histogram of collector durations, kept by the server.
#[derive(Debug, Clone, Default)]
pub struct DurationHistogram {
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl DurationHistogram {
    pub fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; DURATION_BUCKETS.len()];
        }
        for (i, &b) in DURATION_BUCKETS.iter().enumerate() {
            if seconds <= b {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// A label value as the text format wants it: backslash, double quote and
/// line feed escaped (`\\`, `\"`, `\n`); everything else, any UTF-8, as is.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The label set of one flow, `{host=…,…,peer_port=…}`; ports absent for a
/// role are `""` so every series of a family has the same label names.
fn flow_labels(host: &str, k: &FlowKey) -> String {
    let port = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
    format!(
        "{{host=\"{}\",role=\"{}\",proto=\"{}\",process=\"{}\",container=\"{}\",local_port=\"{}\",peer_ip=\"{}\",peer_port=\"{}\"}}",
        escape(host),
        k.role.as_str(),
        k.proto.as_str(),
        escape(&k.process),
        escape(&k.container),
        port(k.local_port),
        escape(&k.peer_ip),
        port(k.peer_port),
    )
}

/// Appends the fleet series. Each family's HELP and TYPE are written even
/// when it has no series, so a scraper always sees the families.
pub fn render_fleet(o: &mut String, f: &FleetExport) {
    let labels: Vec<String> = f
        .flows
        .iter()
        .map(|(k, _)| flow_labels(&f.host, k))
        .collect();
    type Pick = fn(&crate::graph::fleet::FlowTotals) -> u64;
    let families: [(&str, &str, &str, Pick); 3] = [
        ("procnet_flow_sent_bytes_total", "counter", "Bytes this host's end of the flow sent since procnet started (TCP payload; UDP with --capture), per half-edge: role, process, container, the listen port (server) or the peer's address and server port (client). Includes closed connections.", |t| t.sent),
        ("procnet_flow_received_bytes_total", "counter", "Bytes this host's end of the flow received since procnet started, per half-edge (labels as procnet_flow_sent_bytes_total).", |t| t.received),
        ("procnet_flow_open_connections", "gauge", "Connections of the half-edge open now.", |t| t.open),
    ];
    for (metric, kind, help, pick) in families {
        let _ = writeln!(o, "# HELP {metric} {help}");
        let _ = writeln!(o, "# TYPE {metric} {kind}");
        for ((_, t), l) in f.flows.iter().zip(&labels) {
            let _ = writeln!(o, "{metric}{l} {}", pick(t));
        }
    }
    let host = escape(&f.host);
    let _ = writeln!(o, "# HELP procnet_listen_info A listening socket: the address and port clients of other hosts reach (a wildcard bind once per host address), its process and container. Always 1.");
    let _ = writeln!(o, "# TYPE procnet_listen_info gauge");
    for l in &f.listeners {
        let _ = writeln!(
            o,
            "procnet_listen_info{{host=\"{host}\",proto=\"{}\",ip=\"{}\",port=\"{}\",process=\"{}\",container=\"{}\"}} 1",
            l.proto.as_str(),
            l.ip,
            l.port,
            escape(&l.process),
            escape(&l.container),
        );
    }
    let _ = writeln!(o, "# HELP procnet_host_address_info An address of this host, to map a peer address to the host. Always 1.");
    let _ = writeln!(o, "# TYPE procnet_host_address_info gauge");
    for ip in &f.addresses {
        let _ = writeln!(
            o,
            "procnet_host_address_info{{host=\"{host}\",ip=\"{ip}\"}} 1"
        );
    }
}

/// Renders the exposition text.
pub fn render(data: &MetricsData, hist: &DurationHistogram, samples: u64, failed: u64) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP procnet_sockets Sockets on this host by protocol and state."
    );
    let _ = writeln!(o, "# TYPE procnet_sockets gauge");
    for ((proto, state), n) in &data.sockets {
        let _ = writeln!(
            o,
            "procnet_sockets{{proto=\"{proto}\",state=\"{state}\"}} {n}"
        );
    }
    let _ = writeln!(
        o,
        "# HELP procnet_listeners Listening sockets (TCP LISTEN, bound UDP)."
    );
    let _ = writeln!(o, "# TYPE procnet_listeners gauge");
    let _ = writeln!(o, "procnet_listeners {}", data.listeners);
    let _ = writeln!(o, "# HELP procnet_processes Processes that own sockets.");
    let _ = writeln!(o, "# TYPE procnet_processes gauge");
    let _ = writeln!(o, "procnet_processes {}", data.processes);
    let _ = writeln!(
        o,
        "# HELP procnet_graph_nodes Nodes in the published graph."
    );
    let _ = writeln!(o, "# TYPE procnet_graph_nodes gauge");
    let _ = writeln!(o, "procnet_graph_nodes {}", data.nodes);
    let _ = writeln!(
        o,
        "# HELP procnet_graph_edges Edges in the published graph."
    );
    let _ = writeln!(o, "# TYPE procnet_graph_edges gauge");
    let _ = writeln!(o, "procnet_graph_edges {}", data.edges);
    for (metric, help, pick) in [
        ("procnet_process_sent_bytes_total", "Bytes sent over TCP since procnet started, per process (top by traffic; the rest, exited processes included, as process=\"other\").", true),
        ("procnet_process_received_bytes_total", "Bytes received over TCP since procnet started, per process (top by traffic; the rest as process=\"other\").", false),
    ] {
        let _ = writeln!(o, "# HELP {metric} {help}");
        let _ = writeln!(o, "# TYPE {metric} counter");
        let value = |p: &ProcessTraffic| if pick { p.sent } else { p.received };
        for p in &data.top_processes {
            let _ = writeln!(o, "{metric}{{pid=\"{}\",process=\"{}\"}} {}", p.pid, escape(&p.name), value(p));
        }
        let _ = writeln!(o, "{metric}{{pid=\"\",process=\"other\"}} {}", value(&data.other));
    }
    let _ = writeln!(o, "# HELP procnet_samples_total Samples taken.");
    let _ = writeln!(o, "# TYPE procnet_samples_total counter");
    let _ = writeln!(o, "procnet_samples_total {samples}");
    let _ = writeln!(
        o,
        "# HELP procnet_sample_failures_total Samples that failed."
    );
    let _ = writeln!(o, "# TYPE procnet_sample_failures_total counter");
    let _ = writeln!(o, "procnet_sample_failures_total {failed}");
    let _ = writeln!(
        o,
        "# HELP procnet_collector_duration_seconds Time to take one sample."
    );
    let _ = writeln!(o, "# TYPE procnet_collector_duration_seconds histogram");
    for (i, b) in DURATION_BUCKETS.iter().enumerate() {
        let n = hist.counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            o,
            "procnet_collector_duration_seconds_bucket{{le=\"{b}\"}} {n}"
        );
    }
    let _ = writeln!(
        o,
        "procnet_collector_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        hist.count
    );
    let _ = writeln!(o, "procnet_collector_duration_seconds_sum {}", hist.sum);
    let _ = writeln!(o, "procnet_collector_duration_seconds_count {}", hist.count);
    render_fleet(&mut o, &data.fleet);
    o
}

/// What the server itself adds to `/metrics`: view builds (one per sample
/// however many clients ask), connections, sampler restarts and the age of
/// the last sample.
pub struct ServerStats<'a> {
    pub views: &'a crate::serve::views::ViewCounters,
    pub http: &'a crate::serve::listen::HttpStats,
    pub sampler_restarts: u64,
    /// Seconds since the last good sample (`None` before the first).
    pub last_sample_age: Option<f64>,
}

/// Appends the server's own series to `o`.
pub fn render_server(o: &mut String, s: &ServerStats<'_>) {
    use crate::serve::views::View;
    let _ = writeln!(
        o,
        "# HELP procnet_view_builds_total API views built (JSON encoded), at most one per view and sample whatever the number of clients."
    );
    let _ = writeln!(o, "# TYPE procnet_view_builds_total counter");
    for v in View::ALL {
        let _ = writeln!(
            o,
            "procnet_view_builds_total{{view=\"{}\"}} {}",
            v.name(),
            s.views.builds(v)
        );
    }
    let _ = writeln!(
        o,
        "# HELP procnet_view_compressions_total API views gzip-compressed, at most one per view and sample."
    );
    let _ = writeln!(o, "# TYPE procnet_view_compressions_total counter");
    for v in View::ALL {
        let _ = writeln!(
            o,
            "procnet_view_compressions_total{{view=\"{}\"}} {}",
            v.name(),
            s.views.compressions(v)
        );
    }
    let _ = writeln!(
        o,
        "# HELP procnet_http_connections HTTP connections open now."
    );
    let _ = writeln!(o, "# TYPE procnet_http_connections gauge");
    let _ = writeln!(o, "procnet_http_connections {}", s.http.open());
    let _ = writeln!(
        o,
        "# HELP procnet_http_connections_accepted_total HTTP connections accepted."
    );
    let _ = writeln!(o, "# TYPE procnet_http_connections_accepted_total counter");
    let _ = writeln!(
        o,
        "procnet_http_connections_accepted_total {}",
        s.http.accepted()
    );
    let _ = writeln!(
        o,
        "# HELP procnet_http_connections_refused_total HTTP connections refused at the connection limit."
    );
    let _ = writeln!(o, "# TYPE procnet_http_connections_refused_total counter");
    let _ = writeln!(
        o,
        "procnet_http_connections_refused_total {}",
        s.http.refused()
    );
    let _ = writeln!(
        o,
        "# HELP procnet_sampler_restarts_total Times the sampler panicked and was restarted."
    );
    let _ = writeln!(o, "# TYPE procnet_sampler_restarts_total counter");
    let _ = writeln!(o, "procnet_sampler_restarts_total {}", s.sampler_restarts);
    if let Some(age) = s.last_sample_age {
        let _ = writeln!(
            o,
            "# HELP procnet_last_sample_age_seconds Seconds since the last good sample."
        );
        let _ = writeln!(o, "# TYPE procnet_last_sample_age_seconds gauge");
        let _ = writeln!(o, "procnet_last_sample_age_seconds {age}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::fleet::{FlowTotals, ListenInfo, Role};
    use crate::snapshot::Proto;

    #[test]
    fn fleet_label_values_are_escaped_and_parse_back() {
        let nasty = "we\"ird\\na\nme";
        let key = FlowKey {
            role: Role::Client,
            proto: Proto::Tcp,
            process: nasty.into(),
            container: "c\"1".into(),
            local_port: None,
            peer_ip: "10.0.0.9".into(),
            peer_port: Some(5432),
        };
        let f = FleetExport {
            host: "host \"a\"".into(),
            flows: vec![(key, {
                let mut t = FlowTotals::default();
                (t.sent, t.received, t.open) = (7, 9, 2);
                t
            })],
            listeners: vec![ListenInfo {
                proto: Proto::Tcp,
                ip: "10.0.0.5".parse().unwrap(),
                port: 22,
                process: nasty.into(),
                container: String::new(),
            }],
            addresses: vec!["10.0.0.5".parse().unwrap()],
        };
        let mut o = String::new();
        render_fleet(&mut o, &f);
        assert_eq!(o.lines().filter(|l| !l.starts_with('#')).count(), 5, "{o}");
        let scrape = prometheus_parse::Scrape::parse(o.lines().map(|l| Ok(l.to_string()))).unwrap();
        let sent = scrape
            .samples
            .iter()
            .find(|s| s.metric == "procnet_flow_sent_bytes_total")
            .unwrap();
        // The parser does not unescape; the raw text must hold the escapes.
        assert!(o.contains(r#"process="we\"ird\\na\nme""#), "{o}");
        assert!(o.contains(r#"host="host \"a\"""#), "{o}");
        assert_eq!(sent.labels.get("peer_port"), Some("5432"));
        assert_eq!(sent.labels.get("local_port"), Some(""));
        assert!(matches!(sent.value, prometheus_parse::Value::Counter(v) if v == 7.0));
    }
}
