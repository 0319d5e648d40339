//! One sample as history keeps it: a full keyframe, or a delta against the
//! sample before it (sockets and processes opened, closed or with changed
//! counters). Pure: [`delta`] and [`apply`] are exact inverses, so a
//! sample rebuilt from history equals the one the collector produced.
//!
//! A delta is an edit script over the previous sample's lists, in the new
//! sample's order: runs copied unchanged (`c`), entries whose counters or
//! state changed (`p`), and new entries (`n`). The kernel lists sockets in
//! hash-table order, which stays put between samples, so a calm machine's
//! delta is a few long runs.

use crate::graph::ContainerLabels;
use crate::snapshot::{
    CapturedFlow, Diagnostics, Interface, Process, Proto, Snapshot, Socket, SocketList,
    SocketState, TcpHealth,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// One sample in history: what was collected and what was served for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Frame {
    /// What the sample was served as (seq, edges, bytes).
    pub meta: SampleMeta,
    /// The container names the graph was built with; in every keyframe
    /// and in a delta only when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<RecordedContainers>,
    pub body: FrameBody,
}

/// A [`Frame`] borrowing its parts, for encoding without copying a
/// keyframe's sample (the same JSON).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameRef<'a> {
    pub meta: SampleMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<&'a RecordedContainers>,
    pub body: FrameBodyRef<'a>,
}

/// A [`FrameBody`] borrowing its sample or delta.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FrameBodyRef<'a> {
    Key(&'a Snapshot),
    Delta(&'a SnapshotDelta),
}

impl Frame {
    pub fn borrowed(&self) -> FrameRef<'_> {
        FrameRef {
            meta: self.meta,
            containers: self.containers.as_ref(),
            body: match &self.body {
                FrameBody::Key(s) => FrameBodyRef::Key(s),
                FrameBody::Delta(d) => FrameBodyRef::Delta(d),
            },
        }
    }
}

/// The small per-sample facts kept uncompressed for the scrubber strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleMeta {
    /// `Snapshot::taken_at_ms`.
    pub at_ms: u64,
    /// The graph seq served for this sample.
    pub seq: u64,
    /// Edges in the graph served.
    pub edges: u32,
    /// Bytes counted on all sockets since the server started (sent plus
    /// received): the difference between two samples is the traffic between.
    pub bytes_total: u64,
}

/// A keyframe or a delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FrameBody {
    Key(Box<Snapshot>),
    Delta(Box<SnapshotDelta>),
}

/// Container labels in a serialisable, deterministic form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedContainers {
    /// (proto, host port, container name), sorted.
    pub published: Vec<(Proto, u16, String)>,
    /// (container id, name), sorted.
    pub names: Vec<(String, String)>,
}

impl RecordedContainers {
    pub fn from_labels(labels: &ContainerLabels) -> RecordedContainers {
        let mut published: Vec<_> = labels
            .published
            .iter()
            .map(|((p, port), n)| (*p, *port, n.clone()))
            .collect();
        published.sort();
        let mut names: Vec<_> = labels
            .names
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        names.sort();
        RecordedContainers { published, names }
    }

    pub fn to_labels(&self) -> ContainerLabels {
        ContainerLabels {
            published: self
                .published
                .iter()
                .map(|(p, port, n)| ((*p, *port), n.clone()))
                .collect(),
            names: self.names.iter().cloned().collect(),
        }
    }
}

/// What changed from one sample to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotDelta {
    pub taken_at_ms: u64,
    /// The new list when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_addresses: Option<Vec<IpAddr>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<Interface>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
    pub processes: Vec<ListOp<Process, NoPatch>>,
    pub sockets: Vec<ListOp<Socket, SocketPatch>>,
    /// Per-interval by nature: always whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captured: Vec<CapturedFlow>,
}

/// One step of an edit script over the previous sample's list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ListOp<T, P> {
    /// `len` entries from index `from` of the previous list, unchanged.
    #[serde(rename = "c")]
    Copy(u32, u32),
    /// The entry at index `from` of the previous list, patched.
    #[serde(rename = "p")]
    Patch(u32, P),
    /// A new entry (boxed: a copy or a patch, most ops, stays small —
    /// a delta of a reordered list is one op an entry).
    #[serde(rename = "n")]
    New(Box<T>),
}

/// Processes are copied or new, never patched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoPatch {}

/// What changes on a socket from sample to sample: counters and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketPatch {
    pub state: SocketState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_health: Option<TcpHealth>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

/// A delta that does not fit the sample it is applied to: history is
/// corrupt (or a bug); the caller reports it, never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a history delta names entry {index} of a list of {len}: the stored history is damaged")]
pub struct BadDelta {
    pub index: usize,
    pub len: usize,
}

