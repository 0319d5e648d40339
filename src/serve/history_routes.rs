//! The history routes: `/api/graph?at=T`, `/api/connections?at=T`,
//! `/api/history`, `/api/changes?from=&to=`, `/api/flows?since=&until=`.
//!
//! A handler takes what it needs from the store under its lock (blocks are
//! reference-counted, nothing is copied) and rebuilds samples on a blocking
//! thread. A time outside the kept range is a 416 whose body gives the
//! range, never an empty graph.

// A helper's error here is the early response itself: boxing it would
// only move the same bytes to the heap on a path taken once per request.
#![allow(clippy::result_large_err)]

use crate::graph::query::{ConnectionRows, PageQuery};
use crate::graph::{build_connections, GraphOptions, Inputs};
use crate::history::changes::{activity, changes};
use crate::history::replay::graph_of;
use crate::history::store::{AtSample, Located};
use crate::history::time::{parse_time_ms, parse_time_or_ago_ms, rfc3339_ms};
use crate::history::{FlowRecord, OutOfRange};
use crate::rules::RuleSet;
use crate::serve::assets::NO_STORE;
use crate::serve::routes::AppState;
use crate::serve::Shared;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// The default and largest page of `/api/flows`.
pub const FLOWS_PAGE: usize = 1000;
pub const FLOWS_PAGE_MAX: usize = 10_000;
/// The default number of stretches of `/api/history`'s activity strip.
pub const ACTIVITY_BUCKETS: usize = 120;

/// A query parameter, first occurrence.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, NO_STORE),
        ],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

pub(crate) fn bad_request(msg: String) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": msg }),
    )
}

fn rfc(ms: Option<u64>) -> Option<String> {
    ms.map(rfc3339_ms)
}

/// The 416 for a time outside history.
fn out_of_range(e: OutOfRange) -> Response {
    json_response(
        StatusCode::RANGE_NOT_SATISFIABLE,
        &serde_json::json!({
            "error": format!(
                "{} is outside the kept history; ask for a time from oldest to newest",
                rfc3339_ms(e.at_ms)
            ),
            "at": rfc3339_ms(e.at_ms),
            "oldest": rfc(e.oldest_ms),
            "newest": rfc(e.newest_ms),
            "oldestMs": e.oldest_ms,
            "newestMs": e.newest_ms,
        }),
    )
}

fn internal(msg: String) -> Response {
    log::error!("history: {msg}");
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &serde_json::json!({ "error": msg }),
    )
}

/// The rules and options the server builds with now.
fn build_settings(shared: &Shared) -> (RuleSet, GraphOptions) {
    let p = shared.read();
    match &p.latest {
        Some(l) => (l.rules.clone(), l.options.clone()),
        None => (RuleSet::default(), GraphOptions::default()),
    }
}

fn locate(shared: &Shared, at: &str) -> Result<Located, Response> {
    let at_ms = parse_time_ms(at).map_err(|e| bad_request(format!("at: {e}")))?;
    shared.history().locate(at_ms).map_err(out_of_range)
}

/// Rebuilds on a blocking thread.
async fn rebuilt<T: Send + 'static>(
    shared: Arc<Shared>,
    located: Vec<Located>,
    f: impl FnOnce(&Shared, Vec<AtSample>) -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(move || {
        let samples = located
            .iter()
            .map(Located::rebuild)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok::<T, String>(f(&shared, samples))
    })
    .await
    .map_err(|e| internal(format!("a history query failed: {e}")))?
    .map_err(internal)
}

/// `/api/graph?at=T`: the graph served for the last sample at or before T.
pub async fn graph_at(state: &AppState, at: &str) -> Response {
    let located = match locate(&state.shared, at) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let doc = rebuilt(state.shared.clone(), vec![located], |shared, s| {
        let (rules, options) = build_settings(shared);
        graph_of(&s[0], &rules, &options)
    })
    .await;
    match doc {
        Ok(doc) => json_response(StatusCode::OK, &doc),
        Err(r) => r,
    }
}

/// `/api/connections?at=T`.
/// With `page`, one page of them ([`crate::graph::query`]), as live.
pub async fn connections_at(state: &AppState, at: &str, page: Option<PageQuery>) -> Response {
    let located = match locate(&state.shared, at) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let doc = rebuilt(state.shared.clone(), vec![located], |shared, s| {
        let (rules, options) = build_settings(shared);
        build_connections(&Inputs {
            snapshot: &s[0].snapshot,
            rules: &rules,
            options: &options,
            containers: &s[0].containers,
            traffic: None,
        })
    })
    .await;
    match (doc, page) {
        (Ok(doc), None) => json_response(StatusCode::OK, &doc),
        (Ok(doc), Some(page)) => {
            json_response(StatusCode::OK, &ConnectionRows::new(doc).page(&page))
        }
        (Err(r), _) => r,
    }
}

