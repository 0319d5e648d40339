//! [`SocketList`]: a sample's sockets, in fixed-size chunks that samples
//! share until one of them changes.
//!
//! At 100k sockets a sample's sockets are ~17 MB, and the server holds
//! several samples at once: the one being built, the one the views serve,
//! the one history compares the next with, and the collector's own table.
//! Tier T0 changes a handful of sockets per sample, so almost all of that
//! would be copies of the same data. Here a sample built from the event
//! table takes the table's chunks by reference (an `Arc` clone each), and a
//! later write to the table copies only the chunk it lands in (one
//! [`CHUNK`]-socket chunk, `Arc::make_mut`). Readers see one list: indexes,
//! iteration and equality are those of a `Vec<Socket>`; serde writes it as
//! one JSON array.

use super::Socket;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ops::Index;
use std::sync::Arc;

/// Sockets per chunk: small enough that a write copies ~2.4 KB and that
/// 1,000 busy connections among 100k sockets (2,000 sockets whose counters
/// move each sample) touch about a quarter of the chunks, each of which
/// then exists twice (the table's and the published sample's): with 64 a
/// chunk that was 72 % of them, ~11 MB of copies; with 256 nearly all (a
/// whole copy a sample). Large enough that the list of chunks (6,250 at
/// 100k, 8 bytes each) is cheap to clone every sample.
pub const CHUNK: usize = 16;

/// A sample's sockets; cloning shares them. Every chunk but the last is
/// full, so socket `i` is in chunk `i / CHUNK`.
#[derive(Clone, Default)]
pub struct SocketList {
    chunks: Vec<Arc<Vec<Socket>>>,
    len: usize,
}

impl SocketList {
    pub fn new() -> SocketList {
        SocketList::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> Option<&Socket> {
        (i < self.len).then(|| &self.chunks[i / CHUNK][i % CHUNK])
    }

    pub fn first(&self) -> Option<&Socket> {
        self.get(0)
    }

    pub fn last(&self) -> Option<&Socket> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    /// Socket `i` to change; its chunk is copied first if another list
    /// shares it. Panics when `i` is out of bounds, as a slice does.
    pub fn make_mut(&mut self, i: usize) -> &mut Socket {
        assert!(i < self.len, "socket {i} of {}", self.len);
        &mut Arc::make_mut(&mut self.chunks[i / CHUNK])[i % CHUNK]
    }

    /// Replaces socket `i` by `s` unless they are equal, so an unchanged
    /// socket keeps its chunk shared. Whether it changed.
    pub fn set(&mut self, i: usize, s: Socket) -> bool {
        if self[i] == s {
            return false;
        }
        *self.make_mut(i) = s;
        true
    }

    /// Changes socket `i` with `f` only when `differs` says it must, so
    /// the chunk stays shared otherwise.
    pub fn update_if(
        &mut self,
        i: usize,
        differs: impl FnOnce(&Socket) -> bool,
        f: impl FnOnce(&mut Socket),
    ) {
        if differs(&self[i]) {
            f(self.make_mut(i));
        }
    }

    pub fn push(&mut self, s: Socket) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(s),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(s);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }

    pub fn pop(&mut self) -> Option<Socket> {
        let last = self.chunks.last_mut()?;
        let s = Arc::make_mut(last).pop();
        if last.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        s
    }

    /// Removes socket `i`; the last takes its place (as `Vec::swap_remove`).
    pub fn swap_remove(&mut self, i: usize) -> Socket {
        assert!(i < self.len, "socket {i} of {}", self.len);
        let last = self.pop().expect("not empty");
        if i == self.len {
            return last;
        }
        std::mem::replace(self.make_mut(i), last)
    }

    /// Keeps the sockets `keep` says yes to, in order; `keep` is asked
    /// once per socket. The chunks before the first socket it drops stay
    /// shared.
    pub fn retain(&mut self, mut keep: impl FnMut(&Socket) -> bool) {
        let Some(first) = self.iter().position(|s| !keep(s)) else {
            return;
        };
        let old = std::mem::take(self);
        let start = first / CHUNK * CHUNK;
        self.chunks = old.chunks[..first / CHUNK].to_vec();
        self.len = start;
        for (i, s) in old.iter_from(start).enumerate() {
            let at = start + i;
            if at < first || (at > first && keep(s)) {
                self.push(s.clone());
            }
        }
    }