/// A list an edit script is made from and applied to: a sample's
/// processes (a `Vec`) or its sockets (a chunked [`SocketList`]).
trait Seq<T> {
    fn seq_len(&self) -> usize;
    fn at(&self, i: usize) -> Option<&T>;
}

impl<T> Seq<T> for Vec<T> {
    fn seq_len(&self) -> usize {
        self.len()
    }
    fn at(&self, i: usize) -> Option<&T> {
        self.get(i)
    }
}

impl Seq<Socket> for SocketList {
    fn seq_len(&self) -> usize {
        self.len()
    }
    fn at(&self, i: usize) -> Option<&Socket> {
        self.get(i)
    }
}

type SocketKey = (Proto, SocketAddr, Option<SocketAddr>, u64);

fn socket_key(s: &Socket) -> SocketKey {
    (s.proto, s.local, s.remote, s.inode)
}

fn socket_patch(s: &Socket) -> SocketPatch {
    SocketPatch {
        state: s.state,
        bytes_sent: s.bytes_sent,
        bytes_received: s.bytes_received,
        tcp_health: s.tcp_health,
        closed: s.closed,
    }
}

/// Appends a copy of `prev[i]`, extending the last run when it continues.
fn push_copy<T, P>(ops: &mut Vec<ListOp<T, P>>, i: u32) {
    if let Some(ListOp::Copy(from, len)) = ops.last_mut() {
        if *from + *len == i {
            *len += 1;
            return;
        }
    }
    ops.push(ListOp::Copy(i, 1));
}

/// Builds the edit script from `prev` to `next`. `find` gives the index in
/// `prev` of the entry that `next[j]` continues, if any; `patch` says how
/// to patch it when it is not equal (`None`: store it whole).
fn edit_script<T: Clone + PartialEq, P, S: Seq<T>>(
    prev: &S,
    next: &S,
    mut find: impl FnMut(usize, &T) -> Option<usize>,
    patch: impl Fn(&T, &T) -> Option<P>,
) -> Vec<ListOp<T, P>> {
    let mut ops = Vec::new();
    for j in 0..next.seq_len() {
        let item = next.at(j).expect("in bounds");
        match find(j, item).and_then(|i| Some((i, prev.at(i)?))) {
            Some((i, old)) if old == item => push_copy(&mut ops, i as u32),
            Some((i, old)) => match patch(old, item) {
                Some(p) => ops.push(ListOp::Patch(i as u32, p)),
                None => ops.push(ListOp::New(Box::new(item.clone()))),
            },
            None => ops.push(ListOp::New(Box::new(item.clone()))),
        }
    }
    ops
}

/// Finds entries of `prev` by key, trying the entry after the last match
/// first (lists keep their order between samples) and a hash map, built on
/// the first miss, otherwise.
struct Finder<'a, T, K, S> {
    prev: &'a S,
    key: fn(&T) -> K,
    cursor: usize,
    map: Option<FxHashMap<K, usize>>,
}

impl<'a, T: 'a, K: std::hash::Hash + Eq, S: Seq<T>> Finder<'a, T, K, S> {
    fn new(prev: &'a S, key: fn(&T) -> K) -> Self {
        Finder {
            prev,
            key,
            cursor: 0,
            map: None,
        }
    }

    fn find(&mut self, item: &T) -> Option<usize> {
        let k = (self.key)(item);
        if let Some(p) = self.prev.at(self.cursor) {
            if (self.key)(p) == k {
                self.cursor += 1;
                return Some(self.cursor - 1);
            }
        }
        let prev = self.prev;
        let key = self.key;
        let map = self.map.get_or_insert_with(|| {
            let mut m = FxHashMap::default();
            // The first of equal keys wins, as the cursor would find it.
            for i in (0..prev.seq_len()).rev() {
                if let Some(p) = prev.at(i) {
                    m.insert(key(p), i);
                }
            }
            m
        });
        let i = *map.get(&k)?;
        self.cursor = i + 1;
        Some(i)
    }
}

/// The delta that turns `prev` into `next`.
pub fn delta(prev: &Snapshot, next: &Snapshot) -> SnapshotDelta {
    let mut sockets = Finder::new(&prev.sockets, socket_key);
    let ops = edit_script(
        &prev.sockets,
        &next.sockets,
        |_, s| sockets.find(s),
        |old, new| old.same_identity(new).then(|| socket_patch(new)),
    );
    delta_with_sockets(prev, next, ops)
}

