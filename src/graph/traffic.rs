//! Traffic over time: turns the kernel's cumulative per-socket byte counters
//! of successive snapshots into per-interval deltas (for rates) and into
//! per-process, per-interface totals that never go backwards.
//!
//! Pure: the tracker only sees snapshots. A process is identified by (pid,
//! start time), so a reused pid starts from zero instead of inheriting (or
//! subtracting) the old process's bytes. A socket is identified by its
//! endpoints and inode; a socket reported closed (inode 0, from the
//! kernel's destroy notifications) is matched to the live one by endpoints
//! so its last bytes are counted once: also when that report comes a
//! sample or two after the socket left the dump, because a socket that
//! vanishes is remembered for [`FORGET_SOCKET_MS`].
//!
//! Bytes of a socket several processes hold (inherited across fork, or a
//! closed connection credited to its listener's holders) go to ONE of them:
//! the one that did the I/O when the collector saw it (tier T0), else the
//! youngest; so per-process totals add up to per-socket totals (see
//! [`credited_owner`]).

use crate::graph::pairing::SocketIndex;
use crate::snapshot::{Proto, Snapshot, Socket, SocketChanges};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};

type Endpoints = (Proto, SocketAddr, Option<SocketAddr>);

/// A socket's [`Endpoints`] in 16 bytes instead of 68 (a `SocketAddr` has
/// room for IPv6): IPv4 ones, almost every socket, inline; others at an
/// index of [`TrafficTracker::prev_wide`]. The tracker keeps one per
/// socket of the previous sample (heaptrack at 100k sockets: 9.6 MB of
/// `Seen` before, 4.8 MB now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackedEnds {
    V4(Proto, SocketAddrV4, Option<SocketAddrV4>),
    Wide(u32),
}

fn pack(ends: Endpoints, wide: &mut Vec<Endpoints>) -> PackedEnds {
    match ends {
        (proto, SocketAddr::V4(local), None) => PackedEnds::V4(proto, local, None),
        (proto, SocketAddr::V4(local), Some(SocketAddr::V4(remote))) => {
            PackedEnds::V4(proto, local, Some(remote))
        }
        _ => {
            wide.push(ends);
            PackedEnds::Wide(wide.len() as u32 - 1)
        }
    }
}

fn unpack(ends: PackedEnds, wide: &[Endpoints]) -> Option<Endpoints> {
    match ends {
        PackedEnds::V4(proto, local, remote) => {
            Some((proto, SocketAddr::V4(local), remote.map(SocketAddr::V4)))
        }
        PackedEnds::Wide(i) => wide.get(i as usize).copied(),
    }
}
type ProcKey = (u32, Option<u64>);

pub use super::socket_deltas::{Delta, SocketDeltas};

/// What one sample added.
#[derive(Debug, Clone, Default)]
pub struct TrafficSample {
    /// Seconds since the previous sample; `None` on the first.
    pub interval_secs: Option<f64>,
    /// Per socket (same index as `Snapshot::sockets`): bytes since the
    /// previous sample, `None` when the socket has no counters or this is
    /// the first sample.
    pub deltas: SocketDeltas,
}

impl TrafficSample {
    /// Bytes per second for a delta, when the interval is known.
    pub fn rate(&self, bytes: u64) -> Option<f64> {
        self.interval_secs
            .filter(|&s| s > 0.0)
            .map(|s| bytes as f64 / s)
    }
}

/// Cumulative traffic of one process on one interface (netprocmon's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceTraffic {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    pub name: String,
    pub interface: String,
    /// Bytes received since procnet started watching.
    pub recv: u64,
    /// Bytes sent since procnet started watching.
    pub send: u64,
}

/// One socket's counters as the previous sample saw them.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// 0 for a socket no process holds any more.
    inode: u64,
    ends: PackedEnds,
    counters: Delta,
    /// Reported closed (a destroy notification): never matched again.
    closed: bool,
}

/// How long a socket that left the dump without a destroy report is
/// remembered (its endpoints, inode and last counters): its late report
/// then counts only the bytes after those, not all of them again. Same
/// span as [`crate::graph::fleet::FORGET_SOCKET_MS`].
pub const FORGET_SOCKET_MS: u64 = 5_000;

