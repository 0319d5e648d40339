//! The PromQL fleet mode asks and the shape of Prometheus's answers
//! (`/api/v1/query`, result type `vector`). Pure: text in, typed rows out,
//! so the parsing is tested on answers recorded from Prometheus 2.42
//! (`testdata/`, two hosts) without it running; tests/fleet_mode.rs runs
//! the same queries on Prometheus 2.42 and VictoriaMetrics 1.79.
//!
//! Six instant queries per view, asked at once:
//! - [`flow_queries`]: every half-edge's counters, open connections and
//!   byte rates, one query per value, tagged with a `m` label saying which
//!   value a row is;
//! - [`info_query`]: every listener (`procnet_listen_info`) and host
//!   address (`procnet_host_address_info`).
//!
//! The join of the two (client halves to the server host's listener) is
//! done in Rust ([`super::join`]), the way Coroot's `instancesByListen`
//! does, rather than in PromQL: a wildcard listener matching every address
//! of its host and the choice between the client's and the server's half
//! are plain code there, and the engine only has to select series, which
//! every Prometheus-compatible engine does the same way.
//!
//! `max by (…)` drops the scrape's own labels (`job`, `instance`) and
//! keeps one row when two jobs scrape the same procnet.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The default `rate()` window (`--fleet-rate-window`): four scrapes at a
/// 15 s interval (Prometheus's default), so a rate exists even with the
/// default scrape interval. Reading the window is half the cost of a
/// view: with a short scrape interval, a shorter window is faster.
pub const RATE_WINDOW: &str = "1m";

/// Checks a `--fleet-rate-window`: a PromQL duration of one unit
/// (`30s`, `1m`, `2h`), at least `2s`.
pub fn parse_rate_window(text: &str) -> Result<String, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 30s, 1m or 5m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(format!(
                "`{text}` is not a duration; write e.g. 30s, 1m or 5m"
            ))
        }
    };
    if secs < 2 {
        return Err(format!(
            "`{text}` is too short for a rate: at least 2s (two scrapes)"
        ));
    }
    Ok(t.to_string())
}

/// The flow labels kept (all of the half-edge's key, none of the scrape's).
const FLOW_LABELS: &str = "host, role, proto, process, container, local_port, peer_ip, peer_port";

/// Values of the `m` label in [`FLOWS`].
pub const SENT: &str = "sent";
pub const RECEIVED: &str = "received";
pub const OPEN: &str = "open";
pub const SENT_RATE: &str = "sent_rate";
pub const RECEIVED_RATE: &str = "received_rate";
/// Values of the `m` label in [`INFO`].
pub const LISTEN: &str = "listen";
pub const ADDRESS: &str = "address";

/// A host address as a `peer_ip`, to leave out the server halves whose
/// client runs procnet (that client's own half stands for the edge, see
/// [`super::join`]): half the rows of a fleet where every host runs it.
const MANAGED_PEERS: &str =
    "label_replace(max by (ip) (procnet_host_address_info), \"peer_ip\", \"$1\", \"ip\", \"(.*)\")";

/// Every client half of `family` (a function of the series selector),
/// and the server halves whose client runs no procnet.
fn halves(family: impl Fn(&str) -> String, metric: &str) -> String {
    format!(
        "{} or ({} unless on (peer_ip) {MANAGED_PEERS})",
        family(&format!("{metric}{{role=\"client\"}}")),
        family(&format!("{metric}{{role=\"server\"}}")),
    )
}

/// The flows queries: one per value family, each tagged by
/// `label_replace(…, "m", NAME, "", "")` (the empty source label matches
/// the empty regex, so every row gets the tag). Five queries, not one
/// joined with `or`: the engine evaluates them in parallel.
pub fn flow_queries(rate_window: &str) -> Vec<String> {
    let tag = |name: &str, expr: String| {
        format!("label_replace(max by ({FLOW_LABELS}) ({expr}), \"m\", \"{name}\", \"\", \"\")")
    };
    let raw = |s: &str| s.to_string();
    let rate = |s: &str| format!("rate({s}[{rate_window}])");
    vec![
        tag(SENT, halves(raw, "procnet_flow_sent_bytes_total")),
        tag(RECEIVED, halves(raw, "procnet_flow_received_bytes_total")),
        tag(OPEN, halves(raw, "procnet_flow_open_connections")),
        tag(SENT_RATE, halves(rate, "procnet_flow_sent_bytes_total")),
        tag(
            RECEIVED_RATE,
            halves(rate, "procnet_flow_received_bytes_total"),
        ),
    ]
}

/// The info query: listeners and host addresses.
pub fn info_query() -> String {
    format!(
        "label_replace(max by (host, proto, ip, port, process, container) (procnet_listen_info), \"m\", \"{LISTEN}\", \"\", \"\") \
         or label_replace(max by (host, ip) (procnet_host_address_info), \"m\", \"{ADDRESS}\", \"\", \"\")"
    )
}