/// [`delta`] when the collector says which sockets moved since `prev`
/// (`SocketChanges`: the same sockets in the same order, only the counters
/// of those at `changed` differ): the same edit script, made by looking at
/// the changed sockets only instead of finding and comparing every one (at
/// 100k sockets `delta` was a fifth of what an event-fed sample still
/// cost). Falls back to [`delta`] when the change set does not fit.
pub fn delta_changed(
    prev: &Snapshot,
    next: &Snapshot,
    changes: Option<&crate::snapshot::SocketChanges>,
) -> SnapshotDelta {
    let n = next.sockets.len();
    let Some(changes) = changes.filter(|_| prev.sockets.len() == n) else {
        return delta(prev, next);
    };
    let mut ops = Vec::with_capacity(2 * changes.changed.len() + 1);
    let mut at = 0usize;
    for &i in &changes.changed {
        let i = i as usize;
        if i >= n || i < at {
            return delta(prev, next);
        }
        push_copy_run(&mut ops, at, i - at);
        let (old, new) = (&prev.sockets[i], &next.sockets[i]);
        if socket_key(old) != socket_key(new) {
            // Not the socket the change set says it is: trust nothing.
            return delta(prev, next);
        }
        if old == new {
            push_copy(&mut ops, i as u32);
        } else if old.same_identity(new) {
            ops.push(ListOp::Patch(i as u32, socket_patch(new)));
        } else {
            ops.push(ListOp::New(Box::new(new.clone())));
        }
        at = i + 1;
    }
    push_copy_run(&mut ops, at, n - at);
    delta_with_sockets(prev, next, ops)
}

/// A delta from `prev` to `next` with the sockets' edit script given.
fn delta_with_sockets(
    prev: &Snapshot,
    next: &Snapshot,
    sockets: Vec<ListOp<Socket, SocketPatch>>,
) -> SnapshotDelta {
    let mut processes = Finder::new(&prev.processes, |p: &Process| (p.pid, p.start_time));
    SnapshotDelta {
        taken_at_ms: next.taken_at_ms,
        local_addresses: (prev.local_addresses != next.local_addresses)
            .then(|| next.local_addresses.clone()),
        interfaces: (prev.interfaces != next.interfaces).then(|| next.interfaces.clone()),
        diagnostics: (prev.diagnostics != next.diagnostics).then(|| next.diagnostics.clone()),
        processes: edit_script(
            &prev.processes,
            &next.processes,
            |_, p| processes.find(p),
            |_, _| None,
        ),
        sockets,
        captured: next.captured.clone(),
    }
}

/// Appends copies of `prev[from..from + len]`, extending the last run when
/// it continues (as [`push_copy`] one at a time would).
fn push_copy_run<T, P>(ops: &mut Vec<ListOp<T, P>>, from: usize, len: usize) {
    if len == 0 {
        return;
    }
    let (from, len) = (from as u32, len as u32);
    if let Some(ListOp::Copy(f, l)) = ops.last_mut() {
        if *f + *l == from {
            *l += len;
            return;
        }
    }
    ops.push(ListOp::Copy(from, len));
}

fn apply_script<T: Clone, P, S: Seq<T>>(
    prev: &S,
    ops: &[ListOp<T, P>],
    patch: impl Fn(&T, &P) -> T,
) -> Result<Vec<T>, BadDelta> {
    let bad = |index: usize| BadDelta {
        index,
        len: prev.seq_len(),
    };
    let mut out = Vec::with_capacity(prev.seq_len() + 16);
    for op in ops {
        match op {
            ListOp::Copy(from, len) => {
                let (from, len) = (*from as usize, *len as usize);
                let end = from.saturating_add(len);
                if end > prev.seq_len() {
                    return Err(bad(end));
                }
                out.extend((from..end).filter_map(|i| prev.at(i)).cloned());
            }
            ListOp::Patch(from, p) => {
                let old = prev.at(*from as usize).ok_or_else(|| bad(*from as usize))?;
                out.push(patch(old, p));
            }
            ListOp::New(item) => out.push((**item).clone()),
        }
    }
    Ok(out)
}

/// Rebuilds the sample `delta` was made from `prev` into.
pub fn apply(prev: &Snapshot, delta: &SnapshotDelta) -> Result<Snapshot, BadDelta> {
    Ok(Snapshot {
        taken_at_ms: delta.taken_at_ms,
        local_addresses: delta
            .local_addresses
            .clone()
            .unwrap_or_else(|| prev.local_addresses.clone()),
        interfaces: delta
            .interfaces
            .clone()
            .unwrap_or_else(|| prev.interfaces.clone()),
        processes: apply_script(&prev.processes, &delta.processes, |_, p| match *p {})?,
        sockets: apply_script(&prev.sockets, &delta.sockets, |old, p| Socket {
            state: p.state,
            bytes_sent: p.bytes_sent,
            bytes_received: p.bytes_received,
            tcp_health: p.tcp_health,
            closed: p.closed,
            ..old.clone()
        })?
        .into(),
        diagnostics: delta
            .diagnostics
            .clone()
            .unwrap_or_else(|| prev.diagnostics.clone()),
        captured: delta.captured.clone(),
    })
}

