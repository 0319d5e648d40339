//! HTTP routes. Handlers only read what the sampler published.

use crate::graph::query::PageQuery;
use crate::serve::assets::{self, NO_STORE};
use crate::serve::diff_wire;
use crate::serve::history_routes;
use crate::serve::icons;
use crate::serve::pages::PageRows;
use crate::serve::recent_rates;
use crate::serve::security::{login_redirect, token_cookie, Guard, RequestFacts, Verdict};
use crate::serve::views::{self, accepts_gzip, Encoding, View, MIN_COMPRESS_BYTES};
use crate::serve::{metrics, status_json, ServeConfig, Shared};
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::wrappers::BroadcastStream;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub shared: Arc<Shared>,
    pub guard: Arc<Guard>,
    pub icons_dir: Option<Arc<PathBuf>>,
    /// Rows that pages of `/api/connections` are cut from.
    pub page_rows: Arc<PageRows>,
}

/// All routes, behind the guard.
pub fn router(shared: Arc<Shared>, config: &ServeConfig) -> Router {
    let state = AppState {
        shared,
        guard: Arc::new(Guard {
            bind: config.bind,
            token: config.token.clone(),
        }),
        icons_dir: config.icons_dir.clone().map(Arc::new),
        page_rows: Arc::default(),
    };
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/api/graph", get(graph))
        .route("/api/connections", get(connections))
        .route("/api/traffic", get(traffic))
        .route("/api/history", get(history))
        .route("/api/changes", get(changes))
        .route("/api/flows", get(flows))
        .route("/api/rates", get(rates))
        .route("/api/events", get(events))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/icons/{file}", get(icon))
        .route("/api/icons", get(icon_index))
        .route("/assets/{*path}", get(asset))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The request guard: [`RequestFacts`] and [`Guard::check`] decide (pure,
/// in `security.rs`); this only turns the verdict into a response.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (verdict, redirect) = {
        let facts = RequestFacts::new(request.uri(), request.headers());
        let verdict = state.guard.check(&facts);
        // Drop the token from the address bar (and from history).
        let redirect = (verdict == Verdict::AllowAndSetCookie && facts.is_page())
            .then(|| login_redirect(facts.path, facts.query));
        (verdict, redirect)
    };
    match verdict {
        Verdict::Allow => next.run(request).await,
        Verdict::AllowAndSetCookie => {
            let cookie = state
                .guard
                .token
                .as_deref()
                .and_then(|t| HeaderValue::from_str(&token_cookie(t)).ok());
            let mut response = match redirect {
                Some(target) => (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response(),
                None => next.run(request).await,
            };
            if let Some(c) = cookie {
                response.headers_mut().append(header::SET_COOKIE, c);
            }
            response
        }
        Verdict::BadRequest(why) => plain(StatusCode::BAD_REQUEST, why),
        Verdict::BadHost => plain(
            StatusCode::MISDIRECTED_REQUEST,
            "procnet: this Host is not served here (DNS-rebinding protection); open the page through localhost or 127.0.0.1\n",
        ),
        Verdict::CrossOrigin => plain(StatusCode::FORBIDDEN, "procnet: cross-origin requests are refused\n"),
        Verdict::Unauthorized => {
            let mut r = plain(
                StatusCode::UNAUTHORIZED,
                "procnet: a token is required: send `Authorization: Bearer <token>` or open /?token=<token> once\n",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"procnet\""));
            r
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, NO_STORE),
        ],
        text,
    )
        .into_response()
}

fn json(bytes: axum::body::Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, NO_STORE),
        ],
        bytes,
    )
        .into_response()
}

async fn index() -> Response {
    serve_asset("index.html")
}

async fn asset(UrlPath(path): UrlPath<String>) -> Response {
    serve_asset(&format!("assets/{path}"))
}

fn serve_asset(path: &str) -> Response {
    match assets::find(path) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, assets::content_type(a.path)),
                (header::CACHE_CONTROL, assets::cache_control(a.path)),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.bytes,
        )
            .into_response(),
        None => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// `/api/graph`: made by the sampler; gzip made once per sample for all
/// clients that accept it.
/// With `?at=T`, the graph of that moment from history.
async fn graph(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(at) = history_routes::param(query.as_deref(), "at") {
        return history_routes::graph_at(&state, &at).await;
    }
    view(&state, View::Graph, &headers).await
}

