//! Fleet mode (`procnet serve --fleet URL`): the same UI and APIs, built
//! not from this machine's sockets but from what every host's procnet
//! exports to Prometheus (or anything that speaks its query API:
//! VictoriaMetrics, Thanos, Mimir). procnet keeps no fleet data of its
//! own: the engine stores it, keeps its history and answers `?at=` with
//! its `time=` parameter.
//!
//! - [`client`]: the query API's HTTP client (timeouts, credentials);
//! - [`query`]: the PromQL asked and the parsing of the answers (pure);
//! - [`join`]: the map from the answers (pure);
//! - [`serve`]: the producer that publishes the live map into the server's
//!   shared state, and the routes that answer `?at=` and `/api/changes`.

pub mod client;
pub mod history;
pub mod join;
pub mod query;
pub mod serve;

use axum::body::Bytes;
use client::{Auth, PromClient, QueryError};
use join::{FleetRows, FleetView};
use query::{AddressLabels, FlowLabels, ListenLabels};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

/// What `--fleet*` set.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The engine's root URL (`--fleet`).
    pub url: String,
    pub auth: Auth,
    /// Per-request timeout (`--fleet-timeout`).
    pub timeout: Duration,
    /// The `rate()` window (`--fleet-rate-window`, checked by
    /// [`query::parse_rate_window`]).
    pub rate_window: String,
}

/// The default `--fleet-timeout`: an engine that takes longer for two
/// instant queries is overloaded; the banner says so rather than the map
/// freezing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A moment at least this old is final in the engine and its view is
/// kept in the cache: a newer one may still be scraped, and
/// VictoriaMetrics hides its newest 30 s by default
/// (`-search.latencyOffset`).
pub const SETTLED_SECS: f64 = 30.0;

/// The most views the cache keeps, and the most bytes of their JSON.
pub const CACHE_VIEWS: usize = 64;
pub const CACHE_BYTES: usize = 64 << 20;

/// How long the found oldest moment is trusted (it moves only as the
/// engine's retention drops data), and how long "no data yet" is.
const OLDEST_TTL: Duration = Duration::from_secs(60);
const NO_DATA_TTL: Duration = Duration::from_secs(2);

/// Where the range search starts when the engine does not say its
/// retention: VictoriaMetrics's default `-retentionPeriod` (a month).
const DEFAULT_LOOKBACK_SECS: u64 = 31 * 86_400;

/// One instant's views and their JSON, serialized once.
pub struct CachedView {
    pub view: FleetView,
    pub graph_json: Bytes,
    pub connections_json: Bytes,
}

impl From<FleetView> for CachedView {
    fn from(view: FleetView) -> CachedView {
        CachedView::new(view)
    }
}

impl CachedView {
    fn new(view: FleetView) -> CachedView {
        CachedView {
            graph_json: Bytes::from(serde_json::to_vec(&view.graph).unwrap_or_default()),
            connections_json: Bytes::from(
                serde_json::to_vec(&view.connections).unwrap_or_default(),
            ),
            view,
        }
    }

    fn bytes(&self) -> usize {
        self.graph_json.len() + self.connections_json.len()
    }
}

/// The views of settled moments, by their step-aligned time (ms), the
/// least recently used first out.
#[derive(Default)]
struct ViewCache {
    views: VecDeque<(u64, Arc<CachedView>)>,
    bytes: usize,
}

impl ViewCache {
    fn get(&mut self, key: u64) -> Option<Arc<CachedView>> {
        let i = self.views.iter().position(|(k, _)| *k == key)?;
        let hit = self.views.remove(i)?;
        let view = hit.1.clone();
        self.views.push_back(hit);
        Some(view)
    }

    fn put(&mut self, key: u64, view: Arc<CachedView>) {
        if self.views.iter().any(|(k, _)| *k == key) {
            return;
        }
        self.bytes += view.bytes();
        self.views.push_back((key, view));
        while self.views.len() > CACHE_VIEWS || (self.bytes > CACHE_BYTES && self.views.len() > 1) {
            if let Some((_, old)) = self.views.pop_front() {
                self.bytes -= old.bytes();
            }
        }
    }
}

/// The moments the engine has fleet data for (seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Covered {
    pub oldest: f64,
    pub newest: f64,
}

/// A `?at=` outside the engine's data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutOfRange {
    pub at: f64,
    /// `None`: the engine has no fleet data at all.
    pub covered: Option<Covered>,
}

/// Why an instant cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum AtError {
    #[error(transparent)]
    Engine(#[from] QueryError),
    #[error("the moment is outside the engine's fleet data")]
    OutOfRange(OutOfRange),
}

/// The oldest moment with data (`None`: no data), and when it was found.
type Found = (Option<f64>, Instant);

/// The time bar's history: the covered range, the steps (ms) and the
/// activity strip.
pub struct Strip {
    pub covered: Covered,
    pub steps: Vec<u64>,
    pub activity: Vec<crate::history::changes::Activity>,
}

