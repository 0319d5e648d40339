//! The live server: HTTP routes, the Server-Sent Events stream, Prometheus
//! metrics, the embedded UI and the request guards.
//!
//! Sampling runs on its own thread ([`sampler`], kept alive by
//! [`supervisor`]) and publishes ready-made JSON into [`Shared`]; a request
//! only clones bytes, it never waits for a sample. Views built on request
//! are built once per sample for all clients ([`views`]); connections are
//! bounded in number and time ([`listen`]).
//!
//! `/healthz` needs no token, even with `--token`: it is for liveness
//! probes that hold no secret. It reveals only the sampler's state (status,
//! sample counts, the age and duration of the last sample, restarts and the
//! last panic message), the collector's diagnostics (which backend, how
//! many sockets or processes could not be read and why), the last sample
//! or rules-file error (which can name the rules file's path) and the
//! container engine's reachability — never a process, address or
//! connection.

pub mod assets;
pub mod diff_wire;
pub mod history_routes;
pub mod icons;
pub mod listen;
pub mod metrics;
pub mod pages;
pub mod recent_rates;
pub mod routes;
pub mod rules_watch;
pub mod sampler;
pub mod security;
pub mod source;
pub mod supervisor;
pub mod views;

use crate::collect::containers::{ContainerWatcher, EngineStatus, ENGINE_TIMEOUT, REFRESH};
use crate::collect::CollectError;
use crate::graph::model::{ConnectionsDoc, GraphDiff, GraphDoc};
use crate::graph::traffic::InterfaceTraffic;
use crate::graph::{build_connections, ContainerLabels, GraphOptions, Inputs};
use crate::history::record::{RecordError, Recorder};
use crate::history::store::{HistoryWriter, Update};
use crate::history::{HistoryConfig, HistoryStore, SampleMeta};
use crate::rules::RuleSet;
use crate::snapshot::{Diagnostics, Snapshot};
use axum::body::Bytes;
use listen::{ConnLimits, HttpStats, LimitsError};
use metrics::{DurationHistogram, MetricsData};
use serde::Serialize;
use source::{SourceError, SourceSpec};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use supervisor::Fault;
use tokio::sync::{broadcast, watch};
use views::{SampleViews, ViewCounters};

/// Everything `procnet serve` is started with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub interval: Duration,
    pub options: GraphOptions,
    pub rules: RuleSet,
    pub rules_path: Option<PathBuf>,
    pub icons_dir: Option<PathBuf>,
    pub token: Option<String>,
    /// Count UDP bytes from packets (`--capture`).
    pub capture: bool,
    /// Label containers (off with `--no-containers`).
    pub containers: bool,
    /// The `host` label of the fleet series (`--host-name`; default: the
    /// machine's hostname, [`crate::collect::host::hostname`]).
    pub host_name: String,
    /// Where fleet peers live (`--fleet-networks`; default:
    /// [`crate::graph::fleet::default_networks`]): a peer outside is
    /// `peer_ip="external"`.
    pub fleet_networks: Vec<ipnet::IpNet>,
    /// Reverse DNS for remote addresses (`--no-dns`, `--dns-server`).
    pub dns: crate::names::DnsSetting,
    /// Where samples come from (the live collector, or `--from DIR`).
    pub source: SourceSpec,
    /// What history keeps and where it records.
    pub history: HistorySettings,
    /// Fleet mode (`--fleet URL`): the map comes from Prometheus, not from
    /// this machine's sockets.
    pub fleet: Option<crate::fleet::FleetConfig>,
}

