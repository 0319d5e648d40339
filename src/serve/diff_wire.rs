//! The `slots` encoding of the live diff (`/api/events?diff=slots`, SSE
//! event `diffs`): the same change as the `diff` event, but nodes and edges
//! that the client already has are named by a small integer (their *slot*)
//! instead of their id, and the counters of the changed edges come in flat
//! arrays. A browser applying 5,000 changes a second to a 50,000-edge graph
//! then does no hash lookup of a fresh id string and allocates no object
//! per updated edge (issue 16: the update must be drawn in < 16 ms).
//!
//! The slots are not sent: both ends derive them by one rule, so the server
//! keeps one [`SlotEncoder`] per event stream. The `graph` event a stream
//! starts with gives slot `i` to its `i`-th node and, separately, to its
//! `i`-th edge. In each diff the removals free their slots first (in the
//! order listed, onto a last-in first-out free list); then every added node
//! and edge, in order, takes the most recently freed slot of its kind, or
//! the next never-used one. A client that loses track (its `base` does not
//! match) reconnects: the new stream starts from a new `graph` event.
//!
//! With `added=cols` as well, the added edges come as columns too
//! ([`AddedEdgeColumns`]), so the browser parses no object per added edge.
//!
//! docs/contract.md ("Compact live diff") is the public description.

use crate::graph::model::{Edge, EdgeSocket, GraphDiff, GraphDoc, Node};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Why a diff cannot be encoded against this stream's slots. Each one
/// means the stream and its client no longer agree: the stream ends and
/// the client reconnects for a fresh `graph` event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("diff from seq {got}, the stream is at seq {expected}")]
    BaseMismatch { expected: u64, got: u64 },
    #[error("the diff names node {0}, which the stream does not have")]
    UnknownNode(String),
    #[error("the diff names edge {0}, which the stream does not have")]
    UnknownEdge(String),
    #[error("the diff adds node {0}, which the stream already has")]
    DuplicateNode(String),
    #[error("the diff adds edge {0}, which the stream already has")]
    DuplicateEdge(String),
    #[error("the diff is not a GraphDiff: {0}")]
    Json(String),
}

/// Whether the query string of `/api/events` asks for this encoding.
pub fn wants_slots(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| kv == "diff=slots"))
}

/// Whether it also asks for the added edges as columns (`added=cols`,
/// with `diff=slots`): [`SlotDiff::added_edge_cols`] instead of
/// [`SlotDiff::added_edges`].
pub fn wants_added_columns(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| kv == "added=cols"))
}

/// Id → slot for one kind (nodes or edges), with the free list.
#[derive(Debug, Default)]
struct SlotTable {
    slot_of: HashMap<String, u32>,
    /// freed slots; the last one is taken first
    free: Vec<u32>,
    /// slots ever used: the next new one
    len: u32,
}

impl SlotTable {
    fn from_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Self {
        let mut t = SlotTable::default();
        for id in ids {
            // a document never repeats an id; if one did, the client's
            // `i`-th item still takes slot `i`, so count it all the same
            t.slot_of.insert(id.to_owned(), t.len);
            t.len += 1;
        }
        t
    }

    fn get(&self, id: &str) -> Option<u32> {
        self.slot_of.get(id).copied()
    }

    fn remove(&mut self, id: &str) -> Option<u32> {
        let s = self.slot_of.remove(id)?;
        self.free.push(s);
        Some(s)
    }

    /// Gives `id` a slot; `None` when it already has one.
    fn add(&mut self, id: &str) -> Option<u32> {
        if self.slot_of.contains_key(id) {
            return None;
        }
        let s = self.free.pop().unwrap_or_else(|| {
            self.len += 1;
            self.len - 1
        });
        self.slot_of.insert(id.to_owned(), s);
        Some(s)
    }
}

