//! Server-side filter, sort and paging of `/api/connections`
//! (`?rows=&q=&sort=&limit=&offset=`), so that a table of 100k sockets
//! downloads the 100 rows it shows instead of a 24 MB document.
//!
//! Pure: [`PageQuery::parse`] turns the decoded query parameters into a
//! query or a [`QueryError`] that says what is wrong and how to fix it;
//! [`ConnectionRows`] holds one sample's built rows with their search text
//! (made once per sample, shared by every request of that sample) and
//! answers [`ConnectionRows::page`]. Sorted orders are cached per sort key,
//! so scrolling through a sorted table sorts once per sample, not once per
//! page.

use crate::graph::model::{Connection, ConnectionsDoc, Listener};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted: a page stays a page (10,000 connections
/// are ~2.4 MB of JSON); the whole document is `/api/connections` alone.
pub const MAX_LIMIT: usize = 10_000;
/// The longest `q` accepted, in bytes.
pub const MAX_Q_BYTES: usize = 1024;

/// The parameters this module reads; any of them asks for a page.
const PARAMETERS: &[&str] = &["rows", "q", "sort", "limit", "offset"];
/// Parameters that are not about paging and are left to others (the
/// guard reads `token`).
const IGNORED: &[&str] = &["token"];

/// Which list of the document a page is cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rows {
    Connections,
    Listeners,
}

impl Rows {
    fn name(self) -> &'static str {
        match self {
            Rows::Connections => "connections",
            Rows::Listeners => "listeners",
        }
    }
}

/// A field of a connection row to sort by (its JSON name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionField {
    FromPid,
    FromProcessName,
    FromAddress,
    FromPort,
    ToAddress,
    ToPort,
    ToLabel,
    Proto,
    State,
    Role,
    ToPid,
    ToProcessLabel,
    TxBytes,
    RxBytes,
    RttMs,
    Retransmits,
}

impl ConnectionField {
    const ALL: [(&'static str, ConnectionField); 16] = [
        ("fromPid", ConnectionField::FromPid),
        ("fromProcessName", ConnectionField::FromProcessName),
        ("fromAddress", ConnectionField::FromAddress),
        ("fromPort", ConnectionField::FromPort),
        ("toAddress", ConnectionField::ToAddress),
        ("toPort", ConnectionField::ToPort),
        ("toLabel", ConnectionField::ToLabel),
        ("proto", ConnectionField::Proto),
        ("state", ConnectionField::State),
        ("role", ConnectionField::Role),
        ("toPid", ConnectionField::ToPid),
        ("toProcessLabel", ConnectionField::ToProcessLabel),
        ("txBytes", ConnectionField::TxBytes),
        ("rxBytes", ConnectionField::RxBytes),
        ("rttMs", ConnectionField::RttMs),
        ("retransmits", ConnectionField::Retransmits),
    ];
}

/// A field of a listener row to sort by (its JSON name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerField {
    Pid,
    ProcessName,
    Label,
    ServiceLabel,
    ContainerName,
    ProcessIconType,
    Address,
    AddressDescription,
    Port,
    Cmdline,
    Proto,
}

impl ListenerField {
    const ALL: [(&'static str, ListenerField); 11] = [
        ("pid", ListenerField::Pid),
        ("processName", ListenerField::ProcessName),
        ("label", ListenerField::Label),
        ("serviceLabel", ListenerField::ServiceLabel),
        ("containerName", ListenerField::ContainerName),
        ("processIconType", ListenerField::ProcessIconType),
        ("address", ListenerField::Address),
        ("addressDescription", ListenerField::AddressDescription),
        ("port", ListenerField::Port),
        ("cmdline", ListenerField::Cmdline),
        ("proto", ListenerField::Proto),
    ];
}

/// What to sort by: a field of the chosen rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    Connection(ConnectionField),
    Listener(ListenerField),
}