    /// Removes socket `i`, moving those after it down (O(n), as
    /// `Vec::remove`; the chunks before `i`'s stay shared).
    pub fn remove(&mut self, i: usize) -> Socket {
        assert!(i < self.len, "socket {i} of {}", self.len);
        let removed = self[i].clone();
        let mut at = 0;
        self.retain(|_| {
            at += 1;
            at != i + 1
        });
        removed
    }

    /// Inserts `s` at index `i`, moving those after it up (O(n), as
    /// `Vec::insert`; the chunks before `i`'s stay shared).
    pub fn insert(&mut self, i: usize, s: Socket) {
        assert!(i <= self.len, "insert at {i} of {}", self.len);
        let start = i / CHUNK * CHUNK;
        let old = std::mem::take(self);
        self.chunks = old.chunks[..i / CHUNK].to_vec();
        self.len = start;
        let mut s = Some(s);
        for (k, x) in old.iter_from(start).enumerate() {
            if start + k == i {
                self.push(s.take().expect("once"));
            }
            self.push(x.clone());
        }
        if let Some(s) = s {
            self.push(s);
        }
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            chunks: self.chunks.iter(),
            front: [].iter(),
            back: [].iter(),
            left: self.len,
        }
    }

    /// The sockets from index `from` on.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &Socket> + '_ {
        let from = from.min(self.len);
        let (c, o) = (from / CHUNK, from % CHUNK);
        self.chunks[c.min(self.chunks.len())..]
            .iter()
            .enumerate()
            .flat_map(move |(k, chunk)| chunk[if k == 0 { o } else { 0 }..].iter())
    }

    /// The sockets at `range`.
    pub fn iter_range(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = &Socket> + '_ {
        let n = range.end.min(self.len).saturating_sub(range.start);
        self.iter_from(range.start).take(n)
    }

    /// Every socket to change: every chunk is made this list's own. For
    /// lists just built (a walk's), where nothing shares them.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Socket> + '_ {
        self.into_iter()
    }

    pub fn to_vec(&self) -> Vec<Socket> {
        self.iter().cloned().collect()
    }

    /// How many chunks `self` and `other` share (not copied): what a
    /// sample built from the event table costs is the rest.
    pub fn shared_chunks(&self, other: &SocketList) -> usize {
        self.chunks
            .iter()
            .zip(&other.chunks)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count()
    }

    /// Heap bytes this list holds, counting shared chunks in full.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Arc<Vec<Socket>>>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * std::mem::size_of::<Socket>())
                .sum::<usize>()
    }
}

impl Index<usize> for SocketList {
    type Output = Socket;

    fn index(&self, i: usize) -> &Socket {
        match self.get(i) {
            Some(s) => s,
            None => panic!("socket {i} of {}", self.len),
        }
    }
}

/// Writing through an index copies the socket's chunk first when another
/// list shares it (as [`SocketList::make_mut`]); write only what changes
/// where lists are shared.
impl std::ops::IndexMut<usize> for SocketList {
    fn index_mut(&mut self, i: usize) -> &mut Socket {
        self.make_mut(i)
    }
}

impl PartialEq for SocketList {
    fn eq(&self, other: &SocketList) -> bool {
        self.len == other.len
            && self
                .chunks
                .iter()
                .zip(&other.chunks)
                .all(|(a, b)| Arc::ptr_eq(a, b) || a == b)
    }
}

impl std::fmt::Debug for SocketList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<Socket>> for SocketList {
    /// Chunks `v` from the back, shrinking it as it goes, so a walk's
    /// sockets are not held twice while they move (at 100k sockets that
    /// would be 17 MB more at the moment a walk's peak already is).
    fn from(mut v: Vec<Socket>) -> SocketList {
        let len = v.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut take = match len % CHUNK {
            0 => CHUNK,
            k => k,
        };
        while !v.is_empty() {
            let tail = v.split_off(v.len() - take);
            chunks.push(Arc::new(tail));
            v.shrink_to_fit();
            take = CHUNK;
        }
        chunks.reverse();
        SocketList { chunks, len }
    }
}