/// The updated edges as columns: entry `i` of every array is the `i`-th
/// updated edge. An updated edge keeps its ends, protocol and port (its id
/// names them); everything else that may change is here, `null` where the
/// JSON edge leaves the field out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct EdgeColumns {
    pub slot: Vec<u32>,
    pub count: Vec<u32>,
    #[ts(as = "Vec<Option<f64>>")]
    pub tx_bytes: Vec<Option<u64>>,
    #[ts(as = "Vec<Option<f64>>")]
    pub rx_bytes: Vec<Option<u64>>,
    pub tx_rate: Vec<Option<f64>>,
    pub rx_rate: Vec<Option<f64>>,
    pub rtt_ms: Vec<Option<f64>>,
    #[ts(as = "Vec<Option<f64>>")]
    pub retransmits: Vec<Option<u64>>,
    /// The entries (indexes into the columns above) whose `states` or
    /// `sockets` differ from what this stream last sent for the edge; the
    /// others keep theirs. Most updates change counters only: their socket
    /// samples are not sent again.
    pub cold: Vec<u32>,
    /// `states` and `sockets` of the `cold` entries (same order).
    pub states: Vec<BTreeMap<String, u32>>,
    pub sockets: Vec<Vec<EdgeSocket>>,
}

/// The added edges as columns (`?diff=slots&added=cols`): entry `i` of
/// every array is the `i`-th added edge, whose ends are in
/// [`SlotDiff::added_edge_ends`]. The same fields as an [`Edge`] but for
/// `from` and `to` (the ends' slots name them), `null` where the JSON edge
/// leaves the field out. A browser then parses flat arrays, not an object
/// of a dozen keys per edge (an update at 10,000 nodes adds ≈ 2,200 edges,
/// ≈ 60 % of the bytes of a `diffs` event), and builds each edge once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct AddedEdgeColumns {
    pub id: Vec<String>,
    pub proto: Vec<crate::snapshot::Proto>,
    pub server_port: Vec<u16>,
    pub count: Vec<u32>,
    #[ts(as = "Vec<Option<f64>>")]
    pub tx_bytes: Vec<Option<u64>>,
    #[ts(as = "Vec<Option<f64>>")]
    pub rx_bytes: Vec<Option<u64>>,
    pub tx_rate: Vec<Option<f64>>,
    pub rx_rate: Vec<Option<f64>>,
    pub rtt_ms: Vec<Option<f64>>,
    #[ts(as = "Vec<Option<f64>>")]
    pub retransmits: Vec<Option<u64>>,
    pub states: Vec<BTreeMap<String, u32>>,
    pub sockets: Vec<Vec<EdgeSocket>>,
}

impl AddedEdgeColumns {
    fn push(&mut self, e: &Edge) {
        self.id.push(e.id.clone());
        self.proto.push(e.proto);
        self.server_port.push(e.server_port);
        self.count.push(e.count);
        self.tx_bytes.push(e.tx_bytes);
        self.rx_bytes.push(e.rx_bytes);
        self.tx_rate.push(e.tx_rate);
        self.rx_rate.push(e.rx_rate);
        self.rtt_ms.push(e.rtt_ms);
        self.retransmits.push(e.retransmits);
        self.states.push(e.states.clone());
        self.sockets.push(e.sockets.clone());
    }
}

/// What identifies an edge's `states` and `sockets`, to send them only when
/// they change.
fn cold_hash(e: &Edge) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    e.states.hash(&mut h);
    for s in &e.sockets {
        (&s.client, &s.server, &s.state).hash(&mut h);
    }
    h.finish()
}

