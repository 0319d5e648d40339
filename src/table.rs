//! `procnet snapshot --format table`: the graph and the listeners as aligned
//! columns for people, readable on a 100-column terminal.

use crate::graph::model::{ConnectionsDoc, GraphDoc, Node};
use std::collections::HashMap;
use std::fmt::Write;

/// Formats a byte count with binary units (`1.5 MiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn cut(s: &str, width: usize) -> String {
    crate::graph::labels::truncate_chars(s, width)
}

fn node_name(node: Option<&Node>, id: &str) -> String {
    match node {
        Some(n) => {
            let mut name = match (n.pid, &n.host_name, &n.address) {
                (Some(pid), _, _) => format!("{} ({pid})", n.label),
                // A named endpoint: the name, and the address people grep for.
                (None, Some(host), Some(addr)) => format!("{host} ({addr})"),
                _ => n.label.clone(),
            };
            if let Some(c) = &n.container {
                let _ = write!(name, " [{c}]");
            }
            name
        }
        None => id.to_string(),
    }
}

/// Renders the listeners of `conns` and the edges of `graph`.
pub fn render(graph: &GraphDoc, conns: &ConnectionsDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "LISTENING ({})", conns.listeners.len());
    let _ = writeln!(
        out,
        "{:<5} {:<24} {:>5}  {:>7}  {:<16} WHERE",
        "PROTO", "ADDRESS", "PORT", "PID", "PROCESS"
    );
    for l in &conns.listeners {
        let pid = if l.pid == 0 {
            "-".to_string()
        } else {
            l.pid.to_string()
        };
        let name = match (&l.service_label, l.pid) {
            (Some(label), 0) => label.clone(),
            _ => l.process_name.clone(),
        };
        let place = match &l.container_name {
            Some(c) => format!("[{c}] {}", l.address_description),
            None => l.address_description.clone(),
        };
        let _ = writeln!(
            out,
            "{:<5} {:<24} {:>5}  {:>7}  {:<16} {}",
            l.proto.as_str(),
            cut(&l.address, 24),
            l.port,
            pid,
            cut(&name, 16),
            cut(&place, 36)
        );
    }
    let nodes: HashMap<&str, &Node> = graph.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let sockets: u32 = graph.edges.iter().map(|e| e.count).sum();
    let _ = writeln!(
        out,
        "\nCONNECTIONS ({} edges, {sockets} connections)",
        graph.edges.len()
    );
    let _ = writeln!(
        out,
        "{:<5} {:<28}    {:<28} {:>5} {:>5}  SENT / RECEIVED",
        "PROTO", "CLIENT", "SERVER", "PORT", "COUNT"
    );
    for e in &graph.edges {
        let traffic = match (e.tx_bytes, e.rx_bytes) {
            (None, None) => "-".to_string(),
            (tx, rx) => format!(
                "{} / {}",
                tx.map_or("?".into(), human_bytes),
                rx.map_or("?".into(), human_bytes)
            ),
        };
        let _ = writeln!(
            out,
            "{:<5} {:<28} -> {:<28} {:>5} {:>5}  {}",
            e.proto.as_str(),
            cut(&node_name(nodes.get(e.from.as_str()).copied(), &e.from), 28),
            cut(&node_name(nodes.get(e.to.as_str()).copied(), &e.to), 28),
            e.server_port,
            e.count,
            traffic
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 * 1024 * 1024), "10.0 MiB");
    }

    #[test]
    fn a_named_endpoint_shows_its_name_and_address() {
        use crate::graph::model::NodeKind;
        let mut n = Node::bare(
            "ext:198.18.0.2".into(),
            NodeKind::External,
            "external",
            "peer.test".into(),
        );
        n.address = Some("198.18.0.2".into());
        n.host_name = Some("peer.test".into());
        assert_eq!(node_name(Some(&n), &n.id), "peer.test (198.18.0.2)");
        n.host_name = None;
        n.label = "198.18.0.2".into();
        assert_eq!(node_name(Some(&n), &n.id), "198.18.0.2");
    }
}
