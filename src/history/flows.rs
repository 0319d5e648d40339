//! Closed connections, derived from the sequence of samples alone (so a
//! replayed recording yields the same log as the live server did): a
//! connection is open while a sample shows one of its sockets alive, and
//! closed at the first sample where none is (gone, `TIME_WAIT`/`CLOSE`,
//! or reported destroyed by the kernel — which is how a connection that
//! lived between two samples is seen at all).
//!
//! Records have the shape of Zeek's `conn.log`: start, end, duration, the
//! client and server ends (address, port, process with pid and start
//! time), proto, bytes each way and the final state.

use crate::graph::direction::{decide, ServerSide};
use crate::graph::ports::ServicePorts;
use crate::snapshot::{Process, Proto, Snapshot, Socket, SocketChanges, SocketState};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

/// One end of a closed connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowEnd {
    pub address: String,
    pub port: u16,
    /// The owning process, when this host's and seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// With `pid`, identifies the process (seconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_name: Option<String>,
}

/// One closed connection (`/api/flows`, `procnet flows`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowRecord {
    /// First sample that saw it, RFC 3339 UTC; for a connection seen only
    /// through its destroy notification, the sample before (it opened
    /// after that one).
    pub start: String,
    /// The sample that saw it closed, RFC 3339 UTC.
    pub end: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// `end_ms - start_ms` in seconds.
    pub duration: f64,
    pub proto: Proto,
    pub client: FlowEnd,
    pub server: FlowEnd,
    /// Payload bytes client → server (Zeek's `orig_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_bytes: Option<u64>,
    /// Payload bytes server → client (`resp_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_bytes: Option<u64>,
    /// The last socket state seen, e.g. `ESTABLISHED`, `TIME_WAIT`.
    pub state: String,
    /// Seen only through the kernel's destroy notification: it opened and
    /// closed between two samples.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub short: bool,
}

/// (proto, client, server).
type FlowKey = (Proto, SocketAddr, SocketAddr);

/// A [`FlowKey`] of two IPv4 ends: 14 bytes instead of 68 (a
/// `SocketAddr` has room for IPv6), for what is almost every connection.
type FlowKey4 = (Proto, SocketAddrV4, SocketAddrV4);

fn key4(k: &FlowKey) -> Option<FlowKey4> {
    match (k.1, k.2) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => Some((k.0, c, s)),
        _ => None,
    }
}

fn widen(k: &FlowKey4) -> FlowKey {
    (k.0, SocketAddr::V4(k.1), SocketAddr::V4(k.2))
}

/// The open connections by key: one entry per open connection (100k at
/// 200k sockets), so the IPv4 ones are kept under a [`FlowKey4`]; a map
/// entry is 80 bytes, not 208 (heaptrack at 100k sockets: 13.7 MB).
#[derive(Debug, Default)]
struct OpenFlows {
    v4: FxHashMap<FlowKey4, OpenFlow>,
    other: FxHashMap<FlowKey, OpenFlow>,
}

impl OpenFlows {
    fn contains_key(&self, k: &FlowKey) -> bool {
        match key4(k) {
            Some(k4) => self.v4.contains_key(&k4),
            None => self.other.contains_key(k),
        }
    }

    fn get_mut(&mut self, k: &FlowKey) -> Option<&mut OpenFlow> {
        match key4(k) {
            Some(k4) => self.v4.get_mut(&k4),
            None => self.other.get_mut(k),
        }
    }

    fn get_or_insert_with(&mut self, k: FlowKey, f: impl FnOnce() -> OpenFlow) -> &mut OpenFlow {
        match key4(&k) {
            Some(k4) => self.v4.entry(k4).or_insert_with(f),
            None => self.other.entry(k).or_insert_with(f),
        }
    }

    fn retain(&mut self, mut f: impl FnMut(&FlowKey, &mut OpenFlow) -> bool) {
        self.v4.retain(|k, v| f(&widen(k), v));
        self.other.retain(|k, v| f(k, v));
    }

    fn keys(&self) -> impl Iterator<Item = FlowKey> + '_ {
        self.v4.keys().map(widen).chain(self.other.keys().copied())
    }

    fn values(&self) -> impl Iterator<Item = &OpenFlow> {
        self.v4.values().chain(self.other.values())
    }
}

