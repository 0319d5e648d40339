//! Tier T0's TCP socket table, kept in user space from the kernel events
//! instead of walked every sample: a walk (the iterator of tier T1) seeds
//! it, then each state record, activity record and close moves it on. An
//! idle machine sends no events, so an idle sample costs nothing however
//! many sockets there are. Pure: unit-tested on records built here.
//!
//! Sockets are keyed by their endpoints, as the merge of closed sockets
//! already is: a TCP connection's four-tuple is unique in its network
//! namespace, a listener's local address too. They are kept in a vector in
//! a stable order (a closed one's place is taken by the last), so a batch
//! that only moved counters names the slots it changed and the sample built
//! from the table can say which of its sockets differ from the last one
//! (see [`crate::snapshot::SocketChanges`]).
//!
//! What the walk lists and the events cannot follow is left out when
//! seeding: TIME_WAIT sockets and SYN_RECV request sockets are not full
//! sockets and no event says when they go (a connection in TIME_WAIT is
//! reported once, closed, by its close record).

use super::record::{Kind, Record};
use crate::collect::linux::inet_diag::{tcp_byte_counters, tcp_health};
use crate::snapshot::{Proto, Socket, SocketState};
use rustc_hash::FxHashMap;
use std::net::SocketAddr;

/// A TCP socket's endpoints (local, remote).
pub type Ends = (SocketAddr, Option<SocketAddr>);

/// The live TCP sockets, as the events left them.
#[derive(Debug, Default)]
pub struct EventTable {
    /// The sockets, in a stable order.
    sockets: Vec<Socket>,
    /// Where each socket sits in `sockets`.
    slots: FxHashMap<Ends, u32>,
    /// Live sockets with no owner yet, and since when (ns, CLOCK_MONOTONIC):
    /// an accepted connection gets its owner at its first I/O; one that
    /// stays silent needs a walk to find its process.
    ownerless: FxHashMap<Ends, u64>,
    /// Bumped whenever a socket appears, goes or changes.
    generation: u64,
}

/// What one batch of records changed.
#[derive(Debug, Default)]
pub struct Applied {
    /// The connections that closed (to report once, with their owners).
    pub closed: Vec<Record>,
    /// A socket appeared or went (the graph's shape may change).
    pub opened_or_closed: bool,
    /// Only counters, states or owners of known sockets changed.
    pub changed: bool,
    /// A known socket's state, inode, uid or owners changed (not only its
    /// counters): what is built from the sockets may change shape.
    pub reshaped: bool,
    /// The slots of the sockets that changed, ascending, without repeats;
    /// meaningful only when nothing `opened_or_closed` (a removal moves a
    /// socket to another slot).
    pub changed_slots: Vec<u32>,
    /// A listener appeared or went.
    pub listeners_changed: bool,
}