/// A sort order: `sort=field` ascending, `sort=-field` descending. Rows
/// without a value (e.g. `txBytes` of UDP) come last in both directions;
/// addresses sort numerically (IPv4 before IPv6), then by their port; other
/// ties keep the document's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub field: SortField,
    pub descending: bool,
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub rows: Rows,
    /// Lower-case search terms; a row matches when it contains every one.
    pub terms: Vec<String>,
    pub sort: Option<SortKey>,
    pub limit: usize,
    pub offset: usize,
}

/// Why a page request is refused (a `400`); every message names the
/// parameter, the value and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown parameter `{0}`: /api/connections takes rows, q, sort, limit and offset")]
    UnknownParameter(String),
    #[error("parameter `{0}` is given more than once: give it once")]
    Repeated(String),
    #[error("rows={0:?}: give rows=connections or rows=listeners")]
    BadRows(String),
    #[error("{name}={value:?} is not a whole number: give a number from 0 to {max}")]
    NotANumber {
        name: &'static str,
        value: String,
        max: usize,
    },
    #[error("limit={0} is too large: give at most {MAX_LIMIT} (the whole document is /api/connections without parameters)")]
    LimitTooLarge(usize),
    #[error("q is {0} bytes long: give at most {MAX_Q_BYTES}")]
    QTooLong(usize),
    #[error("sort={value:?}: {rows} have no field `{field}`; give one of {allowed} (prefix `-` for descending)")]
    UnknownSortField {
        value: String,
        field: String,
        rows: &'static str,
        allowed: String,
    },
}

impl PageQuery {
    /// The page asked for by `pairs` (decoded query parameters), `Ok(None)`
    /// when none of the paging parameters is there: then the whole
    /// document is served as it always was.
    pub fn parse(pairs: &[(String, String)]) -> Result<Option<PageQuery>, QueryError> {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (name, value) in pairs {
            if IGNORED.contains(&name.as_str()) {
                continue;
            }
            let Some(known) = PARAMETERS.iter().find(|p| **p == name.as_str()) else {
                return Err(QueryError::UnknownParameter(name.clone()));
            };
            if seen.insert(known, value.as_str()).is_some() {
                return Err(QueryError::Repeated(name.clone()));
            }
        }
        if seen.is_empty() {
            return Ok(None);
        }
        let rows = match seen.get("rows").copied() {
            None | Some("connections") => Rows::Connections,
            Some("listeners") => Rows::Listeners,
            Some(other) => return Err(QueryError::BadRows(other.to_string())),
        };
        let q = seen.get("q").copied().unwrap_or("");
        if q.len() > MAX_Q_BYTES {
            return Err(QueryError::QTooLong(q.len()));
        }
        let terms = q.split_whitespace().map(str::to_lowercase).collect();
        let limit = number(&seen, "limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
        if limit > MAX_LIMIT {
            return Err(QueryError::LimitTooLarge(limit));
        }
        let offset = number(&seen, "offset", usize::MAX)?.unwrap_or(0);
        let sort = match seen.get("sort").copied() {
            None | Some("") => None,
            Some(value) => Some(sort_key(rows, value)?),
        };
        Ok(Some(PageQuery {
            rows,
            terms,
            sort,
            limit,
            offset,
        }))
    }
}

fn number(
    seen: &HashMap<&str, &str>,
    name: &'static str,
    max: usize,
) -> Result<Option<usize>, QueryError> {
    let Some(value) = seen.get(name) else {
        return Ok(None);
    };
    // Only digits: `+5`, ` 5` and `-1` are mistakes worth naming.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::NotANumber {
            name,
            value: value.to_string(),
            max,
        });
    }
    // All digits but too big for usize: saturate, so `limit` says "too
    // large" and a huge `offset` simply gives an empty page.
    Ok(Some(value.parse().unwrap_or(usize::MAX)))
}

fn sort_key(rows: Rows, value: &str) -> Result<SortKey, QueryError> {
    let (descending, name) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let field = match rows {
        Rows::Connections => ConnectionField::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| SortField::Connection(*f)),
        Rows::Listeners => ListenerField::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| SortField::Listener(*f)),
    };
    let Some(field) = field else {
        let allowed: Vec<&str> = match rows {
            Rows::Connections => ConnectionField::ALL.iter().map(|(n, _)| *n).collect(),
            Rows::Listeners => ListenerField::ALL.iter().map(|(n, _)| *n).collect(),
        };
        return Err(QueryError::UnknownSortField {
            value: value.to_string(),
            field: name.to_string(),
            rows: rows.name(),
            allowed: allowed.join(", "),
        });
    };
    Ok(SortKey { field, descending })
}