impl FromIterator<Socket> for SocketList {
    fn from_iter<I: IntoIterator<Item = Socket>>(iter: I) -> SocketList {
        let mut list = SocketList::new();
        list.extend(iter);
        list
    }
}

impl Extend<Socket> for SocketList {
    fn extend<I: IntoIterator<Item = Socket>>(&mut self, iter: I) {
        for s in iter {
            self.push(s);
        }
    }
}

impl<'a> IntoIterator for &'a SocketList {
    type Item = &'a Socket;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut SocketList {
    type Item = &'a mut Socket;
    type IntoIter = std::iter::FlatMap<
        std::slice::IterMut<'a, Arc<Vec<Socket>>>,
        std::slice::IterMut<'a, Socket>,
        fn(&'a mut Arc<Vec<Socket>>) -> std::slice::IterMut<'a, Socket>,
    >;

    /// Every socket to change: every chunk becomes this list's own (a
    /// copy of those shared).
    fn into_iter(self) -> Self::IntoIter {
        fn own(c: &mut Arc<Vec<Socket>>) -> std::slice::IterMut<'_, Socket> {
            Arc::make_mut(c).iter_mut()
        }
        self.chunks.iter_mut().flat_map(own as fn(_) -> _)
    }
}

impl IntoIterator for SocketList {
    type Item = Socket;
    type IntoIter = std::iter::FlatMap<
        std::vec::IntoIter<Arc<Vec<Socket>>>,
        std::vec::IntoIter<Socket>,
        fn(Arc<Vec<Socket>>) -> std::vec::IntoIter<Socket>,
    >;

    /// The sockets by value: a chunk no other list shares is moved, a
    /// shared one cloned.
    fn into_iter(self) -> Self::IntoIter {
        fn own(c: Arc<Vec<Socket>>) -> std::vec::IntoIter<Socket> {
            Arc::unwrap_or_clone(c).into_iter()
        }
        self.chunks.into_iter().flat_map(own as fn(_) -> _)
    }
}