/// One row of an instant vector: its labels, the evaluation time
/// (seconds since the epoch) and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub time: f64,
    pub value: f64,
}

impl Sample {
    /// A label's value, `""` when absent (as PromQL treats it).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// What is wrong with an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnswerError {
    /// The engine answered `status: error` (a bad query, a timeout, an
    /// overloaded engine).
    #[error("the query failed: {kind}: {message}")]
    Failed { kind: String, message: String },
    /// Not the JSON of the query API: another service on that port, or a
    /// proxy's error page.
    #[error("not a Prometheus query API answer ({0}); is --fleet the address of Prometheus (e.g. http://prometheus:9090)?")]
    NotPrometheus(String),
    /// A result type other than `vector` (a query returning a scalar).
    #[error("the answer is a {0}, not an instant vector")]
    NotVector(String),
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// `[time, "value"]`: the value is a string so that NaN and ±Inf
    /// survive JSON.
    value: (f64, String),
}

/// Parses an `/api/v1/query` answer (any HTTP status: errors come with a
/// JSON body too). Rows whose value is not a finite number are dropped
/// (a rate over a counter reset at the window's edge can be NaN).
pub fn parse_vector(body: &str) -> Result<Vec<Sample>, AnswerError> {
    let answer: Answer = serde_json::from_str(body).map_err(|e| {
        let start: String = body.chars().take(80).collect();
        AnswerError::NotPrometheus(format!("{e}; it starts with {start:?}"))
    })?;
    if answer.status != "success" {
        return Err(AnswerError::Failed {
            kind: answer.error_type.unwrap_or_else(|| answer.status.clone()),
            message: answer.error.unwrap_or_default(),
        });
    }
    let data = answer
        .data
        .ok_or_else(|| AnswerError::NotPrometheus("`data` is missing".into()))?;
    if data.result_type != "vector" {
        return Err(AnswerError::NotVector(data.result_type));
    }
    Ok(data
        .result
        .into_iter()
        .filter_map(|r| {
            let value: f64 = r.value.1.parse().ok()?;
            value.is_finite().then_some(Sample {
                labels: r.metric,
                time: r.value.0,
                value,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_answer_parses_into_rows() {
        let rows = parse_vector(include_str!("testdata/prometheus_flows.json")).unwrap();
        assert!(!rows.is_empty());
        let sent = rows
            .iter()
            .find(|r| r.label("m") == SENT && r.label("role") == "client")
            .expect("a client's sent row");
        assert!(sent.value > 0.0 && sent.time > 1.7e9);
        assert_eq!(sent.label("no-such-label"), "");
    }

    #[test]
    fn errors_say_what_the_engine_said() {
        let e =
            parse_vector(r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#)
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the query failed: bad_data: 1:5: parse error"
        );
        let e = parse_vector("<html>502 Bad Gateway</html>").unwrap_err();
        assert!(matches!(e, AnswerError::NotPrometheus(_)), "{e}");
        assert!(e.to_string().contains("--fleet"), "{e}");
        let e =
            parse_vector(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#);
        assert!(e.is_err());
    }

    #[test]
    fn non_finite_values_are_dropped() {
        let rows = parse_vector(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"a":"1"},"value":[1700000000.5,"NaN"]},
                {"metric":{"a":"2"},"value":[1700000000.5,"+Inf"]},
                {"metric":{"a":"3"},"value":[1700000000.5,"3.5"]}]}}"#,
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].label("a"), rows[0].value), ("3", 3.5));
    }

    #[test]
    fn queries_select_every_family_once() {
        let qs = flow_queries(RATE_WINDOW);
        assert!(qs[3].contains("[1m]"), "{}", qs[3]);
        assert!(flow_queries("10s")[4].contains("[10s]"));
        assert_eq!(parse_rate_window("30s").as_deref(), Ok("30s"));
        assert_eq!(parse_rate_window("5m").as_deref(), Ok("5m"));
        for bad in ["1s", "1", "m", "1d", "1m30s", ""] {
            assert!(parse_rate_window(bad).is_err(), "{bad}");
        }
        assert_eq!(qs.len(), 5);
        for (q, m) in qs
            .iter()
            .zip([SENT, RECEIVED, OPEN, SENT_RATE, RECEIVED_RATE])
        {
            assert!(q.contains(&format!("\"m\", \"{m}\"")), "{q}");
        }
        let q = qs.join(" or ");
        // Five families, each the client halves or the unmanaged server halves.
        assert_eq!(q.matches("label_replace(max by (host,").count(), 5);
        assert_eq!(q.matches("unless on (peer_ip)").count(), 5);
        assert!(info_query().contains("procnet_host_address_info"));
    }
}