/// `--history-size`, `--record`, `--record-retention`.
#[derive(Debug, Clone)]
pub struct HistorySettings {
    pub cap_bytes: usize,
    /// A keyframe (and a block, and a recorded block) this often.
    pub keyframe_every: Duration,
    pub record: Option<PathBuf>,
    pub retention: Duration,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            cap_bytes: crate::history::store::DEFAULT_CAP_BYTES,
            keyframe_every: crate::history::store::KEYFRAME_EVERY,
            record: None,
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--bind {0} is not a loopback address: anyone on the network could read every process and connection of this machine; give --token or --token-file (or bind 127.0.0.1)")]
    NeedsToken(IpAddr),
    #[error("port {port} on {bind} is already in use; stop the program using it or choose another with --port")]
    PortInUse { bind: IpAddr, port: u16 },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the collector: {0}")]
    Collector(#[from] CollectError),
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Record(#[from] RecordError),
    #[error("{0}")]
    Limits(#[from] LimitsError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// One message of the event stream, serialised once for all clients.
#[derive(Debug)]
pub struct StreamMessage {
    pub event: &'static str,
    /// The graph seq this message brings a client to.
    pub seq: u64,
    pub data: String,
}

/// `/healthz` and the `status` event.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, `starting` (no sample yet, within the stall bound),
    /// `degraded` (the last sample failed, or the sampler just panicked)
    /// or `stalled` (no sample finished within the stall bound: the
    /// sampler is stuck). All but `ok` and `starting` answer 503.
    pub status: &'static str,
    pub seq: u64,
    pub samples: u64,
    pub failed_samples: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sample_at: Option<String>,
    pub last_sample_ms: f64,
    /// Milliseconds since the last good sample was published, computed
    /// when `/healthz` is asked (absent before the first sample).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sample_age_ms: Option<u64>,
    /// The sampler is `stalled` when no sample, good or failed, finished
    /// for this long: 3 intervals, at least [`MIN_STALL`].
    pub stalled_after_ms: u64,
    /// Times the sampler panicked and was restarted.
    pub sampler_restarts: u64,
    /// The last panic's message and place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_panic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_error: Option<String>,
    /// Edges to unknown owners that `--p2p-only` leaves out of the graph
    /// (absent without `--p2p-only`): hidden, not lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p2p_hidden_edges: Option<u32>,
    pub collector: Diagnostics,
    pub sse_clients: usize,
    /// The container engine: reachable or not, and why.
    pub containers: EngineStatus,
    /// Fleet mode only: the query engine's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::serve::FleetHealth>,
}

/// The latest published views.
pub struct Published {
    pub graph: Arc<GraphDoc>,
    pub graph_json: Bytes,
    /// What the last sample saw, for views built on request.
    pub latest: Option<Arc<LatestSample>>,
    /// Every view of the last sample, each built and compressed at most
    /// once whatever the number of clients.
    pub views: Arc<SampleViews>,
    pub traffic_json: Bytes,
    /// When the last good sample was published.
    pub last_sample: Option<Instant>,
    /// When the sampler last finished a sample, good or failed: what
    /// `stalled` is measured from.
    pub last_beat: Option<Instant>,
    pub metrics: MetricsData,
    pub histogram: DurationHistogram,
    pub health: Health,
}

/// State shared by the sampler thread and the request handlers.
pub struct Shared {
    pub published: RwLock<Published>,
    pub events: broadcast::Sender<Arc<StreamMessage>>,
    pub stopping: AtomicBool,
    pub shutdown: watch::Sender<bool>,
    /// Bumped when the sampler restarts: its seq starts again from 1, so
    /// event streams end and their clients re-sync from a full graph.
    pub sampler_epoch: watch::Sender<u64>,
    pub view_counters: ViewCounters,
    pub http: Arc<HttpStats>,
    /// The sampling interval, for the stall bound.
    pub interval: Duration,
    /// When the server started: before the first sample, `starting` turns
    /// into `stalled` when this is too long ago.
    pub started: Instant,
    /// A fault to inject (`PROCNET_FAULT`, a test hook).
    pub fault: Fault,
    /// Every kept sample and closed connection (see [`crate::history`]).
    pub history: RwLock<HistoryStore>,
    /// Encodes samples for `history`; only the sampler locks it, so the
    /// encoding never holds up a request.
    pub history_writer: std::sync::Mutex<HistoryWriter>,
    /// `--record DIR`: where history's blocks are also written.
    pub recorder: std::sync::Mutex<Option<Recorder>>,
    /// What the sample source skipped (a torn recording), for `/api/history`.
    pub history_warnings: std::sync::Mutex<Vec<String>>,
    /// Samples come from a recording (`serve --from`), not this machine.
    pub replay: bool,
    /// The busiest nodes' and edges' rates of the last minutes, for the
    /// Top talkers sparklines (`/api/rates`).
    pub recent_rates: std::sync::Mutex<recent_rates::RecentRates>,
}

/// The shortest stall bound: at a short `--interval`, one slow sample on a
/// busy machine is not a stuck sampler.
pub const MIN_STALL: Duration = Duration::from_secs(2);

/// How many messages a slow event-stream client may fall behind before it
/// is dropped (it reconnects and re-syncs from a full graph).
const EVENT_BACKLOG: usize = 32;

impl Shared {
    fn new(interval: Duration, fault: Fault, history: HistoryConfig) -> Shared {
        let empty = GraphDoc::default();
        let graph_json = Bytes::from(serde_json::to_vec(&empty).unwrap_or_default());
        let traffic_json = Bytes::from_static(b"[]");
        Shared {
            published: RwLock::new(Published {
                graph: Arc::new(empty),
                views: Arc::new(SampleViews::new(
                    None,
                    graph_json.clone(),
                    traffic_json.clone(),
                )),
                graph_json,
                latest: None,
                traffic_json,
                last_sample: None,
                last_beat: None,
                metrics: MetricsData::default(),
                histogram: DurationHistogram::default(),
                health: Health {
                    status: "starting",
                    ..Health::default()
                },
            }),
            events: broadcast::channel(EVENT_BACKLOG).0,
            stopping: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            sampler_epoch: watch::channel(0).0,
            view_counters: ViewCounters::default(),
            http: Arc::new(HttpStats::default()),
            interval,
            started: Instant::now(),
            fault,
            history_writer: std::sync::Mutex::new(HistoryWriter::new(&history)),
            history: RwLock::new(HistoryStore::new(history)),
            recorder: std::sync::Mutex::new(None),
            history_warnings: std::sync::Mutex::new(Vec::new()),
            replay: false,
            recent_rates: std::sync::Mutex::new(recent_rates::RecentRates::default()),
        }
    }

    /// Read access to history that survives a poisoned lock.
    pub fn history(&self) -> std::sync::RwLockReadGuard<'_, HistoryStore> {
        self.history.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a published sample to history; a block it closes goes to the
    /// recording. A recording that cannot be written is logged once per
    /// distinct error and history in memory goes on.
    fn keep_in_history(
        &self,
        sample: Arc<LatestSample>,
        containers: &ContainerLabels,
        meta: SampleMeta,
        changes: Option<&crate::snapshot::SocketChanges>,
    ) {
        if self.history().config().cap_bytes == 0 {
            return; // --history-size 0
        }
        let update = self
            .history_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .encode_changed(sample, containers, meta, changes);
        self.apply_history(update);
    }

    fn apply_history(&self, update: Update) {
        let sealed = self
            .history
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(update);
        if let Some(block) = sealed {
            self.record(&block);
        }
    }

    /// Closes history's open block and records it (at shutdown).
    fn flush_history(&self) {
        let update = self
            .history_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush();
        self.apply_history(update);
    }

    fn record(&self, block: &crate::history::store::SealedBlock) {
        let mut rec = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = rec.as_mut() {
            if let Err(e) = r.append(block, crate::collect::now_ms()) {
                let msg = e.to_string();
                let mut w = self
                    .history_warnings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if !w.contains(&msg) {
                    log::error!("{msg}; history goes on in memory");
                    w.push(msg);
                }
            }
        }
    }

    fn add_history_warnings(&self, warnings: Vec<String>) {
        let mut w = self
            .history_warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for x in warnings {
            if !w.contains(&x) {
                w.push(x);
            }
        }
    }

    /// The sampler is alive though it has nothing new (a finished replay).
    fn beat(&self) {
        let mut p = self.write();
        let now = Instant::now();
        p.last_beat = Some(now);
        p.last_sample = Some(now);
    }

    /// How long without a finished sample means the sampler is stuck.
    pub fn stall_bound(&self) -> Duration {
        self.interval.saturating_mul(3).max(MIN_STALL)
    }

    /// `/healthz` as of `now`: the stored health with the age of the last
    /// sample and a status that says `stalled` when the sampler has not
    /// finished a sample within [`Shared::stall_bound`] — measured here,
    /// at request time, so a sampler that hangs or is gone cannot leave a
    /// stale `ok` behind.
    pub fn health_at(&self, now: Instant) -> Health {
        let p = self.read();
        let mut health = p.health.clone();
        let bound = self.stall_bound();
        health.stalled_after_ms = bound.as_millis() as u64;
        health.last_sample_age_ms = p
            .last_sample
            .map(|t| now.saturating_duration_since(t).as_millis() as u64);
        let since_beat = now.saturating_duration_since(p.last_beat.unwrap_or(self.started));
        if since_beat > bound {
            health.status = "stalled";
        }
        health.sse_clients = self.events.receiver_count();
        health
    }

    /// Records a sampler panic; returns the number of restarts so far.
    fn record_panic(&self, text: &str) -> u64 {
        let restarts = {
            let mut p = self.write();
            p.health.sampler_restarts += 1;
            p.health.last_panic = Some(text.to_string());
            p.health.last_error = Some(format!("the sampler panicked: {text}"));
            p.health.status = "degraded";
            p.health.sampler_restarts
        };
        self.sampler_epoch.send_modify(|e| *e += 1);
        restarts
    }

    /// Sleeps up to `d`, waking early when the server stops.
    fn sleep(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while !self.stopping.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
        }
    }

    /// The `PROCNET_FAULT` test hook, on the publish path of the third
    /// sample: panic once, or hang until shutdown.
    fn inject_fault(&self) {
        if self.fault == Fault::None || self.read().health.samples != 2 {
            return;
        }
        static FIRED: AtomicBool = AtomicBool::new(false);
        match self.fault {
            Fault::SamplerPanic if !FIRED.swap(true, Ordering::Relaxed) => {
                panic!("injected fault (PROCNET_FAULT=sampler-panic)")
            }
            Fault::SamplerHang => {
                log::warn!("PROCNET_FAULT=sampler-hang: the sampler now hangs until shutdown");
                while !self.stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            _ => {}
        }
    }

    /// Write access that survives a poisoned lock.
    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, Published> {
        // A panic elsewhere must not take the server down with a poisoned lock.
        self.published.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Read access that survives a poisoned lock.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Published> {
        self.published.read().unwrap_or_else(|e| e.into_inner())
    }

    fn record_failure(&self, error: String) {
        let mut p = self.write();
        p.last_beat = Some(Instant::now());
        p.health.failed_samples += 1;
        p.health.last_error = Some(error);
        p.health.status = "degraded";
    }

    fn set_engine_status(&self, status: &EngineStatus) {
        let mut p = self.write();
        if p.health.containers != *status {
            p.health.containers = status.clone();
        }
    }

    fn set_rules_error(&self, error: Option<String>) {
        let status = {
            let mut p = self.write();
            p.health.rules_error = error;
            status_json(&p.health)
        };
        let _ = self.events.send(Arc::new(StreamMessage {
            event: "status",
            seq: 0,
            data: status,
        }));
    }

    fn publish(&self, out: SampleOutput<'_>) {
        let SampleOutput {
            graph,
            latest,
            traffic,
            diff,
            metrics,
            diagnostics,
            took,
        } = out;
        self.inject_fault();
        let graph_json = Bytes::from(serde_json::to_vec(&*graph).unwrap_or_default());
        let traffic_json = Bytes::from(serde_json::to_vec(traffic).unwrap_or_default());
        let message = diff.map(|d| StreamMessage {
            event: "diff",
            seq: d.seq,
            data: serde_json::to_string(&d).unwrap_or_default(),
        });
        self.view_counters.count_build(views::View::Graph);
        self.view_counters.count_build(views::View::Traffic);
        self.recent_rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(latest.snapshot.taken_at_ms, &graph);
        let views = Arc::new(SampleViews::new(
            Some(latest.clone()),
            graph_json.clone(),
            traffic_json.clone(),
        ));
        {
            let mut p = self.write();
            let now = Instant::now();
            p.last_sample = Some(now);
            p.last_beat = Some(now);
            p.views = views;
            p.health.seq = graph.seq;
            p.health.p2p_hidden_edges = graph.p2p_hidden_edges;
            p.health.samples += 1;
            p.health.last_sample_at = Some(graph.timestamp.clone());
            p.health.last_sample_ms = took.as_secs_f64() * 1000.0;
            p.health.last_error = None;
            p.health.status = "ok";
            p.health.collector = diagnostics.clone();
            p.health.sse_clients = self.events.receiver_count();
            p.graph = graph;
            p.graph_json = graph_json;
            p.latest = Some(latest);
            p.traffic_json = traffic_json;
            p.histogram.observe(metrics.collect_seconds);
            p.metrics = metrics;
        }
        if let Some(m) = message {
            // No receivers is fine: nobody is watching.
            let _ = self.events.send(Arc::new(m));
        }
    }
}

/// The last sample and what its views are built with. `/api/connections`
/// lists every connection (tens of MB at 100k sockets), so it is built
/// when someone asks, not every interval.
pub struct LatestSample {
    /// Counts samples; keys the cached views.
    pub number: u64,
    pub snapshot: Snapshot,
    pub rules: RuleSet,
    pub options: GraphOptions,
    pub containers: ContainerLabels,
    /// Names of the sample's remote addresses known when it was taken.
    pub host_names: crate::names::label::HostNameMap,
}

impl AsRef<Snapshot> for LatestSample {
    fn as_ref(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl LatestSample {
    /// The `/api/connections` document as JSON.
    pub fn connections_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.connections_doc()).unwrap_or_default())
    }

    /// The `/api/connections` document, with the names of remote addresses
    /// known so far.
    pub fn connections_doc(&self) -> ConnectionsDoc {
        let mut doc = build_connections(&Inputs {
            snapshot: &self.snapshot,
            rules: &self.rules,
            options: &self.options,
            containers: &self.containers,
            traffic: None,
        });
        crate::names::label::name_connections(&mut doc, &self.host_names);
        doc
    }
}

/// What one sample publishes.
pub struct SampleOutput<'a> {
    pub graph: Arc<GraphDoc>,
    /// The sample itself: `/api/connections` is built from it on request.
    pub latest: Arc<LatestSample>,
    pub traffic: &'a [InterfaceTraffic],
    /// The change since the last published graph, if any.
    pub diff: Option<GraphDiff>,
    pub metrics: MetricsData,
    pub diagnostics: &'a Diagnostics,
    /// How long the sample took, collection and building.
    pub took: Duration,
}

/// The `status` event's JSON: `{rulesError, warnings}`.
pub fn status_json(health: &Health) -> String {
    serde_json::json!({
        "rulesError": health.rules_error,
        "warnings": health.collector.warnings,
    })
    .to_string()
}

/// Starts the server and blocks until Ctrl-C / SIGTERM.
pub fn run(config: ServeConfig) -> Result<(), ServeError> {
    if !config.bind.is_loopback() && config.token.is_none() {
        return Err(ServeError::NeedsToken(config.bind));
    }
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = std::net::TcpListener::bind(addr).map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => ServeError::PortInUse {
            bind: config.bind,
            port: config.port,
        },
        _ => ServeError::Listen { addr, source },
    })?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let limits = ConnLimits::from_env()?;
    if let Some(fleet) = &config.fleet {
        return run_fleet(&config, fleet, listener, limits);
    }
    let collector = config.source.open()?;
    let mut shared = Shared::new(
        config.interval,
        Fault::from_env(),
        HistoryConfig {
            cap_bytes: config.history.cap_bytes,
            keyframe_every: config.history.keyframe_every,
            grace: config
                .interval
                .saturating_mul(2)
                .max(Duration::from_secs(2)),
            service_ports: config.options.service_ports.clone(),
        },
    );
    shared.replay = config.source.is_recording();
    if let Some(dir) = &config.history.record {
        shared.recorder =
            std::sync::Mutex::new(Some(Recorder::open(dir, config.history.retention)?));
    }
    let shared = Arc::new(shared);
    let watcher = if config.containers && !config.source.is_recording() {
        Some(ContainerWatcher::spawn(REFRESH, ENGINE_TIMEOUT)?)
    } else {
        None
    };

