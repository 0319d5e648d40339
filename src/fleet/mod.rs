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
pub mod join;
pub mod query;
pub mod serve;

use client::{Auth, PromClient, QueryError};
use join::{FleetRows, FleetView};
use std::time::Duration;

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

/// Reads fleet views from the engine.
#[derive(Clone)]
pub struct FleetReader {
    client: PromClient,
    rate_window: String,
}

impl FleetReader {
    pub fn new(config: &FleetConfig) -> FleetReader {
        FleetReader {
            client: PromClient::new(&config.url, &config.auth, config.timeout),
            rate_window: config.rate_window.clone(),
        }
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// The fleet at `at` (seconds since the epoch): every query evaluated
    /// at that same instant, all asked at once (the engine runs them in
    /// parallel; the slowest one sets the time).
    pub fn view_at(&self, at: f64, seq: u64) -> Result<FleetView, QueryError> {
        let flow_queries = query::flow_queries(&self.rate_window);
        let info_query = query::info_query();
        let (flows, info) = std::thread::scope(|s| {
            let handles: Vec<_> = flow_queries
                .iter()
                .map(|q| s.spawn(move || self.client.query(q, Some(at))))
                .collect();
            let info = self.client.query(&info_query, Some(at));
            let flows: Vec<Result<Vec<query::Sample>, QueryError>> = handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(QueryError::Unreachable {
                            url: self.client.url().to_string(),
                            reason: "the query thread failed".into(),
                        })
                    })
                })
                .collect();
            (flows, info)
        });
        let info = info?;
        let mut rows = Vec::new();
        for part in flows {
            rows.extend(part?);
        }
        Ok(join::build(
            &FleetRows {
                flows: rows,
                info,
                at,
            },
            seq,
        ))
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
