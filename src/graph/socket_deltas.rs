//! Bytes each socket of a sample moved since the previous one, kept
//! sparse: on a steady machine nearly every socket moved nothing, and a
//! dense `Vec<Option<(u64, u64)>>` of 100k sockets is 2.4 MB per sample,
//! two of them alive at once (the published sample's and the one being
//! built). Here that is one bit per socket plus an entry per socket that
//! moved a byte.

/// Bytes one socket moved since the previous sample: (sent, received).
pub type Delta = (u64, u64);

/// Per socket (same index as `Snapshot::sockets`): `None` when the socket
/// has no counters (or on the tracker's first sample), else its [`Delta`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketDeltas {
    len: usize,
    /// Bit `i`: socket `i` has a delta (zero unless it is in `moved`).
    known: Vec<u64>,
    /// The non-zero deltas by socket index, ascending, no repeats.
    moved: Vec<(u32, Delta)>,
}

impl SocketDeltas {
    /// How many sockets (with or without a delta).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Socket `i`'s delta; `None` for no counters or past the end.
    pub fn get(&self, i: usize) -> Option<Delta> {
        if i >= self.len || self.known[i / 64] & (1 << (i % 64)) == 0 {
            return None;
        }
        let moved = self
            .moved
            .binary_search_by_key(&(i as u32), |&(j, _)| j)
            .map(|k| self.moved[k].1);
        Some(moved.unwrap_or((0, 0)))
    }

    /// Appends the next socket's delta (the builder's way: in index order).
    pub fn push(&mut self, delta: Option<Delta>) {
        let i = self.len;
        self.len += 1;
        if self.known.len() < self.len.div_ceil(64) {
            self.known.push(0);
        }
        if let Some(d) = delta {
            self.known[i / 64] |= 1 << (i % 64);
            if d != (0, 0) {
                self.moved.push((i as u32, d));
            }
        }
    }

    /// Sets socket `i`'s delta (`i < len`); cheapest in ascending order.
    pub fn set(&mut self, i: usize, delta: Option<Delta>) {
        assert!(i < self.len, "socket {i} of {}", self.len);
        let at = self.moved.binary_search_by_key(&(i as u32), |&(j, _)| j);
        match (delta, at) {
            (None, _) => {
                self.known[i / 64] &= !(1 << (i % 64));
                if let Ok(k) = at {
                    self.moved.remove(k);
                }
            }
            (Some(d), Ok(k)) if d != (0, 0) => self.moved[k].1 = d,
            (Some(d), Err(k)) if d != (0, 0) => {
                self.known[i / 64] |= 1 << (i % 64);
                self.moved.insert(k, (i as u32, d));
            }
            (Some(_), at) => {
                self.known[i / 64] |= 1 << (i % 64);
                if let Ok(k) = at {
                    self.moved.remove(k);
                }
            }
        }
    }

    /// Adds `d` to socket `i`'s delta, giving it one (zero) if it had none.
    pub fn add(&mut self, i: usize, d: Delta) {
        let (sent, recv) = self.get(i).unwrap_or((0, 0));
        self.set(i, Some((sent + d.0, recv + d.1)));
    }

    /// Each socket's delta, in index order.
    pub fn iter(&self) -> impl Iterator<Item = Option<Delta>> + '_ {
        let mut moved = self.moved.iter().peekable();
        (0..self.len).map(move |i| {
            if self.known[i / 64] & (1 << (i % 64)) == 0 {
                return None;
            }
            match moved.peek() {
                Some(&&(j, d)) if j as usize == i => {
                    moved.next();
                    Some(d)
                }
                _ => Some((0, 0)),
            }
        })
    }

    /// The sockets that moved a byte, ascending: what a consumer that only
    /// adds bytes up needs to look at.
    pub fn moved(&self) -> impl Iterator<Item = (usize, Delta)> + '_ {
        self.moved.iter().map(|&(i, d)| (i as usize, d))
    }
}

impl FromIterator<Option<Delta>> for SocketDeltas {
    fn from_iter<I: IntoIterator<Item = Option<Delta>>>(iter: I) -> SocketDeltas {
        let mut out = SocketDeltas::default();
        for d in iter {
            out.push(d);
        }
        out
    }
}

/// For tests: compares with the dense form.
impl PartialEq<Vec<Option<Delta>>> for SocketDeltas {
    fn eq(&self, other: &Vec<Option<Delta>>) -> bool {
        self.len == other.len() && self.iter().eq(other.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_and_none_are_told_apart() {
        let d: SocketDeltas = [None, Some((0, 0)), Some((5, 1)), None]
            .into_iter()
            .collect();
        assert_eq!(d.len(), 4);
        assert_eq!(
            (d.get(0), d.get(1), d.get(2), d.get(3), d.get(4)),
            (None, Some((0, 0)), Some((5, 1)), None, None)
        );
        assert_eq!(d.moved().collect::<Vec<_>>(), vec![(2, (5, 1))]);
    }

    fn delta() -> impl Strategy<Value = Option<Delta>> {
        prop_oneof![
            Just(None),
            Just(Some((0, 0))),
            (0u64..3, 0u64..3).prop_map(Some)
        ]
    }

    proptest! {
        /// Whatever is pushed, set or added, in any order, reads back as the
        /// dense vector the same operations give.
        #[test]
        fn behaves_as_the_dense_vector(
            start in proptest::collection::vec(delta(), 0..150),
            ops in proptest::collection::vec((0usize..150, delta(), any::<bool>()), 0..60),
        ) {
            let mut dense = start.clone();
            let mut sparse: SocketDeltas = start.into_iter().collect();
            for (i, d, add) in ops {
                if dense.is_empty() { break; }
                let i = i % dense.len();
                if add {
                    let d = d.unwrap_or((1, 0));
                    let e = dense[i].get_or_insert((0, 0));
                    e.0 += d.0;
                    e.1 += d.1;
                    sparse.add(i, d);
                } else {
                    dense[i] = d;
                    sparse.set(i, d);
                }
            }
            prop_assert!(sparse == dense, "{sparse:?} != {dense:?}");
            for (i, d) in dense.iter().enumerate() {
                prop_assert_eq!(sparse.get(i), *d);
            }
            let moved: Vec<_> = dense.iter().enumerate()
                .filter_map(|(i, d)| d.filter(|d| *d != (0, 0)).map(|d| (i, d)))
                .collect();
            prop_assert_eq!(sparse.moved().collect::<Vec<_>>(), moved);
        }
    }
}
