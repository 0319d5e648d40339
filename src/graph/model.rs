//! The documents procnet publishes: `/api/graph` ([`GraphDoc`]), the SSE diff
//! ([`GraphDiff`]) and `/api/connections` ([`ConnectionsDoc`]). Field names are
//! fixed by CONTRACT.md; fields may be added, never renamed.

use crate::snapshot::{Proto, UnknownReason};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /api/graph`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
pub struct GraphDoc {
    /// Sample sequence number; diffs name the `seq` they apply to.
    #[ts(type = "number")]
    pub seq: u64,
    /// When the sample was taken, RFC 3339 UTC.
    pub timestamp: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// With `--p2p-only`: how many edges to `unknown:*` nodes (sockets
    /// whose owner cannot be seen) were left out, so the UI can say that
    /// something is hidden rather than show a quieter machine. Absent
    /// without the flag.
    #[serde(
        rename = "p2pHiddenEdges",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub p2p_hidden_edges: Option<u32>,
}

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A process on this host (`pid:<pid>`).
    Process,
    /// An endpoint outside this host (`ext:<address>`).
    External,
    /// Sockets whose owner could not be seen (`unknown:<reason>…`).
    Unknown,
}

/// A listening socket of a process, shown in the node's side panel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(rename_all = "camelCase")]
pub struct ListenAddr {
    pub proto: Proto,
    pub address: String,
    pub port: u16,
}

/// A graph node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "GNode", optional_fields)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Process name (`comm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Type from the rules (`app` by default; `external` for external nodes).
    #[serde(rename = "type")]
    pub node_type: String,
    /// Display label (rule label, else the process name or address).
    pub label: String,
    /// Command line, arguments joined by spaces, secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// Process start, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub start_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// External endpoint address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// An external endpoint's name from reverse DNS (its PTR record), when
    /// one was found; it is then also the `label`. Absent with `--no-dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// Why an `unknown` node's owner could not be seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<UnknownReason>,
    /// Container the process runs in (name, else short id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Fleet mode: the host (`--host-name` of its procnet) the node is on;
    /// absent on a single host's map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The process's listening sockets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<_>")]
    pub listeners: Vec<ListenAddr>,
    /// Cumulative bytes received by the node's sockets, when known. A
    /// socket several processes hold counts for one of them (see
    /// `shared_sockets`), so the nodes' bytes add up to the sockets'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub rx_bytes: Option<u64>,
    /// Cumulative bytes sent by the node's sockets, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub tx_bytes: Option<u64>,
    /// Bytes per second received over the last interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_rate: Option<f64>,
    /// Bytes per second sent over the last interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_rate: Option<f64>,
    /// The service the process belongs to: the node id (`pid:<pid>`) of
    /// the topmost ancestor running the same program, e.g. the nginx
    /// master for its workers, the postmaster for its backends; its own id
    /// when it heads its own. Process nodes only (`graph::services`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// How many of the process's connections other processes hold too
    /// (inherited across `fork`). Their bytes count once, for the holder
    /// that did the latest I/O where the kernel events say (tier T0), else
    /// the youngest (in the pre-fork pattern the parent opens, the children
    /// do the I/O): on the other holders' nodes the bytes of these sockets
    /// are not in `rxBytes`/`txBytes`. Absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_sockets: Option<u32>,
}

impl Node {
    /// A node with only the required fields set.
    pub fn bare(id: String, kind: NodeKind, node_type: &str, label: String) -> Node {
        Node {
            id,
            kind,
            pid: None,
            name: None,
            node_type: node_type.to_string(),
            label,
            cmdline: None,
            start_time: None,
            user: None,
            uid: None,
            ppid: None,
            exe: None,
            address: None,
            host_name: None,
            reason: None,
            container: None,
            host: None,
            listeners: Vec::new(),
            rx_bytes: None,
            tx_bytes: None,
            rx_rate: None,
            tx_rate: None,
            service: None,
            shared_sockets: None,
        }
    }
}

/// One connection behind an edge, for tooltips (a capped sample).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(rename_all = "camelCase")]
pub struct EdgeSocket {
    /// Client `address:port`.
    pub client: String,
    /// Server `address:port`.
    pub server: String,
    pub state: String,
}

