//! Snapshot → `/api/graph` and `/api/connections`. Pure and deterministic:
//! the same snapshot, rules and options always give the same documents,
//! with nodes and edges sorted by id.

use crate::graph::direction::{decide, Direction, ServerSide};
use crate::graph::labels::{address_description, icon_type, rfc3339, self_label, truncate_chars};
use crate::graph::model::{
    Connection, ConnectionsDoc, Edge, EdgeSocket, GraphDoc, ListenAddr, Listener, Node, NodeKind,
    Role, EDGE_SOCKET_SAMPLE,
};
use crate::graph::pairing::{is_connection, is_listener, SocketIndex};
use crate::graph::ports::{service_name, ServicePorts};
use crate::graph::redact::redact_cmdline;
use crate::graph::services::{service_heads, service_id};
use crate::graph::traffic::{credited_owner, process_names, TrafficSample};
use crate::rules::{ProcessFacts, RuleSet};
use crate::snapshot::{
    canonical_addr, Process, Proto, Snapshot, Socket, SocketChanges, SocketList, UnknownReason,
};
use rustc_hash::{FxHashMap, FxHashSet};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

/// How a snapshot is turned into views (the `snapshot`/`serve` flags).
#[derive(Debug, Clone, Default)]
pub struct GraphOptions {
    /// Include UDP sockets (`--udp`); only those with a remote address
    /// become edges.
    pub udp: bool,
    /// Only process-to-process edges (`--p2p-only`).
    pub p2p_only: bool,
    /// Ports that mark the server end (built-ins plus `--svc-ports`).
    pub service_ports: ServicePorts,
    /// Show command lines unredacted (`--show-secrets`).
    pub show_secrets: bool,
}

/// Container facts from the container engine, keyed for label lookups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerLabels {
    /// Host ports published by a container → the container's name.
    pub published: HashMap<(Proto, u16), String>,
    /// Container id → name.
    pub names: HashMap<String, String>,
}

impl ContainerLabels {
    /// The name of container `id` (full or prefix), else its short id.
    pub fn name_of(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.chars().take(12).collect())
    }
}

/// Everything the builders read, bundled once.
pub struct Inputs<'a> {
    pub snapshot: &'a Snapshot,
    pub rules: &'a RuleSet,
    pub options: &'a GraphOptions,
    pub containers: &'a ContainerLabels,
    /// Per-socket byte deltas since the previous sample, for rates (the
    /// live server has them; a one-off snapshot does not).
    pub traffic: Option<&'a TrafficSample>,
}

/// A graph node before it has a string id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum NodeRef {
    Pid(u32),
    External(IpAddr),
    /// Unowned sockets by reason (and, for `permission`, the socket's uid).
    Unknown(UnknownReason, Option<u32>),
}

impl NodeRef {
    fn id(&self) -> String {
        match self {
            NodeRef::Pid(pid) => format!("pid:{pid}"),
            NodeRef::External(ip) => format!("ext:{ip}"),
            NodeRef::Unknown(reason, Some(uid)) => format!("unknown:{}:uid{uid}", reason.as_str()),
            NodeRef::Unknown(reason, None) => format!("unknown:{}", reason.as_str()),
        }
    }

    fn is_external(&self) -> bool {
        matches!(self, NodeRef::External(_))
    }

    fn is_unknown(&self) -> bool {
        matches!(self, NodeRef::Unknown(..))
    }
}

/// The owners of a socket as node refs; an unowned socket gets an
/// `unknown` node that says why, never silence.
fn owner_refs(s: &Socket) -> Vec<NodeRef> {
    if s.owners.is_empty() {
        let reason = s.unowned_reason.unwrap_or(UnknownReason::Unknown);
        let uid = if reason == UnknownReason::Permission {
            s.uid
        } else {
            None
        };
        vec![NodeRef::Unknown(reason, uid)]
    } else {
        s.owners.iter().map(|&p| NodeRef::Pid(p)).collect()
    }
}

/// The owners of the server end of a connection: a socket without a
/// visible owner (e.g. one the kernel reported closed) that sits on a
/// listening address belongs to the listener's owners, who accepted it.
/// One still in the accept queue (`pending`) is the listener's whoever
/// that is, so it joins the listener's node even when that is unknown.
fn server_refs(index: &SocketIndex<'_>, sockets: &SocketList, i: usize) -> Vec<NodeRef> {
    let s = &sockets[i];
    if s.owners.is_empty() {
        if let Some(l) = index.listener_for(s.proto, s.local) {
            if !sockets[l].owners.is_empty() || s.unowned_reason == Some(UnknownReason::Pending) {
                return owner_refs(&sockets[l]);
            }
        }
    }
    owner_refs(s)
}

/// Why a connection's local peer could not be found: on loopback the peer
/// must be in this namespace, so it has gone; on another local address it
/// may live in another network namespace (a container's bridge).
fn missing_peer(remote: IpAddr) -> NodeRef {
    let reason = if remote.is_loopback() {
        UnknownReason::Exited
    } else {
        UnknownReason::Netns
    };
    NodeRef::Unknown(reason, None)
}

/// One connected socket, resolved: who is client and who is server.
struct Resolved {
    clients: Vec<NodeRef>,
    servers: Vec<NodeRef>,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    /// The socket's local end is the client.
    local_is_client: bool,
    /// The other end's socket, when it is on this host (its own
    /// retransmissions are the other direction's).
    peer: Option<usize>,
}

/// Where a connected socket's other end is, and which end serves.
struct Located {
    remote: SocketAddr,
    /// The socket at the other end, when it is on this host.
    peer: Option<usize>,
    remote_is_local: bool,
    /// The peer, else the listener the remote address reaches.
    remote_socket: Option<usize>,
    dir: Direction,
}

/// Finds the other end of connected socket `i` and decides the direction
/// (the one place both views take it from).
fn locate(
    index: &SocketIndex<'_>,
    sockets: &SocketList,
    i: usize,
    ports: &ServicePorts,
) -> Option<Located> {
    let s = &sockets[i];
    let remote = s.remote?;
    let peer = index.peer(i);
    let remote_is_local = peer.is_some() || index.is_local_ip(remote.ip());
    let local_listens = index.listener_for(s.proto, s.local).is_some();
    let remote_listener = remote_is_local
        .then(|| index.listener_for(s.proto, remote))
        .flatten();
    let dir = decide(
        s.local,
        remote,
        local_listens,
        remote_listener.is_some(),
        ports,
    );
    Some(Located {
        remote,
        peer,
        remote_is_local,
        remote_socket: peer.or(remote_listener),
        dir,
    })
}

