//! What changed between two moments (`/api/changes`) and how busy each
//! stretch of history was (`/api/history`'s activity strip). Pure.

use crate::graph::model::{Edge, GraphDoc};
use crate::history::frame::SampleMeta;
use crate::snapshot::Proto;
use serde::Serialize;
use std::collections::BTreeMap;

/// An edge named by its ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeRef {
    pub id: String,
    pub from: String,
    pub to: String,
    pub proto: Proto,
    pub server_port: u16,
}

impl EdgeRef {
    fn of(e: &Edge) -> EdgeRef {
        EdgeRef {
            id: e.id.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            proto: e.proto,
            server_port: e.server_port,
        }
    }
}

/// Bytes an edge moved between the two moments.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeBytes {
    #[serde(flatten)]
    pub edge: EdgeRef,
    /// Client → server.
    pub tx_bytes: u64,
    /// Server → client.
    pub rx_bytes: u64,
}

/// Bytes a node sent and received between the two moments, over the
/// edges present at the later one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeBytes {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub sent: u64,
    pub received: u64,
}

/// `/api/changes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesDoc {
    pub from: String,
    pub to: String,
    pub from_seq: u64,
    pub to_seq: u64,
    /// Edges at `to` that were not there at `from`.
    pub new_edges: Vec<EdgeRef>,
    /// Edges at `from` that are gone at `to`.
    pub vanished_edges: Vec<EdgeRef>,
    pub edge_bytes: Vec<EdgeBytes>,
    pub process_bytes: Vec<NodeBytes>,
    /// Connections that closed in between (`/api/flows` lists them).
    pub closed_connections: usize,
}

/// Compares the graph at `from` with the graph at `to`. Byte counters are
/// cumulative per connection, so an edge's delta is its count at `to`
/// less its count at `from` (all of it for a new edge; never negative: a
/// closed connection takes its bytes with it).
pub fn changes(a: &GraphDoc, b: &GraphDoc, closed_connections: usize) -> ChangesDoc {
    let before: BTreeMap<&str, &Edge> = a.edges.iter().map(|e| (e.id.as_str(), e)).collect();
    let after: BTreeMap<&str, &Edge> = b.edges.iter().map(|e| (e.id.as_str(), e)).collect();
    let pids: BTreeMap<&str, Option<u32>> = a
        .nodes
        .iter()
        .chain(&b.nodes)
        .map(|n| (n.id.as_str(), n.pid))
        .collect();
    let mut edge_bytes = Vec::new();
    let mut nodes: BTreeMap<String, NodeBytes> = BTreeMap::new();
    for (id, e) in &after {
        let old = before.get(id);
        let d = |now: Option<u64>, then: Option<u64>| {
            now.unwrap_or(0).saturating_sub(then.unwrap_or(0))
        };
        let tx = d(e.tx_bytes, old.and_then(|o| o.tx_bytes));
        let rx = d(e.rx_bytes, old.and_then(|o| o.rx_bytes));
        if tx == 0 && rx == 0 {
            continue;
        }
        edge_bytes.push(EdgeBytes {
            edge: EdgeRef::of(e),
            tx_bytes: tx,
            rx_bytes: rx,
        });
        for (node, sent, received) in [(&e.from, tx, rx), (&e.to, rx, tx)] {
            let n = nodes.entry(node.clone()).or_insert_with(|| NodeBytes {
                node: node.clone(),
                pid: pids.get(node.as_str()).copied().flatten(),
                ..NodeBytes::default()
            });
            n.sent += sent;
            n.received += received;
        }
    }
    ChangesDoc {
        from: a.timestamp.clone(),
        to: b.timestamp.clone(),
        from_seq: a.seq,
        to_seq: b.seq,
        new_edges: after
            .iter()
            .filter(|(id, _)| !before.contains_key(*id))
            .map(|(_, e)| EdgeRef::of(e))
            .collect(),
        vanished_edges: before
            .iter()
            .filter(|(id, _)| !after.contains_key(*id))
            .map(|(_, e)| EdgeRef::of(e))
            .collect(),
        edge_bytes,
        process_bytes: nodes.into_values().collect(),
        closed_connections,
    }
}

