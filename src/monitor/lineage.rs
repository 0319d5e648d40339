//! Which processes descend from the watched ones. Pure: parents not in the
//! snapshot are asked of a lookup function, so the tree logic is tested
//! without processes.
//!
//! A process is (pid, start time) everywhere here: a pid reused by an
//! unrelated process has another start time and is a stranger, even when
//! an old descendant once had that pid. A process's `ppid` is always a
//! live process (the kernel reparents orphans), so walking up from a live
//! process at one moment follows its real ancestry.

use std::collections::HashMap;

/// A process identity: pid and start time (seconds since the Unix epoch;
/// `None` when the OS did not say).
pub type ProcKey = (u32, Option<u64>);

/// What the tree needs to know about one process (read by the collector).
pub use crate::collect::proc_info::ProcInfo;

/// Walks give up past this depth (a cycle would be a kernel bug, but a
/// bad lookup must not hang the monitor).
const MAX_DEPTH: usize = 4096;

/// True when `key` is the watched process `root`. A root whose start time
/// is not known yet matches its pid.
pub fn is_root(root: &ProcKey, key: &ProcKey) -> bool {
    root.0 == key.0 && (root.1.is_none() || root.1 == key.1)
}

/// Remembers, per process, the watched processes it is or descends from.
#[derive(Debug, Default)]
pub struct Lineage {
    /// Process → indexes (into the roots given to [`Lineage::roots_of`])
    /// of the watched processes it is or descends from.
    known: HashMap<ProcKey, Vec<usize>>,
}

impl Lineage {
    /// Forgets everything (the watched set changed).
    pub fn clear(&mut self) {
        self.known.clear();
    }

    /// Keeps only the processes `alive` holds, so memory stays bounded.
    /// A forgotten process is walked again if it shows up again.
    pub fn retain(&mut self, alive: impl Fn(&ProcKey) -> bool) {
        self.known.retain(|k, _| alive(k));
    }

    /// The indexes of the `roots` that `key` is or descends from
    /// (several when watched processes nest). `parent` gives a process's
    /// start time and parent from its pid, `None` when it is gone.
    pub fn roots_of(
        &mut self,
        key: ProcKey,
        ppid: Option<u32>,
        roots: &[ProcKey],
        parent: &mut dyn FnMut(u32) -> Option<ProcInfo>,
    ) -> &[usize] {
        if !self.known.contains_key(&key) {
            self.walk(key, ppid, roots, parent);
        }
        self.known.get(&key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Walks up from `key` until a process already known (or the top),
    /// then fills in every process on the way.
    fn walk(
        &mut self,
        key: ProcKey,
        ppid: Option<u32>,
        roots: &[ProcKey],
        parent: &mut dyn FnMut(u32) -> Option<ProcInfo>,
    ) {
        let mut chain = vec![key];
        let mut next = ppid;
        let mut above: Vec<usize> = Vec::new();
        while let Some(pid) = next.filter(|&p| p != 0) {
            if chain.len() >= MAX_DEPTH {
                break;
            }
            let Some(info) = parent(pid) else { break };
            let k = (pid, info.start_time);
            if let Some(r) = self.known.get(&k) {
                above = r.clone();
                break;
            }
            if chain.contains(&k) {
                break; // a cycle: only a broken lookup gives one
            }
            chain.push(k);
            next = info.ppid;
        }
        for k in chain.into_iter().rev() {
            let mut mine = above.clone();
            mine.extend(
                roots
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| is_root(r, &k))
                    .map(|(i, _)| i),
            );
            mine.sort_unstable();
            mine.dedup();
            self.known.insert(k, mine.clone());
            above = mine;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process table: pid → (start, ppid).
    fn table(rows: &[(u32, u64, u32)]) -> impl FnMut(u32) -> Option<ProcInfo> + '_ {
        move |pid| {
            rows.iter().find(|r| r.0 == pid).map(|r| ProcInfo {
                start_time: Some(r.1),
                ppid: Some(r.2),
            })
        }
    }

    #[test]
    fn grandchildren_through_a_parent_without_sockets() {
        // 1 → 100 (watched) → 200 (no sockets) → 300
        let rows = [(1, 1, 0), (100, 10, 1), (200, 11, 100), (300, 12, 200)];
        let mut l = Lineage::default();
        let roots = [(100, Some(10))];
        assert_eq!(
            l.roots_of((300, Some(12)), Some(200), &roots, &mut table(&rows)),
            &[0]
        );
        assert_eq!(
            l.roots_of((100, Some(10)), Some(1), &roots, &mut table(&rows)),
            &[0]
        );
        assert!(l
            .roots_of((1, Some(1)), Some(0), &roots, &mut table(&rows))
            .is_empty());
    }

    #[test]
    fn nested_roots_both_count() {
        let rows = [(1, 1, 0), (100, 10, 1), (200, 11, 100), (300, 12, 200)];
        let mut l = Lineage::default();
        let roots = [(200, Some(11)), (100, Some(10))];
        assert_eq!(
            l.roots_of((300, Some(12)), Some(200), &roots, &mut table(&rows)),
            &[0, 1]
        );
    }

    #[test]
    fn a_reused_pid_is_a_stranger() {
        // Child 300 (start 12) of watched 100 exits; an unrelated process
        // started later under init gets pid 300 (start 50).
        let before = [(1, 1, 0), (100, 10, 1), (300, 12, 100)];
        let mut l = Lineage::default();
        let roots = [(100, Some(10))];
        assert_eq!(
            l.roots_of((300, Some(12)), Some(100), &roots, &mut table(&before)),
            &[0]
        );
        let after = [(1, 1, 0), (100, 10, 1), (300, 50, 1)];
        assert!(l
            .roots_of((300, Some(50)), Some(1), &roots, &mut table(&after))
            .is_empty());
        // And the watched pid itself reused: not the watched process.
        let reused_root = [(1, 1, 0), (100, 60, 1), (400, 61, 100)];
        assert!(l
            .roots_of((400, Some(61)), Some(100), &roots, &mut table(&reused_root))
            .is_empty());
    }

    #[test]
    fn a_cycle_or_a_vanished_parent_ends_the_walk() {
        let rows = [(5, 1, 6), (6, 1, 5)];
        let mut l = Lineage::default();
        assert!(l
            .roots_of((7, Some(1)), Some(5), &[(9, None)], &mut table(&rows))
            .is_empty());
        assert!(l
            .roots_of((8, Some(1)), Some(77), &[(9, None)], &mut table(&rows))
            .is_empty());
    }
}
