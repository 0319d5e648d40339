//! `/metrics` in the Prometheus text exposition format. Label cardinality is
//! bounded: per-process series only for the top processes by traffic; the
//! fleet series (`procnet_flow_*`, `procnet_listen_info`,
//! `procnet_host_address_info`) carry no pid and no client port (see
//! [`crate::graph::fleet`]).

use crate::graph::fleet::{FleetExport, FlowKey};
use crate::graph::model::GraphDoc;
use crate::graph::traffic::TrafficTracker;
use crate::snapshot::{Proto, Snapshot, Socket, SocketChanges, SocketState};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// How many processes get their own traffic series.
pub const TOP_PROCESSES: usize = 20;

/// Upper bounds (seconds) of the collector duration histogram.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Upper bounds (seconds) of the TCP round-trip time histogram: loopback
/// (tens of µs) to intercontinental and congested paths (seconds).
const RTT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Smoothed RTTs of the TCP connections open at one sample, as a
/// histogram (`procnet_tcp_rtt_seconds`). Recomputed every sample, not
/// accumulated: it describes the connections there are now, without one
/// series per connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RttHistogram {
    /// Cumulative count per bucket of [`RTT_BUCKETS`].
    pub counts: Vec<u64>,
    /// Seconds, `sum_us` / 10^6.
    pub sum: f64,
    pub count: u64,
    /// The sum in whole microseconds, so a socket's RTT can be taken out
    /// again exactly (see [`RttHistogram::moved`]).
    pub sum_us: u64,
}

/// The RTT a socket counts with in the histogram.
fn rtt_of(s: &Socket) -> Option<u32> {
    s.tcp_health.filter(|_| !s.closed)?.rtt_us
}

impl RttHistogram {
    /// Over the open (not closed) sockets of `snap` that have an RTT.
    pub fn of(snap: &Snapshot) -> RttHistogram {
        let mut h = RttHistogram {
            counts: vec![0; RTT_BUCKETS.len()],
            ..RttHistogram::default()
        };
        for us in snap.sockets.iter().filter_map(rtt_of) {
            h.add(us, 1);
        }
        h.sum = h.sum_us as f64 / 1e6;
        h
    }

    /// The histogram of `next`, from this one of `prev`: only the sockets
    /// at `changes` are looked at (see [`SocketChanges`]). Equals
    /// [`RttHistogram::of`]`(next)`.
    pub fn moved(&self, prev: &Snapshot, next: &Snapshot, changes: &SocketChanges) -> RttHistogram {
        let mut h = self.clone();
        if h.counts.len() != RTT_BUCKETS.len() {
            return RttHistogram::of(next);
        }
        for &i in &changes.changed {
            let (Some(a), Some(b)) = (prev.sockets.get(i as usize), next.sockets.get(i as usize))
            else {
                return RttHistogram::of(next);
            };
            if let Some(us) = rtt_of(a) {
                h.add(us, -1);
            }
            if let Some(us) = rtt_of(b) {
                h.add(us, 1);
            }
        }
        h.sum = h.sum_us as f64 / 1e6;
        h
    }

    /// Counts one RTT in (`by` 1) or out (-1).
    fn add(&mut self, us: u32, by: i64) {
        let secs = f64::from(us) / 1e6;
        for (n, &b) in self.counts.iter_mut().zip(RTT_BUCKETS) {
            if secs <= b {
                *n = n.saturating_add_signed(by);
            }
        }
        self.sum_us = self.sum_us.saturating_add_signed(i64::from(us) * by);
        self.count = self.count.saturating_add_signed(by);
    }
}

/// `procnet_tcp_retransmits_total`: segments retransmitted by this host's
/// TCP sockets since procnet started watching them. The kernel's count
/// is per socket and vanishes with it, so a plain sum over open sockets
/// would fall when a connection closes; this keeps each socket's last
/// count and adds only what grew, so the total never decreases.
#[derive(Debug, Default)]
pub struct RetransmitCounter {
    /// Each socket's last count, for those with one above 0.
    last: rustc_hash::FxHashMap<(SocketAddr, Option<SocketAddr>, u64), u32>,
    total: u64,
}

impl RetransmitCounter {
    /// Adds what `snap`'s sockets retransmitted since the previous call
    /// (all of a socket's count the first time it is seen) and returns
    /// the total. Sockets gone from `snap` are forgotten.
    pub fn observe(&mut self, snap: &Snapshot) -> u64 {
        self.observe_changed(snap, None)
    }

