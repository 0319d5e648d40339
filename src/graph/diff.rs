//! The difference between two graph documents, for the live event stream:
//! nodes and edges added, changed or removed, keyed by id.

use crate::graph::model::{GraphDiff, GraphDoc};
use std::collections::HashMap;

/// What changed from `prev` to `next`. Applying it to `prev` gives `next`.
pub fn diff(prev: &GraphDoc, next: &GraphDoc) -> GraphDiff {
    let mut out = GraphDiff {
        seq: next.seq,
        base: prev.seq,
        timestamp: next.timestamp.clone(),
        p2p_hidden_edges: (next.p2p_hidden_edges != prev.p2p_hidden_edges)
            .then_some(next.p2p_hidden_edges)
            .flatten(),
        ..GraphDiff::default()
    };
    let old_nodes: HashMap<&str, _> = prev.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    for n in &next.nodes {
        match old_nodes.get(n.id.as_str()) {
            None => out.added_nodes.push(n.clone()),
            Some(&old) if old != n => out.updated_nodes.push(n.clone()),
            Some(_) => {}
        }
    }
    let new_nodes: HashMap<&str, ()> = next.nodes.iter().map(|n| (n.id.as_str(), ())).collect();
    out.removed_nodes = prev
        .nodes
        .iter()
        .filter(|n| !new_nodes.contains_key(n.id.as_str()))
        .map(|n| n.id.clone())
        .collect();

    let old_edges: HashMap<&str, _> = prev.edges.iter().map(|e| (e.id.as_str(), e)).collect();
    for e in &next.edges {
        match old_edges.get(e.id.as_str()) {
            None => out.added_edges.push(e.clone()),
            Some(&old) if old != e => out.updated_edges.push(e.clone()),
            Some(_) => {}
        }
    }
    let new_edges: HashMap<&str, ()> = next.edges.iter().map(|e| (e.id.as_str(), ())).collect();
    out.removed_edges = prev
        .edges
        .iter()
        .filter(|e| !new_edges.contains_key(e.id.as_str()))
        .map(|e| e.id.clone())
        .collect();
    out
}

/// Applies `d` to `doc` (what a client does); used to check diffs.
pub fn apply(doc: &mut GraphDoc, d: &GraphDiff) {
    let drop_nodes: std::collections::HashSet<&str> =
        d.removed_nodes.iter().map(String::as_str).collect();
    doc.nodes.retain(|n| !drop_nodes.contains(n.id.as_str()));
    let drop_edges: std::collections::HashSet<&str> =
        d.removed_edges.iter().map(String::as_str).collect();
    doc.edges.retain(|e| !drop_edges.contains(e.id.as_str()));
    for n in d.updated_nodes.iter().chain(&d.added_nodes) {
        match doc.nodes.iter_mut().find(|x| x.id == n.id) {
            Some(x) => *x = n.clone(),
            None => doc.nodes.push(n.clone()),
        }
    }
    for e in d.updated_edges.iter().chain(&d.added_edges) {
        match doc.edges.iter_mut().find(|x| x.id == e.id) {
            Some(x) => *x = e.clone(),
            None => doc.edges.push(e.clone()),
        }
    }
    doc.nodes.sort_by(|a, b| a.id.cmp(&b.id));
    doc.edges.sort_by(|a, b| a.id.cmp(&b.id));
    if d.p2p_hidden_edges.is_some() {
        doc.p2p_hidden_edges = d.p2p_hidden_edges;
    }
    doc.seq = d.seq;
    doc.timestamp = d.timestamp.clone();
}
