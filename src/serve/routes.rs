//! HTTP routes. Handlers only read what the sampler published.

use crate::serve::assets::{self, NO_STORE};
use crate::serve::security::{token_cookie, Guard, RequestFacts, Verdict};
use crate::serve::views::{accepts_gzip, Encoding, View};
use crate::serve::{metrics, status_json, ServeConfig, Shared};
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
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
    };
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/api/graph", get(graph))
        .route("/api/connections", get(connections))
        .route("/api/traffic", get(traffic))
        .route("/api/events", get(events))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/icons/{file}", get(icon))
        .route("/assets/{*path}", get(asset))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Minimal percent-decoding for the `?token=` value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let query_token = query_param(&query, "token").map(percent_decode);
    let verdict = state.guard.check(&RequestFacts {
        path: &path,
        host: text(header::HOST),
        origin: text(header::ORIGIN),
        authorization: text(header::AUTHORIZATION),
        cookie: text(header::COOKIE),
        query_token: query_token.as_deref(),
    });
    match verdict {
        Verdict::Allow => next.run(request).await,
        Verdict::AllowAndSetCookie => {
            let token = query_token.unwrap_or_default();
            let cookie = HeaderValue::from_str(&token_cookie(&token)).ok();
            let mut response = if path == "/" || path == "/index.html" {
                // Drop the token from the address bar (and from history).
                let rest: Vec<&str> = query.split('&').filter(|kv| !kv.starts_with("token=")).collect();
                let target = if rest.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{}", rest.join("&"))
                };
                (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
            } else {
                next.run(request).await
            };
            if let Some(c) = cookie {
                response.headers_mut().append(header::SET_COOKIE, c);
            }
            response
        }
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
async fn graph(State(state): State<AppState>, headers: HeaderMap) -> Response {
    view(&state, View::Graph, &headers).await
}

/// `/api/connections`: built from the last sample on the first request
/// after it (off the async workers), once for all concurrent requests, then
/// served from the sample's cache until the next sample.
async fn connections(State(state): State<AppState>, headers: HeaderMap) -> Response {
    view(&state, View::Connections, &headers).await
}

/// `/api/traffic`: per process and interface, bytes received and sent
/// since procnet started (netprocmon's `{pid, interface, recv, send}`).
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

/// `/icons/<type>.png`: `<type>.png`, else `service.png`, from `--icons-dir`;
/// 404 otherwise (the UI then draws its built-in glyph). The type is
/// checked so a request can never name a file outside the directory.
async fn icon(State(state): State<AppState>, UrlPath(file): UrlPath<String>) -> Response {
    let Some(dir) = &state.icons_dir else {
        return plain(StatusCode::NOT_FOUND, "no --icons-dir\n");
    };
    let Some(kind) = file.strip_suffix(".png") else {
        return plain(StatusCode::NOT_FOUND, "icons are <type>.png\n");
    };
    let valid = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return plain(StatusCode::NOT_FOUND, "not a type name\n");
    }
    // The original tool's icon files for these two types were `mq.png`
    // and `lb.png`; accept both spellings.
    let alias = match kind {
        "message_broker" => Some("mq.png"),
        "load_balancer" => Some("lb.png"),
        "mq" => Some("message_broker.png"),
        "lb" => Some("load_balancer.png"),
        _ => None,
    };
    let candidates = std::iter::once(format!("{kind}.png"))
        .chain(alias.map(String::from))
        .chain(std::iter::once("service.png".to_string()));
    for candidate in candidates {
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

/// `/api/events`: the whole graph on connect, then one diff per sample
/// that changed something. A client that falls behind by more than the
/// backlog is dropped; its EventSource reconnects and gets a full graph.
async fn events(
    State(state): State<AppState>,
    _headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let shared = state.shared.clone();
    // Subscribe before reading the graph so no diff falls in between.
    let updates = shared.events.subscribe();
    let (graph_json, seq, status) = {
        let p = shared.read();
        (p.graph_json.clone(), p.graph.seq, status_json(&p.health))
    };
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
                Ok(m) => Some(Event::default().event(m.event).data(m.data.as_str())),
                Err(_) => None,
            })
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%zz%"), "%zz%");
        assert_eq!(percent_decode("abc%4"), "abc%4");
        assert_eq!(query_param("a=1&token=x&b=2", "token"), Some("x"));
    }
}