/// [`apply_script`] taking `prev` by value: entries are moved, not cloned
/// (a socket's clone allocates its owner list). The usual delta reads
/// `prev` in order, each entry at most once (the kernel's order stays
/// put): then a calm one (only runs and patches covering all of `prev`)
/// is applied in place, in the time of its patches, and any other in one
/// pass of moves. Only a delta that reorders or repeats entries pays for
/// the general walk.
fn apply_script_owned<T: Clone, P>(
    mut prev: Vec<T>,
    ops: &[ListOp<T, P>],
    patch: impl Fn(&mut T, &P),
) -> Result<Vec<T>, BadDelta> {
    let len = prev.len();
    let bad = |index: usize| BadDelta { index, len };
    // Bounds, and how `ops` read `prev`.
    let (mut in_order, mut in_place, mut next) = (true, true, 0usize);
    for op in ops {
        let (from, n) = match op {
            ListOp::Copy(from, n) => (*from as usize, *n as usize),
            ListOp::Patch(from, _) => (*from as usize, 1),
            ListOp::New(_) => {
                in_place = false;
                continue;
            }
        };
        let end = from.saturating_add(n);
        if end > len {
            return Err(bad(end));
        }
        in_order &= from >= next;
        in_place &= from == next;
        next = end;
    }
    if in_place && next == len {
        for op in ops {
            if let ListOp::Patch(i, p) = op {
                patch(&mut prev[*i as usize], p);
            }
        }
        return Ok(prev);
    }
    if in_order {
        let mut out: Vec<T> = Vec::with_capacity(len + 16);
        let mut src = prev.into_iter();
        let mut pos = 0usize;
        let skip_to = |src: &mut std::vec::IntoIter<T>, pos: &mut usize, from: usize| {
            if from > *pos {
                src.nth(from - *pos - 1);
            }
            *pos = from;
        };
        for op in ops {
            match op {
                ListOp::Copy(from, n) => {
                    skip_to(&mut src, &mut pos, *from as usize);
                    out.extend(src.by_ref().take(*n as usize));
                    pos += *n as usize;
                }
                ListOp::Patch(from, p) => {
                    skip_to(&mut src, &mut pos, *from as usize);
                    let mut v = src.next().ok_or_else(|| bad(pos))?;
                    patch(&mut v, p);
                    out.push(v);
                    pos += 1;
                }
                ListOp::New(item) => out.push((**item).clone()),
            }
        }
        return Ok(out);
    }
    // How often each entry is used: one used again is cloned until its
    // last use, which takes it.
    let mut uses: Vec<u32> = vec![0; len];
    for op in ops {
        match op {
            ListOp::Copy(from, n) => uses[*from as usize..(*from + *n) as usize]
                .iter_mut()
                .for_each(|u| *u += 1),
            ListOp::Patch(from, _) => uses[*from as usize] += 1,
            ListOp::New(_) => {}
        }
    }
    let mut slots: Vec<Option<T>> = prev.into_iter().map(Some).collect();
    let mut out: Vec<T> = Vec::with_capacity(len + 16);
    let mut take = |i: usize| -> Result<T, BadDelta> {
        uses[i] -= 1;
        let slot = &mut slots[i];
        let v = if uses[i] == 0 {
            slot.take()
        } else {
            slot.clone()
        };
        v.ok_or_else(|| bad(i))
    };
    for op in ops {
        match op {
            ListOp::Copy(from, n) => {
                for i in *from as usize..(*from + *n) as usize {
                    out.push(take(i)?);
                }
            }
            ListOp::Patch(from, p) => {
                let mut v = take(*from as usize)?;
                patch(&mut v, p);
                out.push(v);
            }
            ListOp::New(item) => out.push((**item).clone()),
        }
    }
    Ok(out)
}

/// [`apply`] consuming `prev`: the same sample, cheaper when `prev` is not
/// needed afterwards (the middle of a chain of deltas).
pub fn apply_owned(prev: Snapshot, delta: &SnapshotDelta) -> Result<Snapshot, BadDelta> {
    Ok(Snapshot {
        taken_at_ms: delta.taken_at_ms,
        local_addresses: delta
            .local_addresses
            .clone()
            .unwrap_or(prev.local_addresses),
        interfaces: delta.interfaces.clone().unwrap_or(prev.interfaces),
        processes: apply_script_owned(prev.processes, &delta.processes, |_, p| match *p {})?,
        sockets: apply_script_owned(
            prev.sockets.into_iter().collect(),
            &delta.sockets,
            patch_socket,
        )?
        .into(),
        diagnostics: delta.diagnostics.clone().unwrap_or(prev.diagnostics),
        captured: delta.captured.clone(),
    })
}

/// Where an entry of a list rebuilt through a chain of deltas comes from:
/// an entry of the base sample or a delta's new entry, and the last patch
/// applied to it (a patch sets every field it carries, so the last wins).
#[derive(Debug, Clone, Copy)]
struct EntryRef {
    /// Index in the base list, or `u32::MAX` for a delta's new entry.
    base: u32,
    /// (delta, op) of the new entry, when `base` is `u32::MAX`.
    new: (u32, u32),
    /// (delta, op) of the last patch; `u32::MAX` for none.
    patch: (u32, u32),
}

