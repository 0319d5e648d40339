//! The HTTP client of Prometheus's query API (`GET /api/v1/query`,
//! `/api/v1/query_range`, `/api/v1/status/runtimeinfo`), with
//! a timeout on every request and the credentials from
//! `--fleet-token-file` / `--fleet-basic-auth-file`. The only network I/O
//! of fleet mode; what the answers mean is [`super::query`]'s business.

use super::query::{parse_matrix, parse_retention, parse_vector, AnswerError, Row};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The largest answer read: 10 hosts × 500 flows × 5 values is ~4 MB of
/// JSON; a fleet 16 times that is past what one map can show anyway.
pub const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// How fleet mode authenticates to the engine.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Bearer(_) => "Bearer(…)",
            Auth::Basic { .. } => "Basic(…)",
        })
    }
}

impl Auth {
    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
        }
    }
}

/// Why a query got no usable answer. Every message names the engine's
/// address, so the banner says where to look.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("Prometheus at {url} did not answer within {secs} s (--fleet-timeout); it is down, overloaded or unreachable")]
    Timeout { url: String, secs: f64 },
    #[error("cannot reach Prometheus at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} refused the credentials (HTTP {status}); check --fleet-token-file / --fleet-basic-auth-file")]
    Unauthorized { url: String, status: u16 },
    #[error("Prometheus at {url} answered HTTP {status}: {error}")]
    Answer {
        url: String,
        status: u16,
        #[source]
        error: AnswerError,
    },
}

/// A query API client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct PromClient {
    base: String,
    auth: Option<String>,
    timeout: Duration,
    agent: ureq::Agent,
}

impl PromClient {
    /// `base` is the engine's root URL (`http://prometheus:9090`; a path
    /// prefix such as `/prometheus` is kept).
    pub fn new(base: &str, auth: &Auth, timeout: Duration) -> PromClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        PromClient {
            base: base.trim_end_matches('/').to_string(),
            auth: auth.header(),
            timeout,
            agent,
        }
    }

    /// The engine's address, as given.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// An instant query at `time` (seconds since the epoch; `None`: now),
    /// its rows decoded into labels `L`.
    pub fn query<L: DeserializeOwned>(
        &self,
        promql: &str,
        time: Option<f64>,
    ) -> Result<Vec<Row<L>>, QueryError> {
        let mut params = vec![("query", promql.to_string())];
        if let Some(t) = time {
            params.push(("time", format!("{t:.3}")));
        }
        let started = std::time::Instant::now();
        let (status, body) = self.get("/api/v1/query", &params)?;
        let fetched = started.elapsed();
        let rows = parse_vector(&body).map_err(|error| self.answer(status, error))?;
        // bench/fleet.sh reads these (RUST_LOG=procnet::fleet=trace).
        log::trace!(
            "query {promql}: fetch {:.1} ms, decode {:.1} ms, {} bytes, {} rows",
            fetched.as_secs_f64() * 1000.0,
            (started.elapsed() - fetched).as_secs_f64() * 1000.0,
            body.len(),
            rows.len()
        );
        Ok(rows)
    }

    /// A range query of one series (an aggregation without `by`) from
    /// `start` to `end` every `step` seconds: its points.
    pub fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<(f64, f64)>, QueryError> {
        let params = [
            ("query", promql.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step:.3}")),
        ];
        let (status, body) = self.get("/api/v1/query_range", &params)?;
        parse_matrix(&body).map_err(|error| self.answer(status, error))
    }

    /// How far back the engine keeps data, when it says
    /// (Prometheus's `storageRetention`); `None` when it does not.
    pub fn retention_secs(&self) -> Option<u64> {
        let (_, body) = self.get("/api/v1/status/runtimeinfo", &[]).ok()?;
        parse_retention(&body)
    }

    fn answer(&self, status: u16, error: AnswerError) -> QueryError {
        QueryError::Answer {
            url: self.base.clone(),
            status,
            error,
        }
    }

    /// `GET base+path?params`: the status and the body.
    fn get(&self, path: &str, params: &[(&str, String)]) -> Result<(u16, String), QueryError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        for (k, v) in params {
            req = req.query(*k, v);
        }
        if let Some(h) = &self.auth {
            req = req.header("Authorization", h);
        }
        let mut resp = req.call().map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(QueryError::Unauthorized {
                url: self.base.clone(),
                status,
            });
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        Ok((status, body))
    }

    fn transport(&self, e: ureq::Error) -> QueryError {
        match e {
            ureq::Error::Timeout(_) => QueryError::Timeout {
                url: self.base.clone(),
                secs: self.timeout.as_secs_f64(),
            },
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                QueryError::Timeout {
                    url: self.base.clone(),
                    secs: self.timeout.as_secs_f64(),
                }
            }
            other => QueryError::Unreachable {
                url: self.base.clone(),
                reason: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_the_authorization_header_and_never_debug_output() {
        assert_eq!(
            Auth::Bearer("t0k".into()).header().as_deref(),
            Some("Bearer t0k")
        );
        let basic = Auth::Basic {
            user: "prom".into(),
            password: "s3cret".into(),
        };
        assert_eq!(basic.header().as_deref(), Some("Basic cHJvbTpzM2NyZXQ="));
        assert!(!format!("{basic:?}").contains("s3cret"));
        assert_eq!(Auth::None.header(), None);
    }

    #[test]
    fn a_closed_port_is_unreachable_and_named() {
        // Bind and drop: nothing listens on that port now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = PromClient::new(
            &format!("http://127.0.0.1:{port}/"),
            &Auth::None,
            Duration::from_secs(2),
        );
        let e = c
            .query::<super::super::query::AddressLabels>("up", None)
            .unwrap_err();
        assert!(matches!(e, QueryError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[test]
    fn a_silent_engine_times_out() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        // Accepts and never answers.
        let _hold = std::thread::spawn(move || {
            let held: Vec<_> = l.incoming().take(1).collect();
            std::thread::sleep(Duration::from_secs(3));
            drop(held);
        });
        let c = PromClient::new(
            &format!("http://127.0.0.1:{port}"),
            &Auth::None,
            Duration::from_millis(300),
        );
        let e = c
            .query::<super::super::query::AddressLabels>("up", None)
            .unwrap_err();
        assert!(matches!(e, QueryError::Timeout { .. }), "{e}");
    }
}
