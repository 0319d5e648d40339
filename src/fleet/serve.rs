//! Fleet mode inside `procnet serve`: a producer thread that asks the
//! engine for the live map every interval and publishes it where the
//! local sampler would (so `/api/graph`, `/api/events` and `/healthz` work
//! unchanged), and routes that answer `?at=`, `/api/connections` and
//! `/api/changes` by asking the engine for that instant.
//!
//! A down or slow engine never takes the server down and never shows an
//! empty map as the truth: the last map stays, `/healthz` says `degraded`
//! with the reason, and the UI's warning banner says the engine cannot be
//! reached and how old the map is.

use super::client::QueryError;
use super::{now_secs, parse_time, AtError, CachedView, FleetReader, OutOfRange};
use crate::graph::diff::diff;
use crate::graph::model::GraphDoc;
use crate::history::time::rfc3339_ms;
use crate::serve::history_routes::ACTIVITY_BUCKETS;
use crate::serve::routes::{guard, AppState};
use crate::serve::views::SampleViews;
use crate::serve::{status_json, Shared, StreamMessage};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// `/healthz`'s `fleet` part: the engine's state, without its address or
/// anything it answered (healthz needs no token).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetHealth {
    /// `starting`, `ok`, `timeout`, `unreachable`, `unauthorized` or
    /// `bad-answer`.
    pub engine: &'static str,
    /// When the engine last answered, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_answer_at: Option<String>,
    /// How long the last good pair of queries took.
    pub last_query_ms: f64,
    pub failed_queries: u64,
}

/// Short, address-free name of a failure, for `/healthz`.
fn engine_state(e: &QueryError) -> &'static str {
    match e {
        QueryError::Timeout { .. } => "timeout",
        QueryError::Unreachable { .. } => "unreachable",
        QueryError::Unauthorized { .. } => "unauthorized",
        QueryError::Answer { .. } => "bad-answer",
    }
}

/// What the routes share with the producer.
pub struct FleetState {
    pub shared: Arc<Shared>,
    pub reader: FleetReader,
    /// The live `/api/connections` JSON, from the producer's last answer.
    connections: RwLock<Bytes>,
}

impl FleetState {
    pub fn new(shared: Arc<Shared>, reader: FleetReader) -> Arc<FleetState> {
        Arc::new(FleetState {
            shared,
            reader,
            connections: RwLock::new(Bytes::from_static(b"{\"listeners\":[],\"connections\":[]}")),
        })
    }
}

/// The banner text for a failure: what is wrong, where, and what the map
/// shows meanwhile.
fn banner(e: &QueryError, last_ok: Option<(&str, Instant)>) -> String {
    match last_ok {
        Some((at, when)) => format!(
            "Fleet: {e}. The map is the last answer, from {at} ({} s ago), not the fleet now.",
            when.elapsed().as_secs()
        ),
        None => format!(
            "Fleet: {e}. No answer yet: the map is empty because nothing is known, not because nothing talks."
        ),
    }
}