/// A socket missing from the last dump, as it was last seen.
#[derive(Debug, Clone, Copy)]
struct Gone {
    inode: u64,
    counters: Delta,
    seen_ms: u64,
}

/// Keeps the previous sample's counters and the running totals.
#[derive(Debug, Default)]
pub struct TrafficTracker {
    prev_at_ms: Option<u64>,
    /// The previous sample's sockets that had counters, in its order. The
    /// kernel lists sockets in hash-table order, which stays put from one
    /// sample to the next, so socket `i` is usually found at the cursor
    /// without hashing; a socket found elsewhere (the table changed) is
    /// looked up by inode. Endpoints are compared too, so a reused inode
    /// number is a new socket.
    prev: Vec<Seen>,
    /// Per socket of the previous sample (same index): its position in
    /// `prev`, [`NOT_SEEN`] for one without counters. A sample that only
    /// moved some counters finds those sockets here without hashing.
    slot_of: Vec<u32>,
    /// The endpoints of `prev`'s sockets that are not both IPv4, at the
    /// index their [`PackedEnds::Wide`] says.
    prev_wide: Vec<Endpoints>,
    totals: BTreeMap<(ProcKey, String), (u64, u64, String)>,
    /// Sockets of earlier samples that left the dump without being
    /// reported closed, for [`FORGET_SOCKET_MS`]; usually empty.
    gone: FxHashMap<Endpoints, Gone>,
    /// All bytes ever counted (sent, received); only grows.
    pub grand_total: (u64, u64),
}

/// Positions of the previous sample by a 64-bit key, sorted: 16 bytes a
/// socket, sized exactly. A hash map keyed by the endpoints themselves
/// was ~16 MB at 100k sockets (and built on any sample in which one
/// connection closed), the largest thing alive at the server's peak.
struct KeyIndex(Vec<(u64, u32)>);

impl KeyIndex {
    fn new(entries: impl Iterator<Item = (u64, u32)>) -> KeyIndex {
        let mut v: Vec<(u64, u32)> = entries.collect();
        v.sort_unstable();
        KeyIndex(v)
    }

    /// The first position with `key` that `ok` accepts (keys may repeat:
    /// a reused inode, a hash collision).
    fn find(&self, key: u64, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let start = self.0.partition_point(|&(k, _)| k < key);
        self.0[start..]
            .iter()
            .take_while(|&&(k, _)| k == key)
            .map(|&(_, at)| at as usize)
            .find(|&at| ok(at))
    }
}

fn hash_ends(ends: &Endpoints) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(ends)
}

/// In `slot_of`: the socket had no counters.
const NOT_SEEN: u32 = u32::MAX;

fn counters(s: &Socket) -> Option<Delta> {
    match (s.bytes_sent, s.bytes_received) {
        (None, None) => None,
        (sent, recv) => Some((sent.unwrap_or(0), recv.unwrap_or(0))),
    }
}

/// The interface a local address belongs to (`lo` for loopback).
pub fn interface_of(ip: IpAddr, snap: &Snapshot) -> String {
    if let Some(i) = snap.interfaces.iter().find(|i| i.addresses.contains(&ip)) {
        return i.name.clone();
    }
    if ip.is_loopback() {
        "lo".into()
    } else {
        "?".into()
    }
}

impl TrafficTracker {
    /// Takes in the next snapshot; returns the per-socket deltas.
    pub fn observe(&mut self, snap: &Snapshot) -> TrafficSample {
        self.observe_changed(snap, None)
    }

    /// [`TrafficTracker::observe`], given which sockets changed since the
    /// snapshot observed last (see [`SocketChanges`]): only those are
    /// looked at; the others moved no byte (a delta of zero).
    pub fn observe_changed(
        &mut self,
        snap: &Snapshot,
        changes: Option<&SocketChanges>,
    ) -> TrafficSample {
        if let Some(changes) = changes {
            if let Some(sample) = self.observe_counters(snap, changes) {
                return sample;
            }
        }
        self.observe_all(snap)
    }

