//! The PromQL fleet mode asks and the shape of Prometheus's answers
//! (`/api/v1/query`, result type `vector`; `/api/v1/query_range`, result
//! type `matrix`). Pure: text in, typed rows out, so the parsing is tested
//! on answers recorded from Prometheus 2.42 (`testdata/`, two hosts)
//! without it running; tests/fleet_mode.rs runs the same queries on
//! Prometheus 2.42 and VictoriaMetrics 1.79.
//!
//! A view asks **plain series selectors** only (seven instant queries, all
//! at once): the three flow families at the instant, the two byte
//! counters once more one rate window earlier, the listeners and the host
//! addresses. Everything else is done in Rust ([`super::join`]): the
//! dedup of series two jobs scrape (what `max by` did), leaving out the
//! server halves whose client runs procnet (what `unless on (peer_ip)`
//! did), the rates (from the two counter reads instead of `rate()` over
//! the window), and the join of client halves to the server host's
//! listener, the way Coroot's `instancesByListen` does. Measured on 10
//! hosts × 500 flows (bench/fleet.sh), the engine spent most of a view's
//! time in `rate()` reading every sample of the window and in the
//! aggregations and `label_replace`s building new label sets; a selector
//! only looks series up in its index and reads one sample each, which
//! every Prometheus-compatible engine does fast and the same way.
//!
//! Answers are decoded straight into the label structs below: the labels
//! procnet does not use (`job`, `instance`, `__name__`) are skipped by the
//! decoder instead of being copied into maps.

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The default `rate()` window (`--fleet-rate-window`): four scrapes at a
/// 15 s interval (Prometheus's default), so a rate exists even with the
/// default scrape interval. A rate is the difference of two counter reads
/// this far apart, so the window should be a multiple of the scrape
/// interval (then both reads lag their instant by the same phase).
pub const RATE_WINDOW: &str = "1m";

/// Checks a `--fleet-rate-window`: a PromQL duration of one unit
/// (`30s`, `1m`, `2h`), at least `2s`.
pub fn parse_rate_window(text: &str) -> Result<String, String> {
    rate_window_secs(text).map(|_| text.trim().to_string())
}

/// A checked `--fleet-rate-window` in seconds.
pub fn rate_window_secs(text: &str) -> Result<u64, String> {
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
    Ok(secs)
}

/// The flow families (each a plain selector).
pub const SENT: &str = "procnet_flow_sent_bytes_total";
pub const RECEIVED: &str = "procnet_flow_received_bytes_total";
pub const OPEN: &str = "procnet_flow_open_connections";
/// The info families.
pub const LISTEN: &str = "procnet_listen_info";
pub const ADDRESS: &str = "procnet_host_address_info";

/// The labels of a flow series (one half-edge). An absent label is `""`,
/// as PromQL treats it (the engine leaves empty labels out).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(default)]
pub struct FlowLabels {
    pub host: String,
    pub role: String,
    pub proto: String,
    pub process: String,
    pub container: String,
    pub local_port: String,
    pub peer_ip: String,
    pub peer_port: String,
}

/// The labels of `procnet_listen_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(default)]
pub struct ListenLabels {
    pub host: String,
    pub proto: String,
    pub ip: String,
    pub port: String,
    pub process: String,
    pub container: String,
}

/// The labels of `procnet_host_address_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(default)]
pub struct AddressLabels {
    pub host: String,
    pub ip: String,
}

/// One row of an instant vector: its labels and value.
pub type Row<L> = (L, f64);

/// A host address as a `peer_ip`, to leave out the server halves whose
/// client runs procnet (that client's own half stands for the edge, see
/// [`super::join`]). Used by the history strip's range queries, which the
/// engine aggregates (a strip is one number per step, not rows).
const MANAGED_PEERS: &str =
    "label_replace(max by (ip) (procnet_host_address_info), \"peer_ip\", \"$1\", \"ip\", \"(.*)\")";

/// The flow labels (all of the half-edge's key, none of the scrape's).
const FLOW_LABELS: &str = "host, role, proto, process, container, local_port, peer_ip, peer_port";

/// Every client half of `metric` and the server halves whose client runs
/// no procnet, one series per half-edge (a second scrape job's copy
/// folded in), with the flow labels only.
pub fn halves(metric: &str) -> String {
    format!(
        "max by ({FLOW_LABELS}) ({metric}{{role=\"client\"}} or ({metric}{{role=\"server\"}} unless on (peer_ip) {MANAGED_PEERS}))"
    )
}

