//! Keeps the sampler alive: a panic in a sample is caught, logged once and
//! the sampler restarted with a fresh collector, so `/healthz` never says
//! `ok` over a sampler that is gone.
//!
//! Also holds the fault-injection test hook `PROCNET_FAULT`, which the
//! integration tests use to make a real server's sampler panic or hang:
//! `sampler-panic` panics once, in the third sample's publish;
//! `sampler-hang` blocks the sampler in the third sample's publish until
//! shutdown (as a rules file that is a FIFO did). Unset, it costs nothing.

use crate::collect::containers::EngineView;
use crate::names::HostNames;
use crate::serve::rules_watch::RulesWatcher;
use crate::serve::source::SampleSource;
use crate::serve::{sampler, ServeConfig, Shared};
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Once, RwLock};
use std::time::{Duration, Instant};

/// The name of the sampler thread; the panic hook knows it by this.
pub const SAMPLER_THREAD: &str = "procnet-sampler";
/// The longest wait between restarts of a sampler that keeps panicking.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A sampler that ran this long without panicking starts its backoff afresh.
const STABLE_RUN: Duration = Duration::from_secs(60);

/// A fault to inject, from `PROCNET_FAULT` (a test hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    SamplerPanic,
    SamplerHang,
}

impl Fault {
    pub fn from_env() -> Fault {
        match std::env::var("PROCNET_FAULT").as_deref() {
            Ok("sampler-panic") => Fault::SamplerPanic,
            Ok("sampler-hang") => Fault::SamplerHang,
            Ok(other) => {
                log::warn!("PROCNET_FAULT={other:?} is not a known fault (sampler-panic, sampler-hang); ignored");
                Fault::None
            }
            Err(_) => Fault::None,
        }
    }
}

/// Where and why the sampler thread last panicked, set by the panic hook
/// so the supervisor can log it once, in the server's log format.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// Routes panics of the sampler thread to [`LAST_PANIC`] instead of the
/// default stderr message (which would be a second, unformatted report of
/// the same panic); every other thread keeps the previous hook.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(SAMPLER_THREAD) {
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let text = format!("{}{location}", payload_text(info.payload()));
                *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
            } else {
                previous(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs the sampler until the server stops, restarting it after a panic.
/// `source` is the one opened at start-up (so a collector that cannot
/// start fails the server before it listens); restarts open fresh ones
/// from `config.source`.
pub fn run(
    shared: Arc<Shared>,
    source: Box<dyn SampleSource>,
    config: &ServeConfig,
    engine: Option<Arc<RwLock<EngineView>>>,
) {
    install_panic_hook();
    let rules_watch = RulesWatcher::spawn(
        shared.clone(),
        config.rules_path.clone(),
        config.rules.clone(),
    );
    // One resolver for the server's life: a restarted sampler keeps the
    // names already found.
    let names = match HostNames::start(&config.dns) {
        Ok(names) => names,
        Err(e) => {
            log::warn!("{e}; remote addresses are shown without names");
            None
        }
    };
    let mut collector = Some(source);
    let mut consecutive: u32 = 0;
    let mut logged: Vec<String> = Vec::new();
    while !shared.stopping.load(Ordering::Relaxed) {
        let Some(c) = collector.take() else {
            match config.source.open() {
                Ok(c) => collector = Some(c),
                Err(e) => {
                    shared.record_failure(format!("cannot restart the sample source: {e}"));
                    consecutive = consecutive.saturating_add(1);
                    shared.sleep(backoff(config.interval, consecutive));
                }
            }
            continue;
        };
        let started = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            sampler::run(
                shared.clone(),
                c,
                config,
                &rules_watch,
                engine.clone(),
                names.as_ref(),
            )
        }));
        let Err(payload) = outcome else {
            return; // stopped normally
        };
        let text = LAST_PANIC
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| payload_text(&*payload));
        if started.elapsed() >= STABLE_RUN {
            consecutive = 0;
        }
        consecutive = consecutive.saturating_add(1);
        let restarts = shared.record_panic(&text);
        // Once per distinct panic: a sampler that panics on every sample
        // must not flood the log; /healthz counts the restarts.
        if !logged.contains(&text) {
            log::error!(
                "the sampler panicked: {text}; restarting it with a fresh collector (restart {restarts}; /healthz shows samplerRestarts and lastPanic)"
            );
            logged.push(text);
        } else {
            log::debug!("the sampler panicked again: {text} (restart {restarts})");
        }
        shared.sleep(backoff(config.interval, consecutive));
    }
}

/// One interval after the first panic, doubling for each panic in a row,
/// at most [`MAX_BACKOFF`].
fn backoff(interval: Duration, consecutive: u32) -> Duration {
    let factor = 1u32 << consecutive.saturating_sub(1).min(16);
    interval.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_bound() {
        let i = Duration::from_millis(500);
        assert_eq!(backoff(i, 1), i);
        assert_eq!(backoff(i, 2), i * 2);
        assert_eq!(backoff(i, 4), i * 8);
        assert_eq!(backoff(i, 40), MAX_BACKOFF);
    }

    #[test]
    fn panic_text() {
        assert_eq!(payload_text(&"boom"), "boom");
        assert_eq!(payload_text(&String::from("bang")), "bang");
        assert_eq!(payload_text(&7u8), "a panic without a message");
    }
}
