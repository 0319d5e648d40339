//! Every per-sample consumer that can take a change set (tier T0 says
//! which sockets moved, see `SocketChanges`) gives what its full pass
//! gives, on recorded snapshots moved on sample by sample: counters that
//! grow on some sockets, RTTs that rise and fall, retransmissions, and now
//! and then a socket that opens or closes (no change set: the full pass).
//! No OS.

use procnet::graph::build::{build_graph_planned, patch_changed, patch_graph, GraphPlan};
use procnet::graph::fleet::{FleetAggregator, FleetSettings};
use procnet::graph::model::GraphDoc;
use procnet::graph::ports::ServicePorts;
use procnet::graph::traffic::TrafficTracker;
use procnet::graph::{build_graph, ContainerLabels, GraphOptions, Inputs};
use procnet::history::flows::FlowTracker;
use procnet::rules::RuleSet;
use procnet::serve::metrics::{RetransmitCounter, RttHistogram};
use procnet::snapshot::{Snapshot, SocketChanges, SocketState, TcpHealth};

fn fixture(name: &str) -> Snapshot {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture parses")
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The sample after `prev`: a second later, some sockets' counters moved;
/// at `reshape`, one socket closes (gone) too.
fn next_sample(prev: &Snapshot, rng: &mut Rng, reshape: bool) -> Snapshot {
    let mut next = prev.clone();
    next.taken_at_ms += 1000;
    for s in &mut next.sockets {
        if s.bytes_sent.is_none() && rng.next().is_multiple_of(29) {
            // Counters appear (e.g. a UDP socket's first datagram).
            s.bytes_sent = Some(5);
            continue;
        }
        if !rng.next().is_multiple_of(3) {
            continue;
        }
        let grow = rng.next() % 5000;
        if let Some(b) = s.bytes_sent.as_mut() {
            *b += grow;
        }
        if let Some(b) = s.bytes_received.as_mut() {
            *b += grow / 2;
        }
        if let Some(h) = s.tcp_health.as_mut() {
            h.retransmits += (rng.next() % 3) as u32;
            h.rtt_us = Some(20 + (rng.next() % 400_000) as u32);
        }
    }
    if reshape {
        let at = (rng.next() as usize) % next.sockets.len();
        next.sockets.remove(at);
    }
    next
}

/// Gives every established TCP socket counters and health, so the
/// consumers have numbers to move on each socket.
fn with_counters(mut snap: Snapshot) -> Snapshot {
    for (k, s) in snap.sockets.iter_mut().enumerate() {
        if s.state == SocketState::Established && s.bytes_sent.is_none() {
            s.bytes_sent = Some(1000 * k as u64);
            s.bytes_received = Some(10 * k as u64);
        }
        if s.state == SocketState::Established && s.tcp_health.is_none() {
            s.tcp_health = Some(TcpHealth {
                rtt_us: Some(50),
                retransmits: 0,
            });
        }
    }
    snap
}

/// One consumer chain: every consumer of the sampler, fed either the
/// change sets (`incremental`) or never (the full passes).
struct Chain {
    incremental: bool,
    traffic: TrafficTracker,
    fleet: FleetAggregator,
    flows: FlowTracker,
    retransmits: RetransmitCounter,
    rtt: Option<RttHistogram>,
    graph: Option<(GraphDoc, GraphPlan)>,
    /// How many graphs were patched from the change set alone.
    patched_changed: usize,
}

/// What a chain made of one sample.
#[derive(Debug, PartialEq)]
struct Out {
    deltas: Vec<Option<(u64, u64)>>,
    totals: Vec<procnet::graph::traffic::InterfaceTraffic>,
    fleet: Vec<String>,
    flows: Vec<procnet::history::flows::FlowRecord>,
    retransmits: u64,
    rtt: RttHistogram,
    graph: GraphDoc,
}

impl Chain {
    fn new(incremental: bool) -> Chain {
        Chain {
            incremental,
            traffic: TrafficTracker::default(),
            fleet: FleetAggregator::new(FleetSettings {
                host: "h".into(),
                networks: vec![
                    "127.0.0.0/8".parse().unwrap(),
                    "192.0.2.0/24".parse().unwrap(),
                ],
                ephemeral: 32768..=60999,
                udp: true,
            }),
            flows: FlowTracker::new(ServicePorts::default()),
            retransmits: RetransmitCounter::default(),
            rtt: None,
            graph: None,
            patched_changed: 0,
        }
    }

    fn observe(&mut self, prev: Option<&Snapshot>, snap: &Snapshot) -> Out {
        let changes = match (self.incremental, prev) {
            (true, Some(p)) => SocketChanges::between(p, snap),
            _ => None,
        };
        let ch = changes.as_ref();
        let (rules, options, containers) = (
            RuleSet::default(),
            GraphOptions::default(),
            ContainerLabels::default(),
        );
        let ports = ServicePorts::default();
        let sample = self.traffic.observe_changed(snap, ch);
        self.fleet
            .observe_changed(snap, &sample, &containers, &ports, ch);
        let inputs = Inputs {
            snapshot: snap,
            rules: &rules,
            options: &options,
            containers: &containers,
            traffic: Some(&sample),
        };
        let graph = if self.incremental {
            let patched = match (&self.graph, ch) {
                (Some((g, plan)), Some(c)) => {
                    let p = patch_changed(g, plan, &inputs, 1, c);
                    self.patched_changed += usize::from(p.is_some());
                    p.or_else(|| patch_graph(g, plan, &inputs, 1))
                }
                (Some((g, plan)), None) => patch_graph(g, plan, &inputs, 1),
                _ => None,
            };
            match patched {
                Some(g) => {
                    let plan = self.graph.take().expect("patched from a plan").1;
                    self.graph = Some((g.clone(), plan));
                    g
                }
                None => {
                    let (g, plan) = build_graph_planned(&inputs, 1);
                    self.graph = Some((g.clone(), plan));
                    g
                }
            }
        } else {
            build_graph(&inputs, 1)
        };
        let rtt = match (&self.rtt, prev, ch) {
            (Some(h), Some(p), Some(c)) => h.moved(p, snap, c),
            _ => RttHistogram::of(snap),
        };
        self.rtt = Some(rtt.clone());
        let export = if self.incremental {
            self.fleet.export_changed(snap, &containers)
        } else {
            self.fleet.export(snap, &containers)
        };
        let mut fleet: Vec<String> = export
            .flows
            .iter()
            .map(|(k, t)| format!("{k:?} {t:?}"))
            .collect();
        fleet.extend(export.listeners.iter().map(|l| format!("{l:?}")));
        fleet.extend(export.addresses.iter().map(|a| a.to_string()));
        fleet.sort();
        Out {
            deltas: sample.deltas.iter().collect(),
            totals: self.traffic.totals(),
            fleet,
            flows: self.flows.observe_changed(snap, ch),
            retransmits: self.retransmits.observe_changed(snap, ch),
            rtt,
            graph,
        }
    }
}

fn run(name: &str, seed: u64) {
    let first = with_counters(fixture(name));
    let mut rng = Rng(seed);
    let (mut full, mut incremental) = (Chain::new(false), Chain::new(true));
    let mut prev: Option<Snapshot> = None;
    let mut snap = first;
    let mut with_changes = 0;
    for step in 0..24 {
        if let Some(p) = &prev {
            with_changes += usize::from(SocketChanges::between(p, &snap).is_some());
        }
        let a = full.observe(prev.as_ref(), &snap);
        let b = incremental.observe(prev.as_ref(), &snap);
        assert_eq!(a.deltas, b.deltas, "{name} step {step}: traffic deltas");
        assert_eq!(a.totals, b.totals, "{name} step {step}: traffic totals");
        assert_eq!(a.fleet, b.fleet, "{name} step {step}: fleet series");
        assert_eq!(a.flows, b.flows, "{name} step {step}: closed flows");
        assert_eq!(
            a.retransmits, b.retransmits,
            "{name} step {step}: retransmits"
        );
        assert_eq!(a.rtt, b.rtt, "{name} step {step}: RTT histogram");
        assert_eq!(a.graph, b.graph, "{name} step {step}: graph");
        let next = next_sample(&snap, &mut rng, step % 7 == 6);
        prev = Some(std::mem::replace(&mut snap, next));
    }
    assert!(
        with_changes >= 15,
        "{name}: {with_changes} samples had a change set"
    );
    assert!(
        incremental.patched_changed >= 10,
        "{name}: {} graphs patched from the change set",
        incremental.patched_changed
    );
}

#[test]
fn incremental_consumers_equal_their_full_pass_nginx_postgres() {
    run("services_nginx_postgres.json", 0x9e37_79b9_7f4a_7c15);
}

#[test]
fn incremental_consumers_equal_their_full_pass_gunicorn() {
    run("services_gunicorn.json", 0x2545_f491_4f6c_dd1d);
}

#[test]
fn incremental_consumers_equal_their_full_pass_directions() {
    run("directions.json", 0x1234_5678_9abc_def1);
}

#[test]
fn a_change_set_is_only_for_counters() {
    let a = with_counters(fixture("services_nginx_postgres.json"));
    let mut b = a.clone();
    let i = b
        .sockets
        .iter()
        .position(|s| s.bytes_sent.is_some())
        .expect("a socket with counters");
    *b.sockets[i].bytes_sent.as_mut().unwrap() += 7;
    assert_eq!(
        SocketChanges::between(&a, &b).map(|c| c.changed),
        Some(vec![i as u32])
    );
    b.sockets[i].owners.push(999_999);
    assert_eq!(SocketChanges::between(&a, &b), None, "an owner changed");
}