/// A page of `/api/connections`: `total` rows match the filter, and the
/// list asked for (`connections` by default, or `listeners` with
/// `rows=listeners`) holds those from `offset` on, at most `limit`.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(optional_fields)]
pub struct ConnectionsPage {
    /// Rows that match `q`, before paging.
    pub total: u32,
    pub offset: u32,
    pub limit: u32,
    /// The rows of the document this page is cut from (before `q`).
    pub unfiltered: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listeners: Option<Vec<Listener>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<Connection>>,
}

/// One sample's `/api/connections` rows, with what filtering and sorting
/// need made once: the lower-case text each row is searched in, and the
/// sorted orders asked for so far.
pub struct ConnectionRows {
    pub doc: ConnectionsDoc,
    listener_text: Vec<String>,
    connection_text: Vec<String>,
    sorted: Mutex<HashMap<SortKey, Arc<[u32]>>>,
}

impl ConnectionRows {
    pub fn new(doc: ConnectionsDoc) -> ConnectionRows {
        let listener_text = doc.listeners.iter().map(listener_text).collect();
        let connection_text = doc.connections.iter().map(connection_text).collect();
        ConnectionRows {
            doc,
            listener_text,
            connection_text,
            sorted: Mutex::new(HashMap::new()),
        }
    }

    /// The page `query` asks for.
    pub fn page(&self, query: &PageQuery) -> ConnectionsPage {
        let (texts, len) = match query.rows {
            Rows::Connections => (&self.connection_text, self.doc.connections.len()),
            Rows::Listeners => (&self.listener_text, self.doc.listeners.len()),
        };
        let order = query.sort.map(|key| self.order(key));
        let matches = |i: usize| query.terms.iter().all(|t| texts[i].contains(t.as_str()));
        let mut total = 0usize;
        let mut picked: Vec<usize> = Vec::with_capacity(query.limit.min(len));
        let end = query.offset.saturating_add(query.limit);
        let mut visit = |i: usize| {
            if matches(i) {
                if total >= query.offset && total < end {
                    picked.push(i);
                }
                total += 1;
            }
        };
        match &order {
            Some(order) => order.iter().for_each(|&i| visit(i as usize)),
            None => (0..len).for_each(&mut visit),
        }
        let (listeners, connections) = match query.rows {
            Rows::Connections => (
                None,
                Some(
                    picked
                        .iter()
                        .map(|&i| self.doc.connections[i].clone())
                        .collect(),
                ),
            ),
            Rows::Listeners => (
                Some(
                    picked
                        .iter()
                        .map(|&i| self.doc.listeners[i].clone())
                        .collect(),
                ),
                None,
            ),
        };
        ConnectionsPage {
            total: clamp_u32(total),
            offset: clamp_u32(query.offset),
            limit: clamp_u32(query.limit),
            unfiltered: clamp_u32(len),
            listeners,
            connections,
        }
    }

    /// The rows' indices in `key`'s order, sorted on the first request for
    /// that key and shared afterwards.
    fn order(&self, key: SortKey) -> Arc<[u32]> {
        if let Some(o) = self
            .sorted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return o.clone();
        }
        // Sorted outside the lock: two requests may both sort, which costs
        // time once but never blocks a request for another key.
        let order: Arc<[u32]> = self.sort(key).into();
        self.sorted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, order.clone());
        order
    }

    fn sort(&self, key: SortKey) -> Vec<u32> {
        // The values are read (and addresses parsed) once per row, not
        // once per comparison.
        let keys: Vec<SortValue<'_>> = match key.field {
            SortField::Connection(f) => self
                .doc
                .connections
                .iter()
                .map(|c| connection_key(c, f))
                .collect(),
            SortField::Listener(f) => self
                .doc
                .listeners
                .iter()
                .map(|l| listener_key(l, f))
                .collect(),
        };
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        // Stable: equal rows keep the document's order.
        order.sort_by(|a, b| {
            let (a, b) = (&keys[*a as usize], &keys[*b as usize]);
            compare(a.0.as_ref(), b.0.as_ref(), key.descending)
                .then_with(|| compare(a.1.as_ref(), b.1.as_ref(), key.descending))
        });
        order
    }
}