/// A directed edge client → server, aggregated per (client node, server
/// node, proto, server port).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "GEdge", optional_fields)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub id: String,
    /// Client node id.
    pub from: String,
    /// Server node id.
    pub to: String,
    pub proto: Proto,
    pub server_port: u16,
    /// How many connections (client sockets) the edge stands for.
    pub count: u32,
    /// Connection count per socket state.
    #[serde(default)]
    pub states: BTreeMap<String, u32>,
    /// Up to [`EDGE_SOCKET_SAMPLE`] of the connections, for tooltips.
    #[serde(default)]
    pub sockets: Vec<EdgeSocket>,
    /// Cumulative bytes the client sent to the server, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub tx_bytes: Option<u64>,
    /// Cumulative bytes the client received from the server, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub rx_bytes: Option<u64>,
    /// Client → server bytes per second over the last interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_rate: Option<f64>,
    /// Server → client bytes per second over the last interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_rate: Option<f64>,
    /// The largest smoothed RTT (ms) of the edge's connections, from the
    /// kernel; the max, not the mean, so one slow path is not averaged
    /// away. TCP only, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Segments retransmitted over the life of the edge's open
    /// connections, both directions summed (loss on the path). TCP only,
    /// when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub retransmits: Option<u64>,
}

/// How many connections an edge lists in `sockets`.
pub const EDGE_SOCKET_SAMPLE: usize = 16;

/// One SSE update: what changed between the graph at `base` and at `seq`.
/// A client whose last applied seq is not `base` must re-sync from
/// `/api/graph` (or the next full `graph` event).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(rename_all = "camelCase")]
pub struct GraphDiff {
    #[ts(type = "number")]
    pub seq: u64,
    #[ts(type = "number")]
    pub base: u64,
    pub timestamp: String,
    pub added_nodes: Vec<Node>,
    pub updated_nodes: Vec<Node>,
    pub removed_nodes: Vec<String>,
    pub added_edges: Vec<Edge>,
    pub updated_edges: Vec<Edge>,
    pub removed_edges: Vec<String>,
    /// [`GraphDoc::p2p_hidden_edges`] at `seq`, present only when it
    /// changed since `base`.
    #[serde(
        rename = "p2pHiddenEdges",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub p2p_hidden_edges: Option<u32>,
}

impl GraphDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added_nodes.is_empty()
            && self.updated_nodes.is_empty()
            && self.removed_nodes.is_empty()
            && self.added_edges.is_empty()
            && self.updated_edges.is_empty()
            && self.removed_edges.is_empty()
            && self.p2p_hidden_edges.is_none()
    }
}

/// `GET /api/connections` (psys's shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
pub struct ConnectionsDoc {
    pub listeners: Vec<Listener>,
    pub connections: Vec<Connection>,
}

/// A listening socket (psys `Listener`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Owner pid; 0 when the owner cannot be seen.
    pub pid: u32,
    /// Owner name; `?` when the owner cannot be seen.
    pub process_name: String,
    /// What procnet calls this listener everywhere (table, diagram, and
    /// the graph node's `label`): the rule label, else the process name;
    /// for an unseen owner the `serviceLabel`. One name per process, so a
    /// listener and the targets that reach it can be matched by eye.
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_icon_type: Option<String>,
    pub address: String,
    pub address_description: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    pub proto: Proto,
    /// Every pid holding the socket (several after `fork`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<_>")]
    pub pids: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<UnknownReason>,
}

/// Which end of a connection a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Server,
}

/// A connected socket of a local process, seen from that process (psys
/// `Connection`: `from` is the local end, `to` the remote end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub from_pid: u32,
    pub from_process_name: String,
    pub from_address: String,
    pub from_port: u16,
    pub to_address: String,
    pub to_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_label: Option<String>,
    /// The remote address's name from reverse DNS, when one was found
    /// (absent with `--no-dns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_host_name: Option<String>,
    pub proto: Proto,
    pub state: String,
    /// Whether the `from` end is the `client` (an outgoing connection) or
    /// the `server` (a connection accepted on one of its listeners).
    pub role: Role,
    /// The local process at the remote end, when it is on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_pid: Option<u32>,
    /// That process's label, the same as its graph node's and its
    /// listeners' `label` (`toLabel` keeps psys's meaning: container, else
    /// well-known service, else process name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_process_label: Option<String>,
    /// Traffic of this connection as seen by the client, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub tx_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub rx_bytes: Option<u64>,
    /// This socket's smoothed RTT in milliseconds, from the kernel (TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Segments this socket retransmitted over its life (TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<f64>")]
    pub retransmits: Option<u64>,
}