const NONE: (u32, u32) = (u32::MAX, u32::MAX);

/// The entries of a list after `scripts` (one per delta, in order),
/// applied to a list of `base_len` entries, as references: a step copies
/// 16 bytes an entry, not the entry.
fn chain_refs<T, P>(
    base_len: usize,
    scripts: &[&[ListOp<T, P>]],
) -> Result<Vec<EntryRef>, BadDelta> {
    let mut cur: Vec<EntryRef> = (0..base_len as u32)
        .map(|i| EntryRef {
            base: i,
            new: NONE,
            patch: NONE,
        })
        .collect();
    for (k, ops) in scripts.iter().enumerate() {
        cur = chain_step(&cur, k as u32, ops)?;
    }
    Ok(cur)
}

fn chain_step<T, P>(
    cur: &[EntryRef],
    k: u32,
    ops: &[ListOp<T, P>],
) -> Result<Vec<EntryRef>, BadDelta> {
    let bad = |index: usize| BadDelta {
        index,
        len: cur.len(),
    };
    let mut next = Vec::with_capacity(cur.len() + 16);
    for (o, op) in ops.iter().enumerate() {
        match op {
            ListOp::Copy(from, n) => {
                let (from, n) = (*from as usize, *n as usize);
                let end = from.saturating_add(n);
                next.extend_from_slice(cur.get(from..end).ok_or_else(|| bad(end))?);
            }
            ListOp::Patch(from, _) => {
                let mut r = *cur.get(*from as usize).ok_or_else(|| bad(*from as usize))?;
                r.patch = (k, o as u32);
                next.push(r);
            }
            ListOp::New(_) => next.push(EntryRef {
                base: u32::MAX,
                new: (k, o as u32),
                patch: NONE,
            }),
        }
    }
    Ok(next)
}

/// The entries `refs` name, cloned once each, with their last patch.
fn materialize<T: Clone, P, S: Seq<T>>(
    base: &S,
    scripts: &[&[ListOp<T, P>]],
    refs: &[EntryRef],
    patch: impl Fn(&mut T, &P),
) -> Result<Vec<T>, BadDelta> {
    let bad = || BadDelta {
        index: usize::MAX,
        len: base.seq_len(),
    };
    let op = |(k, o): (u32, u32)| {
        scripts
            .get(k as usize)
            .and_then(|s| s.get(o as usize))
            .ok_or_else(bad)
    };
    refs.iter()
        .map(|r| {
            let mut v = if r.base == u32::MAX {
                match op(r.new)? {
                    ListOp::New(item) => (**item).clone(),
                    _ => return Err(bad()),
                }
            } else {
                base.at(r.base as usize).ok_or_else(bad)?.clone()
            };
            if r.patch != NONE {
                match op(r.patch)? {
                    ListOp::Patch(_, p) => patch(&mut v, p),
                    _ => return Err(bad()),
                }
            }
            Ok(v)
        })
        .collect()
}

fn patch_socket(s: &mut Socket, p: &SocketPatch) {
    s.state = p.state;
    s.bytes_sent = p.bytes_sent;
    s.bytes_received = p.bytes_received;
    s.tcp_health = p.tcp_health;
    s.closed = p.closed;
}

/// The sample after `deltas[..n]` applied to `base`, its lists given as
/// references (`sockets`, `processes` from [`chain_refs`]).
fn sample_after(
    base: &Snapshot,
    deltas: &[&SnapshotDelta],
    sockets: &[EntryRef],
    processes: &[EntryRef],
) -> Result<Snapshot, BadDelta> {
    let last_of = |f: fn(&SnapshotDelta) -> bool| deltas.iter().rev().find(|d| f(d)).copied();
    let socket_scripts: Vec<&[ListOp<Socket, SocketPatch>]> =
        deltas.iter().map(|d| d.sockets.as_slice()).collect();
    let process_scripts: Vec<&[ListOp<Process, NoPatch>]> =
        deltas.iter().map(|d| d.processes.as_slice()).collect();
    Ok(Snapshot {
        taken_at_ms: deltas.last().map_or(base.taken_at_ms, |d| d.taken_at_ms),
        local_addresses: last_of(|d| d.local_addresses.is_some())
            .and_then(|d| d.local_addresses.clone())
            .unwrap_or_else(|| base.local_addresses.clone()),
        interfaces: last_of(|d| d.interfaces.is_some())
            .and_then(|d| d.interfaces.clone())
            .unwrap_or_else(|| base.interfaces.clone()),
        processes: materialize(
            &base.processes,
            &process_scripts,
            processes,
            |_, p| match *p {},
        )?,
        sockets: materialize(&base.sockets, &socket_scripts, sockets, patch_socket)?.into(),
        diagnostics: last_of(|d| d.diagnostics.is_some())
            .and_then(|d| d.diagnostics.clone())
            .unwrap_or_else(|| base.diagnostics.clone()),
        captured: deltas
            .last()
            .map_or_else(|| base.captured.clone(), |d| d.captured.clone()),
    })
}