    /// The pass over changed sockets only; `None` when it cannot be one
    /// (the first sample, captured flows, a socket that gained or lost its
    /// counters), before anything is changed.
    fn observe_counters(
        &mut self,
        snap: &Snapshot,
        changes: &SocketChanges,
    ) -> Option<TrafficSample> {
        let prev_at = self.prev_at_ms?;
        if !snap.captured.is_empty() || self.slot_of.len() != snap.sockets.len() {
            return None;
        }
        let same_shape = changes.changed.iter().all(|&i| {
            let i = i as usize;
            i < snap.sockets.len()
                && counters(&snap.sockets[i]).is_some() == (self.slot_of[i] != NOT_SEEN)
        });
        if !same_shape {
            return None;
        }
        let mut deltas: SocketDeltas = self
            .slot_of
            .iter()
            .map(|&k| (k != NOT_SEEN).then_some((0, 0)))
            .collect();
        let mut procs: Option<HashMap<u32, (Option<u64>, &str)>> = None;
        let mut index: Option<SocketIndex<'_>> = None;
        for &i in &changes.changed {
            let i = i as usize;
            let s = &snap.sockets[i];
            let Some(now) = counters(s) else { continue };
            let seen = &mut self.prev[self.slot_of[i] as usize];
            let (sent, recv) = std::mem::replace(&mut seen.counters, now);
            let delta = if now.0 >= sent && now.1 >= recv {
                (now.0 - sent, now.1 - recv)
            } else {
                now
            };
            deltas.set(i, Some(delta));
            if delta == (0, 0) {
                continue;
            }
            let owners = holders(s, snap, &mut index);
            let procs = procs.get_or_insert_with(|| process_names(snap));
            let iface = interface_of(s.local.ip(), snap);
            self.credit(owners, s.io_owner, procs, &iface, delta);
        }
        if !self.gone.is_empty() {
            let now_ms = snap.taken_at_ms;
            self.forget_gone(now_ms);
        }
        self.prev_at_ms = Some(snap.taken_at_ms);
        Some(TrafficSample {
            interval_secs: Some(snap.taken_at_ms.saturating_sub(prev_at) as f64 / 1000.0),
            deltas,
        })
    }

    fn observe_all(&mut self, snap: &Snapshot) -> TrafficSample {
        let first = self.prev_at_ms.is_none();
        let interval_secs = self
            .prev_at_ms
            .map(|prev| snap.taken_at_ms.saturating_sub(prev) as f64 / 1000.0);
        // Sized exactly: it is kept as `prev` until a sample changes the
        // sockets' shape, and grown by doubling it held 6.3 MB for 4.8 at
        // 100k sockets (the first sample's, kept for as long as nothing
        // closes).
        let with_counters = snap
            .sockets
            .iter()
            .filter(|s| counters(s).is_some())
            .count();
        let mut next: Vec<Seen> = Vec::with_capacity(with_counters);
        let mut next_wide: Vec<Endpoints> = Vec::new();
        let mut cursor = 0usize;
        // Built on the first miss: previous position by inode, and previous
        // counters by endpoints (for sockets reported without an inode).
        let mut by_inode: Option<KeyIndex> = None;
        let mut by_endpoints: Option<KeyIndex> = None;
        // Which previous sockets this sample carried on (the rest vanished).
        let mut matched = vec![false; self.prev.len()];
        let mut deltas = SocketDeltas::default();
        // Built only when a socket needs its listener (rare): most samples
        // of a steady machine never pay for it.
        let mut index: Option<SocketIndex<'_>> = None;
        let procs = process_names(snap);
        let mut slot_of = Vec::with_capacity(snap.sockets.len());
        for s in &snap.sockets {
            let Some(now) = counters(s) else {
                deltas.push(None);
                slot_of.push(NOT_SEEN);
                continue;
            };
            let ends = (s.proto, s.local, s.remote);
            // Inode 0: closed by its process (an orphan still in FIN_WAIT, or
            // a destroy report); its previous report is found by endpoints.
            let before = if s.inode == 0 {
                let at = by_endpoints
                    .get_or_insert_with(|| self.endpoints_index())
                    .find(hash_ends(&ends), |k| {
                        !self.prev[k].closed
                            && unpack(self.prev[k].ends, &self.prev_wide) == Some(ends)
                    });
                at.map(|k| {
                    matched[k] = true;
                    self.prev[k].counters
                })
                .or_else(|| self.gone.remove(&ends).map(|g| g.counters))
            } else {
                let same = |k: usize| {
                    self.prev.get(k).filter(|p| {
                        p.inode == s.inode && unpack(p.ends, &self.prev_wide) == Some(ends)
                    })
                };
                let at = if same(cursor).is_some() {
                    Some(cursor)
                } else {
                    by_inode
                        .get_or_insert_with(|| self.inode_index())
                        .find(s.inode, |k| same(k).is_some())
                };
                at.map(|k| {
                    cursor = k + 1;
                    matched[k] = true;
                    self.prev[k].counters
                })
                .or_else(|| {
                    // Missing from a dump or two, then back (same inode).
                    match self.gone.get(&ends) {
                        Some(g) if g.inode == s.inode => {
                            self.gone.remove(&ends).map(|g| g.counters)
                        }
                        _ => None,
                    }
                })
            };
            let delta = match before {
                Some((sent, recv)) if now.0 >= sent && now.1 >= recv => {
                    (now.0 - sent, now.1 - recv)
                }
                // New since the last sample (or a reused tuple): all its
                // bytes fall in this interval. On the very first sample the
                // counters are the baseline, not traffic we saw.
                _ if first => (0, 0),
                _ => now,
            };
            slot_of.push(next.len() as u32);
            next.push(Seen {
                inode: s.inode,
                ends: pack(ends, &mut next_wide),
                counters: now,
                closed: s.closed,
            });
            deltas.push((!first).then_some(delta));
            if delta == (0, 0) {
                continue; // idle: nothing to add (the usual case)
            }
            let owners = holders(s, snap, &mut index);
            let iface = interface_of(s.local.ip(), snap);
            self.credit(owners, s.io_owner, &procs, &iface, delta);
        }
        if !snap.captured.is_empty() {
            let index = index.get_or_insert_with(|| SocketIndex::new(snap));
            self.add_captured(snap, index, &procs, first, &mut deltas);
        }
        self.remember_vanished(&matched, snap.taken_at_ms);
        self.prev = next;
        self.prev_wide = next_wide;
        self.slot_of = slot_of;
        self.prev_at_ms = Some(snap.taken_at_ms);
        TrafficSample {
            interval_secs,
            deltas,
        }
    }