/// `/api/connections`: built from the last sample on the first request
/// after it (off the async workers), once for all concurrent requests, then
/// served from the sample's cache until the next sample.
/// With `?at=T`, the connections of that moment from history (paged too,
/// with the parameters below).
///
/// With any of `rows`, `q`, `sort`, `limit`, `offset` it answers one page
/// ([`crate::graph::query`]), cut from rows built once per sample and
/// shared by every page request of that sample; bad values are a `400`
/// that says which parameter and what is accepted.
async fn connections(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (at, pairs): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == "at");
    match (PageQuery::parse(&pairs), at.first()) {
        (Ok(query), Some((_, at))) => history_routes::connections_at(&state, at, query).await,
        (Ok(None), None) => view(&state, View::Connections, &headers).await,
        (Ok(Some(query)), None) => connections_page(&state, query, accepts_gzip(&headers)).await,
        (Err(e), _) => (
            StatusCode::BAD_REQUEST,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, NO_STORE),
            ],
            format!("procnet: /api/connections: {e}\n"),
        )
            .into_response(),
    }
}

/// One page of `/api/connections`, cut (and sorted, the first time for a
/// sort key) off the async workers from the rows [`PageRows`] picks.
async fn connections_page(state: &AppState, query: PageQuery, gzip: bool) -> Response {
    let failed = || {
        plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "procnet: could not build this page (see the server log)\n",
        )
    };
    let Some(rows) = state.page_rows.rows(&state.shared).await else {
        return failed();
    };
    let page = tokio::task::spawn_blocking(move || {
        let body = serde_json::to_vec(&rows.page(&query)).unwrap_or_default();
        // A page is made for one request: compressed here when it pays.
        if gzip && body.len() >= MIN_COMPRESS_BYTES {
            (views::gzip(&body), true)
        } else {
            (body.into(), false)
        }
    });
    match page.await {
        Ok((body, gzipped)) => {
            let mut r = json(body);
            let h = r.headers_mut();
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            if gzipped {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            r
        }
        Err(_) => failed(),
    }
}

async fn history(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    history_routes::history(&state, query.as_deref()).await
}

async fn changes(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    history_routes::changes_between(&state, query.as_deref()).await
}

async fn flows(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    history_routes::flows(&state, query.as_deref(), &headers).await
}

/// `/api/traffic`: per process and interface, bytes received and sent
/// since procnet started (netprocmon's `{pid, interface, recv, send}`).
/// `GET /api/rates?id=…&id=…`: the last minutes of these nodes' and
/// edges' rates (Top talkers sparklines).
async fn rates(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    match recent_rates::asked_ids(query.as_deref()) {
        Ok(ids) => {
            let doc = state
                .shared
                .recent_rates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .query(ids.iter().map(String::as_str));
            history_routes::json_response(StatusCode::OK, &doc)
        }
        Err(why) => history_routes::bad_request(why),
    }
}

async fn traffic(State(state): State<AppState>, headers: HeaderMap) -> Response {
    view(&state, View::Traffic, &headers).await
}

/// One view of the last sample, in the encoding the client accepts. The
/// bytes are shared by every response of this sample, never copied.
async fn view(state: &AppState, which: View, headers: &HeaderMap) -> Response {
    let encoding = if accepts_gzip(headers) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let views = state.shared.read().views.clone();
    let ready = views.ready(which, encoding);
    let (bytes, encoding) = match ready {
        Some(r) => r,
        None => {
            let shared = state.shared.clone();
            let build = tokio::task::spawn_blocking(move || {
                views.get(which, encoding, &shared.view_counters)
            });
            match build.await {
                Ok(r) => r,
                Err(_) => {
                    return plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "procnet: could not build this view (see the server log)\n",
                    )
                }
            }
        }
    };
    let mut r = json(bytes);
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if encoding == Encoding::Gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// `/healthz`: 200 while sampling works (or is starting), 503 when the
/// last sample failed, the sampler just panicked, or no sample finished
/// within 3 intervals. Needs no token (see the module docs of `serve`).
async fn healthz(State(state): State<AppState>) -> Response {
    let health = state.shared.health_at(std::time::Instant::now());
    let status = if health.status == "ok" || health.status == "starting" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_vec(&health).unwrap_or_default();
    let mut r = json(body.into());
    *r.status_mut() = status;
    r
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let shared = &state.shared;
    let mut text = {
        let p = shared.read();
        metrics::render(
            &p.metrics,
            &p.histogram,
            p.health.samples,
            p.health.failed_samples,
        )
    };
    let health = shared.health_at(std::time::Instant::now());
    metrics::render_server(
        &mut text,
        &metrics::ServerStats {
            views: &shared.view_counters,
            http: &shared.http,
            sampler_restarts: health.sampler_restarts,
            last_sample_age: health.last_sample_age_ms.map(|ms| ms as f64 / 1000.0),
        },
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, NO_STORE),
        ],
        text,
    )
        .into_response()
}