/// The last sample of a chain of deltas from `base` and the one before it
/// (`None` when there are no deltas: the sample is `base`), without
/// building the samples in between: the chain is walked as references to
/// entries (16 bytes each), and only the two samples wanted are built,
/// each entry cloned once. What `?at=` needs, from a keyframe or a
/// checkpoint up to 59 deltas away.
pub fn apply_chain(
    base: &Snapshot,
    deltas: &[&SnapshotDelta],
) -> Result<(Option<Snapshot>, Snapshot), BadDelta> {
    let Some((last, before)) = deltas.split_last() else {
        return Ok((None, base.clone()));
    };
    let socket_scripts: Vec<&[ListOp<Socket, SocketPatch>]> =
        before.iter().map(|d| d.sockets.as_slice()).collect();
    let process_scripts: Vec<&[ListOp<Process, NoPatch>]> =
        before.iter().map(|d| d.processes.as_slice()).collect();
    let prev_sockets = chain_refs(base.sockets.len(), &socket_scripts)?;
    let prev_processes = chain_refs(base.processes.len(), &process_scripts)?;
    let k = before.len() as u32;
    let sockets = chain_step(&prev_sockets, k, &last.sockets)?;
    let processes = chain_step(&prev_processes, k, &last.processes)?;
    let prev = sample_after(base, before, &prev_sockets, &prev_processes)?;
    let cur = sample_after(base, deltas, &sockets, &processes)?;
    Ok((Some(prev), cur))
}

