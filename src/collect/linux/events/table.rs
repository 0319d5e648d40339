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
use crate::snapshot::{Proto, Socket, SocketList, SocketState, UnknownReason};
use rustc_hash::FxHashMap;
use std::net::SocketAddr;

/// A TCP socket's endpoints (local, remote).
pub type Ends = (SocketAddr, Option<SocketAddr>);

/// The live TCP sockets, as the events left them.
#[derive(Debug, Default)]
pub struct EventTable {
    /// The sockets, in a stable order. A sample takes them by reference
    /// (chunks shared until the table writes one, see [`SocketList`]).
    sockets: SocketList,
    /// Where each socket sits in `sockets`, found by its endpoints: only
    /// the slot is stored (4 bytes) and the endpoints are read from the
    /// socket, where a map keyed by them held a second copy (64 bytes a
    /// socket, 9 MB at 100k).
    slots: SlotIndex,
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
        EventTable::from_list(sockets.into_iter().cloned().collect()).0
    }

    /// The table of a walk's sockets, taken by value: those it follows
    /// are moved in (not copied: at 100k sockets a copy was 15 MB more at
    /// the first sample's peak), the others handed back in order.
    pub fn from_list(walked: SocketList) -> (EventTable, SocketList) {
        let mut table = EventTable {
            slots: SlotIndex::with_capacity(walked.len()),
            ..EventTable::default()
        };
        let mut rest = SocketList::new();
        for s in walked {
            if follows(&s) {
                table.insert(s);
            } else {
                rest.push(s);
            }
        }
        (table, rest)
    }

    /// Brings the table in line with what a walk found, in place: sockets
    /// the walk saw as they are keep their slots (and their chunks stay
    /// shared with the samples that hold them), changed ones are replaced,
    /// new ones appended, and those the walk did not see removed. What a
    /// reconcile walk costs in memory is then the sockets that differ, not
    /// a second table. Whether anything changed.
    pub fn reconcile<'a>(&mut self, walked: impl IntoIterator<Item = &'a Socket>) -> bool {
        let mut seen = vec![false; self.sockets.len()];
        let mut changed = false;
        for s in walked {
            if !follows(s) {
                continue;
            }
            match self.slots.get(&self.sockets, &(s.local, s.remote)) {
                Some(at) => {
                    let at = at as usize;
                    if let Some(seen) = seen.get_mut(at) {
                        *seen = true;
                    }
                    // The walk cannot say who did the I/O; the events did.
                    let mut s = s.clone();
                    s.io_owner = self.sockets[at].io_owner;
                    changed |= self.sockets.set(at, s);
                }
                None => {
                    self.insert(s.clone());
                    changed = true;
                }
            }
        }
        // Removed from the back so a socket moved into a removed one's
        // slot is one already judged.
        for at in (0..seen.len()).rev() {
            if !seen[at] {
                let key = (self.sockets[at].local, self.sockets[at].remote);
                self.remove(&key);
                changed = true;
            }
        }
        let (live, sockets) = (&self.slots, &self.sockets);
        self.ownerless.retain(|k, _| live.get(sockets, k).is_some());
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// One socket of a reconcile walk that streams its sockets in (see
    /// [`EventTable::reconcile`], which this is one step of, without the
    /// walk's sockets held as a list): the kernel's view of it replaces
    /// the table's when they differ; owners and the reason for none stay
    /// (the owner scan sets them, [`EventTable::set_owners`]). `seen`
    /// starts as `vec![false; self.len()]`; finish with
    /// [`EventTable::remove_unseen`].
    pub fn reconcile_one(&mut self, mut s: Socket, seen: &mut [bool]) {
        if !follows(&s) {
            return;
        }
        match self.slots.get(&self.sockets, &(s.local, s.remote)) {
            Some(at) => {
                let at = at as usize;
                if let Some(seen) = seen.get_mut(at) {
                    *seen = true;
                }
                let old = &self.sockets[at];
                s.owners.clone_from(&old.owners);
                s.unowned_reason = old.unowned_reason;
                s.io_owner = old.io_owner;
                if self.sockets.set(at, s) {
                    self.generation += 1;
                }
            }
            None => {
                self.insert(s);
                self.generation += 1;
            }
        }
    }

    /// Removes the sockets a streamed reconcile walk did not see (`seen`
    /// as [`EventTable::reconcile_one`] left it).
    pub fn remove_unseen(&mut self, seen: &[bool]) {
        // From the back, so a socket moved into a removed one's slot is one
        // already judged.
        for at in (0..seen.len().min(self.sockets.len())).rev() {
            if !seen[at] {
                let key = (self.sockets[at].local, self.sockets[at].remote);
                self.remove(&key);
                self.generation += 1;
            }
        }
        let (live, sockets) = (&self.slots, &self.sockets);
        self.ownerless.retain(|k, _| live.get(sockets, k).is_some());
    }

    /// Sets every socket's owners to what an owner scan says of its inode
    /// (none without one), writing only those that differ; a socket that
    /// now has an owner no longer waits for one.
    pub fn set_owners(&mut self, owners_of: impl Fn(u64) -> crate::snapshot::Owners) {
        for i in 0..self.sockets.len() {
            let inode = self.sockets[i].inode;
            let want = if inode == 0 {
                Default::default()
            } else {
                owners_of(inode)
            };
            if self.sockets[i].owners != want {
                self.sockets.make_mut(i).owners = want;
                self.generation += 1;
            }
            if !self.sockets[i].owners.is_empty() {
                let s = &self.sockets[i];
                self.ownerless.remove(&(s.local, s.remote));
            }
        }
    }

    /// Sets each socket's reason for having no owner, writing only those
    /// whose reason changed (so their chunks stay shared otherwise).
    pub fn mark_unowned(&mut self, reason: impl Fn(&Socket) -> Option<UnknownReason>) {
        for i in 0..self.sockets.len() {
            let r = reason(&self.sockets[i]);
            self.sockets
                .update_if(i, |s| s.unowned_reason != r, |s| s.unowned_reason = r);
        }
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
    pub fn sockets(&self) -> &SocketList {
        &self.sockets
    }

    /// Adds `s`, or replaces the socket with its endpoints; its slot.
    fn insert(&mut self, s: Socket) -> usize {
        match self.slots.get(&self.sockets, &(s.local, s.remote)) {
            Some(at) => {
                self.sockets.set(at as usize, s);
                at as usize
            }
            None => {
                let at = self.sockets.len();
                self.sockets.push(s);
                self.slots.insert(&self.sockets, at as u32);
                at
            }
        }
    }

    /// Removes the socket with endpoints `key`; the last one takes its slot.
    fn remove(&mut self, key: &Ends) -> Option<Socket> {
        let at = self.slots.remove(&self.sockets, key)? as usize;
        let last = self.sockets.len() - 1;
        if at != last {
            // The last socket takes the slot: its entry says so.
            self.slots.moved(&self.sockets, last as u32, at as u32);
        }
        Some(self.sockets.swap_remove(at))
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
                    let (at, is_new) = match self.slots.get(&self.sockets, &key) {
                        Some(at) => (at as usize, false),
                        None => (
                            self.insert(Socket::new(Proto::Tcp, r.local, r.remote, state)),
                            true,
                        ),
                    };
                    // Changed on a copy and written back only when it
                    // differs: the chunk a sample shares stays shared.
                    let mut s = self.sockets[at].clone();
                    let before = (!is_new).then(|| &self.sockets[at]);
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
                        s.io_owner = None;
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
                        // The record's owner is the task that last did I/O
                        // on the socket (or connected it): of a shared
                        // socket, the holder its bytes are credited to.
                        s.io_owner = Some(o.tgid);
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
                        Some(b) if *b != s => {
                            applied.changed = true;
                            applied.reshaped |= b.state != s.state
                                || b.inode != s.inode
                                || b.uid != s.uid
                                || b.owners != s.owners
                                || b.io_holder() != s.io_holder();
                            applied.changed_slots.push(at as u32);
                        }
                        Some(_) => {}
                    }
                    self.sockets.set(at, s);
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

/// Slots of a [`SocketList`] by their sockets' endpoints; the list is
/// passed to every call (the index does not own it).
#[derive(Debug, Default)]
struct SlotIndex(hashbrown::HashTable<u32>);

fn ends_of(s: &Socket) -> Ends {
    (s.local, s.remote)
}

fn hash_ends(ends: &Ends) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(ends)
}

impl SlotIndex {
    fn with_capacity(n: usize) -> SlotIndex {
        SlotIndex(hashbrown::HashTable::with_capacity(n))
    }

    fn get(&self, sockets: &SocketList, key: &Ends) -> Option<u32> {
        self.0
            .find(hash_ends(key), |&at| ends_of(&sockets[at as usize]) == *key)
            .copied()
    }

    /// Adds slot `at`, whose socket is already in `sockets`.
    fn insert(&mut self, sockets: &SocketList, at: u32) {
        let hash = hash_ends(&ends_of(&sockets[at as usize]));
        self.0
            .insert_unique(hash, at, |&k| hash_ends(&ends_of(&sockets[k as usize])));
    }

    /// Removes the entry of `key` (its socket still in `sockets`).
    fn remove(&mut self, sockets: &SocketList, key: &Ends) -> Option<u32> {
        let entry = self
            .0
            .find_entry(hash_ends(key), |&at| ends_of(&sockets[at as usize]) == *key)
            .ok()?;
        Some(entry.remove().0)
    }

    /// The socket at slot `from` (still there in `sockets`) moves to `to`.
    fn moved(&mut self, sockets: &SocketList, from: u32, to: u32) {
        let hash = hash_ends(&ends_of(&sockets[from as usize]));
        if let Some(at) = self.0.find_mut(hash, |&at| at == from) {
            *at = to;
        }
    }
}

/// Whether the table keeps `s`: a live TCP socket in a state whose end
/// an event reports.
pub fn follows(s: &Socket) -> bool {
    s.proto == Proto::Tcp && !s.closed && followed(s.state)
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
            inode: 5,
            uid: Some(0),
            owners: smallvec::smallvec![3, 4],
            bytes_sent: Some(1000),
            bytes_received: Some(0),
            ..Socket::new(
                Proto::Tcp,
                a.parse().unwrap(),
                b.map(|r| r.parse().unwrap()),
                SocketState::Established,
            )
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

    /// A socket a parent and its forked child hold: the record names the
    /// one doing the I/O, which the socket keeps through reconcile walks
    /// (they cannot tell); a change of it reshapes (the bytes' credit
    /// moves), the same one again does not.
    #[test]
    fn a_shared_socket_remembers_who_did_the_io() {
        let (a, b) = ("127.0.0.1:4000", Some("127.0.0.1:80"));
        let mut walked = walked(4000, 0);
        walked.owners = smallvec::smallvec![3, 4];
        let mut t = EventTable::from_walk([&walked]);
        let io = |tgid, sent, ts| {
            let mut r = owned(rec(Kind::Activity, ESTABLISHED, a, b, ts), tgid, 4000);
            r.sent = sent;
            r
        };
        let applied = t.apply(vec![io(3, 10, 1)]);
        assert!(applied.reshaped, "the credit moves to the I/O's process");
        assert_eq!(t.sockets()[0].io_owner, Some(3));
        assert_eq!(t.sockets()[0].io_holder(), Some(3));
        let applied = t.apply(vec![io(3, 20, 2)]);
        assert!(applied.changed && !applied.reshaped, "only counters");
        t.reconcile([&walked]);
        assert_eq!(t.sockets()[0].io_owner, Some(3));
        let mut seen = vec![false; 1];
        t.reconcile_one(walked.clone(), &mut seen);
        assert_eq!(t.sockets()[0].io_owner, Some(3));
        let applied = t.apply(vec![io(4, 30, 3)]);
        assert!(applied.reshaped);
        assert_eq!(t.sockets()[0].io_holder(), Some(4));
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

    fn walked(port: u16, sent: u64) -> Socket {
        Socket {
            inode: u64::from(port),
            uid: Some(0),
            owners: smallvec::smallvec![7],
            bytes_sent: Some(sent),
            bytes_received: Some(0),
            ..Socket::new(
                Proto::Tcp,
                format!("127.0.0.1:{port}").parse().unwrap(),
                Some("127.0.0.1:80".parse().unwrap()),
                SocketState::Established,
            )
        }
    }

    #[test]
    fn a_sample_shares_the_table_and_a_write_copies_one_chunk() {
        use crate::snapshot::SOCKET_CHUNK;
        let n = SOCKET_CHUNK * 4;
        let walk: Vec<Socket> = (0..n as u16).map(|p| walked(10_000 + p, 0)).collect();
        let mut t = EventTable::from_walk(&walk);
        let sample = t.sockets().clone();
        assert_eq!(t.sockets().shared_chunks(&sample), 4);
        let mut io = owned(
            rec(
                Kind::Activity,
                ESTABLISHED,
                "127.0.0.1:10005",
                Some("127.0.0.1:80"),
                1,
            ),
            7,
            10_005,
        );
        io.sent = 99;
        let applied = t.apply(vec![io.clone()]);
        assert_eq!(applied.changed_slots, vec![5]);
        assert_eq!(t.sockets().shared_chunks(&sample), 3);
        assert_eq!(sample[5].bytes_sent, Some(0));
        // A record that changes nothing copies nothing.
        let again = t.sockets().clone();
        t.apply(vec![io]);
        assert_eq!(t.sockets().shared_chunks(&again), 4);
    }

    #[test]
    fn a_reconcile_walk_changes_the_table_in_place() {
        use crate::snapshot::SOCKET_CHUNK;
        let n = SOCKET_CHUNK * 4;
        let mut walk: Vec<Socket> = (0..n as u16).map(|p| walked(10_000 + p, 0)).collect();
        let mut t = EventTable::from_walk(&walk);
        let held = t.sockets().clone();
        let g = t.generation();
        // The same walk again: nothing written, nothing copied.
        assert!(!t.reconcile(&walk));
        assert_eq!(t.generation(), g);
        assert_eq!(t.sockets().shared_chunks(&held), 4);
        // One socket moved on (in the last chunk), one went (in the first),
        // one is new, and a TIME_WAIT one is not the table's.
        walk[n - 1].bytes_sent = Some(5);
        walk.remove(3);
        walk.push(walked(20_000, 1));
        let mut tw = walked(20_001, 1);
        tw.state = SocketState::TimeWait;
        walk.push(tw);
        assert!(t.reconcile(&walk));
        assert!(t.generation() > g);
        assert_eq!(t.len(), n);
        let mut got: Vec<(u16, Option<u64>)> = t
            .sockets()
            .iter()
            .map(|s| (s.local.port(), s.bytes_sent))
            .collect();
        got.sort_unstable();
        let mut want: Vec<(u16, Option<u64>)> = walk
            .iter()
            .filter(|s| s.state != SocketState::TimeWait)
            .map(|s| (s.local.port(), s.bytes_sent))
            .collect();
        want.sort_unstable();
        assert_eq!(got, want);
        // The two middle chunks were not touched.
        assert_eq!(t.sockets().shared_chunks(&held), 2);
        // Every socket is still found by its endpoints.
        for (i, s) in t.sockets().iter().enumerate() {
            assert_eq!(
                t.slots.get(&t.sockets, &(s.local, s.remote)),
                Some(i as u32)
            );
        }
    }

    #[test]
    fn a_table_from_a_list_moves_what_it_follows() {
        let mut walk: Vec<Socket> = (0..100).map(|p| walked(10_000 + p, 0)).collect();
        walk[3].state = SocketState::TimeWait;
        walk[50].proto = Proto::Udp;
        let by_ref = EventTable::from_walk(&walk);
        let (t, rest) = EventTable::from_list(walk.clone().into());
        assert_eq!(t.sockets(), by_ref.sockets());
        assert_eq!(
            rest.iter().map(|s| s.inode).collect::<Vec<_>>(),
            vec![10_003, 10_050]
        );
    }

    #[test]
    fn a_streamed_reconcile_matches_the_list_one() {
        use crate::snapshot::SOCKET_CHUNK;
        let n = SOCKET_CHUNK * 3;
        let mut walk: Vec<Socket> = (0..n as u16).map(|p| walked(10_000 + p, 0)).collect();
        let mut listed = EventTable::from_walk(&walk);
        let mut streamed = EventTable::from_walk(&walk);
        let held = streamed.sockets().clone();
        walk[7].bytes_sent = Some(5);
        walk.remove(n - 2);
        walk.push(walked(20_000, 1));
        // The kernel lists no owners; the scan gives them after.
        let mut seen = vec![false; streamed.len()];
        for s in &walk {
            let mut s = s.clone();
            s.owners.clear();
            streamed.reconcile_one(s, &mut seen);
        }
        streamed.remove_unseen(&seen);
        streamed.set_owners(|_| smallvec::smallvec![7]);
        listed.reconcile(&walk);
        let rows = |t: &EventTable| {
            let mut v: Vec<String> = t.sockets().iter().map(|s| format!("{s:?}")).collect();
            v.sort();
            v
        };
        assert_eq!(rows(&streamed), rows(&listed));
        assert_eq!(streamed.sockets().shared_chunks(&held), 1);
        // An owner that went is taken off.
        streamed.set_owners(|inode| match inode {
            10_001 => Default::default(),
            _ => smallvec::smallvec![7],
        });
        let s = streamed
            .sockets()
            .iter()
            .find(|s| s.inode == 10_001)
            .unwrap();
        assert!(s.owners.is_empty());
    }
}