/// One stretch of the activity strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub start_ms: u64,
    pub end_ms: u64,
    /// The most edges a sample in the stretch had.
    pub edges: u32,
    /// Bytes counted in the stretch.
    pub bytes: u64,
    pub samples: u32,
}

/// Splits `[first, last]` of `metas` (oldest first) into `buckets` equal
/// stretches; a stretch without samples has `samples: 0`.
pub fn activity(metas: &[SampleMeta], buckets: usize) -> Vec<Activity> {
    let (Some(first), Some(last)) = (metas.first(), metas.last()) else {
        return Vec::new();
    };
    let buckets = buckets.max(1);
    let span = (last.at_ms - first.at_ms + 1).max(1);
    let width = span.div_ceil(buckets as u64).max(1);
    let n = span.div_ceil(width) as usize;
    let mut out: Vec<Activity> = (0..n)
        .map(|i| Activity {
            start_ms: first.at_ms + i as u64 * width,
            end_ms: first.at_ms + (i as u64 + 1) * width,
            edges: 0,
            bytes: 0,
            samples: 0,
        })
        .collect();
    let mut prev_total = first.bytes_total;
    for m in metas {
        let i = (((m.at_ms - first.at_ms) / width) as usize).min(n - 1);
        let a = &mut out[i];
        a.edges = a.edges.max(m.edges);
        a.bytes += m.bytes_total.saturating_sub(prev_total);
        a.samples += 1;
        prev_total = m.bytes_total;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(id: &str, tx: Option<u64>) -> Edge {
        Edge {
            id: id.into(),
            from: format!("pid:{id}"),
            to: "pid:1".into(),
            proto: Proto::Tcp,
            server_port: 80,
            count: 1,
            states: Default::default(),
            sockets: vec![],
            tx_bytes: tx,
            rx_bytes: Some(10),
            tx_rate: None,
            rx_rate: None,
            rtt_ms: None,
            retransmits: None,
        }
    }

    #[test]
    fn new_vanished_and_bytes() {
        let a = GraphDoc {
            seq: 1,
            edges: vec![edge("a", Some(100)), edge("b", Some(5))],
            ..GraphDoc::default()
        };
        let b = GraphDoc {
            seq: 2,
            edges: vec![edge("a", Some(250)), edge("c", Some(40))],
            ..GraphDoc::default()
        };
        let c = changes(&a, &b, 3);
        assert_eq!(c.new_edges.len(), 1);
        assert_eq!(c.new_edges[0].id, "c");
        assert_eq!(c.vanished_edges[0].id, "b");
        assert_eq!(c.edge_bytes.len(), 2);
        assert_eq!(
            (c.edge_bytes[0].tx_bytes, c.edge_bytes[0].rx_bytes),
            (150, 0)
        );
        assert_eq!(
            (c.edge_bytes[1].tx_bytes, c.edge_bytes[1].rx_bytes),
            (40, 10)
        );
        let server = c.process_bytes.iter().find(|n| n.node == "pid:1").unwrap();
        assert_eq!((server.sent, server.received), (10, 190));
        assert_eq!(c.closed_connections, 3);
    }

    #[test]
    fn activity_buckets() {
        let metas: Vec<SampleMeta> = (0..10)
            .map(|i| SampleMeta {
                at_ms: i * 1000,
                seq: i,
                edges: i as u32,
                bytes_total: i * 100,
            })
            .collect();
        let a = activity(&metas, 5);
        assert_eq!(a.len(), 5);
        assert_eq!(a.iter().map(|x| x.samples).sum::<u32>(), 10);
        assert_eq!(a.iter().map(|x| x.bytes).sum::<u64>(), 900);
        assert_eq!(a[4].edges, 9);
        assert!(activity(&[], 5).is_empty());
    }
}