/// `/api/history`: the kept range, its size, and the activity strip.
pub async fn history(state: &AppState, query: Option<&str>) -> Response {
    let buckets = match param(query, "buckets").map(|b| b.parse::<usize>()) {
        None => ACTIVITY_BUCKETS,
        Some(Ok(b)) if (1..=10_000).contains(&b) => b,
        Some(_) => return bad_request("buckets: give a number from 1 to 10000".into()),
    };
    let shared = &state.shared;
    let (metas, usage, oldest, newest, interval_ms) = {
        let h = shared.history();
        (
            h.metas(),
            h.usage(),
            h.oldest_ms(),
            h.newest_ms(),
            shared.interval.as_millis() as u64,
        )
    };
    let warnings = shared
        .history_warnings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let recording = shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some();
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "live": !shared.replay,
            "recording": recording,
            "oldest": rfc(oldest),
            "newest": rfc(newest),
            "oldestMs": oldest,
            "newestMs": newest,
            "intervalMs": interval_ms,
            "samples": usage.samples,
            "bytes": usage.bytes,
            "capBytes": usage.cap_bytes,
            "blocks": usage.blocks,
            "droppedBlocks": usage.dropped_blocks,
            "flows": usage.flows,
            "warnings": warnings,
            "seqs": metas.iter().map(|m| [m.at_ms, m.seq]).collect::<Vec<_>>(),
            "activity": activity(&metas, buckets),
        }),
    )
}

/// `/api/changes?from=T1&to=T2` (`to` defaults to the newest sample).
pub async fn changes_between(state: &AppState, query: Option<&str>) -> Response {
    let Some(from) = param(query, "from") else {
        return bad_request("from: give the earlier time (RFC 3339 or Unix seconds)".into());
    };
    let to = param(query, "to");
    let shared = &state.shared;
    let a = match locate(shared, &from) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let b = match to {
        Some(t) => match locate(shared, &t) {
            Ok(l) => l,
            Err(r) => return r,
        },
        None => {
            let newest = shared.history().newest_ms().unwrap_or(0);
            match shared.history().locate(newest) {
                Ok(l) => l,
                Err(e) => return out_of_range(e),
            }
        }
    };
    let closed = shared
        .history()
        .flows(a.meta.at_ms.saturating_add(1), b.meta.at_ms)
        .len();
    let doc = rebuilt(shared.clone(), vec![a, b], move |shared, s| {
        let (rules, options) = build_settings(shared);
        changes(
            &graph_of(&s[0], &rules, &options),
            &graph_of(&s[1], &rules, &options),
            closed,
        )
    })
    .await;
    match doc {
        Ok(doc) => json_response(StatusCode::OK, &doc),
        Err(r) => r,
    }
}

/// The page of `/api/flows`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlowsPage<'a> {
    since: Option<String>,
    until: Option<String>,
    total: usize,
    offset: usize,
    limit: usize,
    flows: &'a [FlowRecord],
}

/// `/api/flows?since=&until=&limit=&offset=`: closed connections that ended
/// in the window, oldest first; NDJSON with `Accept: application/x-ndjson`
/// (the total in `X-Total-Count`).
pub async fn flows(state: &AppState, query: Option<&str>, headers: &HeaderMap) -> Response {
    let shared = &state.shared;
    let now = crate::collect::now_ms();
    let time = |name: &str| -> Result<Option<u64>, Response> {
        param(query, name)
            .map(|v| parse_time_or_ago_ms(&v, now).map_err(|e| bad_request(format!("{name}: {e}"))))
            .transpose()
    };
    let number = |name: &str, default: usize, max: usize| -> Result<usize, Response> {
        match param(query, name) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(bad_request(format!(
                    "{name}: give a number from 0 to {max}"
                ))),
            },
        }
    };
    let (since, until, limit, offset) = match (
        time("since"),
        time("until"),
        number("limit", FLOWS_PAGE, FLOWS_PAGE_MAX),
        number("offset", 0, usize::MAX),
    ) {
        (Ok(s), Ok(u), Ok(l), Ok(o)) => (s, u, l, o),
        (Err(r), ..) | (_, Err(r), ..) | (_, _, Err(r), _) | (.., Err(r)) => return r,
    };
    let all = {
        let h = shared.history();
        let (oldest, newest) = (h.oldest_ms(), h.newest_ms());
        let grace = h.config().grace.as_millis() as u64;
        // Only a window wholly outside history is a 416: `since=1h` with
        // ten minutes kept gives those ten minutes.
        let outside = match (oldest, newest) {
            (Some(o), Some(n)) => {
                until.is_some_and(|u| u < o) || since.is_some_and(|s| s > n + grace)
            }
            _ => true,
        };
        if outside {
            return out_of_range(OutOfRange {
                at_ms: since.or(until).unwrap_or(now),
                oldest_ms: oldest,
                newest_ms: newest,
            });
        }
        h.flows(since.unwrap_or(0), until.unwrap_or(u64::MAX))
    };
    let total = all.len();
    let page: &[FlowRecord] = all.get(offset.min(total)..).unwrap_or(&[]);
    let page = &page[..limit.min(page.len())];
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    if ndjson {
        let mut body = Vec::new();
        for f in page {
            body.extend(serde_json::to_vec(f).unwrap_or_default());
            body.push(b'\n');
        }
        return (
            [
                (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
                (header::CACHE_CONTROL, NO_STORE.to_string()),
                (
                    header::HeaderName::from_static("x-total-count"),
                    total.to_string(),
                ),
            ],
            body,
        )
            .into_response();
    }
    json_response(
        StatusCode::OK,
        &FlowsPage {
            since: rfc(since),
            until: rfc(until),
            total,
            offset,
            limit,
            flows: page,
        },
    )
}