/// `/icons/<type>.png`: `<type>.png`, else its alias, else `service.png`,
/// from `--icons-dir`; 404 otherwise (the UI then draws its built-in glyph).
/// The type is checked so a request can never name a file outside the
/// directory.
async fn icon(State(state): State<AppState>, UrlPath(file): UrlPath<String>) -> Response {
    let Some(dir) = &state.icons_dir else {
        return plain(StatusCode::NOT_FOUND, "no --icons-dir\n");
    };
    let Some(kind) = file.strip_suffix(".png") else {
        return plain(StatusCode::NOT_FOUND, "icons are <type>.png\n");
    };
    if !icons::valid_type(kind) {
        return plain(StatusCode::NOT_FOUND, "not a type name\n");
    }
    for candidate in icons::candidates(kind) {
        if let Ok(bytes) = tokio::fs::read(dir.join(&candidate)).await {
            return (
                [
                    (header::CONTENT_TYPE, "image/png"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                Body::from(bytes),
            )
                .into_response();
        }
    }
    plain(StatusCode::NOT_FOUND, "no icon for this type\n")
}

/// `/api/icons`: the types `--icons-dir` has PNGs for, read on each request
/// (the directory may change while procnet runs).
async fn icon_index(State(state): State<AppState>) -> Response {
    let index = match state.icons_dir.clone() {
        Some(dir) => tokio::task::spawn_blocking(move || icons::index(&dir))
            .await
            .unwrap_or_default(),
        None => icons::IconIndex::default(),
    };
    json(serde_json::to_vec(&index).unwrap_or_default().into())
}

/// `/api/events`: the whole graph on connect, then one diff per sample
/// that changed something. A client that falls behind by more than the
/// backlog is dropped; its EventSource reconnects and gets a full graph.
///
/// `?diff=slots`: diffs come as `diffs` events instead (src/serve/diff_wire.rs).
async fn events(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    _headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let shared = state.shared.clone();
    // Subscribe before reading the graph so no diff falls in between.
    let updates = shared.events.subscribe();
    let (graph_json, seq, status, graph) = {
        let p = shared.read();
        let g = p.graph.clone();
        (p.graph_json.clone(), p.graph.seq, status_json(&p.health), g)
    };
    let mut slots = diff_wire::wants_slots(query.as_deref()).then(|| {
        diff_wire::SlotEncoder::new(&graph)
            .with_added_columns(diff_wire::wants_added_columns(query.as_deref()))
    });
    drop(graph);
    let initial = stream::iter([
        Event::default()
            .event("graph")
            .data(String::from_utf8_lossy(&graph_json)),
        Event::default().event("status").data(status),
    ]);
    let live = BroadcastStream::new(updates)
        .take_while(|m| std::future::ready(m.is_ok()))
        .filter_map(move |m| {
            std::future::ready(match m {
                Ok(m) if m.event == "diff" && m.seq <= seq => None,
                // None ends the stream: the client reconnects for a new graph
                Ok(m) if m.event == "diff" && slots.is_some() => {
                    Some(slots.as_mut().and_then(|s| s.event(&m.data)))
                }
                Ok(m) => Some(Some(Event::default().event(m.event).data(m.data.as_str()))),
                Err(_) => None,
            })
        })
        .take_while(|e| std::future::ready(e.is_some()))
        .filter_map(std::future::ready);
    let mut shutdown = shared.shutdown.subscribe();
    // A restarted sampler counts seq from 1 again: end the stream so the
    // client re-syncs from a full graph rather than miss every diff.
    let mut epoch = shared.sampler_epoch.subscribe();
    epoch.mark_unchanged();
    let stop = async move {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => {}
            _ = epoch.changed() => {}
        }
    };
    let stream = initial.chain(live).take_until(stop).map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