/// The last sample of a chain of deltas from `base` alone (the sample
/// before a block's first, for its rates): one sample built, not two.
pub fn apply_chain_last(base: &Snapshot, deltas: &[&SnapshotDelta]) -> Result<Snapshot, BadDelta> {
    if deltas.is_empty() {
        return Ok(base.clone());
    }
    let socket_scripts: Vec<&[ListOp<Socket, SocketPatch>]> =
        deltas.iter().map(|d| d.sockets.as_slice()).collect();
    let process_scripts: Vec<&[ListOp<Process, NoPatch>]> =
        deltas.iter().map(|d| d.processes.as_slice()).collect();
    let sockets = chain_refs(base.sockets.len(), &socket_scripts)?;
    let processes = chain_refs(base.processes.len(), &process_scripts)?;
    sample_after(base, deltas, &sockets, &processes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::UnknownReason;
    use proptest::prelude::*;

    fn arb_socket() -> impl Strategy<Value = Socket> {
        (
            prop_oneof![Just(Proto::Tcp), Just(Proto::Udp)],
            0u16..6,
            proptest::option::of(0u16..6),
            0u64..4,
            proptest::collection::vec(1u32..5, 0..3),
            proptest::option::of(0u64..1000),
            proptest::option::of(0u64..1000),
            any::<bool>(),
            prop_oneof![
                Just(SocketState::Established),
                Just(SocketState::Listen),
                Just(SocketState::TimeWait)
            ],
            proptest::option::of((proptest::option::of(1u32..100), 0u32..5)),
        )
            .prop_map(
                |(proto, lp, rp, inode, owners, sent, recv, closed, state, health)| Socket {
                    proto,
                    local: SocketAddr::from(([127, 0, 0, 1], 1000 + lp)),
                    remote: rp.map(|p| SocketAddr::from(([127, 0, 0, 2], 2000 + p))),
                    state,
                    inode,
                    uid: Some(0),
                    unowned_reason: owners.is_empty().then_some(UnknownReason::Exited),
                    owners: owners.into(),
                    bytes_sent: sent,
                    bytes_received: recv,
                    tcp_health: health.map(|(rtt_us, retransmits)| TcpHealth {
                        rtt_us,
                        retransmits,
                    }),
                    closed,
                    io_owner: None,
                },
            )
    }

    fn arb_process() -> impl Strategy<Value = Process> {
        (
            1u32..6,
            proptest::option::of(0u64..3),
            "[a-z]{1,3}",
            proptest::collection::vec("[a-c]{0,2}", 0..3),
            proptest::option::of("/[a-c]{1,2}"),
            proptest::option::of("[a-c]{1,2}"),
            proptest::option::of(0u32..3),
        )
            .prop_map(|(pid, st, name, cmdline, exe, user, uid)| Process {
                pid,
                start_time: st,
                name,
                cmdline,
                exe,
                uid,
                container_id: user.as_ref().map(|u| format!("c{u}")),
                user,
                ppid: uid,
            })
    }

    fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
        (
            0u64..10_000,
            proptest::collection::vec(arb_socket(), 0..12),
            proptest::collection::vec(arb_process(), 0..5),
            proptest::option::of("[a-z]{1,4}"),
            any::<bool>(),
        )
            .prop_map(|(t, sockets, processes, warning, v6)| Snapshot {
                taken_at_ms: t,
                local_addresses: if v6 {
                    vec!["::1".parse().unwrap()]
                } else {
                    vec!["127.0.0.1".parse().unwrap()]
                },
                interfaces: v6
                    .then(|| Interface {
                        name: "lo".into(),
                        addresses: vec!["::1".parse().unwrap()],
                    })
                    .into_iter()
                    .collect(),
                sockets: sockets.into(),
                processes,
                diagnostics: Diagnostics {
                    warnings: warning.into_iter().collect(),
                    ..Diagnostics::default()
                },
                ..Snapshot::default()
            })
    }

    /// `next` made from `prev` the way a machine changes: most sockets
    /// stay, some change counters, some go, some come.
    fn arb_pair() -> impl Strategy<Value = (Snapshot, Snapshot)> {
        (arb_snapshot(), arb_snapshot(), any::<u64>())
            .prop_map(|(prev, fresh, bits)| pair_from(prev, fresh, bits))
    }

    fn pair_from(prev: Snapshot, fresh: Snapshot, bits: u64) -> (Snapshot, Snapshot) {
        {
            let mut next = prev.clone();
            next.taken_at_ms += 1000;
            let mut sockets = next.sockets.to_vec();
            for (i, s) in sockets.iter_mut().enumerate() {
                if bits >> (i % 64) & 1 == 1 {
                    s.bytes_sent = Some(s.bytes_sent.unwrap_or(0) + 7);
                }
            }
            if bits & 3 == 0 && !sockets.is_empty() {
                sockets.remove((bits as usize >> 8) % sockets.len());
            }
            let at = (bits as usize >> 16) % (sockets.len() + 1);
            for s in fresh.sockets.into_iter().take(3) {
                sockets.insert(at.min(sockets.len()), s);
            }
            next.sockets = sockets.into();
            if bits & 4 == 0 {
                next.processes = fresh.processes;
            }
            if bits & 8 == 0 {
                next.diagnostics = fresh.diagnostics;
                next.local_addresses = fresh.local_addresses;
                next.interfaces = fresh.interfaces;
            }
            (prev, next)
        }
    }

    proptest! {
        #[test]
        fn a_delta_rebuilds_the_sample_exactly((prev, next) in arb_pair()) {
            let d = delta(&prev, &next);
            prop_assert_eq!(apply(&prev, &d).unwrap(), next.clone());
            // And through the stored form (JSON) too.
            let text = serde_json::to_string(&d).unwrap();
            let back: SnapshotDelta = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(apply(&prev, &back).unwrap(), next.clone());
            // And through the binary form (block format version 2).
            let back = binary_round_trip(&prev, &d);
            prop_assert_eq!(&back.0, &prev);
            prop_assert_eq!(apply(&back.0, &back.1).unwrap(), next.clone());
            // Moving entries out of `prev` builds the same sample.
            prop_assert_eq!(apply_owned(prev, &d).unwrap(), next);
        }

        #[test]
        fn every_way_of_applying_builds_the_same_sample(
            prev in arb_snapshot(),
            bits in any::<u64>(),
            mode in 0u8..3,
        ) {
            let mut next = prev.clone();
            next.taken_at_ms += 1000;
            let mut sockets = next.sockets.to_vec();
            for (i, s) in sockets.iter_mut().enumerate() {
                if bits >> (i % 64) & 1 == 1 {
                    s.bytes_sent = Some(s.bytes_sent.unwrap_or(0) + 7);
                    s.state = SocketState::TimeWait;
                }
            }
            let n = sockets.len();
            match mode {
                // In order with a gap: one pass of moves.
                1 if n > 0 => {
                    sockets.remove((bits >> 8) as usize % n);
                }
                // Reordered: the general walk.
                2 => sockets.reverse(),
                // Counters only: in place.
                _ => {}
            }
            next.sockets = sockets.into();
            let d = delta(&prev, &next);
            prop_assert_eq!(apply(&prev, &d).unwrap(), next.clone());
            prop_assert_eq!(apply_owned(prev, &d).unwrap(), next);
        }

        #[test]
        fn a_chain_of_deltas_builds_what_its_steps_build(
            first in arb_snapshot(),
            steps in proptest::collection::vec((arb_snapshot(), any::<u64>()), 0..6),
        ) {
            // A walk of samples, each changed from the one before.
            let mut samples = vec![first];
            for (fresh, bits) in steps {
                let prev = samples.last().unwrap().clone();
                let (_, next) = pair_from(prev, fresh, bits);
                samples.push(next);
            }
            let deltas: Vec<SnapshotDelta> =
                samples.windows(2).map(|w| delta(&w[0], &w[1])).collect();
            let refs: Vec<&SnapshotDelta> = deltas.iter().collect();
            let (prev, cur) = apply_chain(&samples[0], &refs).unwrap();
            let n = samples.len();
            prop_assert_eq!(&cur, &samples[n - 1]);
            prop_assert_eq!(prev.as_ref(), n.checked_sub(2).map(|i| &samples[i]));
        }

        #[test]
        fn a_change_set_gives_the_delta_a_full_comparison_gives(
            prev in arb_snapshot(),
            bits in any::<u64>(),
            fresh in arb_snapshot(),
        ) {
            // Only counters moved (what an event-fed sample says).
            let mut next = prev.clone();
            next.taken_at_ms += 1000;
            for (i, s) in next.sockets.iter_mut().enumerate() {
                if bits >> (i % 64) & 1 == 1 {
                    s.bytes_received = Some(s.bytes_received.unwrap_or(0) + 9);
                }
            }
            let changes = crate::snapshot::SocketChanges::between(&prev, &next)
                .expect("only counters moved");
            let d = delta_changed(&prev, &next, Some(&changes));
            prop_assert_eq!(&d, &delta(&prev, &next));
            prop_assert_eq!(apply(&prev, &d).unwrap(), next);
            // A change set that does not fit the samples is not trusted.
            let (prev, other) = pair_from(prev, fresh, bits);
            let wrong = crate::snapshot::SocketChanges {
                changed: vec![u32::MAX, 0],
            };
            let d = delta_changed(&prev, &other, Some(&wrong));
            prop_assert_eq!(apply(&prev, &d).unwrap(), other);
        }

        #[test]
        fn unrelated_samples_rebuild_too(prev in arb_snapshot(), next in arb_snapshot()) {
            let d = delta(&prev, &next);
            prop_assert_eq!(apply(&prev, &d).unwrap(), next.clone());
            prop_assert_eq!(apply_owned(prev, &d).unwrap(), next);
        }
    }

    /// `prev` as a keyframe and `d` as the delta after it, through the
    /// binary frames of one block and back.
    fn binary_round_trip(prev: &Snapshot, d: &SnapshotDelta) -> (Snapshot, SnapshotDelta) {
        use crate::history::wire::{decode_range, encode, split, Interner};
        let meta = SampleMeta {
            at_ms: 1,
            seq: 1,
            edges: 0,
            bytes_total: 0,
        };
        let mut strings = Interner::default();
        let mut raw = encode(
            &FrameRef {
                meta,
                containers: None,
                body: FrameBodyRef::Key(prev),
            },
            &mut strings,
        );
        raw.extend(encode(
            &FrameRef {
                meta,
                containers: None,
                body: FrameBodyRef::Delta(d),
            },
            &mut strings,
        ));
        let mut frames = decode_range(&split(&raw).unwrap(), 0, 2).unwrap();
        match (frames.remove(0).body, frames.remove(0).body) {
            (FrameBody::Key(k), FrameBody::Delta(d)) => (*k, *d),
            _ => panic!("a keyframe and a delta"),
        }
    }

    #[test]
    fn a_calm_sample_is_one_run() {
        let snap = Snapshot {
            sockets: (0..100)
                .map(|i| Socket {
                    proto: Proto::Tcp,
                    local: SocketAddr::from(([127, 0, 0, 1], 1000 + i)),
                    remote: None,
                    state: SocketState::Listen,
                    inode: i as u64,
                    uid: None,
                    owners: smallvec::smallvec![1],
                    unowned_reason: None,
                    bytes_sent: None,
                    bytes_received: None,
                    tcp_health: None,
                    closed: false,
                    io_owner: None,
                })
                .collect(),
            ..Snapshot::default()
        };
        let d = delta(&snap, &snap);
        assert_eq!(d.sockets, vec![ListOp::Copy(0, 100)]);
        let mut changed = snap.clone();
        changed.sockets.make_mut(50).bytes_sent = Some(9);
        let d = delta(&snap, &changed);
        assert_eq!(d.sockets.len(), 3, "{:?}", d.sockets);
        assert!(matches!(d.sockets[1], ListOp::Patch(50, _)));
    }

    #[test]
    fn a_damaged_delta_is_an_error_not_a_panic() {
        let d = SnapshotDelta {
            taken_at_ms: 1,
            local_addresses: None,
            interfaces: None,
            diagnostics: None,
            processes: vec![ListOp::Copy(3, 2)],
            sockets: vec![],
            captured: vec![],
        };
        assert!(apply(&Snapshot::default(), &d).is_err());
        assert!(apply_owned(Snapshot::default(), &d).is_err());
    }
}