/// One end of a connection still open: its process (the address is the
/// flow's key). Shared by every open connection of that process
/// ([`FlowTracker::ends`]), so 100k open connections hold 8 bytes an end,
/// not 40 and no string each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct OpenEnd {
    pid: Option<u32>,
    start_time: Option<u64>,
    process_name: Option<Arc<str>>,
}

/// The closed connection's end at `addr`; `end` is `None` when no
/// process was seen on it.
fn end_at(end: Option<&OpenEnd>, addr: SocketAddr) -> FlowEnd {
    FlowEnd {
        address: addr.ip().to_string(),
        port: addr.port(),
        pid: end.and_then(|e| e.pid),
        start_time: end.and_then(|e| e.start_time),
        process_name: end
            .and_then(|e| e.process_name.as_deref())
            .map(str::to_string),
    }
}

/// 64 bytes: there is one per open connection.
#[derive(Debug, Clone)]
struct OpenFlow {
    start_ms: u64,
    client_bytes: Option<u64>,
    server_bytes: Option<u64>,
    /// `None` until a sample names the process on that end.
    client: Option<Arc<OpenEnd>>,
    server: Option<Arc<OpenEnd>>,
    /// The last sample (counted by `observed`, modulo 2^32) it was seen
    /// alive in: a flow not alive in this sample closed (a field, not a
    /// set of this sample's keys, saves two hash look-ups a socket). Every
    /// full pass drops the flows not alive in it, so a flow's mark is
    /// never 2^32 samples old.
    alive_in: u32,
    state: SocketState,
    /// Only ever seen as destroyed.
    short: bool,
}

/// Follows connections from sample to sample; emits them as they close.
#[derive(Debug, Default)]
pub struct FlowTracker {
    open: OpenFlows,
    prev_ms: Option<u64>,
    /// Listening (proto, port) of recent samples: a connection outlives
    /// its listener, and its direction must not flip when it goes.
    listen_ports: FxHashSet<(Proto, u16)>,
    /// The owners of this sample's listeners: the server of a connection
    /// the kernel reported only when it was destroyed (no owner: it never
    /// was in a dump) is the process that listened on its port.
    listen_owners: FxHashMap<(Proto, u16), u32>,
    ports: ServicePorts,
    /// Connections logged in the last [`LINGER_MS`], with when.
    recently_closed: FxHashMap<FlowKey, u64>,
    /// Samples observed, from 1.
    observed: u64,
    /// The processes of open connections' ends, one copy each.
    ends: FxHashSet<Arc<OpenEnd>>,
}

/// How long a logged connection's key is remembered, so a late report of
/// one of its sockets does not log it twice.
const LINGER_MS: u64 = 5_000;

fn alive(s: &Socket) -> bool {
    !s.closed && !matches!(s.state, SocketState::TimeWait | SocketState::Close)
}

/// The end held by `owners` (the first is named), the copy in `ends`.
fn end_of(
    owners: &[u32],
    procs: &FxHashMap<u32, &Process>,
    ends: &mut FxHashSet<Arc<OpenEnd>>,
) -> Arc<OpenEnd> {
    let pid = owners.first().copied();
    let p = pid.and_then(|pid| procs.get(&pid));
    let end = OpenEnd {
        pid,
        start_time: p.and_then(|p| p.start_time),
        process_name: p.map(|p| Arc::from(p.name.as_str())),
    };
    match ends.get(&end) {
        Some(e) => e.clone(),
        None => {
            let e = Arc::new(end);
            ends.insert(e.clone());
            e
        }
    }
}

impl FlowTracker {
    pub fn new(ports: ServicePorts) -> FlowTracker {
        FlowTracker {
            ports,
            ..FlowTracker::default()
        }
    }

    /// Takes the next sample; returns the connections that closed in it.
    pub fn observe(&mut self, snap: &Snapshot) -> Vec<FlowRecord> {
        self.observe_changed(snap, None)
    }