    /// The previous sample's positions by inode.
    fn inode_index(&self) -> KeyIndex {
        KeyIndex::new(
            self.prev
                .iter()
                .enumerate()
                .filter(|(_, p)| p.inode != 0)
                .map(|(k, p)| (p.inode, k as u32)),
        )
    }

    /// The previous sample's live sockets by (a hash of) their endpoints.
    fn endpoints_index(&self) -> KeyIndex {
        KeyIndex::new(
            self.prev
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.closed)
                .filter_map(|(k, p)| {
                    Some((hash_ends(&unpack(p.ends, &self.prev_wide)?), k as u32))
                }),
        )
    }

    /// Remembers the previous sample's sockets that this one did not carry
    /// on and that were not reported closed (their destroy report may come
    /// in a later sample), and forgets those older than
    /// [`FORGET_SOCKET_MS`].
    fn remember_vanished(&mut self, matched: &[bool], now_ms: u64) {
        for (p, _) in self
            .prev
            .iter()
            .zip(matched)
            .filter(|(p, seen)| !**seen && !p.closed)
        {
            let Some(ends) = unpack(p.ends, &self.prev_wide) else {
                continue;
            };
            self.gone.insert(
                ends,
                Gone {
                    inode: p.inode,
                    counters: p.counters,
                    seen_ms: now_ms,
                },
            );
        }
        if !self.gone.is_empty() {
            self.forget_gone(now_ms);
        }
    }

    /// Forgets the vanished sockets older than [`FORGET_SOCKET_MS`], and
    /// gives back the map's room once most are gone (100k sockets that
    /// left one dump would hold 13 MB of it otherwise: a hash map never
    /// shrinks by itself).
    fn forget_gone(&mut self, now_ms: u64) {
        self.gone
            .retain(|_, g| now_ms.saturating_sub(g.seen_ms) < FORGET_SOCKET_MS);
        if self.gone.capacity() > 4 * self.gone.len() + 1024 {
            self.gone.shrink_to_fit();
        }
    }

    /// Adds the UDP bytes packet capture saw (the kernel keeps no UDP byte
    /// counters): to the owners' totals, and as the delta of the connected
    /// socket they belong to. TCP keeps the kernel's own counters.
    fn add_captured(
        &mut self,
        snap: &Snapshot,
        index: &SocketIndex<'_>,
        procs: &HashMap<u32, (Option<u64>, &str)>,
        first: bool,
        deltas: &mut SocketDeltas,
    ) {
        for f in snap.captured.iter().filter(|f| f.proto == Proto::Udp) {
            let socket = index
                .connected(f.proto, f.local, f.remote)
                .or_else(|| index.listener_for(f.proto, f.local));
            let Some(i) = socket else { continue };
            // A socket with its own counters (UDP from kernel events, tier
            // T0) is already counted from them: capture would count it twice.
            if counters(&snap.sockets[i]).is_some() {
                continue;
            }
            if !first && snap.sockets[i].remote.is_some() {
                deltas.add(i, (f.sent, f.received));
            }
            self.credit(
                &snap.sockets[i].owners,
                snap.sockets[i].io_owner,
                procs,
                &f.interface,
                (f.sent, f.received),
            );
        }
    }

    /// Adds `delta` (sent, received) to the total on `iface` of the one
    /// owner that is credited (see [`credited_owner`]).
    fn credit(
        &mut self,
        owners: &[u32],
        io_owner: Option<u32>,
        procs: &HashMap<u32, (Option<u64>, &str)>,
        iface: &str,
        delta: Delta,
    ) {
        if let Some(pid) = credited_owner(owners, io_owner, procs) {
            let (start, name) = procs.get(&pid).copied().unwrap_or((None, "?"));
            let e = self
                .totals
                .entry(((pid, start), iface.to_string()))
                .or_insert((0, 0, name.to_string()));
            e.0 += delta.0;
            e.1 += delta.1;
        }
        self.grand_total.0 += delta.0;
        self.grand_total.1 += delta.1;
    }

    /// Totals per process and interface since the tracker started.
    pub fn totals(&self) -> Vec<InterfaceTraffic> {
        self.totals
            .iter()
            .map(
                |(((pid, start), iface), (send, recv, name))| InterfaceTraffic {
                    pid: *pid,
                    start_time: *start,
                    name: name.clone(),
                    interface: iface.clone(),
                    recv: *recv,
                    send: *send,
                },
            )
            .collect()
    }

    /// Forgets processes that are gone (pid and start time not in `snap`),
    /// so the totals stay bounded; their bytes stay in `grand_total`.
    pub fn forget_exited(&mut self, snap: &Snapshot) {
        let alive: std::collections::HashSet<ProcKey> = snap
            .processes
            .iter()
            .map(|p| (p.pid, p.start_time))
            .collect();
        self.totals.retain(|(key, _), _| alive.contains(key));
    }
}

