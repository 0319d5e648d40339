//! [`BackgroundMonitor`]: a [`Monitor`](super::Monitor) that refreshes
//! itself on its own thread, as netprocmon's `start()` does, and stops
//! (the thread joined, the capture closed) when dropped.
//!
//! The thread owns the collector and takes samples without holding the
//! lock; only adding a sample to the counts locks the shared state, so
//! queries wait at most that long, never for a whole sample.

use super::{Monitor, MonitorError, MonitorState, NetworkTraffic};
use crate::collect::Collector;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The background thread's name (15 bytes: the most Linux keeps).
pub const BACKGROUND_THREAD_NAME: &str = "procnet-monitor";

/// A monitor refreshing on a background thread; dropping it stops the
/// thread. Read and change it through [`BackgroundMonitor::lock`].
pub struct BackgroundMonitor {
    state: Arc<Mutex<MonitorState>>,
    /// Dropped to stop the thread: wakes it at once, mid-interval too.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<Collector>>,
}

impl BackgroundMonitor {
    pub(super) fn spawn(
        mut collector: Collector,
        state: MonitorState,
        interval: Duration,
    ) -> Result<BackgroundMonitor, MonitorError> {
        let interval = interval.max(Duration::from_millis(1));
        let state = Arc::new(Mutex::new(state));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name(BACKGROUND_THREAD_NAME.into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let sample = collector.sample();
                    let mut state = lock(&shared);
                    match sample {
                        Ok(snap) => state.absorb(snap),
                        // Kept for the caller; the next interval tries again.
                        Err(e) => state.last_error = Some(e.to_string()),
                    }
                }
                collector
            })
            .map_err(MonitorError::Thread)?;
        Ok(BackgroundMonitor {
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The monitor's state: every query and watch-list change of
    /// [`MonitorState`]. Refreshes wait while the guard lives.
    pub fn lock(&self) -> MutexGuard<'_, MonitorState> {
        lock(&self.state)
    }

    /// [`MonitorState::count_by_pid`].
    pub fn count_by_pid(&self, pid: u32) -> Vec<NetworkTraffic> {
        self.lock().count_by_pid(pid)
    }

    /// [`MonitorState::counts`].
    pub fn counts(&self) -> Vec<NetworkTraffic> {
        self.lock().counts()
    }

    /// Stops the thread and hands back the monitor, counts kept, for
    /// manual refreshes. Fails only if the thread panicked (a bug: refresh
    /// errors are kept in [`MonitorState::last_error`], never raised).
    pub fn stop(mut self) -> Result<Monitor, MonitorError> {
        let collector = self.halt();
        let state = self.state.clone();
        drop(self);
        let state = Arc::try_unwrap(state)
            .ok()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()));
        match (collector, state) {
            (Some(collector), Some(state)) => Ok(Monitor { collector, state }),
            _ => Err(MonitorError::ThreadPanicked),
        }
    }

    /// Stops and joins the thread; its collector, unless it panicked.
    fn halt(&mut self) -> Option<Collector> {
        drop(self.stop.take());
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for BackgroundMonitor {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Locks, recovering from a poisoned lock: the state is plain counts.
fn lock(state: &Mutex<MonitorState>) -> MutexGuard<'_, MonitorState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}