/// A row's sort value, and its port when the value is an address (an
/// address sorts with its port, as the table shows them).
type SortValue<'a> = (Option<Value<'a>>, Option<Value<'a>>);

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A value to sort by; `None` (absent) sorts after every value.
#[derive(PartialEq, PartialOrd)]
enum Value<'a> {
    Number(f64),
    Address(IpAddr),
    Text(&'a str),
}

fn address(s: &str) -> Value<'_> {
    // Numeric order for addresses (`10.0.0.9` before `10.0.0.10`); what
    // does not parse (a hostname) sorts as text after them.
    match s.parse::<IpAddr>() {
        Ok(ip) => Value::Address(ip),
        Err(_) => Value::Text(s),
    }
}

fn compare(a: Option<&Value<'_>>, b: Option<&Value<'_>>, descending: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => {
            let o = compare_values(a, b);
            if descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

fn compare_values(a: &Value<'_>, b: &Value<'_>) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.total_cmp(y),
        (Value::Address(x), Value::Address(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        // Mixed kinds only for addresses: IPs before names.
        (Value::Address(_), _) => Ordering::Less,
        (_, Value::Address(_)) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

fn num(n: impl Into<f64>) -> Option<Value<'static>> {
    Some(Value::Number(n.into()))
}

fn text(s: &str) -> Option<Value<'_>> {
    Some(Value::Text(s))
}

fn connection_key(c: &Connection, f: ConnectionField) -> SortValue<'_> {
    let port = match f {
        ConnectionField::FromAddress => num(c.from_port),
        ConnectionField::ToAddress => num(c.to_port),
        _ => None,
    };
    (connection_value(c, f), port)
}

fn connection_value(c: &Connection, f: ConnectionField) -> Option<Value<'_>> {
    use ConnectionField as F;
    match f {
        F::FromPid => num(c.from_pid),
        F::FromProcessName => text(&c.from_process_name),
        F::FromAddress => Some(address(&c.from_address)),
        F::FromPort => num(c.from_port),
        F::ToAddress => Some(address(&c.to_address)),
        F::ToPort => num(c.to_port),
        F::ToLabel => c.to_label.as_deref().map(Value::Text),
        F::Proto => text(c.proto.as_str()),
        F::State => text(&c.state),
        F::Role => text(match c.role {
            crate::graph::model::Role::Client => "client",
            crate::graph::model::Role::Server => "server",
        }),
        F::ToPid => c.to_pid.and_then(num),
        F::ToProcessLabel => c.to_process_label.as_deref().map(Value::Text),
        F::TxBytes => c.tx_bytes.map(|n| Value::Number(n as f64)),
        F::RxBytes => c.rx_bytes.map(|n| Value::Number(n as f64)),
        F::RttMs => c.rtt_ms.map(Value::Number),
        F::Retransmits => c.retransmits.map(|n| Value::Number(n as f64)),
    }
}

fn listener_key(l: &Listener, f: ListenerField) -> SortValue<'_> {
    let port = match f {
        ListenerField::Address => num(l.port),
        _ => None,
    };
    (listener_value(l, f), port)
}

fn listener_value(l: &Listener, f: ListenerField) -> Option<Value<'_>> {
    use ListenerField as F;
    match f {
        F::Pid => num(l.pid),
        F::ProcessName => text(&l.process_name),
        F::Label => text(&l.label),
        F::ServiceLabel => l.service_label.as_deref().map(Value::Text),
        F::ContainerName => l.container_name.as_deref().map(Value::Text),
        F::ProcessIconType => l.process_icon_type.as_deref().map(Value::Text),
        F::Address => Some(address(&l.address)),
        F::AddressDescription => text(&l.address_description),
        F::Port => num(l.port),
        F::Cmdline => l.cmdline.as_deref().map(Value::Text),
        F::Proto => text(l.proto.as_str()),
    }
}