    /// [`RetransmitCounter::observe`], looking only at the sockets that
    /// changed when `changes` says which (the others are the last
    /// sample's, so they add nothing and stay remembered).
    pub fn observe_changed(&mut self, snap: &Snapshot, changes: Option<&SocketChanges>) -> u64 {
        if let Some(changes) = changes {
            for s in changes
                .changed
                .iter()
                .filter_map(|&i| snap.sockets.get(i as usize))
            {
                let Some(h) = s.tcp_health else { continue };
                if h.retransmits == 0 {
                    continue; // counted as 0 already (absent)
                }
                let key = (s.local, s.remote, s.inode);
                let before = self.last.entry(key).or_insert(0);
                self.total = self
                    .total
                    .saturating_add(u64::from(h.retransmits.saturating_sub(*before)));
                *before = h.retransmits.max(*before);
            }
            return self.total;
        }
        let mut next =
            rustc_hash::FxHashMap::with_capacity_and_hasher(self.last.len(), Default::default());
        for s in &snap.sockets {
            let Some(h) = s.tcp_health else { continue };
            let key = (s.local, s.remote, s.inode);
            let before = match self.last.is_empty() {
                true => 0,
                false => self.last.get(&key).copied().unwrap_or(0),
            };
            self.total = self
                .total
                .saturating_add(u64::from(h.retransmits.saturating_sub(before)));
            // A socket that never retransmitted is not remembered: absent
            // counts as 0 (most sockets, and no memory for them).
            if h.retransmits.max(before) > 0 {
                next.insert(key, h.retransmits.max(before));
            }
        }
        self.last = next;
        self.total
    }
}

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
    /// Smoothed RTTs of the open TCP connections.
    pub tcp_rtt: RttHistogram,
    /// [`RetransmitCounter`]'s total; the sampler fills it in.
    pub tcp_retransmits_total: u64,
    /// The fleet series of this sample.
    pub fleet: FleetExport,
    /// The collector tier this sample came from (`T0`..`T3`).
    pub tier: Option<&'static str>,
    /// Tier T0: kernel time in the event programs (ns) and their runs.
    pub bpf_run: Option<(u64, u64)>,
    /// Tier T0: their share of one CPU over the last sample and the budget
    /// (millionths), and the activity back-off in force (ns).
    pub bpf_cpu_share_ppm: Option<u32>,
    pub bpf_cpu_budget_ppm: Option<u32>,
    pub bpf_activity_interval_ns: Option<u64>,
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
        MetricsData::from_changed(snap, graph, traffic, took, None)
    }

    /// [`MetricsData::from_snapshot`]; with the last sample, its metrics
    /// and the change set from it to `snap`, the socket counts are the
    /// last ones (no socket opened, closed or changed state) and the RTT
    /// histogram is moved by the changed sockets only.
    pub fn from_changed(
        snap: &Snapshot,
        graph: &GraphDoc,
        traffic: &TrafficTracker,
        took: Duration,
        last: Option<(&Snapshot, &MetricsData, &SocketChanges)>,
    ) -> MetricsData {
        let (sockets, listeners, tcp_rtt) = match last {
            Some((prev, m, changes)) => (
                m.sockets.clone(),
                m.listeners,
                m.tcp_rtt.moved(prev, snap, changes),
            ),
            None => {
                let (sockets, listeners) = socket_counts(snap);
                (sockets, listeners, RttHistogram::of(snap))
            }
        };
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
            tcp_rtt,
            tcp_retransmits_total: 0,
            fleet: FleetExport::default(),
            tier: snap.diagnostics.tier.map(|t| t.as_str()),
            bpf_run: snap
                .diagnostics
                .bpf_run_time_ns
                .zip(snap.diagnostics.bpf_run_count),
            bpf_cpu_share_ppm: snap.diagnostics.bpf_cpu_share_ppm,
            bpf_cpu_budget_ppm: snap.diagnostics.bpf_cpu_budget_ppm,
            bpf_activity_interval_ns: snap.diagnostics.bpf_activity_interval_ns,
        }
    }
}