    /// [`FlowTracker::observe`], given which sockets changed since the
    /// sample observed last (see [`SocketChanges`]): the others are that
    /// sample's, so every open connection is still open, no listener came
    /// or went, and only the changed sockets' byte counts are taken in.
    pub fn observe_changed(
        &mut self,
        snap: &Snapshot,
        changes: Option<&SocketChanges>,
    ) -> Vec<FlowRecord> {
        match changes {
            Some(c) if self.prev_ms.is_some() => self.observe_counters(snap, c),
            _ => self.observe_all(snap),
        }
    }

    /// Only the sockets at `changes` moved, and only their counters.
    fn observe_counters(&mut self, snap: &Snapshot, changes: &SocketChanges) -> Vec<FlowRecord> {
        let now = snap.taken_at_ms;
        self.observed += 1;
        for s in changes
            .changed
            .iter()
            .filter_map(|&i| snap.sockets.get(i as usize))
        {
            let Some((key, local_is_client)) = self.flow_of(s) else {
                continue;
            };
            // Not followed (a lingering TIME_WAIT of a logged connection):
            // the full pass would skip it too.
            let Some(flow) = self.open.get_mut(&key) else {
                continue;
            };
            take_counters(flow, s, local_is_client);
        }
        self.recently_closed
            .retain(|_, at| now.saturating_sub(*at) <= LINGER_MS);
        shrink_if_sparse(&mut self.recently_closed);
        // Every open connection stays open (each was alive in the last
        // sample, and its sockets are unchanged but for counters): none is
        // closed here, so none needs marking alive.
        self.prev_ms = Some(now);
        Vec::new()
    }

    /// The flow `s` belongs to, and whether its local end is the client;
    /// `None` for a socket that is not one end of a connection.
    fn flow_of(&self, s: &Socket) -> Option<(FlowKey, bool)> {
        let remote = s.remote?;
        if s.state == SocketState::Listen {
            return None;
        }
        let d = decide(
            s.local,
            remote,
            self.listen_ports.contains(&(s.proto, s.local.port())),
            self.listen_ports.contains(&(s.proto, remote.port())),
            &self.ports,
        );
        let local_is_client = d.server == ServerSide::Remote;
        let (client, server) = if local_is_client {
            (s.local, remote)
        } else {
            (remote, s.local)
        };
        Some(((s.proto, client, server), local_is_client))
    }

