//! The last minutes of the busiest nodes' and edges' rates, for the Top
//! talkers sparklines (`GET /api/rates`).
//!
//! Why not the history store: a sparkline needs one number per node and
//! per sample, and rebuilding the graph for each of 300 past samples (what
//! `?at=` does for one) would cost seconds at 100k sockets. The graph the
//! sampler publishes already carries every node's and edge's rate, so this
//! keeps those numbers, and only those, for a short window: per kept
//! sample the [`TOP_PER_KIND`] busiest nodes and edges (a talker is by
//! definition among the busiest), at most one sample a second, for
//! [`WINDOW_MS`]. That bounds it to about 300 × 256 entries (≈ 2 MiB with
//! the ids shared between samples), whatever the socket count.

use crate::graph::model::GraphDoc;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// How far back the sparklines reach.
pub const WINDOW_MS: u64 = 5 * 60 * 1000;
/// Kept per sample: this many nodes and this many edges, by rate.
pub const TOP_PER_KIND: usize = 128;
/// Samples closer than this to the last kept one are not kept (a fast
/// `--interval` would otherwise multiply the memory, not the detail a
/// 60-pixel sparkline can show).
pub const MIN_SPACING_MS: u64 = 1000;
/// At most this many ids per request.
pub const MAX_IDS: usize = 100;

/// `GET /api/rates`: for each asked id, its rate (bytes/s sent plus
/// received) at each kept sample, oldest first; 0 where the id was not
/// among the busiest (or not there) at that sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct RatesDoc {
    /// When each sample was taken (Unix milliseconds), oldest first.
    #[ts(type = "Array<number>")]
    pub at_ms: Vec<u64>,
    /// Per asked id, one rate per entry of `atMs`.
    pub series: BTreeMap<String, Vec<f32>>,
    /// How far back the series reach at most, in seconds.
    pub window_seconds: u32,
}

struct KeptSample {
    at_ms: u64,
    /// Sorted by id, so a look-up is a binary search.
    rates: Vec<(Arc<str>, f32)>,
}

/// The kept samples, oldest first.
#[derive(Default)]
pub struct RecentRates {
    samples: VecDeque<KeptSample>,
    /// One allocation per id, shared by every sample that keeps it.
    ids: HashSet<Arc<str>>,
    pushes_since_prune: u32,
}

impl RecentRates {
    /// Keeps the busiest nodes and edges of a published graph.
    pub fn push(&mut self, at_ms: u64, graph: &GraphDoc) {
        if let Some(last) = self.samples.back() {
            if at_ms < last.at_ms.saturating_add(MIN_SPACING_MS) {
                return;
            }
        }
        let nodes = graph
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), rate(n.tx_rate, n.rx_rate)));
        let edges = graph
            .edges
            .iter()
            .map(|e| (e.id.as_str(), rate(e.tx_rate, e.rx_rate)));
        let mut rates: Vec<(Arc<str>, f32)> = Vec::new();
        for busiest in [top(nodes), top(edges)] {
            for (id, r) in busiest {
                rates.push((self.intern(id), r));
            }
        }
        rates.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.samples.push_back(KeptSample { at_ms, rates });
        let oldest = at_ms.saturating_sub(WINDOW_MS);
        while self.samples.front().is_some_and(|s| s.at_ms < oldest) {
            self.samples.pop_front();
        }
        self.pushes_since_prune += 1;
        if self.pushes_since_prune >= 60 {
            // Ids no kept sample names any more are held by the set alone.
            self.ids.retain(|id| Arc::strong_count(id) > 1);
            self.pushes_since_prune = 0;
        }
    }

    /// The series of `ids` over the kept window.
    pub fn query<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> RatesDoc {
        let at_ms = self.samples.iter().map(|s| s.at_ms).collect();
        let series = ids
            .into_iter()
            .map(|id| {
                let values = self
                    .samples
                    .iter()
                    .map(|s| match s.rates.binary_search_by(|(k, _)| (**k).cmp(id)) {
                        Ok(i) => s.rates[i].1,
                        Err(_) => 0.0,
                    })
                    .collect();
                (id.to_string(), values)
            })
            .collect();
        RatesDoc {
            at_ms,
            series,
            window_seconds: (WINDOW_MS / 1000) as u32,
        }
    }

    /// How many (id, rate) entries are kept, for the memory bound's test.
    pub fn entries(&self) -> usize {
        self.samples.iter().map(|s| s.rates.len()).sum()
    }

    fn intern(&mut self, id: &str) -> Arc<str> {
        match self.ids.get(id) {
            Some(shared) => shared.clone(),
            None => {
                let shared: Arc<str> = Arc::from(id);
                self.ids.insert(shared.clone());
                shared
            }
        }
    }
}