impl EventTable {
    /// The table a walk found (its TCP sockets that events can follow).
    pub fn from_walk<'a>(sockets: impl IntoIterator<Item = &'a Socket>) -> EventTable {
        let sockets: Vec<&Socket> = sockets
            .into_iter()
            .filter(|s| s.proto == Proto::Tcp && !s.closed && followed(s.state))
            .collect();
        // Sized once: at 100k sockets a vector grown by doubling holds a
        // third more than it needs, and twice that while it grows.
        let mut table = EventTable {
            sockets: Vec::with_capacity(sockets.len()),
            slots: FxHashMap::with_capacity_and_hasher(sockets.len(), Default::default()),
            ..EventTable::default()
        };
        for s in sockets {
            if s.proto == Proto::Tcp && !s.closed && followed(s.state) {
                let mut s = s.clone();
                s.unowned_reason = None;
                table.insert(s);
            }
        }
        table
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Changes whenever the table does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The sockets, in the table's order (stable while none opens or
    /// closes).
    pub fn sockets(&self) -> &[Socket] {
        &self.sockets
    }

    /// Adds `s`, or replaces the socket with its endpoints; its slot.
    fn insert(&mut self, s: Socket) -> usize {
        match self.slots.get(&(s.local, s.remote)) {
            Some(&at) => {
                self.sockets[at as usize] = s;
                at as usize
            }
            None => {
                let at = self.sockets.len();
                self.slots.insert((s.local, s.remote), at as u32);
                self.sockets.push(s);
                at
            }
        }
    }

    /// Removes the socket with endpoints `key`; the last one takes its slot.
    fn remove(&mut self, key: &Ends) -> Option<Socket> {
        let at = self.slots.remove(key)? as usize;
        let s = self.sockets.swap_remove(at);
        if let Some(moved) = self.sockets.get(at) {
            self.slots.insert((moved.local, moved.remote), at as u32);
        }
        Some(s)
    }

    /// When the longest-ownerless live socket was first seen without an
    /// owner (ns, CLOCK_MONOTONIC); `None` when every socket has one.
    pub fn ownerless_since(&self) -> Option<u64> {
        self.ownerless.values().copied().min()
    }

    /// Applies records in the order they happened (`ts_ns`).
    pub fn apply(&mut self, mut records: Vec<Record>) -> Applied {
        records.sort_by_key(|r| r.ts_ns);
        let mut applied = Applied::default();
        for r in records {
            if r.proto != Proto::Tcp {
                continue;
            }
            let key = (r.local, r.remote);
            match r.kind {
                Kind::Closed | Kind::ListenerClosed => {
                    if let Some(s) = self.remove(&key) {
                        applied.opened_or_closed = true;
                        applied.listeners_changed |= s.state == SocketState::Listen;
                    }
                    self.ownerless.remove(&key);
                    if r.kind == Kind::Closed {
                        applied.closed.push(r);
                    }
                }
                Kind::State | Kind::Activity => {
                    let state = SocketState::from_linux(r.state);
                    // connect() enters SYN_SENT before the kernel picks the
                    // local port: that record names no socket a later one
                    // would find (the next, ESTABLISHED, has the port).
                    if !followed(state) || r.local.port() == 0 {
                        continue;
                    }
                    let (sent, received) =
                        tcp_byte_counters(r.state, None, Some(r.raw_received), Some(r.sent), None);
                    let health = tcp_health(r.state, r.rtt_us, r.retransmits);
                    let (at, is_new) = match self.slots.get(&key) {
                        Some(&at) => (at as usize, false),
                        None => (
                            self.insert(Socket {
                                proto: Proto::Tcp,
                                local: r.local,
                                remote: r.remote,
                                state,
                                inode: 0,
                                uid: None,
                                owners: Default::default(),
                                unowned_reason: None,
                                bytes_sent: None,
                                bytes_received: None,
                                tcp_health: None,
                                closed: false,
                            }),
                            true,
                        ),
                    };
                    let s = &mut self.sockets[at];
                    let before = (!is_new).then(|| s.clone());
                    let was_listener = !is_new && s.state == SocketState::Listen;
                    s.state = state;
                    if r.inode != 0 {
                        s.inode = r.inode;
                        s.uid = Some(r.uid);
                    } else if s.inode != 0 && r.kind == Kind::State {
                        // Orphaned: its process closed it (FIN_WAIT, LAST_ACK…);
                        // no file, no owner any more, as a walk would say.
                        s.inode = 0;
                        s.uid = None;
                        s.owners.clear();
                    }
                    // The counters only grow: a record older than what a
                    // walk read does not take them back.
                    s.bytes_sent = max_some(s.bytes_sent, sent);
                    s.bytes_received = max_some(s.bytes_received, received);
                    if health.is_some() {
                        s.tcp_health = health;
                    }
                    // The process that did the I/O holds the socket; the
                    // holders a walk found (a shared socket) stay.
                    let orphan =
                        s.inode == 0 && !is_new && before.as_ref().is_some_and(|b| b.inode != 0);
                    if let Some(o) = r.owner.as_ref().filter(|_| {
                        !orphan
                            && (r.inode != 0 || s.inode == 0 && r.kind == Kind::Activity || is_new)
                    }) {
                        if let Err(at) = s.owners.binary_search(&o.tgid) {
                            s.owners.insert(at, o.tgid);
                        }
                    }
                    // Waiting for its process (an accepted connection that
                    // did no I/O yet); an orphan has none to wait for.
                    let awaits_owner = matches!(
                        s.state,
                        SocketState::Established | SocketState::SynRecv | SocketState::CloseWait
                    );
                    if s.owners.is_empty() && awaits_owner {
                        self.ownerless.entry(key).or_insert(r.ts_ns);
                    } else {
                        self.ownerless.remove(&key);
                    }
                    applied.listeners_changed |= was_listener != (state == SocketState::Listen);
                    match before {
                        None => applied.opened_or_closed = true,
                        Some(b) if b != *s => {
                            applied.changed = true;
                            applied.reshaped |= b.state != s.state
                                || b.inode != s.inode
                                || b.uid != s.uid
                                || b.owners != s.owners;
                            applied.changed_slots.push(at as u32);
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if applied.opened_or_closed || applied.changed {
            self.generation += 1;
        }
        applied.changed_slots.sort_unstable();
        applied.changed_slots.dedup();
        applied
    }
}

/// States whose end an event reports (full sockets).
fn followed(state: SocketState) -> bool {
    !matches!(
        state,
        SocketState::TimeWait | SocketState::NewSynRecv | SocketState::Close
    )
}

fn max_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{Owner, Record};
    use super::*;

    const ESTABLISHED: u8 = 1;
    const LISTEN: u8 = 10;
    const CLOSE_WAIT: u8 = 8;

    fn rec(kind: Kind, state: u8, local: &str, remote: Option<&str>, ts: u64) -> Record {
        Record {
            kind,
            proto: Proto::Tcp,
            local: local.parse().unwrap(),
            remote: remote.map(|r| r.parse().unwrap()),
            owner: None,
            sent: 0,
            received: 0,
            retransmits: Some(0),
            rtt_us: Some(40),
            state,
            inode: 0,
            uid: 0,
            ts_ns: ts,
            raw_received: 0,
        }
    }

    fn owned(mut r: Record, tgid: u32, inode: u64) -> Record {
        r.owner = Some(Owner {
            tgid,
            start_ns: 1,
            comm: "x".into(),
        });
        r.inode = inode;
        r
    }

    #[test]
    fn a_connection_from_open_to_close() {
        let mut t = EventTable::default();
        let a = "127.0.0.1:4000";
        let b = Some("127.0.0.1:80");
        // Accepted in softirq: no owner, no inode yet.
        let applied = t.apply(vec![rec(Kind::State, ESTABLISHED, a, b, 10)]);
        assert!(applied.opened_or_closed);
        assert_eq!(t.len(), 1);
        assert_eq!(t.ownerless_since(), Some(10));
        // Its first read names the owner and the inode; the counters
        // follow, the FIN is not a byte once the peer closed.
        let mut io = owned(rec(Kind::Activity, CLOSE_WAIT, a, b, 20), 7, 99);
        io.sent = 500;
        io.raw_received = 301;
        let g = t.generation();
        let applied = t.apply(vec![io]);
        assert!(applied.changed && !applied.opened_or_closed);
        assert!(t.generation() > g);
        let s = &t.sockets()[0];
        assert_eq!((s.owners.as_slice(), s.inode), (&[7][..], 99));
        assert_eq!((s.bytes_sent, s.bytes_received), (Some(500), Some(300)));
        assert_eq!(s.state, SocketState::CloseWait);
        assert_eq!(t.ownerless_since(), None);
        // Its process closes it (the peer has not yet): orphaned, no owner.
        let fin = rec(Kind::State, 9 /* LAST_ACK */, a, b, 25);
        t.apply(vec![owned(fin, 7, 0)]);
        let s = &t.sockets()[0];
        assert!(s.owners.is_empty() && s.inode == 0, "{s:?}");
        assert_eq!(t.ownerless_since(), None, "an orphan waits for no owner");
        // The close is reported once and the socket is gone.
        let applied = t.apply(vec![rec(Kind::Closed, 7, a, b, 30)]);
        assert_eq!(applied.closed.len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn records_apply_in_time_order_and_counters_never_go_back() {
        let a = "127.0.0.1:4000";
        let b = Some("127.0.0.1:80");
        let walked = Socket {
            proto: Proto::Tcp,
            local: a.parse().unwrap(),
            remote: b.map(|r| r.parse().unwrap()),
            state: SocketState::Established,
            inode: 5,
            uid: Some(0),
            owners: smallvec::smallvec![3, 4],
            unowned_reason: None,
            bytes_sent: Some(1000),
            bytes_received: Some(0),
            tcp_health: None,
            closed: false,
        };
        let tw = Socket {
            state: SocketState::TimeWait,
            local: "127.0.0.1:4001".parse().unwrap(),
            ..walked.clone()
        };
        let mut t = EventTable::from_walk([&walked, &tw]);
        assert_eq!(t.len(), 1, "TIME_WAIT is not followed");
        let mut old = owned(rec(Kind::Activity, ESTABLISHED, a, b, 5), 4, 5);
        old.sent = 10;
        // The close came after the activity, though listed first.
        let applied = t.apply(vec![rec(Kind::Closed, 7, a, b, 9), old]);
        assert_eq!(applied.closed.len(), 1);
        assert!(t.is_empty(), "closed last, so gone");
        let mut t = EventTable::from_walk([&walked]);
        let mut old = owned(rec(Kind::Activity, ESTABLISHED, a, b, 5), 4, 5);
        old.sent = 10;
        t.apply(vec![old]);
        let s = &t.sockets()[0];
        assert_eq!(s.bytes_sent, Some(1000), "a stale record does not lower it");
        assert_eq!(
            s.owners.as_slice(),
            [3, 4],
            "a shared socket keeps its holders"
        );
    }

    #[test]
    fn a_connect_before_its_port_is_chosen_leaves_nothing_behind() {
        let mut t = EventTable::default();
        let syn = owned(
            rec(Kind::State, 2, "127.0.0.1:0", Some("127.0.0.1:80"), 1),
            5,
            9,
        );
        t.apply(vec![syn]);
        assert!(t.is_empty());
    }

    #[test]
    fn listeners_come_and_go_without_being_reported_closed() {
        let mut t = EventTable::default();
        let l = "0.0.0.0:80";
        let applied = t.apply(vec![owned(rec(Kind::State, LISTEN, l, None, 1), 2, 8)]);
        assert!(applied.listeners_changed);
        assert_eq!(t.sockets()[0].tcp_health, None);
        let applied = t.apply(vec![rec(Kind::ListenerClosed, 7, l, None, 2)]);
        assert!(applied.listeners_changed && applied.closed.is_empty());
        assert!(t.is_empty());
        // Nothing at all: the generation stays.
        let g = t.generation();
        t.apply(Vec::new());
        assert_eq!(t.generation(), g);
    }

    #[test]
    fn a_batch_of_counters_names_its_slots_and_a_close_keeps_the_order_dense() {
        let mut t = EventTable::default();
        let conn = |port: u16, ts| {
            owned(
                rec(
                    Kind::State,
                    ESTABLISHED,
                    &format!("127.0.0.1:{port}"),
                    Some("127.0.0.1:80"),
                    ts,
                ),
                7,
                u64::from(port),
            )
        };
        t.apply((0..4).map(|k| conn(4000 + k, u64::from(k))).collect());
        let order: Vec<u16> = t.sockets().iter().map(|s| s.local.port()).collect();
        // Only counters move: the slots of the sockets that moved, sorted
        // and once each, however many records each had.
        let io = |port: u16, sent: u64, ts| {
            let mut r = conn(port, ts);
            r.kind = Kind::Activity;
            r.sent = sent;
            r
        };
        let applied = t.apply(vec![io(4002, 10, 10), io(4000, 5, 11), io(4002, 20, 12)]);
        assert!(!applied.opened_or_closed && !applied.reshaped);
        let at = |port: u16| order.iter().position(|&p| p == port).unwrap() as u32;
        let mut want = vec![at(4000), at(4002)];
        want.sort_unstable();
        assert_eq!(applied.changed_slots, want);
        assert_eq!(t.sockets()[at(4002) as usize].bytes_sent, Some(20));
        // A record that changes nothing names no slot.
        let applied = t.apply(vec![io(4002, 20, 13)]);
        assert!(applied.changed_slots.is_empty() && !applied.changed);
        // A close: the last socket takes the closed one's slot, and every
        // socket is still found by its endpoints.
        let applied = t.apply(vec![rec(
            Kind::Closed,
            7,
            "127.0.0.1:4001",
            Some("127.0.0.1:80"),
            20,
        )]);
        assert!(applied.opened_or_closed);
        assert_eq!(t.len(), 3);
        let applied = t.apply(vec![io(4003, 99, 21)]);
        let slot = applied.changed_slots[0] as usize;
        assert_eq!(t.sockets()[slot].local.port(), 4003);
        assert_eq!(t.sockets()[slot].bytes_sent, Some(99));
    }
}