/// Runs until the server stops: every `interval`, the live map.
pub fn run_producer(state: Arc<FleetState>, interval: Duration) {
    let shared = &state.shared;
    let mut seq: u64 = 0;
    let mut prev: Option<Arc<GraphDoc>> = None;
    let mut last_ok: Option<(String, Instant)> = None;
    let mut last_banner: Option<String> = None;
    let mut failed: u64 = 0;
    shared.write().health.fleet = Some(FleetHealth {
        engine: "starting",
        ..FleetHealth::default()
    });
    while !shared.stopping.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = state.reader.view_at(now_secs(), seq + 1);
        let took = started.elapsed();
        let banner_now = match result {
            Ok(view) => {
                seq += 1;
                let graph = Arc::new(view.graph);
                let graph_json = Bytes::from(serde_json::to_vec(&*graph).unwrap_or_default());
                let conns = Bytes::from(serde_json::to_vec(&view.connections).unwrap_or_default());
                *state.connections.write().unwrap_or_else(|e| e.into_inner()) = conns;
                let message = prev
                    .as_ref()
                    .map(|p| diff(p, &graph))
                    .filter(|d| !d.is_empty());
                {
                    let mut p = shared.write();
                    let now = Instant::now();
                    p.last_sample = Some(now);
                    p.last_beat = Some(now);
                    p.views = Arc::new(SampleViews::new(
                        None,
                        graph_json.clone(),
                        Bytes::from_static(b"[]"),
                    ));
                    p.health.seq = seq;
                    p.health.samples += 1;
                    p.health.last_sample_at = Some(graph.timestamp.clone());
                    p.health.last_sample_ms = took.as_secs_f64() * 1000.0;
                    p.health.last_error = None;
                    p.health.status = "ok";
                    p.health.collector.backend = "prometheus".into();
                    p.health.collector.warnings.clear();
                    p.health.fleet = Some(FleetHealth {
                        engine: "ok",
                        last_answer_at: Some(graph.timestamp.clone()),
                        last_query_ms: took.as_secs_f64() * 1000.0,
                        failed_queries: failed,
                    });
                    p.graph = graph.clone();
                    p.graph_json = graph_json;
                }
                if let Some(d) = message {
                    let _ = shared.events.send(Arc::new(StreamMessage {
                        event: "diff",
                        seq: d.seq,
                        data: serde_json::to_string(&d).unwrap_or_default(),
                    }));
                }
                last_ok = Some((graph.timestamp.clone(), Instant::now()));
                prev = Some(graph);
                None
            }
            Err(e) => {
                failed += 1;
                let text = banner(&e, last_ok.as_ref().map(|(a, w)| (a.as_str(), *w)));
                if last_banner.is_none() {
                    log::error!("{e}; keeping the last map");
                }
                let mut p = shared.write();
                p.last_beat = Some(Instant::now());
                p.health.failed_samples += 1;
                p.health.status = "degraded";
                p.health.last_error = Some(format!(
                    "fleet: no answer from the engine ({})",
                    engine_state(&e)
                ));
                p.health.collector.backend = "prometheus".into();
                p.health.collector.warnings = vec![text.clone()];
                let fleet = p.health.fleet.get_or_insert_with(FleetHealth::default);
                fleet.engine = engine_state(&e);
                fleet.failed_queries = failed;
                Some(text)
            }
        };
        // The banner changes: tell the open pages (once a second at most
        // while the engine is down, as the age in the text grows).
        if banner_now != last_banner {
            let status = status_json(&shared.read().health);
            let _ = shared.events.send(Arc::new(StreamMessage {
                event: "status",
                seq: 0,
                data: status,
            }));
            if banner_now.is_none() && last_banner.is_some() {
                log::info!("{} answers again", state.reader.url());
            }
        }
        last_banner = banner_now;
        // Never keep the engine busy more than half the time: a pair of
        // queries that took longer than the interval waits as long again.
        sleep_until(shared, (started + interval).max(Instant::now() + took));
    }
}

fn sleep_until(shared: &Shared, deadline: Instant) {
    while !shared.stopping.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
    }
}

/// The fleet routes in front of the usual ones (which serve the page,
/// the live `/api/graph`'s events, `/metrics` and `/healthz`), behind the
/// same guard.
pub fn router(state: Arc<FleetState>, app: AppState, base: Router) -> Router {
    Router::new()
        .route("/api/graph", get(graph))
        .route("/api/connections", get(connections))
        .route("/api/changes", get(changes))
        .route("/api/history", get(history))
        .route_layer(middleware::from_fn_with_state(app, guard))
        .with_state(state)
        .fallback_service(base)
}

/// A response that no cache keeps (every fleet document is of its moment).
fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.into(),
    )
        .into_response()
}

fn text(status: StatusCode, body: String) -> Response {
    respond(status, "text/plain; charset=utf-8", body)
}