/// The `diffs` SSE event: a [`GraphDiff`] with slots for what the client
/// has (see the module docs for how slots are given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct SlotDiff {
    #[ts(type = "number")]
    pub seq: u64,
    #[ts(type = "number")]
    pub base: u64,
    pub timestamp: String,
    /// As in [`GraphDiff`]: present only when it changed.
    #[serde(
        rename = "p2pHiddenEdges",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[ts(optional)]
    pub p2p_hidden_edges: Option<u32>,
    /// Slots of the removed nodes (freed first, in this order).
    pub removed_nodes: Vec<u32>,
    /// Slots of the removed edges (freed after the nodes', in this order).
    pub removed_edges: Vec<u32>,
    /// New nodes, whole; each takes a slot, in order.
    pub added_nodes: Vec<Node>,
    /// Changed nodes, whole, and their slots (same order).
    pub updated_nodes: Vec<Node>,
    pub updated_node_slots: Vec<u32>,
    /// New edges, whole; each takes a slot, in order (after the nodes').
    /// Empty when the stream asked for them as columns (`added=cols`).
    pub added_edges: Vec<Edge>,
    /// With `added=cols`: the new edges as columns instead (same order,
    /// same slots); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub added_edge_cols: Option<AddedEdgeColumns>,
    /// The node slots of each added edge's ends: `[from0, to0, from1, …]`.
    pub added_edge_ends: Vec<u32>,
    pub updated_edges: EdgeColumns,
}

/// One event stream's view of the slots.
#[derive(Debug)]
pub struct SlotEncoder {
    seq: u64,
    nodes: SlotTable,
    edges: SlotTable,
    /// per edge slot: `cold_hash` of what the client has
    cold: Vec<u64>,
    /// the added edges go out as columns (`added=cols`)
    added_columns: bool,
}

impl SlotEncoder {
    /// The slots of a stream that starts with the `graph` event of `doc`.
    pub fn new(doc: &GraphDoc) -> Self {
        SlotEncoder {
            seq: doc.seq,
            nodes: SlotTable::from_ids(doc.nodes.iter().map(|n| n.id.as_str())),
            edges: SlotTable::from_ids(doc.edges.iter().map(|e| e.id.as_str())),
            cold: doc.edges.iter().map(cold_hash).collect(),
            added_columns: false,
        }
    }

    /// Send the added edges as columns ([`SlotDiff::added_edge_cols`]).
    pub fn with_added_columns(mut self, on: bool) -> Self {
        self.added_columns = on;
        self
    }

    /// The `diffs` event for the JSON of a `diff` event (the broadcast
    /// carries the JSON every stream shares), or `None` when the stream must
    /// end (logged).
    pub fn event(&mut self, diff_json: &str) -> Option<axum::response::sse::Event> {
        match self.encode_json(diff_json) {
            Ok(data) => Some(
                axum::response::sse::Event::default()
                    .event("diffs")
                    .data(data),
            ),
            Err(e) => {
                log::warn!("event stream ends, its client re-syncs: {e}");
                None
            }
        }
    }

    /// [`SlotEncoder::encode`] from and to JSON.
    pub fn encode_json(&mut self, diff_json: &str) -> Result<String, WireError> {
        let d: GraphDiff =
            serde_json::from_str(diff_json).map_err(|e| WireError::Json(e.to_string()))?;
        let out = self.encode(&d)?;
        serde_json::to_string(&out).map_err(|e| WireError::Json(e.to_string()))
    }