    fn observe_all(&mut self, snap: &Snapshot) -> Vec<FlowRecord> {
        let now = snap.taken_at_ms;
        self.observed += 1;
        let sample = self.observed as u32;
        let procs: FxHashMap<u32, &Process> = snap.processes.iter().map(|p| (p.pid, p)).collect();
        let mut listens: FxHashSet<(Proto, u16)> = FxHashSet::default();
        self.listen_owners.clear();
        for s in &snap.sockets {
            if s.state == SocketState::Listen || (s.proto == Proto::Udp && s.remote.is_none()) {
                listens.insert((s.proto, s.local.port()));
                if let Some(pid) = s.owners.first() {
                    self.listen_owners.insert((s.proto, s.local.port()), *pid);
                }
            }
        }
        self.listen_ports.extend(listens.iter().copied());
        for s in &snap.sockets {
            let Some((key, local_is_client)) = self.flow_of(s) else {
                continue;
            };
            let fresh = !self.open.contains_key(&key);
            // A lingering TIME_WAIT, or the other end's late destroy
            // report, of a connection already logged is not a new one.
            if fresh && (!alive(s) && !s.closed || self.recently_closed.contains_key(&key)) {
                continue;
            }
            let prev_ms = self.prev_ms;
            let flow = self.open.get_or_insert_with(key, || OpenFlow {
                // Seen first as destroyed: it opened after the last sample.
                start_ms: if s.closed {
                    prev_ms.unwrap_or(now)
                } else {
                    now
                },
                client: None,
                server: None,
                client_bytes: None,
                server_bytes: None,
                state: s.state,
                short: s.closed,
                alive_in: 0,
            });
            if fresh {
                flow.short = s.closed;
            } else if !s.closed {
                flow.short = false;
            }
            if !s.owners.is_empty() {
                let end = if local_is_client {
                    &mut flow.client
                } else {
                    &mut flow.server
                };
                // Compared before anything is built: this runs for every
                // socket of every sample, and is a change only when the
                // owner changed (formatting the address each time was
                // most of the tracker's cost).
                let pid = s.owners.first().copied();
                let p = pid.and_then(|pid| procs.get(&pid));
                let changed = match end {
                    None => true,
                    Some(end) => {
                        end.pid != pid
                            || p.is_some_and(|p| {
                                end.start_time != p.start_time
                                    || end.process_name.as_deref() != Some(p.name.as_str())
                            })
                    }
                };
                if changed {
                    *end = Some(end_of(&s.owners, &procs, &mut self.ends));
                }
            }
            take_counters(flow, s, local_is_client);
            if alive(s) {
                flow.alive_in = sample;
            }
        }
        let mut done = Vec::new();
        self.recently_closed
            .retain(|_, at| now.saturating_sub(*at) <= LINGER_MS);
        let recently_closed = &mut self.recently_closed;
        let listen_owners = &self.listen_owners;
        let ends = &mut self.ends;
        self.open.retain(|key, flow| {
            if flow.alive_in == sample {
                return true;
            }
            recently_closed.insert(*key, now);
            if flow.server.as_ref().and_then(|e| e.pid).is_none() {
                if let Some(pid) = listen_owners.get(&(key.0, key.2.port())) {
                    flow.server = Some(end_of(&[*pid], &procs, ends));
                }
            }
            let start_ms = flow.start_ms;
            done.push(FlowRecord {
                start: crate::history::time::rfc3339_ms(start_ms),
                end: crate::history::time::rfc3339_ms(now),
                start_ms,
                end_ms: now,
                duration: now.saturating_sub(start_ms) as f64 / 1000.0,
                proto: key.0,
                client: end_at(flow.client.as_deref(), key.1),
                server: end_at(flow.server.as_deref(), key.2),
                client_bytes: flow.client_bytes,
                server_bytes: flow.server_bytes,
                state: flow.state.as_str().to_string(),
                short: flow.short,
            });
            false
        });
        // A total order: the maps' visiting order is no order at all.
        done.sort_by(|a, b| log_order(a).cmp(&log_order(b)));
        // Forget listen ports nobody has used for a while: only those of
        // this sample and of open connections stay.
        if self.listen_ports.len() > 4 * listens.len() + 1024 {
            let keep: FxHashSet<(Proto, u16)> = self
                .open
                .keys()
                .map(|(p, _, server)| (p, server.port()))
                .chain(listens.iter().copied())
                .collect();
            self.listen_ports.retain(|k| keep.contains(k));
        }
        shrink_if_sparse(&mut self.recently_closed);
        shrink_if_sparse(&mut self.open.v4);
        shrink_if_sparse(&mut self.open.other);
        if self.ends.len() > 1024 {
            // Forget the processes no open connection has any more.
            self.ends = self
                .open
                .values()
                .flat_map(|f| [&f.client, &f.server])
                .flatten()
                .cloned()
                .collect();
        }
        self.prev_ms = Some(now);
        done
    }
}

/// Gives back a map's room after most of it went (50k connections that
/// closed at once leave 5 MB of `recently_closed` behind otherwise): a
/// hash map never shrinks by itself.
fn shrink_if_sparse<K: std::hash::Hash + Eq, V>(map: &mut FxHashMap<K, V>) {
    if map.capacity() > 4 * map.len() + 1024 {
        map.shrink_to_fit();
    }
}

/// The order of connections closed in the same sample: by start, then by
/// their ends.
fn log_order(f: &FlowRecord) -> (u64, u16, &str, &str, u16, Proto) {
    (
        f.start_ms,
        f.client.port,
        &f.client.address,
        &f.server.address,
        f.server.port,
        f.proto,
    )
}

/// Takes a socket's byte counters and state into its connection.
fn take_counters(flow: &mut OpenFlow, s: &Socket, local_is_client: bool) {
    // The client's own counters are the truth; the server's count the same
    // bytes the other way round.
    let (out, back) = if local_is_client {
        (s.bytes_sent, s.bytes_received)
    } else {
        (s.bytes_received, s.bytes_sent)
    };
    if out.is_some() {
        flow.client_bytes = out.max(flow.client_bytes);
    }
    if back.is_some() {
        flow.server_bytes = back.max(flow.server_bytes);
    }
    flow.state = s.state;
}