/// Iterates a [`SocketList`] in order (both ways, with an exact length).
#[derive(Clone)]
pub struct Iter<'a> {
    chunks: std::slice::Iter<'a, Arc<Vec<Socket>>>,
    front: std::slice::Iter<'a, Socket>,
    back: std::slice::Iter<'a, Socket>,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Socket;

    fn next(&mut self) -> Option<&'a Socket> {
        loop {
            if let Some(s) = self.front.next() {
                self.left -= 1;
                return Some(s);
            }
            match self.chunks.next() {
                Some(c) => self.front = c.iter(),
                None => {
                    let s = self.back.next()?;
                    self.left -= 1;
                    return Some(s);
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(s) = self.back.next_back() {
                self.left -= 1;
                return Some(s);
            }
            match self.chunks.next_back() {
                Some(c) => self.back = c.iter(),
                None => {
                    let s = self.front.next_back()?;
                    self.left -= 1;
                    return Some(s);
                }
            }
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl Serialize for SocketList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for SocketList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SocketList, D::Error> {
        Vec::<Socket>::deserialize(deserializer).map(SocketList::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Proto, SocketState};

    fn sock(port: u16) -> Socket {
        Socket {
            proto: Proto::Tcp,
            local: format!("127.0.0.1:{port}").parse().unwrap(),
            remote: None,
            state: SocketState::Listen,
            inode: port as u64,
            uid: None,
            owners: Default::default(),
            unowned_reason: None,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: None,
            closed: false,
            io_owner: None,
        }
    }

    fn ports(l: &SocketList) -> Vec<u16> {
        l.iter().map(|s| s.local.port()).collect()
    }

    #[test]
    fn behaves_as_a_vec_across_chunk_edges() {
        let n = CHUNK * 2 + 3;
        let mut l: SocketList = (0..n as u16).map(sock).collect();
        let mut v: Vec<Socket> = (0..n as u16).map(sock).collect();
        assert_eq!(l.len(), n);
        assert_eq!(l.to_vec(), v);
        assert_eq!(l.iter().len(), n);
        assert_eq!(
            l.iter().rev().map(|s| s.inode).collect::<Vec<_>>(),
            v.iter().rev().map(|s| s.inode).collect::<Vec<_>>()
        );
        // Both ends at once meet in the middle.
        let mut it = l.iter();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        while let Some(s) = it.next() {
            a.push(s.inode);
            if let Some(s) = it.next_back() {
                b.push(s.inode);
            }
        }
        assert_eq!(a.len() + b.len(), n);
        assert_eq!(l[CHUNK], v[CHUNK]);
        assert!(l.get(n).is_none());
        for pick in [0, CHUNK - 1, CHUNK, usize::MAX] {
            let i = pick.min(l.len() - 1);
            assert_eq!(l.swap_remove(i), v.swap_remove(i));
            assert_eq!(l.to_vec(), v);
        }
        l.retain(|s| s.inode % 3 != 0);
        v.retain(|s| s.inode % 3 != 0);
        assert_eq!(l.to_vec(), v);
        for pick in [0, CHUNK, usize::MAX] {
            let i = pick.min(l.len() - 1);
            assert_eq!(l.remove(i), v.remove(i));
            assert_eq!(l.to_vec(), v);
        }
        for i in [0, CHUNK - 1, l.len()] {
            l.insert(i, sock(9));
            v.insert(i, sock(9));
            assert_eq!(l.to_vec(), v);
        }
        for s in &mut l {
            s.uid = Some(1);
        }
        assert!(l.iter().all(|s| s.uid == Some(1)));
        assert_eq!(
            ports(&l)[CHUNK - 2..],
            v[CHUNK - 2..]
                .iter()
                .map(|s| s.local.port())
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(
            l.iter_from(CHUNK + 1).map(|s| s.inode).collect::<Vec<_>>(),
            v[CHUNK + 1..].iter().map(|s| s.inode).collect::<Vec<_>>()
        );
        assert_eq!(
            l.iter_range(3..CHUNK + 5)
                .map(|s| s.inode)
                .collect::<Vec<_>>(),
            v[3..CHUNK + 5].iter().map(|s| s.inode).collect::<Vec<_>>()
        );
        assert_eq!(l.iter_from(n + 10).count(), 0);
        while l.pop().is_some() {
            v.pop();
            assert_eq!(l.len(), v.len());
        }
        assert!(l.is_empty() && l.iter().next().is_none());
    }

    #[test]
    fn a_clone_shares_until_one_side_writes() {
        let mut table: SocketList = (0..(CHUNK * 4) as u16).map(sock).collect();
        let sample = table.clone();
        assert_eq!(table.shared_chunks(&sample), 4);
        // Writing an equal socket copies nothing.
        assert!(!table.set(5, sock(5)));
        assert_eq!(table.shared_chunks(&sample), 4);
        table.make_mut(CHUNK + 1).bytes_sent = Some(9);
        assert_eq!(table.shared_chunks(&sample), 3);
        assert_eq!(sample[CHUNK + 1].bytes_sent, None);
        assert_eq!(table[CHUNK + 1].bytes_sent, Some(9));
        assert_ne!(table, sample);
        // A push onto a full last chunk starts a new one; the shared
        // chunks stay shared.
        let mut longer = sample.clone();
        longer.push(sock(1));
        assert_eq!(longer.shared_chunks(&sample), 4);
    }

    #[test]
    fn from_a_vec_keeps_order_and_full_chunks() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let v: Vec<Socket> = (0..n as u16).map(sock).collect();
            let mut l = SocketList::from(v.clone());
            assert_eq!(l.to_vec(), v, "{n}");
            assert!(l.chunks.iter().rev().skip(1).all(|c| c.len() == CHUNK));
            l.push(sock(1));
            assert_eq!(l.len(), n + 1);
            assert_eq!(l[n], sock(1));
        }
    }

    #[test]
    fn serde_is_a_plain_array() {
        let l: SocketList = (0..3).map(sock).collect();
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, serde_json::to_string(&l.to_vec()).unwrap());
        let back: SocketList = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
    }
}