    /// `d` in slots, the stream's slots moved past it. On an error the
    /// slots are left half-moved: the stream must end.
    pub fn encode(&mut self, d: &GraphDiff) -> Result<SlotDiff, WireError> {
        if d.base != self.seq {
            return Err(WireError::BaseMismatch {
                expected: self.seq,
                got: d.base,
            });
        }
        let node_slot = |t: &SlotTable, id: &str| {
            t.get(id)
                .ok_or_else(|| WireError::UnknownNode(id.to_owned()))
        };
        let mut out = SlotDiff {
            seq: d.seq,
            base: d.base,
            timestamp: d.timestamp.clone(),
            p2p_hidden_edges: d.p2p_hidden_edges,
            ..SlotDiff::default()
        };
        for id in &d.removed_nodes {
            let s = self
                .nodes
                .remove(id)
                .ok_or_else(|| WireError::UnknownNode(id.clone()))?;
            out.removed_nodes.push(s);
        }
        for id in &d.removed_edges {
            let s = self
                .edges
                .remove(id)
                .ok_or_else(|| WireError::UnknownEdge(id.clone()))?;
            out.removed_edges.push(s);
        }
        for n in &d.added_nodes {
            self.nodes
                .add(&n.id)
                .ok_or_else(|| WireError::DuplicateNode(n.id.clone()))?;
        }
        out.added_nodes = d.added_nodes.clone();
        for n in &d.updated_nodes {
            out.updated_node_slots.push(node_slot(&self.nodes, &n.id)?);
        }
        out.updated_nodes = d.updated_nodes.clone();
        for e in &d.added_edges {
            out.added_edge_ends.push(node_slot(&self.nodes, &e.from)?);
            out.added_edge_ends.push(node_slot(&self.nodes, &e.to)?);
            let s = self
                .edges
                .add(&e.id)
                .ok_or_else(|| WireError::DuplicateEdge(e.id.clone()))?
                as usize;
            if self.cold.len() <= s {
                self.cold.resize(s + 1, 0);
            }
            self.cold[s] = cold_hash(e);
        }
        if self.added_columns {
            let mut cols = AddedEdgeColumns::default();
            for e in &d.added_edges {
                cols.push(e);
            }
            out.added_edge_cols = Some(cols);
        } else {
            out.added_edges = d.added_edges.clone();
        }
        let c = &mut out.updated_edges;
        for e in &d.updated_edges {
            let s = self
                .edges
                .get(&e.id)
                .ok_or_else(|| WireError::UnknownEdge(e.id.clone()))?;
            c.slot.push(s);
            c.count.push(e.count);
            c.tx_bytes.push(e.tx_bytes);
            c.rx_bytes.push(e.rx_bytes);
            c.tx_rate.push(e.tx_rate);
            c.rx_rate.push(e.rx_rate);
            c.rtt_ms.push(e.rtt_ms);
            c.retransmits.push(e.retransmits);
            let (h, s) = (cold_hash(e), s as usize);
            if self.cold.len() <= s {
                self.cold.resize(s + 1, !h); // (never: every slot given has its hash)
            }
            if self.cold[s] != h {
                self.cold[s] = h;
                c.cold.push(c.slot.len() as u32 - 1);
                c.states.push(e.states.clone());
                c.sockets.push(e.sockets.clone());
            }
        }
        self.seq = d.seq;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::NodeKind;
    use crate::snapshot::Proto;

    fn node(id: &str) -> Node {
        Node::bare(id.into(), NodeKind::Process, "app", id.into())
    }

    fn edge(from: &str, to: &str, count: u32) -> Edge {
        Edge {
            id: format!("tcp:{from}->{to}:80"),
            from: from.into(),
            to: to.into(),
            proto: Proto::Tcp,
            server_port: 80,
            count,
            states: BTreeMap::from([("ESTABLISHED".to_owned(), count)]),
            sockets: vec![],
            tx_bytes: Some(10),
            rx_bytes: None,
            tx_rate: Some(1.5),
            rx_rate: None,
            rtt_ms: None,
            retransmits: Some(2),
        }
    }

    fn doc(seq: u64, nodes: &[&str], edges: &[(&str, &str)]) -> GraphDoc {
        GraphDoc {
            seq,
            nodes: nodes.iter().map(|n| node(n)).collect(),
            edges: edges.iter().map(|(a, b)| edge(a, b, 1)).collect(),
            ..GraphDoc::default()
        }
    }

    #[test]
    fn slots_follow_document_order_then_the_free_list() {
        let a = doc(1, &["a", "b", "c"], &[("a", "b"), ("b", "c"), ("a", "c")]);
        let mut b = doc(
            2,
            &["a", "c", "d", "e"],
            &[("a", "c"), ("d", "a"), ("e", "d")],
        );
        b.edges[0].count = 7;
        b.edges[0].states.insert("ESTABLISHED".into(), 7);
        let mut enc = SlotEncoder::new(&a);
        let d = enc.encode(&crate::graph::diff::diff(&a, &b)).unwrap();
        assert_eq!(d.removed_nodes, vec![1]); // b
        assert_eq!(d.removed_edges, vec![0, 1]); // a->b, b->c
        assert_eq!(d.added_nodes.len(), 2);
        // d takes the freed slot 1, e the next new one, 3; edge d->a takes
        // the last freed edge slot (1), e->d the one before (0)
        assert_eq!(d.added_edge_ends, vec![1, 0, 3, 1]);
        assert_eq!(enc.edges.get("tcp:d->a:80"), Some(1));
        assert_eq!(enc.edges.get("tcp:e->d:80"), Some(0));
        assert_eq!(d.updated_edges.slot, vec![2]);
        assert_eq!(d.updated_edges.count, vec![7]);
        assert_eq!(d.updated_edges.tx_bytes, vec![Some(10)]);
        assert_eq!(d.updated_edges.rx_bytes, vec![None]);
        assert_eq!(d.updated_edges.retransmits, vec![Some(2)]);
        assert_eq!(d.updated_edges.cold, vec![0]);
        assert_eq!(
            d.updated_edges.states,
            vec![BTreeMap::from([("ESTABLISHED".to_owned(), 7)])]
        );
        // the next change of the counters alone sends no states again
        let mut c = b.clone();
        c.seq = 3;
        c.edges[0].count = 8;
        let d = enc.encode(&crate::graph::diff::diff(&b, &c)).unwrap();
        assert_eq!(d.updated_edges.count, vec![8]);
        assert!(d.updated_edges.cold.is_empty() && d.updated_edges.states.is_empty());
    }

    #[test]
    fn a_diff_from_another_base_or_naming_an_unknown_id_is_refused() {
        let a = doc(1, &["a", "b"], &[("a", "b")]);
        let b = doc(2, &["a"], &[]);
        let mut enc = SlotEncoder::new(&a);
        let mut d = crate::graph::diff::diff(&a, &b);
        d.base = 5;
        assert_eq!(
            enc.encode(&d).unwrap_err(),
            WireError::BaseMismatch {
                expected: 1,
                got: 5
            }
        );
        d.base = 1;
        d.removed_nodes.push("zz".into());
        assert_eq!(
            enc.encode(&d).unwrap_err(),
            WireError::UnknownNode("zz".into())
        );
        let mut enc = SlotEncoder::new(&a);
        let mut d = crate::graph::diff::diff(&a, &doc(2, &["a", "b"], &[("a", "b")]));
        d.added_edges.push(edge("a", "q", 1));
        assert_eq!(
            enc.encode(&d).unwrap_err(),
            WireError::UnknownNode("q".into())
        );
    }

    /// Every field of an edge reaches the client: an added edge whole, an
    /// updated one through the columns. A field added to `Edge` without a
    /// column fails here.
    #[test]
    fn the_columns_carry_every_field_of_an_edge() {
        let e = edge("a", "b", 3);
        let json = serde_json::to_value(&e).unwrap();
        let mut fields: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        // fields that every optional one set shows
        for k in ["rxBytes", "rxRate", "rttMs"] {
            fields.push(k.into());
        }
        let added = serde_json::to_value(AddedEdgeColumns::default()).unwrap();
        let added = added.as_object().unwrap();
        for f in &fields {
            // an added edge's ends are in addedEdgeEnds
            if !["from", "to"].contains(&f.as_str()) {
                assert!(added.contains_key(f), "no added column for edge field {f}");
            }
        }
        let cols = serde_json::to_value(EdgeColumns::default()).unwrap();
        let cols = cols.as_object().unwrap();
        for f in fields {
            // an updated edge keeps its id, ends, protocol and port
            if ["id", "from", "to", "proto", "serverPort"].contains(&f.as_str()) {
                continue;
            }
            assert!(cols.contains_key(&f), "no column for edge field {f}");
        }
        // and no optional field of Edge is missed: the struct literal in
        // `edge` names them all, so adding one breaks the build of this test
        // (the web model's `edgeRecord`, web/src/model.ts, lists them too: its
        // unit test checks them against the fixture below)
    }

    /// A deterministic churn: a graph and the diffs of `steps` samples
    /// after it (nodes come and go with their edges, edges are added and
    /// their counters change, a node's label changes, the hidden count too).
    fn churn(steps: u64) -> (GraphDoc, Vec<GraphDiff>) {
        let first = doc(1, &["n0", "n1", "n2", "n3"], &[("n0", "n1"), ("n2", "n3")]);
        let mut prev = first.clone();
        let mut x: u64 = 7;
        let mut rnd = |m: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m as u64) as usize
        };
        let mut diffs = vec![];
        for seq in 2..steps + 2 {
            let mut next = prev.clone();
            next.seq = seq;
            next.timestamp = format!("t{seq}");
            let k = rnd(next.nodes.len().max(1));
            if next.nodes.len() > 3 && rnd(3) == 0 {
                let gone = next.nodes.remove(k).id;
                next.edges.retain(|e| e.from != gone && e.to != gone);
            }
            next.nodes.push(node(&format!("n{}", seq + 10)));
            if rnd(4) == 0 {
                next.nodes[0].label = format!("renamed {seq}");
            }
            for _ in 0..2 {
                let (a, b) = (rnd(next.nodes.len()), rnd(next.nodes.len()));
                let mut e = edge(&next.nodes[a].id.clone(), &next.nodes[b].id.clone(), 1);
                if rnd(2) == 0 {
                    e.sockets.push(EdgeSocket {
                        client: format!("127.0.0.1:{}", 40000 + seq),
                        server: "127.0.0.1:80".into(),
                        state: "ESTABLISHED".into(),
                    });
                }
                if a != b && !next.edges.iter().any(|x| x.id == e.id) {
                    next.edges.push(e);
                }
            }
            let n = next.edges.len();
            if n > 0 {
                let e = &mut next.edges[rnd(n)];
                e.count += 1;
                e.rtt_ms = Some(seq as f64 / 4.0);
                e.tx_rate = None;
                e.rx_rate = Some(seq as f64);
                e.rx_bytes = Some(seq * 100);
                e.states.insert("CLOSE_WAIT".into(), 1);
            }
            next.p2p_hidden_edges = (seq % 5 == 0).then_some(seq as u32);
            diffs.push(crate::graph::diff::diff(&prev, &next));
            prev = next;
        }
        (first, diffs)
    }

    /// The slots the encoder keeps are those a client that applies the
    /// diffs in order would compute: checked over a long random churn.
    #[test]
    fn slots_stay_in_step_over_many_diffs() {
        let (first, diffs) = churn(200);
        let mut enc = SlotEncoder::new(&first);
        let mut doc = first.clone();
        // the client's side: slot -> id
        let mut nodes: Vec<Option<String>> =
            first.nodes.iter().map(|n| Some(n.id.clone())).collect();
        let mut edges: Vec<Option<String>> =
            first.edges.iter().map(|e| Some(e.id.clone())).collect();
        let (mut nfree, mut efree) = (Vec::<u32>::new(), Vec::<u32>::new());
        let take = |v: &mut Vec<Option<String>>, free: &mut Vec<u32>, id: String| match free.pop() {
            Some(s) => v[s as usize] = Some(id),
            None => v.push(Some(id)),
        };
        for plain in &diffs {
            let d = enc.encode(plain).unwrap();
            crate::graph::diff::apply(&mut doc, plain);
            for s in &d.removed_nodes {
                nodes[*s as usize] = None;
                nfree.push(*s);
            }
            for s in &d.removed_edges {
                edges[*s as usize] = None;
                efree.push(*s);
            }
            for n in &d.added_nodes {
                take(&mut nodes, &mut nfree, n.id.clone());
            }
            for (i, e) in d.added_edges.iter().enumerate() {
                let (f, t) = (d.added_edge_ends[2 * i], d.added_edge_ends[2 * i + 1]);
                assert_eq!(nodes[f as usize].as_deref(), Some(e.from.as_str()));
                assert_eq!(nodes[t as usize].as_deref(), Some(e.to.as_str()));
                take(&mut edges, &mut efree, e.id.clone());
            }
            for (i, s) in d.updated_edges.slot.iter().enumerate() {
                let id = edges[*s as usize].clone().unwrap();
                let e = doc.edges.iter().find(|e| e.id == id).unwrap();
                assert_eq!(d.updated_edges.count[i], e.count);
                assert_eq!(d.updated_edges.rtt_ms[i], e.rtt_ms);
                if let Some(k) = d.updated_edges.cold.iter().position(|c| *c as usize == i) {
                    assert_eq!(d.updated_edges.states[k], e.states);
                    assert_eq!(d.updated_edges.sockets[k], e.sockets);
                }
            }
            for (id, s) in &enc.nodes.slot_of {
                assert_eq!(nodes[*s as usize].as_deref(), Some(id.as_str()));
            }
            for (id, s) in &enc.edges.slot_of {
                assert_eq!(edges[*s as usize].as_deref(), Some(id.as_str()));
            }
            assert_eq!(enc.nodes.slot_of.len(), doc.nodes.len());
            assert_eq!(enc.edges.slot_of.len(), doc.edges.len());
        }
    }

    /// `added=cols` sends the same added edges, field for field, and
    /// changes nothing else in the event.
    #[test]
    fn added_columns_carry_the_same_edges() {
        let (first, diffs) = churn(80);
        let mut whole = SlotEncoder::new(&first);
        let mut cols = SlotEncoder::new(&first).with_added_columns(true);
        let mut seen = 0;
        for d in &diffs {
            let (a, mut b) = (whole.encode(d).unwrap(), cols.encode(d).unwrap());
            let c = b.added_edge_cols.take().unwrap();
            assert!(b.added_edges.is_empty());
            assert_eq!(a.added_edge_cols, None);
            let back: Vec<Edge> = (0..c.id.len())
                .map(|i| Edge {
                    id: c.id[i].clone(),
                    from: a.added_edges[i].from.clone(),
                    to: a.added_edges[i].to.clone(),
                    proto: c.proto[i],
                    server_port: c.server_port[i],
                    count: c.count[i],
                    states: c.states[i].clone(),
                    sockets: c.sockets[i].clone(),
                    tx_bytes: c.tx_bytes[i],
                    rx_bytes: c.rx_bytes[i],
                    tx_rate: c.tx_rate[i],
                    rx_rate: c.rx_rate[i],
                    rtt_ms: c.rtt_ms[i],
                    retransmits: c.retransmits[i],
                })
                .collect();
            seen += back.len();
            assert_eq!(back, a.added_edges);
            b.added_edges = a.added_edges.clone();
            assert_eq!(a, b);
        }
        assert!(seen > 50, "{seen} edges added");
        assert!(wants_added_columns(Some("diff=slots&added=cols")));
        assert!(!wants_added_columns(Some("diff=slots")));
    }

    /// web/test/fixtures/diff-wire.json holds a churn, its plain diffs and
    /// what this encoder makes of them: the web unit tests check that the
    /// fake server's encoder (web/test/diff-wire.mjs) gives the same and that
    /// the UI's model decodes it to the same graph as the plain diffs.
    /// `PROCNET_UPDATE_WIRE=1 cargo test --lib diff_wire` rewrites it.
    #[test]
    fn the_fixture_the_web_tests_share_is_what_this_encoder_gives() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("web/test/fixtures/diff-wire.json");
        let (first, diffs) = churn(60);
        let mut enc = SlotEncoder::new(&first);
        let encoded: Vec<SlotDiff> = diffs.iter().map(|d| enc.encode(d).unwrap()).collect();
        let mut enc = SlotEncoder::new(&first).with_added_columns(true);
        let encoded_cols: Vec<SlotDiff> = diffs.iter().map(|d| enc.encode(d).unwrap()).collect();
        let want = serde_json::json!({
            "graph": first, "diffs": diffs, "encoded": encoded, "encodedCols": encoded_cols,
        });
        if std::env::var_os("PROCNET_UPDATE_WIRE").is_some() {
            std::fs::write(&path, serde_json::to_string(&want).unwrap() + "\n").unwrap();
            return;
        }
        let have: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(
            have == want,
            "{} is not what the encoder gives: PROCNET_UPDATE_WIRE=1 cargo test --lib diff_wire",
            path.display()
        );
    }
}