/// The history strip's edge count per step: the half-edges with an open
/// connection that stand for an edge.
pub fn open_halves_count() -> String {
    format!("count({} > 0) or vector(0)", halves(OPEN))
}

/// The history strip's byte total per step: every byte the standing
/// half-edges counted (both ways); bytes per stretch are differences.
pub fn bytes_total() -> String {
    format!(
        "(sum({}) or vector(0)) + (sum({}) or vector(0))",
        halves(SENT),
        halves(RECEIVED)
    )
}

/// Which steps have fleet data: the host addresses seen in the step.
pub fn hosts_seen(step_secs: u64) -> String {
    format!("count(max_over_time({ADDRESS}[{step_secs}s]))")
}

/// The newest fleet data: the time of the newest host address sample.
pub fn newest_sample() -> String {
    format!("max(timestamp({ADDRESS}))")
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
    /// A result type other than the one asked for (a query returning a
    /// scalar).
    #[error("the answer is a {0}, not {1}")]
    WrongType(String, &'static str),
}

#[derive(Deserialize)]
struct Answer<R> {
    status: String,
    #[serde(default = "Option::default")]
    data: Option<Data<R>>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data<R> {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default = "Vec::new")]
    result: Vec<R>,
}

#[derive(Deserialize)]
struct VectorRow<L> {
    metric: L,
    /// `[time, "value"]`: the value is a string so that NaN and ±Inf
    /// survive JSON.
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixRow {
    values: Vec<(f64, String)>,
}

/// The `data.result` of an answer of `want` type (any HTTP status: errors
/// come with a JSON body too).
fn result_of<R: DeserializeOwned>(body: &str, want: &'static str) -> Result<Vec<R>, AnswerError> {
    let answer: Answer<R> = match serde_json::from_str(body) {
        Ok(a) => a,
        Err(e) => {
            // Rows of another shape (a scalar's result, an error's): the
            // envelope says what the answer is.
            let envelope: Result<Answer<serde::de::IgnoredAny>, _> = serde_json::from_str(body);
            match envelope {
                Ok(a) if a.status != "success" => {
                    return Err(AnswerError::Failed {
                        kind: a.error_type.unwrap_or(a.status),
                        message: a.error.unwrap_or_default(),
                    })
                }
                Ok(Answer { data: Some(d), .. }) if d.result_type != want => {
                    return Err(AnswerError::WrongType(d.result_type, want))
                }
                _ => {
                    let start: String = body.chars().take(80).collect();
                    return Err(AnswerError::NotPrometheus(format!(
                        "{e}; it starts with {start:?}"
                    )));
                }
            }
        }
    };
    if answer.status != "success" {
        return Err(AnswerError::Failed {
            kind: answer.error_type.unwrap_or_else(|| answer.status.clone()),
            message: answer.error.unwrap_or_default(),
        });
    }
    let data = answer
        .data
        .ok_or_else(|| AnswerError::NotPrometheus("`data` is missing".into()))?;
    if data.result_type != want {
        return Err(AnswerError::WrongType(data.result_type, want));
    }
    Ok(data.result)
}

fn finite(v: &str) -> Option<f64> {
    let v: f64 = v.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Parses an `/api/v1/query` answer into rows of labels `L`. Rows whose
/// value is not a finite number are dropped.
pub fn parse_vector<L: DeserializeOwned>(body: &str) -> Result<Vec<Row<L>>, AnswerError> {
    Ok(result_of::<VectorRow<L>>(body, "vector")?
        .into_iter()
        .filter_map(|r| Some((r.metric, finite(&r.value.1)?)))
        .collect())
}

/// Parses an `/api/v1/query_range` answer of one series (an aggregation
/// without `by`): its `(time, value)` points, oldest first; none when the
/// query matched nothing.
pub fn parse_matrix(body: &str) -> Result<Vec<(f64, f64)>, AnswerError> {
    Ok(result_of::<MatrixRow>(body, "matrix")?
        .into_iter()
        .next()
        .map(|r| {
            r.values
                .into_iter()
                .filter_map(|(t, v)| Some((t, finite(&v)?)))
                .collect()
        })
        .unwrap_or_default())
}

/// `storageRetention` of Prometheus's `/api/v1/status/runtimeinfo`
/// (`"15d"`, `"15d or 1GiB"`), in seconds; `None` when the answer has none
/// (VictoriaMetrics, Thanos).
pub fn parse_retention(body: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Info {
        data: InfoData,
    }
    #[derive(Deserialize)]
    struct InfoData {
        #[serde(rename = "storageRetention")]
        storage_retention: String,
    }
    let info: Info = serde_json::from_str(body).ok()?;
    let first = info.data.storage_retention.split(" or ").next()?.trim();
    // Prometheus writes `15d`, `2w`, `1y`, which humantime reads.
    humantime::parse_duration(first)
        .ok()
        .map(|d| d.as_secs())
        .filter(|s| *s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorded answers carry an `m` tag per value family (they were
    /// recorded from the earlier, aggregated queries); the labels decode
    /// the same way as a plain selector's.
    #[derive(Deserialize)]
    struct Tagged {
        #[serde(default)]
        m: String,
        #[serde(flatten)]
        flow: FlowLabels,
    }

    #[test]
    fn a_recorded_answer_parses_into_rows() {
        let rows: Vec<Row<Tagged>> =
            parse_vector(include_str!("testdata/prometheus_flows.json")).unwrap();
        assert!(!rows.is_empty());
        let (sent, v) = rows
            .iter()
            .find(|(r, _)| r.m == "sent" && r.flow.role == "client")
            .expect("a client's sent row");
        assert!(*v > 0.0);
        assert_eq!(sent.flow.host, "hostA");
        assert_eq!(sent.flow.local_port, "", "an absent label is empty");
        let info: Vec<Row<ListenLabels>> =
            parse_vector(include_str!("testdata/prometheus_info.json")).unwrap();
        assert!(info.iter().any(|(l, _)| l.process == "fleetserver"));
    }

    #[test]
    fn errors_say_what_the_engine_said() {
        let e = parse_vector::<AddressLabels>(
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the query failed: bad_data: 1:5: parse error"
        );
        let e = parse_vector::<AddressLabels>("<html>502 Bad Gateway</html>").unwrap_err();
        assert!(matches!(e, AnswerError::NotPrometheus(_)), "{e}");
        assert!(e.to_string().contains("--fleet"), "{e}");
        let e = parse_vector::<AddressLabels>(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "the answer is a scalar, not vector");
    }

    #[test]
    fn non_finite_values_are_dropped() {
        let rows: Vec<Row<AddressLabels>> = parse_vector(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"ip":"1"},"value":[1700000000.5,"NaN"]},
                {"metric":{"ip":"2"},"value":[1700000000.5,"+Inf"]},
                {"metric":{"ip":"3","job":"procnet"},"value":[1700000000.5,"3.5"]}]}}"#,
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].0.ip.as_str(), rows[0].1), ("3", 3.5));
    }

    #[test]
    fn a_range_answer_is_its_points() {
        let pts = parse_matrix(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{},"values":[[100,"1"],[110,"NaN"],[120,"3"]]}]}}"#,
        )
        .unwrap();
        assert_eq!(pts, vec![(100.0, 1.0), (120.0, 3.0)]);
        let none =
            parse_matrix(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#);
        assert_eq!(none, Ok(vec![]));
    }

    #[test]
    fn retention_comes_from_prometheus_runtime_info() {
        let info =
            |r: &str| format!(r#"{{"status":"success","data":{{"storageRetention":"{r}"}}}}"#);
        assert_eq!(parse_retention(&info("15d")), Some(15 * 86_400));
        assert_eq!(parse_retention(&info("2d or 1GiB")), Some(2 * 86_400));
        assert_eq!(parse_retention("404 page not found"), None);
    }

    #[test]
    fn rate_windows_are_checked() {
        assert_eq!(parse_rate_window("30s").as_deref(), Ok("30s"));
        assert_eq!(parse_rate_window("5m").as_deref(), Ok("5m"));
        assert_eq!(rate_window_secs("1m"), Ok(60));
        assert_eq!(rate_window_secs(RATE_WINDOW), Ok(60));
        for bad in ["1s", "1", "m", "1d", "1m30s", ""] {
            assert!(parse_rate_window(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strip_queries_count_each_edge_once() {
        for q in [open_halves_count(), bytes_total()] {
            assert!(q.contains("role=\"client\""), "{q}");
            assert!(q.contains("unless on (peer_ip)"), "{q}");
        }
        assert!(hosts_seen(30).contains("[30s]"));
    }
}