/// Reads fleet views from the engine. Cheap to clone (the client's pool
/// and the caches are shared).
#[derive(Clone)]
pub struct FleetReader {
    client: PromClient,
    /// The rate window, seconds.
    window: f64,
    /// The sampling interval: `?at=` is aligned to it.
    interval_ms: u64,
    cache: Arc<Mutex<ViewCache>>,
    /// The oldest moment with data (`None`: no data), and when it was found.
    oldest: Arc<Mutex<Option<Found>>>,
}

/// A query thread's answer.
fn joined<T>(h: ScopedJoinHandle<'_, Result<T, QueryError>>, url: &str) -> Result<T, QueryError> {
    h.join().unwrap_or_else(|_| {
        Err(QueryError::Unreachable {
            url: url.to_string(),
            reason: "the query thread failed".into(),
        })
    })
}

impl FleetReader {
    /// `interval`: the server's `--interval`, the step of the fleet's time.
    pub fn new(config: &FleetConfig, interval: Duration) -> FleetReader {
        let window = query::rate_window_secs(&config.rate_window).unwrap_or(60) as f64;
        FleetReader {
            client: PromClient::new(&config.url, &config.auth, config.timeout),
            window,
            interval_ms: (interval.as_millis() as u64).max(1),
            cache: Arc::default(),
            oldest: Arc::default(),
        }
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// The step of the fleet's time, ms.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// The fleet at `at` (seconds since the epoch): seven plain selectors
    /// evaluated at that instant (the byte counters also one rate window
    /// earlier), all asked at once; the slowest one sets the time. The
    /// join is [`join::build`].
    pub fn view_at(&self, at: f64, seq: u64) -> Result<FleetView, QueryError> {
        let started = Instant::now();
        let before = at - self.window;
        let c = &self.client;
        let url = c.url();
        std::thread::scope(|s| {
            // The engine keeps only the half-edges the join uses (every
            // client half, and the server halves whose client runs no
            // procnet) and only their flow labels: half the rows and a
            // third of the bytes of the plain selectors, whose JSON
            // encoding and decoding set the time at 10 hosts × 500 flows.
            let flows = |metric: &'static str, t: f64| {
                s.spawn(move || c.query::<FlowLabels>(&query::halves(metric), Some(t)))
            };
            let sent = flows(query::SENT, at);
            let received = flows(query::RECEIVED, at);
            let open = flows(query::OPEN, at);
            let sent_before = flows(query::SENT, before);
            let received_before = flows(query::RECEIVED, before);
            let listen = s.spawn(move || c.query::<ListenLabels>(query::LISTEN, Some(at)));
            let addresses = c.query::<AddressLabels>(query::ADDRESS, Some(at));
            let rows = FleetRows {
                sent: joined(sent, url)?,
                received: joined(received, url)?,
                open: joined(open, url)?,
                sent_before: joined(sent_before, url)?,
                received_before: joined(received_before, url)?,
                window: self.window,
                listen: joined(listen, url)?,
                addresses: addresses?,
                at,
            };
            let asked = started.elapsed();
            let view = join::build(&rows, seq);
            log::trace!(
                "view: queries {:.1} ms, join {:.1} ms",
                asked.as_secs_f64() * 1000.0,
                (started.elapsed() - asked).as_secs_f64() * 1000.0
            );
            Ok(view)
        })
    }

