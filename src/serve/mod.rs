//! The live server: HTTP routes, the Server-Sent Events stream, Prometheus
//! metrics, the embedded UI and the request guards.
//!
//! Sampling runs on its own thread ([`sampler`]) and publishes ready-made
//! JSON into [`Shared`]; a request only clones bytes, it never waits for a
//! sample.

pub mod assets;
pub mod icons;
pub mod metrics;
pub mod routes;
pub mod rules_watch;
pub mod sampler;
pub mod security;

use crate::collect::containers::{ContainerWatcher, EngineStatus, ENGINE_TIMEOUT, REFRESH};
use crate::collect::{CollectError, CollectOptions, Collector};
use crate::graph::model::{GraphDiff, GraphDoc};
use crate::graph::traffic::InterfaceTraffic;
use crate::graph::{build_connections, ContainerLabels, GraphOptions, Inputs};
use crate::rules::RuleSet;
use crate::snapshot::{Diagnostics, Snapshot};
use axum::body::Bytes;
use metrics::{DurationHistogram, MetricsData};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

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
    pub status: &'static str,
    pub seq: u64,
    pub samples: u64,
    pub failed_samples: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sample_at: Option<String>,
    pub last_sample_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_error: Option<String>,
    pub collector: Diagnostics,
    pub sse_clients: usize,
    /// The container engine: reachable or not, and why.
    pub containers: EngineStatus,
}

/// The latest published views.
pub struct Published {
    pub graph: Arc<GraphDoc>,
    pub graph_json: Bytes,
    /// What the last sample saw, for views built on request.
    pub latest: Option<Arc<LatestSample>>,
    /// `/api/connections` built from `latest`, keyed by its sample number.
    pub connections_cache: Option<(u64, Bytes)>,
    pub traffic_json: Bytes,
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
}

/// How many messages a slow event-stream client may fall behind before it
/// is dropped (it reconnects and re-syncs from a full graph).
const EVENT_BACKLOG: usize = 32;

impl Shared {
    fn new() -> Shared {
        let empty = GraphDoc::default();
        let graph_json = Bytes::from(serde_json::to_vec(&empty).unwrap_or_default());
        Shared {
            published: RwLock::new(Published {
                graph: Arc::new(empty),
                graph_json,
                latest: None,
                connections_cache: None,
                traffic_json: Bytes::from_static(b"[]"),
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
        let graph_json = Bytes::from(serde_json::to_vec(&*graph).unwrap_or_default());
        let traffic_json = Bytes::from(serde_json::to_vec(traffic).unwrap_or_default());
        let message = diff.map(|d| StreamMessage {
            event: "diff",
            seq: d.seq,
            data: serde_json::to_string(&d).unwrap_or_default(),
        });
        {
            let mut p = self.write();
            p.health.seq = graph.seq;
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
}

impl LatestSample {
    /// The `/api/connections` document as JSON.
    pub fn connections_json(&self) -> Bytes {
        let doc = build_connections(&Inputs {
            snapshot: &self.snapshot,
            rules: &self.rules,
            options: &self.options,
            containers: &self.containers,
            traffic: None,
        });
        Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
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
    let mut collector = Collector::with_options(CollectOptions {
        capture: config.capture,
    })?;
    collector.set_containers(config.containers);
    let shared = Arc::new(Shared::new());
    let watcher = if config.containers {
        Some(ContainerWatcher::spawn(REFRESH, ENGINE_TIMEOUT)?)
    } else {
        None
    };

    let sampler = {
        let shared = shared.clone();
        let config = config.clone();
        let engine = watcher.as_ref().map(ContainerWatcher::view);
        std::thread::Builder::new()
            .name("procnet-sampler".into())
            .spawn(move || sampler::run(shared, collector, &config, engine))?
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
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                log::info!("shutting down");
                stop.stopping
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = stop.shutdown.send(true);
            })
            .await
    });
    shared
        .stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    drop(watcher);
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