/// The ids a `/api/rates` query asks for: one `id=` parameter each, in
/// order, duplicates dropped. An error names what is wrong and the limit.
pub fn asked_ids(query: Option<&str>) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key != "id" {
            return Err(format!(
                "unknown parameter {key:?}: /api/rates takes only id=<node or edge id>, repeated"
            ));
        }
        if value.is_empty() || value.len() > 1024 {
            return Err("id: a node or edge id of 1 to 1,024 bytes".to_string());
        }
        if !ids.iter().any(|i| *i == value) {
            ids.push(value.into_owned());
        }
        if ids.len() > MAX_IDS {
            return Err(format!("id: at most {MAX_IDS} ids per request"));
        }
    }
    if ids.is_empty() {
        return Err("id: give at least one id=<node or edge id>".to_string());
    }
    Ok(ids)
}

fn rate(tx: Option<f64>, rx: Option<f64>) -> f32 {
    (tx.unwrap_or(0.0) + rx.unwrap_or(0.0)) as f32
}

/// The [`TOP_PER_KIND`] entries with the highest non-zero rate.
fn top<'a>(all: impl Iterator<Item = (&'a str, f32)>) -> Vec<(&'a str, f32)> {
    let mut busy: Vec<(&str, f32)> = all.filter(|(_, r)| *r > 0.0 && r.is_finite()).collect();
    if busy.len() > TOP_PER_KIND {
        busy.select_nth_unstable_by(TOP_PER_KIND - 1, |a, b| b.1.total_cmp(&a.1));
        busy.truncate(TOP_PER_KIND);
    }
    busy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::{Edge, Node, NodeKind};

    fn node(id: &str, tx: f64) -> Node {
        let mut n = Node::bare(id.to_string(), NodeKind::Process, "process", id.to_string());
        n.tx_rate = Some(tx);
        n
    }

    fn graph(nodes: Vec<Node>, edges: Vec<Edge>) -> GraphDoc {
        GraphDoc {
            nodes,
            edges,
            ..GraphDoc::default()
        }
    }

    #[test]
    fn asked_ids_are_checked() {
        assert_eq!(
            asked_ids(Some("id=pid%3A1&id=pid:1&id=a%2Cb")).unwrap(),
            vec!["pid:1", "a,b"]
        );
        assert!(asked_ids(None).unwrap_err().contains("at least one"));
        assert!(asked_ids(Some("ids=x"))
            .unwrap_err()
            .contains("unknown parameter"));
        assert!(asked_ids(Some("id=")).unwrap_err().contains("1 to 1,024"));
        let many: Vec<String> = (0..=MAX_IDS).map(|i| format!("id={i}")).collect();
        assert!(asked_ids(Some(&many.join("&")))
            .unwrap_err()
            .contains("at most"));
        // Hostile bytes never panic.
        let _ = asked_ids(Some("id=%ff%fe&id=%&id=\u{0}"));
    }

    #[test]
    fn series_follow_the_samples_and_an_absent_id_is_zero() {
        let mut recent = RecentRates::default();
        recent.push(
            10_000,
            &graph(vec![node("pid:1", 100.0), node("pid:2", 5.0)], vec![]),
        );
        recent.push(11_000, &graph(vec![node("pid:1", 300.0)], vec![]));
        let doc = recent.query(["pid:1", "pid:2", "pid:9"]);
        assert_eq!(doc.at_ms, vec![10_000, 11_000]);
        assert_eq!(doc.series["pid:1"], vec![100.0, 300.0]);
        assert_eq!(doc.series["pid:2"], vec![5.0, 0.0]);
        assert_eq!(doc.series["pid:9"], vec![0.0, 0.0]);
    }

    #[test]
    fn samples_closer_than_a_second_are_skipped_and_old_ones_dropped() {
        let mut recent = RecentRates::default();
        let g = graph(vec![node("pid:1", 1.0)], vec![]);
        for i in 0..1000u64 {
            recent.push(i * 250, &g); // 4 Hz for 250 s
        }
        let doc = recent.query(["pid:1"]);
        assert_eq!(doc.at_ms.len(), 250, "one a second");
        for i in 0..1000u64 {
            recent.push(250_000 + i * 1000, &g);
        }
        let doc = recent.query(["pid:1"]);
        let first = doc.at_ms[0];
        let last = *doc.at_ms.last().unwrap();
        assert!(last - first <= WINDOW_MS, "{first}..{last}");
        assert_eq!(doc.at_ms.len() as u64, WINDOW_MS / 1000 + 1);
    }

    #[test]
    fn only_the_busiest_are_kept_and_ids_are_shared() {
        let mut recent = RecentRates::default();
        for s in 0..400u64 {
            let nodes = (0..5_000)
                .map(|i| node(&format!("pid:{i}"), i as f64))
                .collect();
            recent.push(s * 1000, &graph(nodes, vec![]));
        }
        assert_eq!(
            recent.entries(),
            (WINDOW_MS / 1000 + 1) as usize * TOP_PER_KIND
        );
        assert_eq!(recent.ids.len(), TOP_PER_KIND, "one allocation per id");
        let doc = recent.query(["pid:4999", "pid:0"]);
        assert!(doc.series["pid:4999"].iter().all(|&r| r == 4999.0));
        assert!(
            doc.series["pid:0"].iter().all(|&r| r == 0.0),
            "idle: never kept"
        );
    }
}