    /// `?at=`: the fleet at the step at or before `at`, from the cache
    /// when that moment was asked before (and is settled), else from the
    /// engine. A moment outside the engine's data is [`AtError::OutOfRange`].
    pub fn view_cached(&self, at: f64) -> Result<Arc<CachedView>, AtError> {
        self.check(at)?;
        let key = ((at * 1000.0).floor().max(0.0) as u64) / self.interval_ms * self.interval_ms;
        if let Some(v) = self.lock_cache().get(key) {
            return Ok(v);
        }
        let aligned = key as f64 / 1000.0;
        let view = Arc::new(CachedView::new(
            self.view_at(aligned, key / self.interval_ms)?,
        ));
        if aligned < now_secs() - SETTLED_SECS {
            self.lock_cache().put(key, view.clone());
        }
        Ok(view)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ViewCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Is `at` inside the engine's data (from the oldest moment to now and
    /// two intervals, as a single host's history allows)?
    pub fn check(&self, at: f64) -> Result<(), AtError> {
        let now = now_secs();
        let oldest = self.oldest()?;
        let slack = 2.0 * self.interval_ms as f64 / 1000.0;
        match oldest {
            Some(o) if at >= o && at <= now + slack => Ok(()),
            _ => Err(AtError::OutOfRange(OutOfRange {
                at,
                covered: oldest.map(|o| Covered {
                    oldest: o,
                    newest: now,
                }),
            })),
        }
    }

    /// The oldest moment with fleet data, found by narrowing
    /// ([`history::narrow`]) and then trusted for a while.
    pub fn oldest(&self) -> Result<Option<f64>, QueryError> {
        let mut slot = self.oldest.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((found, when)) = *slot {
            let ttl = if found.is_some() {
                OLDEST_TTL
            } else {
                NO_DATA_TTL
            };
            if when.elapsed() < ttl {
                return Ok(found);
            }
        }
        let now = now_secs();
        let lookback = self
            .client
            .retention_secs()
            .unwrap_or(DEFAULT_LOOKBACK_SECS) as f64;
        let found = history::narrow(
            (now - lookback).max(0.0),
            now,
            self.interval_ms as f64 / 1000.0,
            |(q, start, end, step)| self.client.query_range(&q, start, end, step),
        )?;
        *slot = Some((found, Instant::now()));
        Ok(found)
    }

    /// The covered range now: the oldest moment and the newest sample.
    pub fn covered(&self) -> Result<Option<Covered>, QueryError> {
        let Some(oldest) = self.oldest()? else {
            return Ok(None);
        };
        let newest = self
            .client
            .query::<AddressLabels>(&query::newest_sample(), None)?
            .first()
            .map_or(oldest, |(_, t)| *t);
        Ok(Some(Covered {
            oldest,
            newest: newest.max(oldest),
        }))
    }

    /// The time bar's steps and activity strip over the covered range
    /// ([`history`]); `None` when the engine has no fleet data.
    pub fn strip(&self, buckets: usize) -> Result<Option<Strip>, QueryError> {
        let Some(range) = self.covered()? else {
            return Ok(None);
        };
        let (oldest_ms, newest_ms) = (
            (range.oldest * 1000.0) as u64,
            (range.newest * 1000.0) as u64,
        );
        let steps = history::steps(
            oldest_ms,
            newest_ms,
            history::step_ms(oldest_ms, newest_ms, self.interval_ms),
        );
        let cut = history::stretches(oldest_ms, newest_ms, buckets);
        let width = cut.0 as f64 / 1000.0;
        let (start, end) = (
            oldest_ms as f64 / 1000.0,
            (oldest_ms + cut.0 * cut.1 as u64) as f64 / 1000.0,
        );
        let c = &self.client;
        let (edges, totals) = std::thread::scope(|s| {
            let edges =
                s.spawn(move || c.query_range(&query::open_halves_count(), start, end, width));
            let totals = c.query_range(&query::bytes_total(), start, end, width);
            (joined(edges, c.url()), totals)
        });
        let activity = history::activity(oldest_ms, cut, &edges?, &totals?, &steps);
        Ok(Some(Strip {
            covered: range,
            steps,
            activity,
        }))
    }
}

/// Seconds since the epoch, now.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A bad `?at=` / `from=` / `to=`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a time: give seconds since the Unix epoch (e.g. 1795532400 or 1795532400.5) or an RFC 3339 UTC time (e.g. 2026-11-24T15:00:00Z)")]
pub struct BadTime {
    pub value: String,
}

/// Parses a time parameter: Unix seconds or RFC 3339.
pub fn parse_time(value: &str) -> Result<f64, BadTime> {
    let v = value.trim();
    let bad = || BadTime {
        value: value.to_string(),
    };
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then_some(secs)
            .ok_or_else(bad);
    }
    let t = humantime::parse_rfc3339_weak(v).map_err(|_| bad())?;
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(edges: usize) -> Arc<CachedView> {
        let mut v = FleetView::default();
        v.graph.p2p_hidden_edges = Some(edges as u32);
        Arc::new(CachedView::new(v))
    }

    #[test]
    fn the_view_cache_keeps_the_recently_used_within_its_bounds() {
        let mut c = ViewCache::default();
        for k in 0..(CACHE_VIEWS as u64 + 5) {
            c.put(k, view(k as usize));
        }
        assert_eq!(c.views.len(), CACHE_VIEWS);
        assert!(c.get(0).is_none(), "the oldest went first");
        // A hit is used again: the next eviction takes another.
        assert!(c.get(5).is_some());
        c.put(1_000, view(1));
        assert!(c.get(5).is_some() && c.get(6).is_none());
        let bytes: usize = c.views.iter().map(|(_, v)| v.bytes()).sum();
        assert_eq!(c.bytes, bytes);
        // A repeated key keeps the first view.
        let first = c.get(7).unwrap();
        c.put(7, view(99));
        assert!(Arc::ptr_eq(&first, &c.get(7).unwrap()));
    }

    #[test]
    fn times_are_epoch_seconds_or_rfc3339() {
        assert_eq!(parse_time("1795532400.5"), Ok(1_795_532_400.5));
        assert_eq!(parse_time("2026-11-24T15:00:00Z"), Ok(1_795_532_400.0));
        for bad in ["yesterday", "-5", "NaN", ""] {
            let e = parse_time(bad).unwrap_err();
            assert!(e.to_string().contains("RFC 3339"), "{e}");
        }
    }
}