fn json_with(status: StatusCode, body: Bytes) -> Response {
    respond(status, "application/json", body)
}

fn json(body: Bytes) -> Response {
    json_with(StatusCode::OK, body)
}

/// A failed request, turned into a response at the end.
enum Failure {
    /// A status and its `text/plain` message.
    Text(StatusCode, String),
    /// A moment outside the engine's data: the 416 a single host answers
    /// (`{error, at, oldest, newest, oldestMs, newestMs}`).
    OutOfRange(OutOfRange),
}

fn fail(f: Failure) -> Response {
    match f {
        Failure::Text(status, body) => text(status, body),
        Failure::OutOfRange(e) => {
            let ms = |s: f64| (s.max(0.0) * 1000.0) as u64;
            let oldest = e.covered.map(|c| ms(c.oldest));
            let newest = e.covered.map(|c| ms(c.newest));
            let error = match e.covered {
                Some(_) => format!(
                    "{} is outside the engine's fleet data; ask for a time from oldest to newest",
                    rfc3339_ms(ms(e.at))
                ),
                None => {
                    "the engine has no fleet data yet: no host's procnet has been scraped".into()
                }
            };
            let body = serde_json::json!({
                "error": error,
                "at": rfc3339_ms(ms(e.at)),
                "oldest": oldest.map(rfc3339_ms),
                "newest": newest.map(rfc3339_ms),
                "oldestMs": oldest,
                "newestMs": newest,
            });
            json_with(
                StatusCode::RANGE_NOT_SATISFIABLE,
                Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
            )
        }
    }
}

/// A time parameter, or the 400 that says what is wrong with it.
fn time_param(params: &HashMap<String, String>, name: &str) -> Result<Option<f64>, Failure> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => parse_time(v)
            .map(Some)
            .map_err(|e| Failure::Text(StatusCode::BAD_REQUEST, format!("procnet: {name}: {e}\n"))),
    }
}

/// Asks the engine off the async workers.
async fn ask<T: Send + 'static>(
    state: &Arc<FleetState>,
    f: impl FnOnce(&FleetReader) -> Result<T, AtError> + Send + 'static,
) -> Result<T, Failure> {
    let reader = state.reader.clone();
    match tokio::task::spawn_blocking(move || f(&reader)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(AtError::Engine(e))) => Err(Failure::Text(
            StatusCode::BAD_GATEWAY,
            format!("procnet: {e}\n"),
        )),
        Ok(Err(AtError::OutOfRange(e))) => Err(Failure::OutOfRange(e)),
        Err(_) => Err(Failure::Text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "procnet: the fleet query failed (see the server log)\n".into(),
        )),
    }
}

/// `/api/graph[?at=T]` and `/api/connections[?at=T]`: live from the
/// producer, or the engine at `T` (cached per step once settled).
async fn document(
    state: Arc<FleetState>,
    params: HashMap<String, String>,
    live: impl FnOnce(&FleetState) -> Bytes,
    pick: fn(&CachedView) -> Bytes,
) -> Response {
    match time_param(&params, "at") {
        Err(f) => fail(f),
        Ok(None) => json(live(&state)),
        Ok(Some(at)) => match ask(&state, move |r| r.view_cached(at)).await {
            Ok(v) => json(pick(&v)),
            Err(f) => fail(f),
        },
    }
}

async fn graph(
    State(state): State<Arc<FleetState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    document(
        state,
        params,
        |s| s.shared.read().graph_json.clone(),
        |v| v.graph_json.clone(),
    )
    .await
}

async fn connections(
    State(state): State<Arc<FleetState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    document(
        state,
        params,
        |s| {
            s.connections
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        },
        |v| v.connections_json.clone(),
    )
    .await
}