/// `procnet flows --format table`: one line per connection.
pub fn table(flows: &[FlowRecord]) -> String {
    let end = |e: &FlowEnd| {
        let who = match (&e.process_name, e.pid) {
            (Some(n), Some(p)) => format!("{n}[{p}] "),
            (None, Some(p)) => format!("[{p}] "),
            _ => String::new(),
        };
        format!("{who}{}:{}", e.address, e.port)
    };
    let bytes = |b: Option<u64>| b.map_or("-".to_string(), |b| b.to_string());
    let rows: Vec<[String; 8]> = flows
        .iter()
        .map(|f| {
            [
                f.start.clone(),
                format!("{:.3}", f.duration),
                f.proto.as_str().to_string(),
                end(&f.client),
                end(&f.server),
                bytes(f.client_bytes),
                bytes(f.server_bytes),
                f.state.clone(),
            ]
        })
        .collect();
    let head = [
        "START", "DURATION", "PROTO", "CLIENT", "SERVER", "C→S", "S→C", "STATE",
    ];
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(head.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    if rows.is_empty() {
        out.push("(no closed connections in this window)".into());
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(local: &str, remote: Option<&str>, state: SocketState, owner: u32) -> Socket {
        Socket {
            proto: Proto::Tcp,
            local: local.parse().unwrap(),
            remote: remote.map(|r| r.parse().unwrap()),
            state,
            inode: 1,
            uid: None,
            owners: smallvec::smallvec![owner],
            unowned_reason: None,
            bytes_sent: Some(0),
            bytes_received: Some(0),
            tcp_health: None,
            closed: false,
            io_owner: None,
        }
    }

    fn snap(t: u64, sockets: Vec<Socket>) -> Snapshot {
        Snapshot {
            taken_at_ms: t,
            sockets: sockets.into(),
            processes: vec![
                Process {
                    pid: 10,
                    start_time: Some(100),
                    name: "client".into(),
                    ..Process::default()
                },
                Process {
                    pid: 20,
                    start_time: Some(200),
                    name: "server".into(),
                    ..Process::default()
                },
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_connection_closes_when_its_sockets_go() {
        let mut t = FlowTracker::new(ServicePorts::new([]));
        let listen = sock("127.0.0.1:8000", None, SocketState::Listen, 20);
        let mut c = sock(
            "127.0.0.1:40000",
            Some("127.0.0.1:8000"),
            SocketState::Established,
            10,
        );
        let s = sock(
            "127.0.0.1:8000",
            Some("127.0.0.1:40000"),
            SocketState::Established,
            20,
        );
        assert!(t
            .observe(&snap(1000, vec![listen.clone(), c.clone(), s.clone()]))
            .is_empty());
        c.bytes_sent = Some(500);
        c.bytes_received = Some(70);
        assert!(t
            .observe(&snap(2000, vec![listen.clone(), c.clone(), s.clone()]))
            .is_empty());
        let done = t.observe(&snap(3000, vec![listen]));
        assert_eq!(done.len(), 1);
        let f = &done[0];
        assert_eq!((f.start_ms, f.end_ms, f.duration), (1000, 3000, 2.0));
        assert_eq!(f.client.pid, Some(10));
        assert_eq!(f.client.start_time, Some(100));
        assert_eq!(f.server.pid, Some(20));
        assert_eq!(f.server.process_name.as_deref(), Some("server"));
        assert_eq!((f.client_bytes, f.server_bytes), (Some(500), Some(70)));
        assert!(!f.short);
    }

    #[test]
    fn ipv6_and_ipv4_connections_close_alike_and_in_order() {
        let mut t = FlowTracker::new(ServicePorts::new([]));
        let listen4 = sock("127.0.0.1:8000", None, SocketState::Listen, 20);
        let listen6 = sock("[::1]:8000", None, SocketState::Listen, 20);
        let pair = |client: &str, server: &str| {
            let mut c = sock(client, Some(server), SocketState::Established, 10);
            c.bytes_sent = Some(7);
            let s = sock(server, Some(client), SocketState::Established, 20);
            [c, s]
        };
        let mut all = vec![listen4.clone(), listen6.clone()];
        all.extend(pair("[::1]:40001", "[::1]:8000"));
        all.extend(pair("127.0.0.1:40001", "127.0.0.1:8000"));
        all.extend(pair("127.0.0.2:40000", "127.0.0.1:8000"));
        all.extend(pair("[::1]:40000", "[::1]:8000"));
        assert!(t.observe(&snap(1000, all.clone())).is_empty());
        assert_eq!((t.open.v4.len(), t.open.other.len()), (2, 2));
        // Every connection of the client process shares one end.
        let client_ends: Vec<_> = t.open.values().filter_map(|f| f.client.clone()).collect();
        assert_eq!(client_ends.len(), 4);
        assert!(client_ends.iter().all(|e| Arc::ptr_eq(e, &client_ends[0])));
        assert!(t.observe(&snap(2000, all)).is_empty());
        let done = t.observe(&snap(3000, vec![listen4, listen6]));
        let ends: Vec<(String, u16)> = done
            .iter()
            .map(|f| (f.client.address.clone(), f.client.port))
            .collect();
        assert_eq!(
            ends,
            [
                ("127.0.0.2".to_string(), 40000),
                ("::1".to_string(), 40000),
                ("127.0.0.1".to_string(), 40001),
                ("::1".to_string(), 40001),
            ]
        );
        for f in &done {
            assert_eq!((f.start_ms, f.end_ms), (1000, 3000));
            assert_eq!((f.client.pid, f.server.pid), (Some(10), Some(20)));
            assert_eq!(f.server.process_name.as_deref(), Some("server"));
            assert_eq!((f.client_bytes, f.server_bytes), (Some(7), Some(0)));
        }
        assert_eq!((t.open.v4.len(), t.open.other.len()), (0, 0));
    }

    #[test]
    fn the_room_of_closed_connections_is_given_back() {
        let mut t = FlowTracker::new(ServicePorts::new([]));
        let listen = sock("127.0.0.1:8000", None, SocketState::Listen, 20);
        let mut all = vec![listen.clone()];
        for i in 0..5000u16 {
            let client = format!("127.0.0.1:{}", 10_000 + i);
            all.push(sock(
                &client,
                Some("127.0.0.1:8000"),
                SocketState::Established,
                10,
            ));
        }
        t.observe(&snap(1000, all));
        assert_eq!(t.open.v4.len(), 5000);
        assert_eq!(t.observe(&snap(2000, vec![listen.clone()])).len(), 5000);
        assert!(t.open.v4.capacity() < 1024, "{}", t.open.v4.capacity());
        assert_eq!(t.recently_closed.len(), 5000);
        t.observe(&snap(3000 + LINGER_MS, vec![listen]));
        assert!(t.recently_closed.is_empty());
        assert!(t.recently_closed.capacity() < 1024);
    }

    #[test]
    fn a_connection_seen_only_destroyed_is_short() {
        let mut t = FlowTracker::new(ServicePorts::new([]));
        let listen = sock("127.0.0.1:8000", None, SocketState::Listen, 20);
        t.observe(&snap(1000, vec![listen.clone()]));
        let mut c = sock(
            "127.0.0.1:40001",
            Some("127.0.0.1:8000"),
            SocketState::Close,
            10,
        );
        c.closed = true;
        c.bytes_sent = Some(1234);
        let mut s = sock(
            "127.0.0.1:8000",
            Some("127.0.0.1:40001"),
            SocketState::Close,
            20,
        );
        s.closed = true;
        // Never in a dump: the kernel's report names no owner; the server
        // is the listener's.
        s.owners.clear();
        s.bytes_sent = Some(99);
        let done = t.observe(&snap(2000, vec![listen, c, s]));
        assert_eq!(done.len(), 1);
        let f = &done[0];
        assert!(f.short);
        assert_eq!((f.start_ms, f.end_ms), (1000, 2000));
        assert_eq!((f.client.pid, f.server.pid), (Some(10), Some(20)));
        assert_eq!((f.client_bytes, f.server_bytes), (Some(1234), Some(99)));
    }
}