/// Resolves socket `i`. Returns `None` when the socket is the server end
/// of a local pair (its peer, the client end, stands for the connection).
fn resolve(
    index: &SocketIndex<'_>,
    sockets: &SocketList,
    i: usize,
    ports: &ServicePorts,
) -> Option<Resolved> {
    let s = &sockets[i];
    let Located {
        remote,
        peer,
        remote_is_local,
        remote_socket,
        dir,
    } = locate(index, sockets, i, ports)?;
    let remote_refs = || match remote_socket {
        Some(j) if dir.server == ServerSide::Remote => server_refs(index, sockets, j),
        Some(j) => owner_refs(&sockets[j]),
        None if remote_is_local => vec![missing_peer(remote.ip())],
        None => vec![NodeRef::External(remote.ip())],
    };
    match dir.server {
        ServerSide::Remote => Some(Resolved {
            clients: owner_refs(s),
            servers: remote_refs(),
            client_addr: s.local,
            server_addr: remote,
            local_is_client: true,
            peer,
        }),
        ServerSide::Local if peer.is_some() => None,
        ServerSide::Local => Some(Resolved {
            clients: remote_refs(),
            servers: server_refs(index, sockets, i),
            client_addr: remote,
            server_addr: s.local,
            local_is_client: false,
            peer,
        }),
    }
}

fn wanted(s: &Socket, options: &GraphOptions) -> bool {
    s.proto == Proto::Tcp || options.udp
}

#[derive(Default)]
struct EdgeAcc {
    count: u32,
    states: BTreeMap<String, u32>,
    sockets: BTreeSet<EdgeSocket>,
    tx: Option<u64>,
    rx: Option<u64>,
    /// Bytes since the previous sample, client → server and back.
    tx_delta: Option<u64>,
    rx_delta: Option<u64>,
    /// Largest smoothed RTT (µs) and summed retransmissions.
    rtt_us: Option<u32>,
    retransmits: Option<u64>,
}

impl EdgeAcc {
    /// Adds the numbers of one planned socket of the edge (a patch).
    fn add(&mut self, a: &EdgeAdd, snap: &Snapshot, traffic: Option<&TrafficSample>) {
        let i = a.socket as usize;
        let s = &snap.sockets[i];
        let (tx, rx) = from_client(a.local_is_client, (s.bytes_sent, s.bytes_received));
        let delta = traffic
            .and_then(|t| t.deltas.get(i))
            .map(|d| from_client(a.local_is_client, d));
        let (rtt_us, retransmits) = connection_health(s, a.peer.map(|j| &snap.sockets[j as usize]));
        add_opt(&mut self.tx, tx);
        add_opt(&mut self.rx, rx);
        add_opt(&mut self.tx_delta, delta.map(|d| d.0));
        add_opt(&mut self.rx_delta, delta.map(|d| d.1));
        add_opt(&mut self.retransmits, retransmits);
        self.rtt_us = self.rtt_us.max(rtt_us);
    }
}

/// One connection's health for its edge: the larger smoothed RTT of its
/// two ends (both measure the same path) and the retransmissions of both
/// (each end counts the segments it sent again). A peer on this host
/// without health (e.g. not read yet) adds nothing.
fn connection_health(s: &Socket, peer: Option<&Socket>) -> (Option<u32>, Option<u64>) {
    let ends = [s.tcp_health, peer.and_then(|p| p.tcp_health)];
    let rtt = ends.iter().flatten().filter_map(|h| h.rtt_us).max();
    let retransmits = ends
        .iter()
        .flatten()
        .map(|h| u64::from(h.retransmits))
        .reduce(|a, b| a + b);
    (rtt, retransmits)
}

/// Microseconds as milliseconds, to the microsecond.
fn rtt_ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

fn add_opt(acc: &mut Option<u64>, v: Option<u64>) {
    if let Some(v) = v {
        *acc = Some(acc.unwrap_or(0).saturating_add(v));
    }
}

/// The process facts the rules see.
fn facts<'p>(p: &'p Process, cmdline: &'p str) -> ProcessFacts<'p> {
    ProcessFacts {
        pid: p.pid,
        name: &p.name,
        cmdline,
    }
}

/// The snapshot with every IPv4-mapped address (`::ffff:a.b.c.d`) written
/// as IPv4, so both ends of a dual-stack connection pair up. Collectors
/// already do this; a recorded or foreign snapshot may not have, and the
/// check is one cheap pass when nothing needs changing.
fn canonical(snap: &Snapshot) -> Cow<'_, Snapshot> {
    let mapped = |a: &SocketAddr| canonical_addr(*a) != *a;
    if !snap
        .sockets
        .iter()
        .any(|s| mapped(&s.local) || s.remote.as_ref().is_some_and(mapped))
    {
        return Cow::Borrowed(snap);
    }
    let mut owned = snap.clone();
    for i in 0..owned.sockets.len() {
        // Only the mapped ones: the others' chunks stay shared.
        owned.sockets.update_if(
            i,
            |s| mapped(&s.local) || s.remote.as_ref().is_some_and(mapped),
            |s| {
                s.local = canonical_addr(s.local);
                s.remote = s.remote.map(canonical_addr);
            },
        );
    }
    Cow::Owned(owned)
}

/// Builds `/api/graph` for one snapshot.
pub fn build_graph(inputs: &Inputs<'_>, seq: u64) -> GraphDoc {
    build_graph_planned(inputs, seq).0
}

/// What a full build learned about how a snapshot's sockets map to its
/// graph, kept so that the next sample with the same sockets (only their
/// counters moved: the steady state, and all a kernel-event-fed sample of
/// 1,000 busy connections among 100k changes) patches the numbers of the
/// last graph instead of pairing every socket again ([`patch_graph`]).
#[derive(Debug, Default)]
pub struct GraphPlan {
    /// A hash of each socket's identity, state and owners, by index: equal
    /// hashes mean the same sockets in the same order.
    shape: Vec<u64>,
    /// The processes the nodes were made from.
    processes: Vec<Process>,
    /// Every socket's contribution to an edge of the graph.
    adds: Vec<EdgeAdd>,
    /// Process nodes, to set their traffic on: (pid, node index).
    pid_nodes: Vec<(u32, u32)>,
    /// Who depends on which socket, for a patch of changed sockets only;
    /// made by the first such patch (a sample that opens or closes
    /// sockets never needs it).
    reach: std::sync::OnceLock<Reach>,
}

/// Grouped lists (offsets into one vector each) that tell what a change
/// of one socket's counters reaches, so [`patch_changed`] redoes only the
/// edges and process nodes of the changed sockets.
#[derive(Debug, Default)]
struct Reach {
    /// Per socket: the edges it adds to (as the socket or as its peer).
    socket_edges: Grouped,
    /// Per edge: its entries of `GraphPlan::adds`.
    edge_adds: Grouped,
    /// Per edge: whether a socket of it has counters (so its rates are
    /// zero, not unknown, when none of them moved).
    edge_counted: Vec<bool>,
    /// Per entry of `GraphPlan::pid_nodes`: the sockets with counters
    /// that pid holds.
    pid_sockets: Grouped,
}

