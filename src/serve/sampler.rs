//! The sampling loop: every interval, off the request path, take a sample
//! from the [`SampleSource`] (the live collector or a recording), build the
//! views, diff against the last graph, publish, and keep the sample in
//! history (recording its blocks with `--record`). A failed
//! sample is logged once (per distinct message) and the last good views
//! stay served. The rules come from a [`RulesWatcher`], which re-reads the
//! rules file on its own thread when it changes: a sample never waits for a
//! load, and a broken edit keeps the last good rules.
//!
//! When the source says which sockets changed since its last sample (tier
//! T0, when only counters moved: [`crate::snapshot::SocketChanges`]),
//! every consumer here (traffic, fleet, graph patch, names, metrics,
//! history's closed connections) looks at those sockets only, so a sample
//! in which k of 100k sockets moved costs in proportion to k, not to 100k.

use crate::collect::containers::{latest, EngineView};
use crate::graph::build::{build_graph_planned, patch_changed, patch_graph, GraphPlan};
use crate::graph::containers::container_labels;
use crate::graph::diff::diff;
use crate::graph::fleet::{FleetAggregator, FleetSettings};
use crate::graph::model::GraphDoc;
use crate::graph::traffic::TrafficTracker;
use crate::graph::{ContainerLabels, Inputs};
use crate::history::SampleMeta;
use crate::names::label::{addresses_to_name, name_graph};
use crate::names::HostNames;
use crate::rules::RuleSet;
use crate::serve::metrics::{MetricsData, RetransmitCounter};
use crate::serve::rules_watch::RulesWatcher;
use crate::serve::source::SampleSource;
use crate::serve::{LatestSample, SampleOutput, ServeConfig, Shared};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Runs until `shared.stopping` is set. `rules_watch` gives the current
/// rules (it outlives a restarted sampler, so a reload is never undone);
/// `engine` is the container watcher's latest view (`None` with
/// `--no-containers`). Both are only read here, never waited for; so is
/// `names`, the reverse-DNS service (`None` with `--no-dns`).
pub fn run(
    shared: Arc<Shared>,
    mut source: Box<dyn SampleSource>,
    config: &ServeConfig,
    rules_watch: &RulesWatcher,
    engine: Option<Arc<RwLock<EngineView>>>,
    names: Option<&HostNames>,
) {
    let mut last_error: Option<String> = None;
    let mut prev: Option<Arc<GraphDoc>> = None;
    // How the last full build mapped sockets to the graph, with the rules
    // and container labels it used: a sample with the same sockets patches
    // the last graph's numbers instead (see graph::build::patch_graph).
    let mut plan: Option<(GraphPlan, Arc<RuleSet>, ContainerLabels)> = None;
    let mut traffic = TrafficTracker::default();
    let mut retransmits = RetransmitCounter::default();
    // Fleet totals live as long as this sampler: a restart after a panic
    // starts them from zero, which Prometheus sees as a counter reset.
    let mut fleet = FleetAggregator::new(FleetSettings {
        host: config.host_name.clone(),
        networks: config.fleet_networks.clone(),
        ephemeral: crate::collect::host::ephemeral_ports(),
        udp: config.options.udp,
    });
    // The last sample as the next one's change set (T0) is relative to:
    // its snapshot, container labels, addresses to name and socket counts.
    let mut last: Option<LastSample> = None;
    let mut samples: u64 = 0;
    let mut seq: u64 = 0;
    let mut next_tick = Instant::now();
    let mut finished = false;
    while !shared.stopping.load(Ordering::Relaxed) {
        let rules = rules_watch.rules();
        let started = Instant::now();
        let next = if finished {
            Ok(None)
        } else if plan
            .as_ref()
            .is_some_and(|(_, built_with, _)| Arc::ptr_eq(built_with, &rules))
            && source.unchanged()
        {
            // Nothing happened (tier T0 knows from the kernel's events) and
            // the rules are those of the last build: the graph, views and
            // rates served are still right. (Container labels and DNS names
            // that arrive meanwhile wait for the next change, or for T0's
            // reconcile walk within a minute.)
            shared.beat();
            next_tick = pace(next_tick, config.interval);
            sleep_until(&shared, next_tick);
            continue;
        } else {
            source.next_sample()
        };
        match next {
            Ok(None) => {
                if !finished {
                    finished = true;
                    shared.add_history_warnings(source.warnings());
                    log::info!(
                        "the recording is replayed ({samples} samples); serving it until stopped"
                    );
                }
                // Nothing new will come: the server is alive, not stalled.
                shared.beat();
            }
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    log::error!("sample failed: {msg}; serving the last good graph");
                }
                last_error = Some(msg.clone());
                shared.record_failure(msg);
            }
            Ok(Some(sample)) => {
                if last_error.take().is_some() {
                    log::info!("sampling works again");
                }
                let collect_time = started.elapsed();
                let recorded_seq = sample.seq;
                let changes = sample.changes;
                let snapshot = sample.snapshot;
                let containers = match (sample.containers, &engine) {
                    (Some(recorded), _) => recorded,
                    (None, Some(view)) => {
                        let view = latest(view);
                        shared.set_engine_status(&view.status);
                        container_labels(&view.containers, &snapshot)
                    }
                    (None, None) => ContainerLabels::default(),
                };
                // Which sockets moved since the last sample, when the
                // collector knows and the container labels are the last
                // ones: every consumer below then looks at those only.
                let last_sample = last.take();
                let changes = changes.filter(|_| {
                    last_sample
                        .as_ref()
                        .is_some_and(|l| l.containers == containers)
                });
                let sample = traffic.observe_changed(&snapshot, changes.as_ref());
                traffic.forget_exited(&snapshot);
                fleet.observe_changed(
                    &snapshot,
                    &sample,
                    &containers,
                    &config.options.service_ports,
                    changes.as_ref(),
                );
                let inputs = Inputs {
                    snapshot: &snapshot,
                    rules: &rules,
                    options: &config.options,
                    containers: &containers,
                    traffic: Some(&sample),
                };
                let next_seq = recorded_seq.unwrap_or(seq + 1);
                let patched = match (&prev, &plan) {
                    (Some(p), Some((plan, r, c))) if Arc::ptr_eq(r, &rules) && *c == containers => {
                        changes
                            .as_ref()
                            .and_then(|ch| patch_changed(p, plan, &inputs, next_seq, ch))
                            .or_else(|| patch_graph(p, plan, &inputs, next_seq))
                    }
                    _ => None,
                };
                let mut graph = match patched {
                    Some(g) => g,
                    None => {
                        let (g, p) = build_graph_planned(&inputs, next_seq);
                        plan = Some((p, Arc::clone(&rules), containers.clone()));
                        g
                    }
                };
                // Names found so far; new ones arrive with a later sample
                // (and reach clients as an updated node in its diff).
                let to_name = match (&changes, &last_sample) {
                    // The same sockets: the same remote addresses.
                    (Some(_), Some(l)) => l.to_name.clone(),
                    _ => addresses_to_name(&snapshot, config.options.udp),
                };
                let host_names = names.map(|n| n.observe(&to_name)).unwrap_or_default();
                name_graph(&mut graph, &host_names);
                let graph_diff = prev.as_deref().map(|p| diff(p, &graph));
                match (&graph_diff, recorded_seq) {
                    // A replay serves the seq the sample was served with.
                    (_, Some(recorded)) => seq = recorded,
                    // Nothing changed: keep the seq so clients stay in step.
                    (Some(d), None) if d.is_empty() => graph.seq = seq,
                    _ => seq += 1,
                }
                let graph = Arc::new(graph);
                let mut metrics = MetricsData::from_changed(
                    &snapshot,
                    &graph,
                    &traffic,
                    collect_time,
                    match (&changes, &last_sample) {
                        (Some(c), Some(l)) => Some((&l.latest.snapshot, &l.metrics, c)),
                        _ => None,
                    },
                );
                metrics.tcp_retransmits_total =
                    retransmits.observe_changed(&snapshot, changes.as_ref());
                // Nothing below needs the last sample: let it go now, not
                // after this one is published and kept (at 100k sockets it
                // is tens of MB).
                drop(last_sample);
                metrics.fleet = fleet.export_changed(&snapshot, &containers);
                let diagnostics = snapshot.diagnostics.clone();
                samples += 1;
                let meta = SampleMeta {
                    at_ms: snapshot.taken_at_ms,
                    seq: graph.seq,
                    edges: graph.edges.len() as u32,
                    bytes_total: traffic.grand_total.0.saturating_add(traffic.grand_total.1),
                };
                let latest = Arc::new(LatestSample {
                    number: samples,
                    snapshot,
                    rules: RuleSet::clone(&rules),
                    options: config.options.clone(),
                    containers: containers.clone(),
                    host_names,
                });
                let kept_metrics = MetricsData {
                    sockets: metrics.sockets.clone(),
                    listeners: metrics.listeners,
                    tcp_rtt: metrics.tcp_rtt.clone(),
                    ..MetricsData::default()
                };
                shared.publish(SampleOutput {
                    graph: graph.clone(),
                    latest: latest.clone(),
                    traffic: &traffic.totals(),
                    diff: graph_diff.filter(|d| !d.is_empty()),
                    metrics,
                    diagnostics: &diagnostics,
                    took: started.elapsed(),
                });
                prev = Some(graph);
                shared.keep_in_history(latest.clone(), &containers, meta, changes.as_ref());
                last = Some(LastSample {
                    metrics: kept_metrics,
                    latest,
                    containers,
                    to_name,
                });
            }
        }
        if !source.paced() && !finished {
            continue; // a replay: the next sample now
        }
        next_tick = pace(next_tick, config.interval);
        sleep_until(&shared, next_tick);
    }
}

/// What the sampler keeps of the last sample for the next, whose change
/// set (tier T0) is relative to it.
struct LastSample {
    latest: Arc<LatestSample>,
    containers: ContainerLabels,
    /// Its remote addresses to name.
    to_name: Vec<std::net::IpAddr>,
    /// Its socket counts and RTT histogram.
    metrics: MetricsData,
}

/// When the next sample is due after one due at `tick`.
fn pace(tick: Instant, interval: Duration) -> Instant {
    let next = tick + interval;
    let now = Instant::now();
    if next < now {
        // Fell behind (a slow sample): start the next interval from now
        // rather than sampling back to back.
        now + interval / 2
    } else {
        next
    }
}

/// Sleeps until `deadline`, waking early when the server stops.
fn sleep_until(shared: &Shared, deadline: Instant) {
    while !shared.stopping.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
    }
}