    let sampler = {
        let shared = shared.clone();
        let config = config.clone();
        let engine = watcher.as_ref().map(ContainerWatcher::view);
        std::thread::Builder::new()
            .name(supervisor::SAMPLER_THREAD.into())
            .spawn(move || supervisor::run(shared, collector, &config, engine))?
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        log::info!("procnet serving on http://{local}/");
        let app = routes::router(shared.clone(), &config);
        let stop = shared.clone();
        listen::serve(listener, app, limits, shared.http.clone(), async move {
            shutdown_signal().await;
            log::info!("shutting down");
            stop.stopping.store(true, Ordering::Relaxed);
            let _ = stop.shutdown.send(true);
        })
        .await;
        Ok::<(), std::io::Error>(())
    });
    shared.stopping.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    // The last minute of history is in the open block: keep it on disk.
    shared.flush_history();
    drop(watcher);
    runtime.shutdown_timeout(Duration::from_secs(2));
    result.map_err(ServeError::Io)
}

/// Fleet mode: a producer of views from Prometheus instead of the
/// sampler, and the fleet routes in front of the usual ones.
fn run_fleet(
    config: &ServeConfig,
    fleet: &crate::fleet::FleetConfig,
    listener: std::net::TcpListener,
    limits: ConnLimits,
) -> Result<(), ServeError> {
    use crate::fleet::serve as fleet_serve;
    let local = listener.local_addr()?;
    // Two queries of up to the timeout each, and as long again of pause
    // (see `run_producer`), are not a stall.
    let stall_interval = config.interval.max(fleet.timeout.saturating_mul(2));
    // Fleet history is Prometheus's own (`?at=`): none is kept here.
    let no_history = HistoryConfig {
        cap_bytes: 0,
        keyframe_every: config.history.keyframe_every,
        grace: stall_interval.saturating_mul(2),
        service_ports: config.options.service_ports.clone(),
    };
    let shared = Arc::new(Shared::new(stall_interval, Fault::None, no_history));
    let state = fleet_serve::FleetState::new(
        shared.clone(),
        crate::fleet::FleetReader::new(fleet, config.interval),
    );
    let producer = {
        let state = state.clone();
        let interval = config.interval;
        std::thread::Builder::new()
            .name("fleet".into())
            .spawn(move || fleet_serve::run_producer(state, interval))?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        log::info!("fleet mode: the map comes from {}", fleet.url);
        log::info!("procnet serving on http://{local}/");
        let app_state = routes::AppState {
            shared: shared.clone(),
            guard: Arc::new(security::Guard {
                bind: config.bind,
                token: config.token.clone(),
            }),
            icons_dir: config.icons_dir.clone().map(Arc::new),
            page_rows: Arc::default(),
        };
        let app = fleet_serve::router(state, app_state, routes::router(shared.clone(), config));
        let stop = shared.clone();
        listen::serve(listener, app, limits, shared.http.clone(), async move {
            shutdown_signal().await;
            log::info!("shutting down");
            stop.stopping.store(true, Ordering::Relaxed);
            let _ = stop.shutdown.send(true);
        })
        .await;
        Ok::<(), std::io::Error>(())
    });
    shared.stopping.store(true, Ordering::Relaxed);
    let _ = producer.join();
    runtime.shutdown_timeout(Duration::from_secs(2));
    result.map_err(ServeError::Io)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