/// Lists of u32 by a dense key: the items of key `k` are
/// `items[start[k]..start[k + 1]]`.
#[derive(Debug, Default)]
struct Grouped {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Grouped {
    /// From (key, item) pairs, keys below `keys`.
    fn of(keys: usize, mut pairs: Vec<(u32, u32)>) -> Grouped {
        pairs.sort_unstable();
        pairs.dedup();
        let mut start = Vec::with_capacity(keys + 1);
        let mut at = 0;
        for k in 0..keys as u32 {
            start.push(at as u32);
            while at < pairs.len() && pairs[at].0 == k {
                at += 1;
            }
        }
        start.push(at as u32);
        Grouped {
            start,
            items: pairs.into_iter().map(|(_, v)| v).collect(),
        }
    }

    fn get(&self, k: usize) -> &[u32] {
        match (self.start.get(k), self.start.get(k + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// An edge before it has a string id: (from, to, proto, server port).
type EdgeKey = (NodeRef, NodeRef, Proto, u16);

/// Socket `socket` adds its counters to edge `edge`.
#[derive(Debug, Clone, Copy)]
struct EdgeAdd {
    socket: u32,
    edge: u32,
    local_is_client: bool,
    /// Its peer socket on this host (for the connection's health).
    peer: Option<u32>,
}

/// The hash of what decides where a socket sits in the graph (all but
/// its counters and health; whether it has counters is in).
fn shape_of(s: &Socket) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    (
        s.proto, s.local, s.remote, s.state, s.closed, s.inode, s.uid,
    )
        .hash(&mut h);
    (&s.owners, s.unowned_reason, s.io_holder()).hash(&mut h);
    (s.bytes_sent.is_some(), s.bytes_received.is_some()).hash(&mut h);
    h.finish()
}

/// The graph of `inputs` from `prev` (built, with `plan`, from a snapshot
/// with the same sockets, processes, rules, options and containers — the
/// caller knows the last three): the same document a full build gives,
/// with only edges' and nodes' counters, rates and health recomputed, in
/// one pass over the sockets without pairing or hashing them. `None` when
/// the sockets or processes differ: then build in full.
pub fn patch_graph(
    prev: &GraphDoc,
    plan: &GraphPlan,
    inputs: &Inputs<'_>,
    seq: u64,
) -> Option<GraphDoc> {
    let snap = inputs.snapshot;
    if snap.sockets.len() != plan.shape.len()
        || snap.processes != plan.processes
        || prev.edges.len()
            < plan
                .adds
                .iter()
                .map(|a| a.edge as usize + 1)
                .max()
                .unwrap_or(0)
    {
        return None;
    }
    if snap
        .sockets
        .iter()
        .zip(&plan.shape)
        .any(|(s, &h)| shape_of(s) != h)
    {
        return None;
    }
    let mut acc: Vec<EdgeAcc> = (0..prev.edges.len()).map(|_| EdgeAcc::default()).collect();
    for a in &plan.adds {
        acc[a.edge as usize].add(a, snap, inputs.traffic);
    }
    let rate = |d: Option<u64>| d.and_then(|d| inputs.traffic?.rate(d));
    let mut graph = prev.clone();
    for (edge, a) in graph.edges.iter_mut().zip(acc) {
        edge.tx_bytes = a.tx;
        edge.rx_bytes = a.rx;
        edge.tx_rate = rate(a.tx_delta);
        edge.rx_rate = rate(a.rx_delta);
        edge.rtt_ms = a.rtt_us.map(rtt_ms);
        edge.retransmits = a.retransmits;
    }
    let traffic = process_traffic(snap, inputs.traffic);
    for &(pid, at) in &plan.pid_nodes {
        let node = &mut graph.nodes[at as usize];
        let t = traffic.get(&pid);
        node.rx_bytes = t.and_then(|t| t.received);
        node.tx_bytes = t.and_then(|t| t.sent);
        node.rx_rate = rate(t.and_then(|t| t.received_delta));
        node.tx_rate = rate(t.and_then(|t| t.sent_delta));
    }
    graph.seq = seq;
    graph.timestamp = rfc3339(snap.taken_at_ms);
    Some(graph)
}

/// [`patch_graph`] for a sample that says which sockets changed (see
/// [`SocketChanges`]): only the edges and process nodes those sockets
/// reach are added up again; every other edge and node keeps its numbers,
/// with a rate of zero. The same document a full build gives; `None` when
/// the sample cannot be patched that way (then [`patch_graph`]).
pub fn patch_changed(
    prev: &GraphDoc,
    plan: &GraphPlan,
    inputs: &Inputs<'_>,
    seq: u64,
    changes: &SocketChanges,
) -> Option<GraphDoc> {
    let snap = inputs.snapshot;
    // Unchanged sockets have a delta of zero exactly when they have
    // counters and this is not the traffic tracker's first sample.
    let known_deltas = inputs
        .traffic
        .is_some_and(|t| t.interval_secs.is_some() && t.deltas.len() == snap.sockets.len());
    if !known_deltas || snap.sockets.len() != plan.shape.len() || snap.processes != plan.processes {
        return None;
    }
    for &i in &changes.changed {
        let s = snap.sockets.get(i as usize)?;
        if shape_of(s) != plan.shape[i as usize] {
            return None;
        }
    }
    // The same shapes as the build's snapshot (the unchanged sockets are
    // the last sample's), so the same reach as from it.
    let reach = plan
        .reach
        .get_or_init(|| Reach::of(snap, &plan.adds, prev.edges.len(), &plan.pid_nodes));
    if reach.edge_counted.len() != prev.edges.len() {
        return None;
    }
    let rate = |d: Option<u64>| d.and_then(|d| inputs.traffic?.rate(d));
    let delta_of = |i: usize| inputs.traffic.and_then(|t| t.deltas.get(i));
    let mut graph = prev.clone();
    // Nothing of theirs moved: the same bytes, at a rate of zero.
    for (edge, &counted) in graph.edges.iter_mut().zip(&reach.edge_counted) {
        let zero = rate(counted.then_some(0));
        edge.tx_rate = zero;
        edge.rx_rate = zero;
    }
    let mut edges: Vec<u32> = changes
        .changed
        .iter()
        .flat_map(|&i| reach.socket_edges.get(i as usize).iter().copied())
        .collect();
    edges.sort_unstable();
    edges.dedup();
    for &k in &edges {
        let mut e = EdgeAcc::default();
        for &a in reach.edge_adds.get(k as usize) {
            e.add(&plan.adds[a as usize], snap, inputs.traffic);
        }
        let edge = graph.edges.get_mut(k as usize)?;
        edge.tx_bytes = e.tx;
        edge.rx_bytes = e.rx;
        edge.tx_rate = rate(e.tx_delta);
        edge.rx_rate = rate(e.rx_delta);
        edge.rtt_ms = e.rtt_us.map(rtt_ms);
        edge.retransmits = e.retransmits;
    }
    let moved: FxHashSet<u32> = changes
        .changed
        .iter()
        .flat_map(|&i| snap.sockets[i as usize].owners.iter().copied())
        .collect();
    for (k, &(pid, at)) in plan.pid_nodes.iter().enumerate() {
        let node = graph.nodes.get_mut(at as usize)?;
        let sockets = reach.pid_sockets.get(k);
        if !moved.contains(&pid) {
            let zero = rate((!sockets.is_empty()).then_some(0));
            node.rx_rate = zero;
            node.tx_rate = zero;
            continue;
        }
        let mut t = ProcessBytes::default();
        for &i in sockets {
            let s = &snap.sockets[i as usize];
            let delta = delta_of(i as usize);
            add_opt(&mut t.received, s.bytes_received);
            add_opt(&mut t.sent, s.bytes_sent);
            add_opt(&mut t.received_delta, delta.map(|d| d.1));
            add_opt(&mut t.sent_delta, delta.map(|d| d.0));
        }
        node.rx_bytes = t.received;
        node.tx_bytes = t.sent;
        node.rx_rate = rate(t.received_delta);
        node.tx_rate = rate(t.sent_delta);
    }
    graph.seq = seq;
    graph.timestamp = rfc3339(snap.taken_at_ms);
    Some(graph)
}

/// [`build_graph`], and the plan that lets the next sample patch it.
pub fn build_graph_planned(inputs: &Inputs<'_>, seq: u64) -> (GraphDoc, GraphPlan) {
    let snap = &*canonical(inputs.snapshot);
    // Sized for one entry a socket (the usual count): grown by doubling it
    // held up to twice that at 100k sockets. Each entry names its edge by
    // the order the edge was first met in, renumbered once the edges are
    // sorted (holding the edge's key instead was 60 bytes a socket, 6 MB at
    // 100k, alive during the build).
    let mut adds: Vec<EdgeAdd> = Vec::with_capacity(snap.sockets.len());
    let opts = inputs.options;
    let index = SocketIndex::new(snap);
    let mut edges: FxHashMap<EdgeKey, (u32, EdgeAcc)> = FxHashMap::default();
    let mut listeners: BTreeMap<NodeRef, BTreeSet<ListenAddr>> = BTreeMap::new();
    let mut nodes: BTreeSet<NodeRef> = BTreeSet::new();
    // --p2p-only: the edges to unknown owners left out, counted once each.
    let mut p2p_hidden: FxHashSet<(NodeRef, NodeRef, Proto, u16)> = FxHashSet::default();

    for (i, s) in snap.sockets.iter().enumerate() {
        if !wanted(s, opts) {
            continue;
        }
        if is_listener(s) {
            for owner in owner_refs(s) {
                nodes.insert(owner);
                listeners.entry(owner).or_default().insert(ListenAddr {
                    proto: s.proto,
                    address: s.local.ip().to_string(),
                    port: s.local.port(),
                });
            }
            continue;
        }
        if !is_connection(s) {
            continue;
        }
        let Some(r) = resolve(&index, &snap.sockets, i, &opts.service_ports) else {
            continue;
        };
        // --p2p-only, as Procnet Live: pid↔pid edges only. External ends
        // are left out; unknown owners too, but counted (`p2pHiddenEdges`).
        if opts.p2p_only {
            let mut ends = r.clients.iter().chain(&r.servers);
            if ends.clone().any(NodeRef::is_external) {
                continue;
            }
            if ends.any(NodeRef::is_unknown) {
                for &from in &r.clients {
                    for &to in &r.servers {
                        p2p_hidden.insert((from, to, s.proto, r.server_addr.port()));
                    }
                }
                continue;
            }
        }
        // Traffic seen from the client: what it sent is tx.
        let (tx, rx) = from_client(r.local_is_client, (s.bytes_sent, s.bytes_received));
        let delta = inputs
            .traffic
            .and_then(|t| t.deltas.get(i))
            .map(|d| from_client(r.local_is_client, d));
        let state = s.state.as_str();
        let (rtt_us, retransmits) = connection_health(s, r.peer.map(|j| &snap.sockets[j]));
        for &from in &r.clients {
            for &to in &r.servers {
                nodes.insert(from);
                nodes.insert(to);
                let key = (from, to, s.proto, r.server_addr.port());
                let first_met = edges.len() as u32;
                let (edge, acc) = edges
                    .entry(key)
                    .or_insert_with(|| (first_met, EdgeAcc::default()));
                adds.push(EdgeAdd {
                    socket: i as u32,
                    edge: *edge,
                    local_is_client: r.local_is_client,
                    peer: r.peer.map(|j| j as u32),
                });
                acc.count += 1;
                match acc.states.get_mut(state) {
                    Some(n) => *n += 1,
                    None => {
                        acc.states.insert(state.to_string(), 1);
                    }
                }
                // Strings only for the few connections a tooltip shows.
                if acc.sockets.len() < EDGE_SOCKET_SAMPLE {
                    acc.sockets.insert(EdgeSocket {
                        client: r.client_addr.to_string(),
                        server: r.server_addr.to_string(),
                        state: state.to_string(),
                    });
                }
                add_opt(&mut acc.tx, tx);
                add_opt(&mut acc.rx, rx);
                add_opt(&mut acc.tx_delta, delta.map(|d| d.0));
                add_opt(&mut acc.rx_delta, delta.map(|d| d.1));
                add_opt(&mut acc.retransmits, retransmits);
                acc.rtt_us = acc.rtt_us.max(rtt_us);
            }
        }
    }

    let traffic = process_traffic(snap, inputs.traffic);
    let processes: HashMap<u32, &Process> = snap.processes.iter().map(|p| (p.pid, p)).collect();
    let heads = service_heads(&snap.processes);
    let mut node_list: Vec<Node> = nodes
        .iter()
        .map(|r| {
            let mut node = make_node(r, &processes, inputs);
            if let NodeRef::Pid(pid) = r {
                node.service = heads.get(pid).map(|&h| service_id(h));
            }
            if let Some(l) = listeners.remove(r) {
                node.listeners = l.into_iter().collect();
            }
            if let NodeRef::Pid(pid) = r {
                if let Some(t) = traffic.get(pid) {
                    node.shared_sockets = (t.shared > 0).then_some(t.shared);
                    node.rx_bytes = t.received;
                    node.tx_bytes = t.sent;
                    let rate = |d: Option<u64>| d.and_then(|d| inputs.traffic?.rate(d));
                    node.rx_rate = rate(t.received_delta);
                    node.tx_rate = rate(t.sent_delta);
                }
            }
            node
        })
        .collect();
    node_list.sort_by(|a, b| a.id.cmp(&b.id));

    let mut keyed: Vec<(u32, Edge)> = edges
        .into_iter()
        .map(|(key, (first_met, acc))| {
            let (from, to, proto, port) = key;
            let (from, to) = (from.id(), to.id());
            let edge = Edge {
                id: format!("{}:{from}->{to}:{port}", proto.as_str()),
                from,
                to,
                proto,
                server_port: port,
                count: acc.count,
                states: acc.states,
                sockets: acc.sockets.into_iter().collect(),
                tx_bytes: acc.tx,
                rx_bytes: acc.rx,
                tx_rate: acc.tx_delta.and_then(|d| inputs.traffic?.rate(d)),
                rx_rate: acc.rx_delta.and_then(|d| inputs.traffic?.rate(d)),
                rtt_ms: acc.rtt_us.map(rtt_ms),
                retransmits: acc.retransmits,
            };
            (first_met, edge)
        })
        .collect();
    keyed.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    // Where each edge, by the order it was first met in, ended up.
    let mut edge_at = vec![0u32; keyed.len()];
    for (k, (first_met, _)) in keyed.iter().enumerate() {
        edge_at[*first_met as usize] = k as u32;
    }
    let edge_list: Vec<Edge> = keyed.into_iter().map(|(_, e)| e).collect();
    for a in &mut adds {
        a.edge = edge_at[a.edge as usize];
    }
    let pid_nodes: Vec<(u32, u32)> = node_list
        .iter()
        .enumerate()
        .filter_map(|(k, n)| Some((n.id.strip_prefix("pid:")?.parse().ok()?, k as u32)))
        .collect();
    let plan = GraphPlan {
        shape: inputs.snapshot.sockets.iter().map(shape_of).collect(),
        processes: snap.processes.clone(),
        adds,
        pid_nodes,
        reach: std::sync::OnceLock::new(),
    };

    let graph = GraphDoc {
        seq,
        timestamp: rfc3339(snap.taken_at_ms),
        nodes: node_list,
        edges: edge_list,
        p2p_hidden_edges: opts
            .p2p_only
            .then(|| u32::try_from(p2p_hidden.len()).unwrap_or(u32::MAX)),
    };
    (graph, plan)
}

impl Reach {
    fn of(snap: &Snapshot, adds: &[EdgeAdd], edges: usize, pid_nodes: &[(u32, u32)]) -> Reach {
        let counted = |s: &Socket| s.bytes_sent.is_some() || s.bytes_received.is_some();
        let mut socket_edges = Vec::with_capacity(adds.len() * 2);
        let mut edge_adds = Vec::with_capacity(adds.len());
        let mut edge_counted = vec![false; edges];
        for (k, a) in adds.iter().enumerate() {
            socket_edges.push((a.socket, a.edge));
            if let Some(p) = a.peer {
                socket_edges.push((p, a.edge));
            }
            edge_adds.push((a.edge, k as u32));
            if snap.sockets.get(a.socket as usize).is_some_and(counted) {
                edge_counted[a.edge as usize] = true;
            }
        }
        let pid_at: FxHashMap<u32, u32> = pid_nodes
            .iter()
            .enumerate()
            .map(|(k, &(pid, _))| (pid, k as u32))
            .collect();
        // Each socket under the one process its bytes count for (the plan's
        // shapes fix owners and processes, so this holds while it does).
        let mut pid_sockets = Vec::new();
        let mut procs = None;
        for (i, s) in snap.sockets.iter().enumerate().filter(|(_, s)| counted(s)) {
            let pid = if s.owners.len() > 1 {
                let procs = procs.get_or_insert_with(|| process_names(snap));
                credited(s, procs)
            } else {
                s.owners.first().copied()
            };
            if let Some(&k) = pid.as_ref().and_then(|pid| pid_at.get(pid)) {
                pid_sockets.push((k, i as u32));
            }
        }
        Reach {
            socket_edges: Grouped::of(snap.sockets.len(), socket_edges),
            edge_adds: Grouped::of(edges, edge_adds),
            edge_counted,
            pid_sockets: Grouped::of(pid_nodes.len(), pid_sockets),
        }
    }
}

/// A process's traffic over its open sockets.
#[derive(Default)]
struct ProcessBytes {
    received: Option<u64>,
    sent: Option<u64>,
    received_delta: Option<u64>,
    sent_delta: Option<u64>,
    /// Connections it holds with other processes.
    shared: u32,
}

/// The processes whose nodes a socket's bytes count on: its one credited
/// holder (the rule `/api/traffic` follows, [`credited_owner`]).
fn credited(
    s: &Socket,
    procs: &std::collections::HashMap<u32, (Option<u64>, &str)>,
) -> Option<u32> {
    credited_owner(&s.owners, s.io_owner, procs)
}

/// Per pid: bytes over all its sockets (`None` when no socket of it has a
/// known counter) and since the previous sample.
fn process_traffic(
    snap: &Snapshot,
    traffic: Option<&TrafficSample>,
) -> FxHashMap<u32, ProcessBytes> {
    let mut out: FxHashMap<u32, ProcessBytes> = FxHashMap::default();
    let mut procs = None;
    for (i, s) in snap.sockets.iter().enumerate() {
        let shared = s.owners.len() > 1;
        if shared && is_connection(s) {
            for &pid in &s.owners {
                out.entry(pid).or_default().shared += 1;
            }
        }
        if s.bytes_received.is_none() && s.bytes_sent.is_none() {
            continue;
        }
        let pid = if shared {
            let procs = procs.get_or_insert_with(|| process_names(snap));
            credited(s, procs)
        } else {
            s.owners.first().copied()
        };
        let Some(pid) = pid else { continue };
        let delta = traffic.and_then(|t| t.deltas.get(i));
        let e = out.entry(pid).or_default();
        add_opt(&mut e.received, s.bytes_received);
        add_opt(&mut e.sent, s.bytes_sent);
        add_opt(&mut e.received_delta, delta.map(|d| d.1));
        add_opt(&mut e.sent_delta, delta.map(|d| d.0));
    }
    out
}

/// The command line as shown: joined, redacted unless `--show-secrets`.
fn shown_cmdline(p: &Process, options: &GraphOptions) -> String {
    if options.show_secrets {
        p.cmdline.join(" ")
    } else {
        redact_cmdline(&p.cmdline)
    }
}

fn make_node(r: &NodeRef, processes: &HashMap<u32, &Process>, inputs: &Inputs<'_>) -> Node {
    match *r {
        NodeRef::Pid(pid) => {
            let Some(p) = processes.get(&pid) else {
                let mut node = Node::bare(r.id(), NodeKind::Process, "app", "?".into());
                node.pid = Some(pid);
                node.name = Some("?".into());
                return node;
            };
            let (node_type, label) = classify(p, inputs.rules);
            let mut node = Node::bare(r.id(), NodeKind::Process, &node_type, label);
            node.pid = Some(pid);
            node.name = Some(p.name.clone());
            node.cmdline = Some(shown_cmdline(p, inputs.options));
            node.start_time = p.start_time;
            node.user = p.user.clone();
            node.uid = p.uid;
            node.ppid = p.ppid;
            node.exe = p.exe.clone();
            node.container = p
                .container_id
                .as_deref()
                .map(|id| inputs.containers.name_of(id));
            node
        }
        NodeRef::External(ip) => {
            let mut node = Node::bare(r.id(), NodeKind::External, "external", ip.to_string());
            node.address = Some(ip.to_string());
            node
        }
        NodeRef::Unknown(reason, uid) => {
            let what = match reason {
                UnknownReason::Permission => "owner not readable",
                UnknownReason::Exited => "closed by its owner",
                UnknownReason::Netns => "another network namespace",
                UnknownReason::Orphan => "held by no process",
                UnknownReason::Pending => "waiting to be accepted",
                UnknownReason::Unknown => "owner not visible",
            };
            let label = match uid {
                Some(uid) => format!("{what} (uid {uid})"),
                None => what.to_string(),
            };
            let mut node = Node::bare(r.id(), NodeKind::Unknown, "unknown", label);
            node.reason = Some(reason);
            node.uid = uid;
            node
        }
    }
}

/// A process's type and its one label (the rule's, else its name): the
/// graph node, its listeners and every connection to it use this label.
/// Rules match the real command line; only the output is redacted.
fn classify(p: &Process, rules: &RuleSet) -> (String, String) {
    let raw = p.cmdline.join(" ");
    let class = rules.classify(facts(p, &raw));
    let label = class
        .label
        .map(str::to_string)
        .unwrap_or_else(|| p.name.clone());
    (class.node_type.to_string(), label)
}

/// The owner shown when a socket has several: the oldest process (the
/// parent that shared it), ties broken by the lower pid.
fn primary_owner<'p>(
    s: &Socket,
    processes: &HashMap<u32, &'p Process>,
) -> Option<(u32, Option<&'p Process>)> {
    s.owners
        .iter()
        .map(|&pid| (pid, processes.get(&pid).copied()))
        .min_by_key(|(pid, p)| (p.and_then(|p| p.start_time).unwrap_or(u64::MAX), *pid))
}

/// Builds `/api/connections` (psys's listeners + connections) for one snapshot.
pub fn build_connections(inputs: &Inputs<'_>) -> ConnectionsDoc {
    let snap = &*canonical(inputs.snapshot);
    let opts = inputs.options;
    let index = SocketIndex::new(snap);
    let processes: HashMap<u32, &Process> = snap.processes.iter().map(|p| (p.pid, p)).collect();
    let mut listeners = Vec::new();
    let mut connections = Vec::new();
    // Labels by pid: the rules run once per process, not per connection.
    let mut labels: HashMap<u32, String> = HashMap::new();
    let mut label_of = |p: &Process| {
        labels
            .entry(p.pid)
            .or_insert_with(|| classify(p, inputs.rules).1)
            .clone()
    };

    for (i, s) in snap.sockets.iter().enumerate() {
        if !wanted(s, opts) {
            continue;
        }
        if is_listener(s) {
            listeners.push(make_listener(s, &processes, inputs, &mut label_of));
            continue;
        }
        if !is_connection(s) {
            continue;
        }
        let Some(Located {
            remote,
            remote_is_local,
            remote_socket,
            dir,
            ..
        }) = locate(&index, &snap.sockets, i, &opts.service_ports)
        else {
            continue;
        };
        if opts.p2p_only && !remote_is_local {
            continue;
        }
        let role = match dir.server {
            ServerSide::Local => Role::Server,
            ServerSide::Remote => Role::Client,
        };
        let remote_owner = remote_socket.and_then(|j| primary_owner(&snap.sockets[j], &processes));
        let to_label = match role {
            Role::Client => to_label(s.proto, remote, remote_is_local, remote_owner, inputs),
            // The remote end is a client on an ephemeral port: naming the
            // service that usually uses that port number would be wrong.
            Role::Server => remote_owner.and_then(|(_, p)| p).map(|p| p.name.clone()),
        };
        let to_process_label = remote_owner.and_then(|(_, p)| p).map(&mut label_of);
        let owners: Vec<(u32, &str)> = if s.owners.is_empty() {
            vec![(0, "?")]
        } else {
            s.owners
                .iter()
                .map(|&pid| (pid, processes.get(&pid).map_or("?", |p| p.name.as_str())))
                .collect()
        };
        for (pid, name) in owners {
            connections.push(Connection {
                from_pid: pid,
                from_process_name: name.to_string(),
                from_address: s.local.ip().to_string(),
                from_port: s.local.port(),
                to_address: remote.ip().to_string(),
                to_port: remote.port(),
                to_label: to_label.clone(),
                to_host_name: None,
                proto: s.proto,
                state: s.state.as_str().to_string(),
                role,
                to_pid: remote_owner.map(|(pid, _)| pid),
                to_process_label: to_process_label.clone(),
                tx_bytes: s.bytes_sent,
                rx_bytes: s.bytes_received,
                rtt_ms: s.tcp_health.and_then(|h| h.rtt_us).map(rtt_ms),
                retransmits: s.tcp_health.map(|h| u64::from(h.retransmits)),
            });
        }
    }
    listeners.sort_by(|a, b| {
        (a.port, a.proto, &a.address, a.pid).cmp(&(b.port, b.proto, &b.address, b.pid))
    });
    connections.sort_by(|a, b| {
        (
            a.from_pid,
            a.from_port,
            &a.from_address,
            &a.to_address,
            a.to_port,
        )
            .cmp(&(
                b.from_pid,
                b.from_port,
                &b.from_address,
                &b.to_address,
                b.to_port,
            ))
    });
    ConnectionsDoc {
        listeners,
        connections,
    }
}

/// psys's resolution order for a connection target: the container that
/// publishes the port, a well-known service, the local process there.
fn to_label(
    proto: Proto,
    remote: SocketAddr,
    remote_is_local: bool,
    remote_owner: Option<(u32, Option<&Process>)>,
    inputs: &Inputs<'_>,
) -> Option<String> {
    if remote_is_local {
        if let Some(name) = inputs.containers.published.get(&(proto, remote.port())) {
            return Some(name.clone());
        }
    }
    if let Some(service) = service_name(remote.port()) {
        return Some(service.to_string());
    }
    remote_owner.and_then(|(_, p)| p).map(|p| p.name.clone())
}

fn make_listener(
    s: &Socket,
    processes: &HashMap<u32, &Process>,
    inputs: &Inputs<'_>,
    label_of: &mut impl FnMut(&Process) -> String,
) -> Listener {
    let port = s.local.port();
    let owner = primary_owner(s, processes);
    let process = owner.and_then(|(_, p)| p);
    let container = inputs
        .containers
        .published
        .get(&(s.proto, port))
        .cloned()
        .or_else(|| {
            process
                .and_then(|p| p.container_id.as_deref())
                .map(|id| inputs.containers.name_of(id))
        });
    let (service_label, icon_type, cmdline) = match process {
        Some(p) => {
            let raw = p.cmdline.join(" ");
            let class = inputs.rules.classify(facts(p, &raw));
            let icon = match class.rule_index {
                Some(_) => class.node_type.to_string(),
                None => icon_type(&p.name, &p.cmdline).to_string(),
            };
            let cmd = truncate_chars(&shown_cmdline(p, inputs.options), 80);
            (
                container
                    .clone()
                    .or_else(|| class.label.map(str::to_string))
                    .or_else(|| self_label(&p.name).map(str::to_string)),
                icon,
                (!cmd.is_empty()).then_some(cmd),
            )
        }
        None => {
            let typical = match service_name(port) {
                Some(name) => format!("{port} (typical: {name})"),
                None => format!("{port} (unknown)"),
            };
            (
                Some(container.clone().unwrap_or(typical)),
                "generic".to_string(),
                None,
            )
        }
    };
    let label = match process {
        Some(p) => label_of(p),
        None => service_label.clone().unwrap_or_else(|| "?".to_string()),
    };
    Listener {
        pid: owner.map_or(0, |(pid, _)| pid),
        process_name: process.map_or_else(|| "?".to_string(), |p| p.name.clone()),
        label,
        service_label,
        container_name: container,
        process_icon_type: Some(icon_type),
        address: s.local.ip().to_string(),
        address_description: address_description(s.local.ip()).to_string(),
        port,
        cmdline,
        proto: s.proto,
        pids: if s.owners.len() > 1 {
            s.owners.to_vec()
        } else {
            Vec::new()
        },
        reason: if s.owners.is_empty() {
            Some(s.unowned_reason.unwrap_or(UnknownReason::Unknown))
        } else {
            None
        },
    }
}

/// A local socket's `(sent, received)` as the `(tx, rx)` of its
/// connection's client: the same numbers, swapped when the local end is
/// the server. Edges count traffic from the client's side.
fn from_client<T>(local_is_client: bool, (sent, received): (T, T)) -> (T, T) {
    if local_is_client {
        (sent, received)
    } else {
        (received, sent)
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;
    use crate::snapshot::{SocketState, TcpHealth};

    fn tcp(
        local: &str,
        remote: Option<&str>,
        state: SocketState,
        owner: u32,
        health: Option<(Option<u32>, u32)>,
    ) -> Socket {
        Socket {
            proto: Proto::Tcp,
            local: local.parse().unwrap(),
            remote: remote.map(|r| r.parse().unwrap()),
            state,
            inode: 1,
            uid: Some(0),
            owners: smallvec::smallvec![owner],
            unowned_reason: None,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: health.map(|(rtt_us, retransmits)| TcpHealth {
                rtt_us,
                retransmits,
            }),
            closed: false,
            io_owner: None,
        }
    }

    /// Two connections pid 1 → pid 2 on :5432 (both ends local, each end
    /// with its own retransmits) and one to an external endpoint.
    fn snapshot() -> Snapshot {
        use SocketState::{Established as E, Listen};
        let proc = |pid, name: &str| Process {
            pid,
            name: name.into(),
            ..Process::default()
        };
        Snapshot {
            local_addresses: vec!["127.0.0.1".parse().unwrap()],
            processes: vec![proc(1, "client"), proc(2, "server")],
            sockets: vec![
                tcp("127.0.0.1:5432", None, Listen, 2, None),
                tcp(
                    "127.0.0.1:40000",
                    Some("127.0.0.1:5432"),
                    E,
                    1,
                    Some((Some(300), 2)),
                ),
                tcp(
                    "127.0.0.1:5432",
                    Some("127.0.0.1:40000"),
                    E,
                    2,
                    Some((Some(900), 1)),
                ),
                tcp(
                    "127.0.0.1:40001",
                    Some("127.0.0.1:5432"),
                    E,
                    1,
                    Some((Some(100), 0)),
                ),
                tcp(
                    "127.0.0.1:5432",
                    Some("127.0.0.1:40001"),
                    E,
                    2,
                    Some((None, 4)),
                ),
                tcp("10.0.0.1:40002", Some("203.0.113.5:443"), E, 1, None),
            ]
            .into(),
            ..Snapshot::default()
        }
    }

    fn inputs<'a>(
        snap: &'a Snapshot,
        rules: &'a RuleSet,
        opts: &'a GraphOptions,
        c: &'a ContainerLabels,
    ) -> Inputs<'a> {
        Inputs {
            snapshot: snap,
            rules,
            options: opts,
            containers: c,
            traffic: None,
        }
    }

    /// A sample whose sockets only moved bytes (and health) gives, patched
    /// from the last graph's plan, exactly the graph a full build gives;
    /// one with a socket more is refused (built in full by the caller).
    #[test]
    fn patching_counters_equals_a_full_build() {
        use crate::graph::traffic::TrafficTracker;
        let (rules, opts, c) = (
            RuleSet::default(),
            GraphOptions::default(),
            ContainerLabels::default(),
        );
        let mut first = snapshot();
        first.taken_at_ms = 1_000;
        for (k, s) in first.sockets.iter_mut().enumerate() {
            s.bytes_sent = Some(100 * k as u64);
            s.bytes_received = Some(10 * k as u64);
        }
        let mut tracker = TrafficTracker::default();
        let t1 = tracker.observe(&first);
        let mut i1 = inputs(&first, &rules, &opts, &c);
        i1.traffic = Some(&t1);
        let (g1, plan) = build_graph_planned(&i1, 1);
        let mut second = first.clone();
        second.taken_at_ms = 2_000;
        for (k, s) in second.sockets.iter_mut().enumerate() {
            s.bytes_sent = s.bytes_sent.map(|b| b + 1_000 * k as u64);
            s.bytes_received = s.bytes_received.map(|b| b + 7 * k as u64);
            if let Some(h) = &mut s.tcp_health {
                h.retransmits += 1;
            }
        }
        let t2 = tracker.observe(&second);
        let mut i2 = inputs(&second, &rules, &opts, &c);
        i2.traffic = Some(&t2);
        let full = build_graph(&i2, 2);
        let patched = patch_graph(&g1, &plan, &i2, 2).expect("same sockets: patched");
        assert_eq!(patched, full);
        assert_ne!(patched, g1, "the numbers moved");
        assert!(full
            .edges
            .iter()
            .any(|e| e.tx_rate.is_some_and(|r| r > 0.0)));
        let mut third = second.clone();
        third.sockets.push(tcp(
            "10.0.0.1:40003",
            Some("203.0.113.5:443"),
            SocketState::Established,
            1,
            None,
        ));
        let i3 = inputs(&third, &rules, &opts, &c);
        assert!(
            patch_graph(&g1, &plan, &i3, 3).is_none(),
            "a new socket: build in full"
        );
        let mut renamed = second.clone();
        renamed.sockets.make_mut(1).owners = smallvec::smallvec![2];
        let i4 = inputs(&renamed, &rules, &opts, &c);
        assert!(
            patch_graph(&g1, &plan, &i4, 3).is_none(),
            "another owner: build in full"
        );
    }

    /// A connection a parent and its forked child both hold counts its
    /// bytes once, on the child (the youngest holder), as `/api/traffic`
    /// does; both nodes say they share one connection. Patched samples
    /// (changed sockets only, or all counters) give the same numbers.
    #[test]
    fn a_shared_socket_counts_once_on_the_youngest_holder() {
        use crate::graph::traffic::TrafficTracker;
        use crate::snapshot::SocketChanges;
        let (rules, opts, c) = (
            RuleSet::default(),
            GraphOptions::default(),
            ContainerLabels::default(),
        );
        let proc = |pid, start| Process {
            pid,
            name: "worker".into(),
            start_time: Some(start),
            ..Process::default()
        };
        let mut shared = tcp(
            "10.0.0.1:40000",
            Some("203.0.113.5:443"),
            SocketState::Established,
            7,
            None,
        );
        shared.owners = smallvec::smallvec![7, 8];
        let mut first = Snapshot {
            taken_at_ms: 1_000,
            local_addresses: vec!["10.0.0.1".parse().unwrap()],
            processes: vec![proc(7, 100), proc(8, 200)],
            sockets: vec![shared].into(),
            ..Snapshot::default()
        };
        first.sockets.make_mut(0).bytes_sent = Some(1_000);
        first.sockets.make_mut(0).bytes_received = Some(50);
        let mut tracker = TrafficTracker::default();
        let t1 = tracker.observe(&first);
        let mut i1 = inputs(&first, &rules, &opts, &c);
        i1.traffic = Some(&t1);
        let (g1, plan) = build_graph_planned(&i1, 1);
        let node = |g: &GraphDoc, id: &str| g.nodes.iter().find(|n| n.id == id).cloned().unwrap();
        let (parent, child) = (node(&g1, "pid:7"), node(&g1, "pid:8"));
        assert_eq!(child.tx_bytes, Some(1_000), "the youngest holder");
        assert_eq!(parent.tx_bytes, None, "not once per holder");
        assert_eq!(
            (parent.shared_sockets, child.shared_sockets),
            (Some(1), Some(1))
        );

        let mut second = first.clone();
        second.taken_at_ms = 2_000;
        second.sockets.make_mut(0).bytes_sent = Some(4_000);
        let t2 = tracker.observe(&second);
        let mut i2 = inputs(&second, &rules, &opts, &c);
        i2.traffic = Some(&t2);
        let full = build_graph(&i2, 2);
        assert_eq!(node(&full, "pid:8").tx_bytes, Some(4_000));
        assert_eq!(node(&full, "pid:8").tx_rate, Some(3_000.0));
        assert_eq!(node(&full, "pid:7").tx_bytes, None);
        let changes = SocketChanges::between(&first, &second).expect("counters only");
        let patched = patch_changed(&g1, &plan, &i2, 2, &changes).expect("patched");
        assert_eq!(patched, full);
        assert_eq!(patch_graph(&g1, &plan, &i2, 2).expect("patched"), full);

        // The kernel event says the parent did the I/O (tier T0): its node
        // gets the bytes, the child's none. Who is credited changed, so
        // neither patch applies; the next counters-only sample patches to
        // what a full build gives.
        let mut third = second.clone();
        third.taken_at_ms = 3_000;
        third.sockets.make_mut(0).io_owner = Some(7);
        third.sockets.make_mut(0).bytes_sent = Some(5_000);
        let t3 = tracker.observe(&third);
        let mut i3 = inputs(&third, &rules, &opts, &c);
        i3.traffic = Some(&t3);
        assert!(SocketChanges::between(&second, &third).is_none());
        assert!(patch_graph(&full, &plan, &i3, 3).is_none());
        let (g3, plan3) = build_graph_planned(&i3, 3);
        assert_eq!(
            node(&g3, "pid:7").tx_bytes,
            Some(5_000),
            "the I/O's process"
        );
        assert_eq!(node(&g3, "pid:8").tx_bytes, None);
        let mut fourth = third.clone();
        fourth.taken_at_ms = 4_000;
        fourth.sockets.make_mut(0).bytes_sent = Some(6_000);
        let t4 = tracker.observe(&fourth);
        let mut i4 = inputs(&fourth, &rules, &opts, &c);
        i4.traffic = Some(&t4);
        let full = build_graph(&i4, 4);
        assert_eq!(node(&full, "pid:7").tx_rate, Some(1_000.0));
        assert_eq!(node(&full, "pid:8").tx_bytes, None);
        let changes = SocketChanges::between(&third, &fourth).expect("counters only");
        assert_eq!(
            patch_changed(&g3, &plan3, &i4, 4, &changes).expect("patched"),
            full
        );
        assert_eq!(patch_graph(&g3, &plan3, &i4, 4).expect("patched"), full);
        // An io_owner that is no holder (stale) leaves the youngest rule.
        let mut stale = fourth.clone();
        stale.sockets.make_mut(0).io_owner = Some(99);
        let mut i5 = inputs(&stale, &rules, &opts, &c);
        i5.traffic = Some(&t4);
        let g5 = build_graph(&i5, 5);
        assert_eq!(node(&g5, "pid:8").tx_bytes, Some(6_000));
    }

    #[test]
    fn edge_health_is_max_rtt_and_summed_retransmits_of_both_ends() {
        let (snap, rules, opts, c) = (
            snapshot(),
            RuleSet::default(),
            GraphOptions::default(),
            ContainerLabels::default(),
        );
        let g = build_graph(&inputs(&snap, &rules, &opts, &c), 1);
        let local = g
            .edges
            .iter()
            .find(|e| e.to == "pid:2")
            .expect("local edge");
        assert_eq!(local.count, 2);
        assert_eq!(local.rtt_ms, Some(0.9));
        assert_eq!(local.retransmits, Some(2 + 1 + 4));
        // No health from the kernel: the fields are left out, not zero.
        let ext = g
            .edges
            .iter()
            .find(|e| e.to == "ext:203.0.113.5")
            .expect("external edge");
        assert_eq!((ext.rtt_ms, ext.retransmits), (None, None));
        let json = serde_json::to_value(local).unwrap();
        assert_eq!(json["rttMs"], 0.9);
        assert_eq!(json["retransmits"], 7);
        assert!(serde_json::to_value(ext)
            .unwrap()
            .get("retransmits")
            .is_none());
    }

    #[test]
    fn connection_health_is_the_socket_own() {
        let (snap, rules, opts, c) = (
            snapshot(),
            RuleSet::default(),
            GraphOptions::default(),
            ContainerLabels::default(),
        );
        let doc = build_connections(&inputs(&snap, &rules, &opts, &c));
        let by_port = |port: u16, pid: u32| {
            doc.connections
                .iter()
                .find(|c| c.from_port == port && c.from_pid == pid)
                .unwrap_or_else(|| panic!("{port}/{pid} in {doc:#?}"))
        };
        let client = by_port(40000, 1);
        assert_eq!((client.rtt_ms, client.retransmits), (Some(0.3), Some(2)));
        let accepted = doc
            .connections
            .iter()
            .find(|c| c.from_pid == 2 && c.to_port == 40001)
            .expect("accepted");
        assert_eq!((accepted.rtt_ms, accepted.retransmits), (None, Some(4)));
        let ext = by_port(40002, 1);
        assert_eq!((ext.rtt_ms, ext.retransmits), (None, None));
    }
}
