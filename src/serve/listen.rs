//! The accept loop: HTTP/1.1 connections with a header-read timeout, an
//! idle keep-alive timeout and a cap on how many are open at once.
//!
//! `axum::serve` has none of these: 500 slowloris connections and 10,000
//! idle ones were all held. So connections are served here with hyper's
//! own HTTP/1 builder and a tokio timer, which is what makes hyper's
//! `header_read_timeout` take effect at all.
//!
//! Timeout semantics of hyper 1.x (checked in its source, `proto/h1/conn.rs`
//! `poll_read_head`): the header-read timer starts whenever hyper waits for
//! a request head — when the connection opens, and again as soon as the
//! previous response has been written on a keep-alive connection — and the
//! whole head must have arrived before it fires. So the one timer is both
//! the header-read timeout (a client trickling a head byte by byte is cut
//! off) and the idle keep-alive timeout (a connection with no request in
//! flight is closed). A request in flight never times out: the event
//! stream `/api/events` is one long response, so it stays open.
//!
//! Over the cap, a new connection gets a short `503` and is closed at
//! once, without reading from it (so the loop never waits on a client);
//! the log says so once per episode and again when there is room.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections open at once, at most: well under the usual 1024
/// descriptors, so the collector always has some left.
pub const MAX_CONNECTIONS: usize = 512;
/// Time a client has to send a whole request head, counted from the
/// connection opening or the previous response ending (so also the idle
/// keep-alive timeout).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What the accept loop enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// A bad limits setting from the environment.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?} is not valid: {why}; unset it or give {example}")]
pub struct LimitsError {
    pub name: &'static str,
    pub value: String,
    pub why: &'static str,
    pub example: &'static str,
}

impl ConnLimits {
    /// The defaults, overridden by `PROCNET_MAX_CONNECTIONS` and
    /// `PROCNET_HEADER_TIMEOUT_MS` when set (for tests and unusual hosts).
    pub fn from_env() -> Result<ConnLimits, LimitsError> {
        ConnLimits::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ConnLimits, LimitsError> {
        let mut limits = ConnLimits::default();
        if let Some(v) = get("PROCNET_MAX_CONNECTIONS") {
            limits.max_connections = match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(LimitsError {
                        name: "PROCNET_MAX_CONNECTIONS",
                        value: v,
                        why: "it must be a whole number above 0",
                        example: "e.g. 512",
                    })
                }
            };
        }
        if let Some(v) = get("PROCNET_HEADER_TIMEOUT_MS") {
            limits.header_read_timeout = match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(LimitsError {
                        name: "PROCNET_HEADER_TIMEOUT_MS",
                        value: v,
                        why: "it must be milliseconds above 0",
                        example: "e.g. 10000",
                    })
                }
            };
        }
        Ok(limits)
    }
}

/// Connection counters for `/metrics`.
#[derive(Debug, Default)]
pub struct HttpStats {
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

impl HttpStats {
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Decrements the open-connections gauge when a connection task ends,
/// however it ends.
struct OpenGuard(Arc<HttpStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nRetry-After: 5\r\nContent-Length: 59\r\n\r\nprocnet: too many open connections; try again in a moment.\n";

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in flight finish (a few seconds at most) and
/// returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    stats: Arc<HttpStats>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut at_limit = false;
    let mut last_accept_error: Option<String> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => {
                    last_accept_error = None;
                    s
                }
                Err(e) => {
                    // Out of descriptors or a connection reset while queued:
                    // say so once, back off briefly, keep serving.
                    let msg = e.to_string();
                    if last_accept_error.as_deref() != Some(msg.as_str()) {
                        log::warn!("accepting a connection failed: {msg}; retrying");
                        last_accept_error = Some(msg);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !at_limit {
                at_limit = true;
                log::warn!(
                    "connection limit {} reached; refusing new connections until some close",
                    limits.max_connections
                );
            }
            stats.refused.fetch_add(1, Ordering::Relaxed);
            // Best effort, never waits: the client may already be gone.
            let _ = stream.try_write(REFUSAL);
            drop(stream);
            continue;
        };
        if at_limit {
            at_limit = false;
            log::info!(
                "below the connection limit {} again; accepting connections",
                limits.max_connections
            );
        }
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let open = OpenGuard(stats.clone());
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Timeouts and resets end connections all the time; they are
            // not the server's errors.
            if let Err(e) = connection.await {
                log::debug!("connection ended: {e}");
            }
            drop(permit);
            drop(open);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        log::info!(
            "requests still in flight after {} s; stopping anyway",
            SHUTDOWN_GRACE.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
    }

    #[test]
    fn limits_from_the_environment() {
        let none = |_: &str| None;
        assert_eq!(
            ConnLimits::from_lookup(none).unwrap(),
            ConnLimits::default()
        );
        let set = |name: &str| match name {
            "PROCNET_MAX_CONNECTIONS" => Some("8".to_string()),
            "PROCNET_HEADER_TIMEOUT_MS" => Some("1500".to_string()),
            _ => None,
        };
        assert_eq!(
            ConnLimits::from_lookup(set).unwrap(),
            ConnLimits {
                max_connections: 8,
                header_read_timeout: Duration::from_millis(1500)
            }
        );
        let bad = |name: &str| (name == "PROCNET_MAX_CONNECTIONS").then(|| "0".to_string());
        let e = ConnLimits::from_lookup(bad).unwrap_err().to_string();
        assert!(e.contains("PROCNET_MAX_CONNECTIONS=\"0\""), "{e}");
        let bad = |name: &str| (name == "PROCNET_HEADER_TIMEOUT_MS").then(|| "soon".to_string());
        let e = ConnLimits::from_lookup(bad).unwrap_err().to_string();
        assert!(e.contains("milliseconds"), "{e}");
    }
}