/// Who holds `s` for its bytes: its owners, or for a closed server-side
/// socket its listener's. `index` is built on the first need (rare: most
/// samples of a steady machine never pay for it).
fn holders<'s>(
    s: &'s Socket,
    snap: &'s Snapshot,
    index: &mut Option<SocketIndex<'s>>,
) -> &'s [u32] {
    if !s.owners.is_empty() {
        return &s.owners;
    }
    let index = index.get_or_insert_with(|| SocketIndex::new(snap));
    match index.listener_for(s.proto, s.local) {
        Some(l) => &snap.sockets[l].owners,
        None => &s.owners,
    }
}

/// Each process's start time and name, by pid.
pub(crate) fn process_names(snap: &Snapshot) -> HashMap<u32, (Option<u64>, &str)> {
    snap.processes
        .iter()
        .map(|p| (p.pid, (p.start_time, p.name.as_str())))
        .collect()
}

/// The one holder of a socket its bytes are credited to. One process:
/// that one. Several (a socket inherited across fork, or a closed
/// connection credited to the holders of its listener): the one that did
/// the latest I/O (`io_owner`, [`Socket::io_owner`]) when it is one of
/// them, since it moved the bytes; else (no event said who, as at tiers
/// T1-T3) the youngest (the latest start time, then the highest pid),
/// because in the pre-fork pattern the parent opens the socket and its
/// children do the I/O. Crediting every holder would count the same bytes
/// once per holder.
pub fn credited_owner(
    owners: &[u32],
    io_owner: Option<u32>,
    procs: &HashMap<u32, (Option<u64>, &str)>,
) -> Option<u32> {
    match owners {
        [] => None,
        [one] => Some(*one),
        many if io_owner.is_some_and(|pid| many.contains(&pid)) => io_owner,
        many => many
            .iter()
            .copied()
            .max_by_key(|pid| (procs.get(pid).and_then(|p| p.0), *pid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Interface, Process, SocketState};

    fn sock(local: &str, remote: &str, inode: u64, owner: u32, sent: u64, recv: u64) -> Socket {
        Socket {
            proto: Proto::Tcp,
            local: local.parse().unwrap(),
            remote: Some(remote.parse().unwrap()),
            state: SocketState::Established,
            inode,
            uid: None,
            owners: if owner == 0 {
                Default::default()
            } else {
                smallvec::smallvec![owner]
            },
            unowned_reason: None,
            bytes_sent: Some(sent),
            bytes_received: Some(recv),
            tcp_health: None,
            closed: false,
            io_owner: None,
        }
    }

    fn snap(at: u64, start: u64, sockets: Vec<Socket>) -> Snapshot {
        Snapshot {
            taken_at_ms: at,
            interfaces: vec![Interface {
                name: "lo".into(),
                addresses: vec!["127.0.0.1".parse().unwrap()],
            }],
            processes: vec![Process {
                pid: 7,
                start_time: Some(start),
                name: "app".into(),
                ..Process::default()
            }],
            sockets: sockets.into(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn sockets_found_after_reordering_insertions_and_inode_reuse() {
        let mut t = TrafficTracker::default();
        let a = |sent| sock("127.0.0.1:1", "127.0.0.1:2", 11, 7, sent, 0);
        let b = |sent| sock("127.0.0.1:3", "127.0.0.1:2", 12, 7, sent, 0);
        let c = |sent| sock("127.0.0.1:5", "127.0.0.1:2", 13, 7, sent, 0);
        t.observe(&snap(1000, 50, vec![a(100), b(200), c(300)]));
        // A new socket first, the rest in another order.
        let new = sock("127.0.0.1:7", "127.0.0.1:2", 14, 7, 5, 0);
        let s = t.observe(&snap(2000, 50, vec![new, c(310), a(101), b(220)]));
        assert_eq!(
            s.deltas,
            vec![Some((5, 0)), Some((10, 0)), Some((1, 0)), Some((20, 0))]
        );
        // Inode 12 reused by a socket with other endpoints: a new socket,
        // all its bytes are new.
        let reused = sock("127.0.0.1:9", "127.0.0.1:2", 12, 7, 30, 0);
        let s = t.observe(&snap(3000, 50, vec![a(101), reused]));
        assert_eq!(s.deltas, vec![Some((0, 0)), Some((30, 0))]);
    }

    #[test]
    fn ipv6_sockets_beside_ipv4_ones_keep_their_counters() {
        // IPv6 endpoints are kept apart from the packed IPv4 ones: they
        // must be found, told apart by endpoints and remembered as well.
        let mut t = TrafficTracker::default();
        let v4 = |sent| sock("127.0.0.1:1", "127.0.0.1:2", 11, 7, sent, 0);
        let v6 = |port, inode, sent| sock(&format!("[::1]:{port}"), "[::1]:2", inode, 7, sent, 0);
        let bound = |sent| Socket {
            remote: None,
            ..sock("[fe80::1%3]:53", "[::1]:2", 15, 7, sent, 0)
        };
        t.observe(&snap(
            1000,
            50,
            vec![v6(1, 21, 100), v4(10), v6(3, 22, 200), bound(1)],
        ));
        let s = t.observe(&snap(
            2000,
            50,
            vec![bound(4), v6(3, 22, 260), v4(15), v6(1, 21, 101)],
        ));
        assert_eq!(
            s.deltas,
            vec![Some((3, 0)), Some((60, 0)), Some((5, 0)), Some((1, 0))]
        );
        // Inode 22 reused by other IPv6 endpoints: all its bytes are new.
        let s = t.observe(&snap(3000, 50, vec![v6(5, 22, 30), v6(1, 21, 111)]));
        assert_eq!(s.deltas, vec![Some((30, 0)), Some((10, 0))]);
        // [::1]:1 leaves the dump, then its destroy report (inode 0) comes:
        // only the bytes after the last seen count.
        t.observe(&snap(4000, 50, vec![v6(5, 22, 30)]));
        let s = t.observe(&snap(5000, 50, vec![v6(5, 22, 30), v6(1, 0, 115)]));
        assert_eq!(s.deltas, vec![Some((0, 0)), Some((4, 0))]);
        assert_eq!(t.grand_total.0, 3 + 60 + 5 + 1 + 30 + 10 + 4);
    }

    #[test]
    fn the_room_of_forgotten_sockets_is_given_back() {
        let mut t = TrafficTracker::default();
        let many: Vec<Socket> = (0..5000u16)
            .map(|i| {
                sock(
                    &format!("127.0.0.1:{}", 10_000 + i),
                    "127.0.0.1:2",
                    100 + i as u64,
                    7,
                    1,
                    0,
                )
            })
            .collect();
        t.observe(&snap(1000, 50, many));
        // All leave the dump without a destroy report: remembered, then forgotten.
        t.observe(&snap(2000, 50, vec![]));
        assert_eq!(t.gone.len(), 5000);
        t.observe(&snap(2000 + FORGET_SOCKET_MS, 50, vec![]));
        assert!(t.gone.is_empty());
        assert!(t.gone.capacity() < 1024, "{}", t.gone.capacity());
    }

    #[test]
    fn deltas_rates_and_totals() {
        let mut t = TrafficTracker::default();
        let s1 = t.observe(&snap(
            1000,
            50,
            vec![sock("127.0.0.1:1", "127.0.0.1:2", 9, 7, 100, 10)],
        ));
        assert_eq!(
            (s1.interval_secs, s1.deltas.get(0)),
            (None, None),
            "first sample is the baseline"
        );
        let s2 = t.observe(&snap(
            2000,
            50,
            vec![
                sock("127.0.0.1:1", "127.0.0.1:2", 9, 7, 600, 30),
                sock("127.0.0.1:3", "127.0.0.1:2", 10, 7, 40, 4),
            ],
        ));
        assert_eq!(s2.deltas, vec![Some((500, 20)), Some((40, 4))]);
        assert_eq!(s2.rate(500), Some(500.0));
        // The first socket closes: its destroy report (inode 0) brings its last bytes.
        let s3 = t.observe(&snap(
            3000,
            50,
            vec![
                sock("127.0.0.1:1", "127.0.0.1:2", 0, 0, 700, 30),
                sock("127.0.0.1:3", "127.0.0.1:2", 10, 7, 40, 4),
            ],
        ));
        assert_eq!(s3.deltas, vec![Some((100, 0)), Some((0, 0))]);
        let totals = t.totals();
        assert_eq!(totals.len(), 1);
        assert_eq!(
            (totals[0].send, totals[0].recv, totals[0].interface.as_str()),
            (540, 24, "lo")
        );
        assert_eq!(t.grand_total, (640, 24));
    }

    #[test]
    fn a_reused_pid_starts_afresh() {
        let mut t = TrafficTracker::default();
        t.observe(&snap(
            1000,
            50,
            vec![sock("127.0.0.1:1", "127.0.0.1:2", 9, 7, 100, 0)],
        ));
        t.observe(&snap(
            2000,
            50,
            vec![sock("127.0.0.1:1", "127.0.0.1:2", 9, 7, 300, 0)],
        ));
        // pid 7 again, but a new process (new start time) with a new socket.
        let s = t.observe(&snap(
            3000,
            99,
            vec![sock("127.0.0.1:5", "127.0.0.1:2", 11, 7, 5, 0)],
        ));
        assert_eq!(s.deltas, vec![Some((5, 0))]);
        let snap_now = snap(3000, 99, vec![]);
        t.forget_exited(&snap_now);
        let totals = t.totals();
        assert_eq!(totals.len(), 1);
        assert_eq!((totals[0].start_time, totals[0].send), (Some(99), 5));
    }

    #[test]
    fn counters_that_go_back_are_a_new_socket_not_negative() {
        let mut t = TrafficTracker::default();
        t.observe(&snap(
            1000,
            50,
            vec![sock("127.0.0.1:1", "127.0.0.1:2", 9, 7, 100, 100)],
        ));
        let s = t.observe(&snap(
            2000,
            50,
            vec![sock("127.0.0.1:1", "127.0.0.1:2", 9, 7, 10, 10)],
        ));
        assert_eq!(s.deltas, vec![Some((10, 10))]);
    }

    /// 1,000 connections of 1,000 bytes each, seen live once, then missing
    /// from the next dump, then reported closed a sample later: each is
    /// counted once (1,000,000 B), not again when its late report comes.
    #[test]
    fn a_late_destroy_report_is_not_counted_twice() {
        let mut t = TrafficTracker::default();
        let conn = |k: u64, inode: u64| {
            let local = format!("127.0.0.1:{}", 10_000 + k);
            let mut s = sock(&local, "127.0.0.1:80", inode, 7, 1000, 0);
            if inode == 0 {
                s.owners.clear();
                s.closed = true;
            }
            s
        };
        t.observe(&snap(1000, 50, vec![]));
        t.observe(&snap(
            2000,
            50,
            (0..1000).map(|k| conn(k, 100 + k)).collect(),
        ));
        // Gone from the dump, no report yet.
        t.observe(&snap(3000, 50, vec![]));
        // The destroy reports (inode 0, the same final counters).
        let s = t.observe(&snap(4000, 50, (0..1000).map(|k| conn(k, 0)).collect()));
        assert!(
            s.deltas.iter().all(|d| d == Some((0, 0))),
            "{:?}",
            s.deltas.iter().take(3).collect::<Vec<_>>()
        );
        assert_eq!(t.grand_total, (1_000_000, 0));
        assert_eq!(t.totals()[0].send, 1_000_000);
        // A report later than FORGET_SOCKET_MS is a socket not seen before.
        t.observe(&snap(4000 + FORGET_SOCKET_MS + 1, 50, vec![]));
        assert!(t.gone.is_empty());
    }

    /// A socket missing from one dump and back with the same inode counts
    /// only its growth.
    #[test]
    fn a_socket_missing_from_one_dump_is_not_new() {
        let mut t = TrafficTracker::default();
        let a = |sent| sock("127.0.0.1:1", "127.0.0.1:2", 11, 7, sent, 0);
        t.observe(&snap(1000, 50, vec![a(100)]));
        t.observe(&snap(2000, 50, vec![]));
        let s = t.observe(&snap(3000, 50, vec![a(150)]));
        assert_eq!(s.deltas, vec![Some((50, 0))]);
    }

    /// Three holders of one socket (a pre-fork server): its bytes are
    /// credited once, to the youngest holder, so the per-process totals add
    /// up to the socket's.
    #[test]
    fn a_shared_socket_is_credited_once() {
        let mut t = TrafficTracker::default();
        let shared = |sent| {
            let mut s = sock("127.0.0.1:1", "127.0.0.1:2", 11, 7, sent, 0);
            s.owners = smallvec::smallvec![7, 8, 9];
            s
        };
        let with_holders = |at, sockets| {
            let mut s = snap(at, 50, sockets);
            for (pid, start) in [(8, 60), (9, 55)] {
                s.processes.push(Process {
                    pid,
                    start_time: Some(start),
                    name: "worker".into(),
                    ..Process::default()
                });
            }
            s
        };
        t.observe(&with_holders(1000, vec![shared(0)]));
        t.observe(&with_holders(2000, vec![shared(900)]));
        let totals = t.totals();
        assert_eq!(totals.len(), 1, "{totals:?}");
        assert_eq!((totals[0].pid, totals[0].send), (8, 900));
        assert_eq!(t.grand_total, (900, 0));

        // The kernel said the oldest holder did the I/O: its bytes, and
        // only its. A process that is not a holder (stale) is not credited.
        let mut t = TrafficTracker::default();
        let sent_by = |sent, io| {
            let mut s = shared(sent);
            s.io_owner = Some(io);
            s
        };
        t.observe(&with_holders(1000, vec![sent_by(0, 7)]));
        t.observe(&with_holders(2000, vec![sent_by(900, 7)]));
        t.observe(&with_holders(3000, vec![sent_by(1000, 42)]));
        let mut totals: Vec<(u32, u64)> = t.totals().iter().map(|t| (t.pid, t.send)).collect();
        totals.sort_unstable();
        assert_eq!(totals, vec![(7, 900), (8, 100)]);
        assert_eq!(t.grand_total, (1000, 0));
    }
}