/// Appends `v` lower-cased, then the field separator.
fn push_field(s: &mut String, v: impl std::fmt::Display) {
    use std::fmt::Write;
    let start = s.len();
    let _ = write!(s, "{v}");
    if !s[start..].is_ascii() {
        let lower = s[start..].to_lowercase();
        s.truncate(start);
        s.push_str(&lower);
    } else {
        // ASCII (addresses, ports, most names): lower-cased in place.
        s[start..].make_ascii_lowercase();
    }
    s.push('\n');
}

/// The text `q` searches in a connection: its process names, pids,
/// addresses and ports (also as `address:port`), labels, the remote
/// address's DNS name, protocol and state, lower-case, one field per line
/// so a term never matches across two fields.
fn connection_text(c: &Connection) -> String {
    let mut s = String::with_capacity(96);
    push_field(&mut s, &c.from_process_name);
    push_field(&mut s, c.from_pid);
    push_field(&mut s, format_args!("{}:{}", c.from_address, c.from_port));
    push_field(&mut s, format_args!("{}:{}", c.to_address, c.to_port));
    for v in [&c.to_label, &c.to_process_label, &c.to_host_name]
        .into_iter()
        .flatten()
    {
        push_field(&mut s, v);
    }
    if let Some(p) = c.to_pid {
        push_field(&mut s, p);
    }
    push_field(&mut s, c.proto.as_str());
    push_field(&mut s, &c.state);
    s.shrink_to_fit();
    s
}