/// Sockets by (proto, state), and how many listen.
#[allow(clippy::type_complexity)]
fn socket_counts(snap: &Snapshot) -> (BTreeMap<(&'static str, &'static str), u64>, u64) {
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
    (sockets, listeners)
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
    if let Some(tier) = data.tier {
        let _ = writeln!(
            o,
            "# HELP procnet_collector_tier The collector tier of the last sample (T0 kernel events, T1 BPF iterators, T2 netlink and /proc, T3 /proc/net); the reason for a lower one is in /healthz collector.tierReason."
        );
        let _ = writeln!(o, "# TYPE procnet_collector_tier gauge");
        let _ = writeln!(o, "procnet_collector_tier{{tier=\"{tier}\"}} 1");
    }
    if let Some((ns, runs)) = data.bpf_run {
        let _ = writeln!(o, "# HELP procnet_bpf_run_seconds_total Kernel CPU time spent in procnet's event programs (tier T0), from the kernel's BPF run-time statistics.");
        let _ = writeln!(o, "# TYPE procnet_bpf_run_seconds_total counter");
        let _ = writeln!(o, "procnet_bpf_run_seconds_total {}", ns as f64 / 1e9);
        let _ = writeln!(
            o,
            "# HELP procnet_bpf_runs_total Runs of procnet's event programs (tier T0)."
        );
        let _ = writeln!(o, "# TYPE procnet_bpf_runs_total counter");
        let _ = writeln!(o, "procnet_bpf_runs_total {runs}");
    }
    if let Some(ppm) = data.bpf_cpu_share_ppm {
        let _ = writeln!(o, "# HELP procnet_bpf_cpu_share Share of one CPU procnet's event programs (tier T0) took over the last sample interval.");
        let _ = writeln!(o, "# TYPE procnet_bpf_cpu_share gauge");
        let _ = writeln!(o, "procnet_bpf_cpu_share {}", f64::from(ppm) / 1e6);
    }
    if let Some(ppm) = data.bpf_cpu_budget_ppm {
        let _ = writeln!(o, "# HELP procnet_bpf_cpu_budget The share of one CPU the event programs are kept within by backing off their per-socket activity records.");
        let _ = writeln!(o, "# TYPE procnet_bpf_cpu_budget gauge");
        let _ = writeln!(o, "procnet_bpf_cpu_budget {}", f64::from(ppm) / 1e6);
    }
    if let Some(ns) = data.bpf_activity_interval_ns {
        let _ = writeln!(o, "# HELP procnet_bpf_activity_interval_seconds The least time between two activity records of one TCP socket (0: one per send or receive call); grows while the event programs are over budget.");
        let _ = writeln!(o, "# TYPE procnet_bpf_activity_interval_seconds gauge");
        let _ = writeln!(
            o,
            "procnet_bpf_activity_interval_seconds {}",
            ns as f64 / 1e9
        );
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
    render_tcp_health(&mut o, data);
    render_fleet(&mut o, &data.fleet);
    o
}

/// The TCP health series: no per-connection labels, so their number does
/// not grow with the connections.
fn render_tcp_health(o: &mut String, data: &MetricsData) {
    let h = &data.tcp_rtt;
    let _ = writeln!(
        o,
        "# HELP procnet_tcp_rtt_seconds Smoothed round-trip time (kernel srtt) of the TCP connections open at the last sample."
    );
    let _ = writeln!(o, "# TYPE procnet_tcp_rtt_seconds histogram");
    for (i, b) in RTT_BUCKETS.iter().enumerate() {
        let n = h.counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(o, "procnet_tcp_rtt_seconds_bucket{{le=\"{b}\"}} {n}");
    }
    let _ = writeln!(
        o,
        "procnet_tcp_rtt_seconds_bucket{{le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(o, "procnet_tcp_rtt_seconds_sum {}", h.sum);
    let _ = writeln!(o, "procnet_tcp_rtt_seconds_count {}", h.count);
    let _ = writeln!(
        o,
        "# HELP procnet_tcp_retransmits_total TCP segments retransmitted by this host's sockets since procnet started (kernel total_retrans)."
    );
    let _ = writeln!(o, "# TYPE procnet_tcp_retransmits_total counter");
    let _ = writeln!(
        o,
        "procnet_tcp_retransmits_total {}",
        data.tcp_retransmits_total
    );
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
    use crate::snapshot::{Socket, TcpHealth};

    fn sock(port: u16, rtt_us: Option<u32>, retransmits: u32) -> Socket {
        Socket {
            proto: Proto::Tcp,
            local: SocketAddr::from(([127, 0, 0, 1], port)),
            remote: Some(SocketAddr::from(([127, 0, 0, 1], 80))),
            state: SocketState::Established,
            inode: u64::from(port),
            uid: None,
            owners: Default::default(),
            unowned_reason: None,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: Some(TcpHealth {
                rtt_us,
                retransmits,
            }),
            closed: false,
            io_owner: None,
        }
    }

    fn snap(sockets: Vec<Socket>) -> Snapshot {
        Snapshot {
            sockets: sockets.into(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn retransmit_total_never_falls_when_sockets_close() {
        let mut c = RetransmitCounter::default();
        assert_eq!(
            c.observe(&snap(vec![sock(1, None, 3), sock(2, None, 0)])),
            3
        );
        assert_eq!(
            c.observe(&snap(vec![sock(1, None, 5), sock(2, None, 1)])),
            6
        );
        // Socket 1 closed: its 5 stay counted; a new socket adds its own.
        assert_eq!(
            c.observe(&snap(vec![sock(2, None, 1), sock(3, None, 2)])),
            8
        );
        assert_eq!(c.observe(&snap(vec![])), 8);
    }

    #[test]
    fn rtt_histogram_over_open_sockets() {
        let mut closed = sock(4, Some(900_000), 0);
        closed.closed = true;
        let h = RttHistogram::of(&snap(vec![
            sock(1, Some(50), 0),
            sock(2, Some(20_000), 0),
            sock(3, None, 0),
            closed,
        ]));
        assert_eq!(h.count, 2);
        let le = |b: f64| h.counts[RTT_BUCKETS.iter().position(|&x| x == b).unwrap()];
        assert_eq!((le(0.0001), le(0.01), le(0.025), le(2.5)), (1, 1, 2, 2));
        let text = render(
            &MetricsData {
                tcp_rtt: h,
                tcp_retransmits_total: 7,
                ..MetricsData::default()
            },
            &DurationHistogram::default(),
            0,
            0,
        );
        assert!(
            text.contains("procnet_tcp_rtt_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("procnet_tcp_retransmits_total 7"), "{text}");
    }

    use crate::graph::fleet::{FlowTotals, ListenInfo, Role};

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
