//! Container engine access: the Engine API client ([`engine`], over a
//! minimal HTTP/1.1 client, [`http`]) and the [`ContainerWatcher`] thread
//! that keeps the engine's container list fresh, off the sampling path.
//!
//! Which container a process is in comes from its cgroup (read with the
//! process, see `collect::linux::cgroup`); the labels are made from both by
//! the pure [`crate::graph::containers`].

pub mod engine;
pub mod http;

use crate::graph::labels::rfc3339;
use crate::snapshot::ContainerInfo;
use engine::EngineError;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the watcher asks the engine for its container list.
pub const REFRESH: Duration = Duration::from_secs(3);
/// How long one question to the engine may take.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);
/// The one synchronous question `procnet snapshot` asks.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_millis(300);

/// The engine as `/healthz` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineStatus {
    /// `disabled` (`--no-containers`), `starting`, `ok` or `unreachable`.
    pub state: &'static str,
    /// The socket asked, when one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Running containers in the last answer.
    pub containers: usize,
    /// Why the last question failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the last answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_answer_at: Option<String>,
}

impl Default for EngineStatus {
    fn default() -> EngineStatus {
        EngineStatus::with_state("disabled")
    }
}

impl EngineStatus {
    fn with_state(state: &'static str) -> EngineStatus {
        EngineStatus {
            state,
            socket: None,
            containers: 0,
            error: None,
            last_answer_at: None,
        }
    }
}

/// The latest container list and the engine's status.
#[derive(Debug, Clone, Default)]
pub struct EngineView {
    pub containers: Arc<Vec<ContainerInfo>>,
    pub status: EngineStatus,
}

/// The engine socket for this environment (`$DOCKER_HOST` or the defaults).
fn socket_from_env() -> Result<PathBuf, EngineError> {
    let host = std::env::var("DOCKER_HOST").ok();
    engine::socket_path(host.as_deref())
}

/// Asks the engine once. `previous` keeps the last good list's answer time
/// when this question fails.
fn ask(timeout: Duration, previous: &EngineView) -> (EngineView, Option<EngineError>) {
    let socket = socket_from_env();
    let socket_name = socket.as_ref().ok().map(|p| p.display().to_string());
    let result = socket.and_then(|path| engine::list_containers(&path, timeout));
    match result {
        Ok(list) => {
            let status = EngineStatus {
                state: "ok",
                socket: socket_name,
                containers: list.len(),
                error: None,
                last_answer_at: Some(rfc3339(crate::collect::now_ms())),
            };
            (
                EngineView {
                    containers: Arc::new(list),
                    status,
                },
                None,
            )
        }
        Err(e) => {
            // No engine: no labels (a stale list would name the wrong
            // containers once ports are reused).
            let status = EngineStatus {
                state: "unreachable",
                socket: socket_name,
                containers: 0,
                error: Some(e.to_string()),
                last_answer_at: previous.status.last_answer_at.clone(),
            };
            (
                EngineView {
                    containers: Arc::new(Vec::new()),
                    status,
                },
                Some(e),
            )
        }
    }
}

/// Asks the engine once, synchronously (for `procnet snapshot`). An absent
/// engine is logged at debug level, any other failure as a warning; either
/// way the answer is an empty list.
pub fn query_once(timeout: Duration) -> EngineView {
    let (view, error) = ask(timeout, &EngineView::default());
    if let Some(e) = error {
        if e.is_absent() {
            log::debug!("containers: {e}; no container labels");
        } else {
            log::warn!("containers: {e}; no container labels");
        }
    }
    view
}

/// Keeps the engine's container list fresh on its own thread. Dropping it
/// stops the thread.
pub struct ContainerWatcher {
    view: Arc<RwLock<EngineView>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ContainerWatcher {
    /// Starts the thread; it asks at once, then every `refresh`.
    pub fn spawn(refresh: Duration, timeout: Duration) -> std::io::Result<ContainerWatcher> {
        let view = Arc::new(RwLock::new(EngineView {
            containers: Arc::new(Vec::new()),
            status: EngineStatus::with_state("starting"),
        }));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = view.clone();
        let thread = std::thread::Builder::new()
            .name("procnet-containers".into())
            .spawn(move || watch(&shared, &stopped, refresh, timeout))?;
        Ok(ContainerWatcher {
            view,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The shared latest view, for the sampler to read.
    pub fn view(&self) -> Arc<RwLock<EngineView>> {
        self.view.clone()
    }
}

impl Drop for ContainerWatcher {
    fn drop(&mut self) {
        // Closing the channel wakes the thread.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The latest view in `shared`, surviving a poisoned lock.
pub fn latest(shared: &RwLock<EngineView>) -> EngineView {
    shared.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn watch(
    shared: &RwLock<EngineView>,
    stopped: &mpsc::Receiver<()>,
    refresh: Duration,
    timeout: Duration,
) {
    // The last failure logged, so a down engine is said once, not per refresh.
    let mut logged: Option<String> = None;
    loop {
        let previous = latest(shared);
        let (view, error) = ask(timeout, &previous);
        match &error {
            None if previous.status.state != "ok" => {
                log::info!(
                    "containers: engine at {} answers ({} running)",
                    view.status.socket.as_deref().unwrap_or("?"),
                    view.containers.len()
                );
                logged = None;
            }
            Some(e) => {
                let msg = e.to_string();
                if logged.as_deref() != Some(msg.as_str()) {
                    log::info!("containers: {msg}; carrying on without container labels");
                    logged = Some(msg);
                }
            }
            None => {}
        }
        *shared.write().unwrap_or_else(|e| e.into_inner()) = view;
        match stopped.recv_timeout(refresh) {
            Err(RecvTimeoutError::Timeout) => continue,
            _ => return,
        }
    }
}