/// The text `q` searches in a listener: names, labels, container, pid,
/// address and port (also as `address:port`), protocol and command line.
fn listener_text(l: &Listener) -> String {
    let mut s = String::with_capacity(128);
    push_field(&mut s, &l.process_name);
    push_field(&mut s, &l.label);
    push_field(&mut s, l.pid);
    push_field(&mut s, format_args!("{}:{}", l.address, l.port));
    push_field(&mut s, &l.address_description);
    push_field(&mut s, l.proto.as_str());
    for v in [&l.service_label, &l.container_name, &l.cmdline]
        .into_iter()
        .flatten()
    {
        push_field(&mut s, v);
    }
    s.shrink_to_fit();
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::Role;
    use crate::snapshot::Proto;
    use proptest::prelude::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn parse(q: &str) -> Result<Option<PageQuery>, QueryError> {
        PageQuery::parse(&pairs(q))
    }

    fn conn(name: &str, from: &str, port: u16, to_port: u16, tx: Option<u64>) -> Connection {
        Connection {
            from_pid: 100 + port as u32,
            from_process_name: name.into(),
            from_address: from.into(),
            from_port: port,
            to_address: "127.0.0.1".into(),
            to_port,
            to_label: (to_port == 5432).then(|| "PostgreSQL".to_string()),
            proto: Proto::Tcp,
            state: "ESTABLISHED".into(),
            role: Role::Client,
            to_pid: None,
            to_process_label: None,
            to_host_name: None,
            tx_bytes: tx,
            rx_bytes: None,
            rtt_ms: None,
            retransmits: None,
        }
    }

    fn listener(name: &str, address: &str, port: u16) -> Listener {
        Listener {
            pid: port as u32,
            process_name: name.into(),
            label: name.into(),
            service_label: None,
            container_name: None,
            process_icon_type: None,
            address: address.into(),
            address_description: "Listening".into(),
            port,
            cmdline: Some(format!("{name} --port {port}")),
            proto: Proto::Tcp,
            pids: vec![],
            reason: None,
        }
    }

    fn rows() -> ConnectionRows {
        ConnectionRows::new(ConnectionsDoc {
            listeners: vec![
                listener("nginx", "0.0.0.0", 80),
                listener("postgres", "127.0.0.1", 5432),
                listener("redis", "10.0.0.10", 6379),
                listener("redis", "10.0.0.9", 6380),
            ],
            connections: vec![
                conn("psql", "127.0.0.1", 50000, 5432, Some(10)),
                conn("curl", "127.0.0.1", 50001, 80, None),
                conn("Psql", "10.0.0.10", 50002, 5432, Some(30)),
                conn("redis-cli", "10.0.0.9", 50003, 6379, Some(20)),
            ],
        })
    }

    fn ports(p: &ConnectionsPage) -> Vec<u16> {
        p.connections
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.from_port)
            .collect()
    }

    #[test]
    fn no_paging_parameters_means_the_whole_document() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("token=abc"), Ok(None));
    }

    #[test]
    fn defaults_and_values() {
        let q = parse("q=").unwrap().unwrap();
        assert_eq!(q.rows, Rows::Connections);
        assert_eq!((q.limit, q.offset, q.sort), (DEFAULT_LIMIT, 0, None));
        let q = parse("rows=listeners&q=Foo%20BAR&sort=-port&limit=5&offset=10")
            .unwrap()
            .unwrap();
        assert_eq!(q.rows, Rows::Listeners);
        assert_eq!(q.terms, vec!["foo", "bar"]);
        assert_eq!(
            q.sort,
            Some(SortKey {
                field: SortField::Listener(ListenerField::Port),
                descending: true
            })
        );
        assert_eq!((q.limit, q.offset), (5, 10));
        assert_eq!(
            parse("offset=99999999999999999999999")
                .unwrap()
                .unwrap()
                .offset,
            usize::MAX
        );
    }

    #[test]
    fn bad_values_say_what_and_how_to_fix() {
        let e = parse("limit=abc").unwrap_err().to_string();
        assert!(e.contains("limit=\"abc\"") && e.contains("10000"), "{e}");
        assert!(matches!(
            parse("limit=-1"),
            Err(QueryError::NotANumber { .. })
        ));
        assert!(matches!(
            parse("offset="),
            Err(QueryError::NotANumber { .. })
        ));
        assert_eq!(parse("limit=10001"), Err(QueryError::LimitTooLarge(10001)));
        let e = parse("sort=nope").unwrap_err().to_string();
        assert!(e.contains("fromPort") && e.contains("`nope`"), "{e}");
        // A listener field is not a connection field.
        let e = parse("sort=port").unwrap_err().to_string();
        assert!(e.contains("connections have no field `port`"), "{e}");
        assert!(parse("rows=listeners&sort=-port").is_ok());
        assert_eq!(parse("rows=x"), Err(QueryError::BadRows("x".into())));
        assert_eq!(
            parse("limit=1&limit=2"),
            Err(QueryError::Repeated("limit".into()))
        );
        assert_eq!(
            parse("at=5"),
            Err(QueryError::UnknownParameter("at".into()))
        );
        let long = format!("q={}", "a".repeat(MAX_Q_BYTES + 1));
        assert_eq!(parse(&long), Err(QueryError::QTooLong(MAX_Q_BYTES + 1)));
    }

    #[test]
    fn filter_matches_every_term_case_insensitively() {
        let r = rows();
        let page = r.page(&parse("q=PSQL").unwrap().unwrap());
        assert_eq!((page.total, page.unfiltered), (2, 4));
        assert_eq!(ports(&page), vec![50000, 50002]);
        // Labels, address:port, and several terms.
        assert_eq!(
            ports(&r.page(&parse("q=postgresql").unwrap().unwrap())),
            vec![50000, 50002]
        );
        assert_eq!(
            ports(&r.page(&parse("q=10.0.0.9:50003").unwrap().unwrap())),
            vec![50003]
        );
        assert_eq!(
            ports(&r.page(&parse("q=psql+10.0.0").unwrap().unwrap())),
            vec![50002]
        );
        // A term never spans two fields.
        assert_eq!(r.page(&parse("q=psql%0A").unwrap().unwrap()).total, 2);
        assert_eq!(r.page(&parse("q=nothing").unwrap().unwrap()).total, 0);
        // Not only ASCII.
        let mut doc = r.doc.clone();
        doc.connections[1].from_process_name = "ÄPFEL-Dienst".into();
        let r2 = ConnectionRows::new(doc);
        assert_eq!(
            ports(&r2.page(&parse("q=äpfel-d").unwrap().unwrap())),
            vec![50001]
        );
        // The remote address's DNS name.
        let mut doc = r.doc.clone();
        doc.connections[1].to_host_name = Some("web.example.org".into());
        let r3 = ConnectionRows::new(doc);
        assert_eq!(
            ports(&r3.page(&parse("q=example.ORG").unwrap().unwrap())),
            vec![50001]
        );
        let l = r.page(&parse("rows=listeners&q=redis").unwrap().unwrap());
        assert_eq!(l.total, 2);
        assert!(l.connections.is_none());
        assert_eq!(l.listeners.unwrap().len(), 2);
    }

    #[test]
    fn sort_and_page() {
        let r = rows();
        // Absent values last, in both directions.
        assert_eq!(
            ports(&r.page(&parse("sort=txBytes").unwrap().unwrap())),
            vec![50000, 50003, 50002, 50001]
        );
        assert_eq!(
            ports(&r.page(&parse("sort=-txBytes").unwrap().unwrap())),
            vec![50002, 50003, 50000, 50001]
        );
        // Addresses in numeric order, then by port.
        assert_eq!(
            ports(&r.page(&parse("sort=fromAddress").unwrap().unwrap())),
            vec![50003, 50002, 50000, 50001]
        );
        assert_eq!(
            ports(&r.page(&parse("sort=-fromAddress").unwrap().unwrap())),
            vec![50001, 50000, 50002, 50003]
        );
        // Ties keep the document's order.
        assert_eq!(
            ports(&r.page(&parse("sort=toAddress").unwrap().unwrap())),
            vec![50001, 50000, 50002, 50003]
        );
        let page = r.page(&parse("sort=-fromPort&limit=2&offset=1").unwrap().unwrap());
        assert_eq!((page.total, page.offset, page.limit), (4, 1, 2));
        assert_eq!(ports(&page), vec![50002, 50001]);
        assert_eq!(
            ports(&r.page(&parse("offset=4").unwrap().unwrap())),
            Vec::<u16>::new()
        );
        let l = r.page(&parse("rows=listeners&sort=address").unwrap().unwrap());
        let addrs: Vec<String> = l
            .listeners
            .unwrap()
            .into_iter()
            .map(|l| l.address)
            .collect();
        assert_eq!(addrs, ["0.0.0.0", "10.0.0.9", "10.0.0.10", "127.0.0.1"]);
        // Filter and sort together, and the cached order is reused.
        let p = r.page(&parse("q=psql&sort=-txBytes").unwrap().unwrap());
        assert_eq!(ports(&p), vec![50002, 50000]);
        assert_eq!(r.sorted.lock().unwrap().len(), 7);
    }

    #[test]
    fn the_page_serialises_with_the_reserved_names() {
        let p = rows().page(&parse("limit=1").unwrap().unwrap());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["total"], 4);
        assert_eq!(v["connections"].as_array().unwrap().len(), 1);
        assert!(v.get("listeners").is_none());
    }

    proptest! {
        /// Any query string: a page or a clear error, never a panic; a page
        /// never holds more than `limit` rows nor more than `total`.
        #[test]
        fn any_query_is_a_page_or_an_error(
            raw in proptest::collection::vec(
                (prop_oneof![Just("rows".to_string()), Just("q".to_string()), Just("sort".to_string()),
                             Just("limit".to_string()), Just("offset".to_string()), "[a-z]{0,5}"],
                 prop_oneof![Just("-txBytes".to_string()), Just("listeners".to_string()), "[0-9]{0,22}", "\\PC{0,12}"]),
                0..5)
        ) {
            let pairs: Vec<(String, String)> = raw;
            if let Ok(Some(q)) = PageQuery::parse(&pairs) {
                let p = rows().page(&q);
                let shown = p.connections.map_or(0, |c| c.len()) + p.listeners.map_or(0, |l| l.len());
                prop_assert!(shown <= q.limit);
                prop_assert!(shown <= p.total as usize);
                prop_assert!(p.total <= p.unfiltered);
            }
        }
    }
}