/// `/api/changes?from=T1&to=T2` (`to` defaults to now): what changed
/// between the two instants, in the shape of a single host's
/// `/api/changes` (new and vanished edges, bytes per edge and process in
/// between; `closedConnections` is 0: the fleet series do not count them).
async fn changes(
    State(state): State<Arc<FleetState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (from, to) = match (time_param(&params, "from"), time_param(&params, "to")) {
        (Ok(Some(f)), Ok(t)) => (f, t),
        (Ok(None), _) => {
            return text(
                StatusCode::BAD_REQUEST,
                "procnet: /api/changes needs from=T (and optionally to=T): seconds since the Unix epoch or RFC 3339\n".into(),
            )
        }
        (Err(f), _) | (_, Err(f)) => return fail(f),
    };
    let to_or_now = to.unwrap_or_else(now_secs);
    match ask(&state, move |r| {
        let a = r.view_cached(from)?;
        let b = match to {
            Some(t) => r.view_cached(t)?,
            None => Arc::new(CachedView::from(r.view_at(to_or_now, 0)?)),
        };
        Ok((a, b))
    })
    .await
    {
        Ok((a, b)) => {
            // The same document as a single host's `/api/changes`; the
            // closed connections in between are not in the fleet series.
            let mut c = crate::history::changes::changes(&a.view.graph, &b.view.graph, 0);
            c.from = rfc3339_ms((from * 1000.0) as u64);
            c.to = rfc3339_ms((to_or_now * 1000.0) as u64);
            json(Bytes::from(serde_json::to_vec(&c).unwrap_or_default()))
        }
        Err(f) => fail(f),
    }
}

/// `/api/history[?buckets=N]`: the engine's covered range, the steps and
/// the activity strip, in the shape of a single host's (docs/contract.md);
/// the fields about procnet's own store (`bytes`, `capBytes`, `blocks`,
/// `droppedBlocks`, `flows`) are 0: the engine keeps the fleet's history.
async fn history(
    State(state): State<Arc<FleetState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let buckets = match params.get("buckets").map(|b| b.parse::<usize>()) {
        None => ACTIVITY_BUCKETS,
        Some(Ok(b)) if (1..=10_000).contains(&b) => b,
        Some(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "procnet: buckets: give a number from 1 to 10000\n".into(),
            )
        }
    };
    let interval_ms = state.reader.interval_ms();
    match ask(&state, move |r| Ok(r.strip(buckets)?)).await {
        Ok(strip) => {
            let (range, steps, activity) = match strip {
                Some(s) => (Some(s.covered), s.steps, s.activity),
                None => (None, Vec::new(), Vec::new()),
            };
            let ms = |s: f64| (s.max(0.0) * 1000.0) as u64;
            let oldest = range.map(|c| ms(c.oldest));
            let newest = range.map(|c| ms(c.newest));
            let body = serde_json::json!({
                "live": true,
                "recording": false,
                "oldest": oldest.map(rfc3339_ms),
                "newest": newest.map(rfc3339_ms),
                "oldestMs": oldest,
                "newestMs": newest,
                "intervalMs": interval_ms,
                "samples": steps.len(),
                "bytes": 0,
                "capBytes": 0,
                "blocks": 0,
                "droppedBlocks": 0,
                "flows": 0,
                "warnings": Vec::<String>::new(),
                "seqs": steps.iter().map(|t| [*t, *t / interval_ms]).collect::<Vec<_>>(),
                "activity": activity,
            });
            json(Bytes::from(serde_json::to_vec(&body).unwrap_or_default()))
        }
        Err(f) => fail(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_says_what_failed_and_what_the_map_is() {
        let e = QueryError::Unreachable {
            url: "http://prom:9090".into(),
            reason: "connection refused".into(),
        };
        let first = banner(&e, None);
        assert!(
            first.contains("http://prom:9090") && first.contains("No answer yet"),
            "{first}"
        );
        let later = banner(&e, Some(("2026-11-24T15:00:00Z", Instant::now())));
        assert!(
            later.contains("from 2026-11-24T15:00:00Z") && later.contains("not the fleet now"),
            "{later}"
        );
        assert_eq!(engine_state(&e), "unreachable");
    }
}
