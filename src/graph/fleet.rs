//! The fleet series: what each procnet exports on `/metrics` so that one
//! Prometheus, scraping every host, can join the hosts' half-edges into a
//! fleet map (the PromQL joins in `shared/design/fleet-queries.sh`).
//!
//! Pure: an [`FleetAggregator`] is fed each sample (the snapshot and the
//! traffic deltas [`TrafficTracker`](crate::graph::traffic::TrafficTracker)
//! computed) and keeps **cumulative totals per label set** that outlive the
//! sockets, so a counter never goes down when a connection closes or its
//! process exits.
//!
//! Cardinality is bounded by construction, never by the number of
//! connections:
//! - no pid and no client ephemeral port in any label: a client half is
//!   keyed by the *server's* address and port, a server half by its listen
//!   port and the client's address;
//! - a peer address outside `--fleet-networks` becomes `peer_ip="external"`;
//! - loopback is not part of the fleet unless `--fleet-networks` covers it:
//!   `127.0.0.1:5432` exists on every host, so a loopback half-edge would
//!   join every host's listener; local pairs are in the local graph;
//! - listeners on ephemeral ports stay out of `procnet_listen_info` unless
//!   they have an open connection (kube-proxy style high-port listeners
//!   would otherwise mint thousands of series);
//! - at most [`MAX_FLOW_SERIES`] flow label sets; past that, new ones fold
//!   into `peer_ip="overflow"`;
//! - a label set with no open connection for [`IDLE_RETENTION_MS`] is
//!   dropped; if it comes back it starts from zero, which Prometheus treats
//!   as a counter reset (`rate`/`increase` handle it).

use crate::graph::build::ContainerLabels;
use crate::graph::pairing::{is_connection, is_listener, SocketIndex};
use crate::graph::ports::ServicePorts;
use crate::graph::traffic::TrafficSample;
use crate::snapshot::{canonical_ip, Process, Proto, Snapshot, Socket, SocketChanges};
use ipnet::IpNet;
// Fx: these maps are keyed by sockets and flows and rebuilt or probed for
// every socket of every sample; SipHash was a tenth of a sample at 100k.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// `peer_ip` of a peer outside `--fleet-networks`.
pub const EXTERNAL: &str = "external";

/// `peer_ip` of flows past [`MAX_FLOW_SERIES`].
pub const OVERFLOW: &str = "overflow";

/// `process` of a socket whose owner cannot be seen.
pub const UNKNOWN_PROCESS: &str = "unknown";

/// Flow label sets kept at most (each is three series). Past this, a new
/// label set loses its peer (`peer_ip="overflow"`, `peer_port=""`), so a
/// host talking to a whole /8 cannot blow up the scrape.
pub const MAX_FLOW_SERIES: usize = 10_000;

/// How long a label set with no open connection is kept (its totals still
/// exported) before it is dropped: long enough for a scrape interval and
/// for short connections that come and go, short enough that a churning
/// host does not keep every peer it ever saw.
pub const IDLE_RETENTION_MS: u64 = 10 * 60 * 1000;

/// The default `--fleet-networks`: private and shared address space where
/// fleet hosts live (RFC 1918, RFC 6598 carrier-grade NAT / Tailscale,
/// RFC 2544 benchmarking 198.18.0.0/15 often used for labs, IPv6 ULA).
/// Public addresses are "external"; loopback is left out (see the module
/// doc).
pub const DEFAULT_NETWORKS: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "198.18.0.0/15",
    "fc00::/7",
];

/// A bad `--fleet-networks` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("--fleet-networks: `{value}` is not a network ({reason}); write ADDRESS/PREFIX networks separated by commas, e.g. 10.0.0.0/8,fd00::/8")]
    BadNetwork { value: String, reason: String },
}

/// [`DEFAULT_NETWORKS`], parsed.
pub fn default_networks() -> Vec<IpNet> {
    DEFAULT_NETWORKS
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Parses `--fleet-networks`: comma-separated CIDR networks; a bare
/// address is a one-address network; host bits are cleared
/// (`10.1.2.3/8` is `10.0.0.0/8`). An empty list is allowed: every peer is
/// then "external".
pub fn parse_networks(csv: &str) -> Result<Vec<IpNet>, FleetError> {
    let mut out = Vec::new();
    for part in csv.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let net = match part.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(e) => match part.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(canonical_ip(ip)),
                Err(_) => {
                    return Err(FleetError::BadNetwork {
                        value: part.to_string(),
                        reason: e.to_string(),
                    })
                }
            },
        };
        out.push(net);
    }
    Ok(out)
}

/// What the aggregator is set up with.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// The `host` label (`--host-name`).
    pub host: String,
    /// Where fleet peers live (`--fleet-networks`).
    pub networks: Vec<IpNet>,
    /// The kernel's ephemeral port range.
    pub ephemeral: RangeInclusive<u16>,
    /// Export UDP flows and listeners too (`--udp`).
    pub udp: bool,
}

/// Which end of a connection this host's socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    /// The `role` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// The labels of one half-edge (besides `host`). Deliberately no pid and
/// no client port: see the module doc.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    pub role: Role,
    pub proto: Proto,
    /// The owner's process name.
    pub process: String,
    /// The owner's container name, `""` when none.
    pub container: String,
    /// Server role: the listen port; client role: `None` (`""`).
    pub local_port: Option<u16>,
    /// The peer's address, [`EXTERNAL`] or [`OVERFLOW`].
    pub peer_ip: String,
    /// Client role: the server's port; server role: `None` (`""`).
    pub peer_port: Option<u16>,
}

/// The values of one half-edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTotals {
    /// Bytes this host's end sent, since procnet started; only grows.
    pub sent: u64,
    /// Bytes it received; only grows.
    pub received: u64,
    /// Connections open now.
    pub open: u64,
    /// When it last had an open connection (ms since the epoch).
    last_open_ms: u64,
}

/// One `procnet_listen_info` series (besides `host`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenInfo {
    pub proto: Proto,
    pub ip: IpAddr,
    pub port: u16,
    pub process: String,
    pub container: String,
}

/// Everything the fleet series of one sample show.
#[derive(Debug, Clone, Default)]
pub struct FleetExport {
    pub host: String,
    /// Sorted by label set.
    pub flows: Vec<(FlowKey, FlowTotals)>,
    /// Sorted, no duplicates.
    pub listeners: Vec<ListenInfo>,
    /// This host's addresses (`procnet_host_address_info`), sorted.
    pub addresses: Vec<IpAddr>,
}

type Ends = (Proto, SocketAddr, SocketAddr);

/// How long a connection that is no longer reported is remembered (its
/// label set and last counters). A socket can be missing from one dump and
/// back in the next, or its destroy report can come a sample after it left
/// the dump: remembered, its bytes are counted once, not twice, and an
/// owner-less report still credits the series of the process that had it.
pub const FORGET_SOCKET_MS: u64 = 5_000;

/// What the aggregator remembers of one connection.
#[derive(Debug)]
struct Recent {
    key: Arc<FlowKey>,
    /// The kernel's cumulative (sent, received) last seen; `None` for a
    /// socket without counters (UDP).
    counters: Option<(u64, u64)>,
    /// The socket's inode when last known (0: none reported).
    inode: u64,
    seen_ms: u64,
}

/// Keeps the cumulative totals per label set across samples.
#[derive(Debug)]
pub struct FleetAggregator {
    settings: FleetSettings,
    flows: HashMap<Arc<FlowKey>, FlowTotals>,
    /// Connections seen in the last [`FORGET_SOCKET_MS`], by endpoints.
    recent: HashMap<Ends, Recent>,
    /// (proto, listen port) with an open server connection last sample.
    served_ports: HashSet<(Proto, u16)>,
    /// (proto, port) of listeners seen in the last [`IDLE_RETENTION_MS`]:
    /// a connection that outlives its listener is still the server end.
    listen_ports: HashMap<(Proto, u16), u64>,
    /// No sample yet: the first one's counters are the baseline.
    first: bool,
    /// When the last full pass ran: the connections it saw have this
    /// `seen_ms` in `recent` (a pass over changed sockets only leaves it).
    full_at: u64,
    /// The (proto, port) of the listeners of the last full pass.
    listening: Vec<(Proto, u16)>,
    /// When the last pass over changed sockets only ran since the last
    /// full pass: the connections of that full pass were all still there.
    changed_at: Option<u64>,
    /// The listeners and addresses of the last export, while only
    /// counters moved since (see [`FleetAggregator::export_changed`]).
    exported: Option<(Vec<ListenInfo>, Vec<IpAddr>)>,
}

impl FleetAggregator {
    pub fn new(settings: FleetSettings) -> FleetAggregator {
        FleetAggregator {
            settings,
            flows: HashMap::default(),
            recent: HashMap::default(),
            served_ports: HashSet::default(),
            listen_ports: HashMap::default(),
            first: true,
            full_at: 0,
            listening: Vec::new(),
            changed_at: None,
            exported: None,
        }
    }

    /// True when `ip` is in `--fleet-networks`.
    fn in_fleet(&self, ip: IpAddr) -> bool {
        self.settings.networks.iter().any(|n| n.contains(&ip))
    }

    /// Loopback (and the unspecified address) belongs to the fleet only
    /// when `--fleet-networks` says so; every other address is a fleet
    /// address or "external".
    fn exported(&self, ip: IpAddr) -> bool {
        !(ip.is_loopback() || ip.is_unspecified()) || self.in_fleet(ip)
    }

    /// Takes in one sample. TCP bytes are the growth of the kernel's
    /// cumulative per-socket counters since this connection was last seen
    /// (remembered for [`FORGET_SOCKET_MS`], so a late destroy report is
    /// not counted twice); sockets without counters (UDP) take their bytes
    /// from `traffic`, what the traffic tracker returned for this very
    /// snapshot (same socket order: packet capture).
    pub fn observe(
        &mut self,
        snap: &Snapshot,
        traffic: &TrafficSample,
        containers: &ContainerLabels,
        ports: &ServicePorts,
    ) {
        self.observe_changed(snap, traffic, containers, ports, None)
    }

    /// [`FleetAggregator::observe`], given which sockets changed since the
    /// last sample (see [`SocketChanges`]; the container labels must be
    /// the last sample's too): only those are looked at. The others are
    /// the last sample's, so the open counts, roles and label sets stay;
    /// only bytes move.
    pub fn observe_changed(
        &mut self,
        snap: &Snapshot,
        traffic: &TrafficSample,
        containers: &ContainerLabels,
        ports: &ServicePorts,
        changes: Option<&SocketChanges>,
    ) {
        match changes {
            Some(c) if !self.first => self.observe_counters(snap, traffic, c),
            _ => self.observe_all(snap, traffic, containers, ports),
        }
    }

    /// Only the counters of the sockets at `changes` moved.
    fn observe_counters(
        &mut self,
        snap: &Snapshot,
        traffic: &TrafficSample,
        changes: &SocketChanges,
    ) {
        let now = snap.taken_at_ms;
        for &i in &changes.changed {
            let Some(s) = snap.sockets.get(i as usize) else {
                continue;
            };
            if s.proto == Proto::Udp && !self.settings.udp {
                continue;
            }
            let Some(remote) = s.remote else { continue };
            let open = is_connection(s) && !s.closed;
            let counters = match (s.bytes_sent, s.bytes_received) {
                (None, None) => None,
                (sent, recv) => Some((sent.unwrap_or(0), recv.unwrap_or(0))),
            };
            // Not remembered: not exported (the full pass found no label
            // set for it), so nothing to count.
            let Some(r) = self
                .recent
                .get_mut(&(s.proto, s.local, remote))
                .filter(|r| s.inode == 0 || r.inode == 0 || r.inode == s.inode)
            else {
                continue;
            };
            let delta = match (counters, r.counters) {
                (Some(c), Some(b)) => (c.0.saturating_sub(b.0), c.1.saturating_sub(b.1)),
                (Some(c), None) => c,
                (None, _) => traffic.deltas.get(i as usize).unwrap_or((0, 0)),
            };
            if !open && delta == (0, 0) && counters.is_none() {
                continue;
            }
            let t = self.flows.entry(r.key.clone()).or_insert(FlowTotals {
                last_open_ms: now,
                ..FlowTotals::default()
            });
            t.sent += delta.0;
            t.received += delta.1;
            r.counters = match (counters, r.counters) {
                (Some(c), Some(b)) => Some((c.0.max(b.0), c.1.max(b.1))),
                (c, b) => c.or(b),
            };
        }
        for t in self.flows.values_mut().filter(|t| t.open > 0) {
            t.last_open_ms = now;
        }
        for l in &self.listening {
            self.listen_ports.insert(*l, now);
        }
        self.listen_ports
            .retain(|_, &mut seen| now.saturating_sub(seen) <= IDLE_RETENTION_MS);
        self.flows
            .retain(|_, t| t.open > 0 || now.saturating_sub(t.last_open_ms) <= IDLE_RETENTION_MS);
        self.changed_at = Some(now);
    }

    fn observe_all(
        &mut self,
        snap: &Snapshot,
        traffic: &TrafficSample,
        containers: &ContainerLabels,
        ports: &ServicePorts,
    ) {
        let now = snap.taken_at_ms;
        if let Some(at) = self.changed_at.take() {
            // The connections of the last full pass were there until `at`
            // (the passes since looked at changed sockets only).
            let full_at = self.full_at;
            for r in self.recent.values_mut().filter(|r| r.seen_ms == full_at) {
                r.seen_ms = at;
            }
            self.recent
                .retain(|_, r| at.saturating_sub(r.seen_ms) <= FORGET_SOCKET_MS);
        }
        self.full_at = now;
        self.exported = None;
        let first = std::mem::replace(&mut self.first, false);
        let index = SocketIndex::new(snap);
        let procs: HashMap<u32, &Process> = snap.processes.iter().map(|p| (p.pid, p)).collect();
        for t in self.flows.values_mut() {
            t.open = 0;
        }
        self.listening.clear();
        for l in snap.sockets.iter().filter(|l| is_listener(l) && !l.closed) {
            self.listen_ports.insert((l.proto, l.local.port()), now);
            self.listening.push((l.proto, l.local.port()));
        }
        let mut served = HashSet::default();
        for (i, s) in snap.sockets.iter().enumerate() {
            if s.proto == Proto::Udp && !self.settings.udp {
                continue;
            }
            let Some(remote) = s.remote else { continue };
            let open = is_connection(s) && !s.closed;
            let ends = (s.proto, s.local, remote);
            let counters = match (s.bytes_sent, s.bytes_received) {
                (None, None) => None,
                (sent, recv) => Some((sent.unwrap_or(0), recv.unwrap_or(0))),
            };
            // A different inode on the same endpoints is a new connection
            // (a reused tuple), not the one remembered.
            let known = self
                .recent
                .get(&ends)
                .filter(|r| s.inode == 0 || r.inode == 0 || r.inode == s.inode)
                .map(|r| (r.key.clone(), r.counters, r.inode));
            let before = known.as_ref().and_then(|k| k.1);
            let delta = match (counters, before) {
                // The same connection: only growth counts. A report can
                // show a counter a little lower than the last one (a
                // destroy report leaves the peer's FIN out of the received
                // bytes): that is not a new connection's bytes.
                (Some(c), Some(b)) => (c.0.saturating_sub(b.0), c.1.saturating_sub(b.1)),
                // On the first sample the counters are the baseline, not
                // traffic procnet saw.
                (Some(_), _) if first => (0, 0),
                // New (or a reused tuple whose counters restarted).
                (Some(c), _) => c,
                (None, _) => traffic.deltas.get(i).unwrap_or((0, 0)),
            };
            if !open && delta == (0, 0) && counters.is_none() {
                continue;
            }
            // An owner-less socket (closed by its process, or a destroy
            // report) keeps the label set it had.
            let key = match &known {
                Some((k, _, _)) if s.owners.is_empty() => k.clone(),
                _ => {
                    // A connection keeps the role it was first given, even
                    // when its listener closes.
                    let role = known.as_ref().map(|k| k.0.role);
                    let Some(k) =
                        self.key_for(s, remote, role, &index, snap, &procs, containers, ports)
                    else {
                        continue;
                    };
                    self.intern(self.capped(k))
                }
            };
            let t = self.flows.entry(key.clone()).or_insert(FlowTotals {
                last_open_ms: now,
                ..FlowTotals::default()
            });
            t.sent += delta.0;
            t.received += delta.1;
            if open {
                t.open += 1;
                t.last_open_ms = now;
                if key.role == Role::Server {
                    served.insert((s.proto, s.local.port()));
                }
            }
            // Keep the highest counters seen, so a dip and a recovery are
            // not counted twice.
            let counters = match (counters, before) {
                (Some(c), Some(b)) => Some((c.0.max(b.0), c.1.max(b.1))),
                (c, b) => c.or(b),
            };
            let inode = match (s.inode, &known) {
                (0, Some((_, _, i))) => *i,
                (i, _) => i,
            };
            self.recent.insert(
                ends,
                Recent {
                    key,
                    counters,
                    inode,
                    seen_ms: now,
                },
            );
        }
        self.recent
            .retain(|_, r| now.saturating_sub(r.seen_ms) <= FORGET_SOCKET_MS);
        self.listen_ports
            .retain(|_, &mut seen| now.saturating_sub(seen) <= IDLE_RETENTION_MS);
        self.flows
            .retain(|_, t| t.open > 0 || now.saturating_sub(t.last_open_ms) <= IDLE_RETENTION_MS);
        self.served_ports = served;
    }

    /// The shared copy of `key` when the table has it (one allocation per
    /// label set, not per connection).
    fn intern(&self, key: FlowKey) -> Arc<FlowKey> {
        self.flows
            .get_key_value(&key)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::new(key))
    }

    /// The label set of socket `s`, or `None` when it is not exported
    /// (a loopback peer outside the fleet networks).
    #[allow(clippy::too_many_arguments)]
    fn key_for(
        &self,
        s: &Socket,
        remote: SocketAddr,
        role: Option<Role>,
        index: &SocketIndex<'_>,
        snap: &Snapshot,
        procs: &HashMap<u32, &Process>,
        containers: &ContainerLabels,
        ports: &ServicePorts,
    ) -> Option<FlowKey> {
        let peer = canonical_ip(remote.ip());
        if !self.exported(peer) {
            return None;
        }
        let listener = index.listener_for(s.proto, s.local);
        let role =
            role.unwrap_or_else(|| self.role_of(s, remote, listener.is_some(), index, ports));
        let owners: &[u32] = if !s.owners.is_empty() {
            &s.owners
        } else if let (Role::Server, Some(l)) = (role, listener) {
            &snap.sockets[l].owners
        } else {
            &[]
        };
        // One owner per socket (the lowest pid, usually the parent after
        // fork), so bytes are counted once.
        let process = owners.iter().min().and_then(|pid| procs.get(pid)).copied();
        let port = s.local.port();
        let (local_port, peer_port) = match role {
            Role::Server => (Some(port), None),
            Role::Client => (None, Some(remote.port())),
        };
        let peer_ip = if self.in_fleet(peer) {
            peer.to_string()
        } else {
            EXTERNAL.to_string()
        };
        Some(FlowKey {
            role,
            proto: s.proto,
            process: process.map_or_else(|| UNKNOWN_PROCESS.to_string(), |p| p.name.clone()),
            container: container_of(
                process,
                (role == Role::Server).then_some((s.proto, port)),
                containers,
            ),
            local_port,
            peer_ip,
            peer_port,
        })
    }

    /// Which end this socket is, for a connection not seen before. The
    /// local end serves when it is (or recently was) a listener's port; the
    /// remote end when it is a listener on this host. Without listeners: a
    /// service port on one end only, then an ephemeral port on one end only
    /// (that end is the client). Never the lower-port guess: it could make
    /// a client's ephemeral port a label.
    fn role_of(
        &self,
        s: &Socket,
        remote: SocketAddr,
        local_listens: bool,
        index: &SocketIndex<'_>,
        ports: &ServicePorts,
    ) -> Role {
        let (lp, rp) = (s.local.port(), remote.port());
        if local_listens || self.listen_ports.contains_key(&(s.proto, lp)) {
            return Role::Server;
        }
        if index.is_local_ip(remote.ip()) && index.listener_for(s.proto, remote).is_some() {
            return Role::Client;
        }
        let eph = &self.settings.ephemeral;
        match (
            ports.contains(lp),
            ports.contains(rp),
            eph.contains(&lp),
            eph.contains(&rp),
        ) {
            (true, false, _, _) => Role::Server,
            (false, true, _, _) => Role::Client,
            (_, _, false, true) => Role::Server,
            _ => Role::Client,
        }
    }

    /// `key`, or its peer-less overflow form when the table is full.
    fn capped(&self, key: FlowKey) -> FlowKey {
        if self.flows.len() < MAX_FLOW_SERIES || self.flows.contains_key(&key) {
            return key;
        }
        FlowKey {
            peer_ip: OVERFLOW.to_string(),
            peer_port: None,
            ..key
        }
    }

    /// This host's addresses as exported: every address of the host
    /// except loopback (unless the fleet networks cover it).
    fn host_addresses(&self, snap: &Snapshot) -> Vec<IpAddr> {
        let all: BTreeSet<IpAddr> = snap
            .local_addresses
            .iter()
            .chain(snap.interfaces.iter().flat_map(|i| i.addresses.iter()))
            .map(|&ip| canonical_ip(ip))
            .filter(|&ip| self.exported(ip))
            .collect();
        all.into_iter().collect()
    }

    /// [`FleetAggregator::export`]; the listener and address series are
    /// the last export's when the samples observed since moved only
    /// counters (no listener, process, address or served port changed).
    pub fn export_changed(&mut self, snap: &Snapshot, containers: &ContainerLabels) -> FleetExport {
        match &self.exported {
            Some((listeners, addresses)) => FleetExport {
                host: self.settings.host.clone(),
                flows: self.flow_series(),
                listeners: listeners.clone(),
                addresses: addresses.clone(),
            },
            None => {
                let e = self.export(snap, containers);
                self.exported = Some((e.listeners.clone(), e.addresses.clone()));
                e
            }
        }
    }

    /// The flow series, sorted by label set.
    fn flow_series(&self) -> Vec<(FlowKey, FlowTotals)> {
        let flows: BTreeMap<&FlowKey, &FlowTotals> =
            self.flows.iter().map(|(k, v)| (&**k, v)).collect();
        flows.into_iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// The series of the last observed sample.
    pub fn export(&self, snap: &Snapshot, containers: &ContainerLabels) -> FleetExport {
        let addresses = self.host_addresses(snap);
        let procs: HashMap<u32, &Process> = snap.processes.iter().map(|p| (p.pid, p)).collect();
        let mut listeners = BTreeSet::new();
        for s in snap.sockets.iter().filter(|s| is_listener(s) && !s.closed) {
            if s.proto == Proto::Udp && !self.settings.udp {
                continue;
            }
            let port = s.local.port();
            if self.settings.ephemeral.contains(&port)
                && !self.served_ports.contains(&(s.proto, port))
            {
                continue;
            }
            let ip = canonical_ip(s.local.ip());
            // A wildcard bind is reachable on each of the host's addresses
            // (`::` on both families: dual-stack unless V6ONLY, which the
            // snapshot does not say).
            let ips: Vec<IpAddr> = match ip {
                IpAddr::V4(v4) if v4.is_unspecified() => {
                    addresses.iter().copied().filter(IpAddr::is_ipv4).collect()
                }
                IpAddr::V6(v6) if v6.is_unspecified() => addresses.clone(),
                _ if self.exported(ip) => vec![ip],
                _ => continue,
            };
            let process = s
                .owners
                .iter()
                .min()
                .and_then(|pid| procs.get(pid))
                .copied();
            let name = process.map_or_else(|| UNKNOWN_PROCESS.to_string(), |p| p.name.clone());
            let container = container_of(process, Some((s.proto, port)), containers);
            for ip in ips {
                listeners.insert(ListenInfo {
                    proto: s.proto,
                    ip,
                    port,
                    process: name.clone(),
                    container: container.clone(),
                });
            }
        }
        FleetExport {
            host: self.settings.host.clone(),
            flows: self.flow_series(),
            listeners: listeners.into_iter().collect(),
            addresses,
        }
    }
}

/// The container a socket belongs to: its process's container, else (for
/// a listen port) the container the port is published for.
fn container_of(
    process: Option<&Process>,
    listen: Option<(Proto, u16)>,
    containers: &ContainerLabels,
) -> String {
    if let Some(id) = process.and_then(|p| p.container_id.as_deref()) {
        return containers.name_of(id);
    }
    listen
        .and_then(|k| containers.published.get(&k).cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Interface, SocketState};

    const SERVER_PID: u32 = 10;
    const CLIENT_PID: u32 = 20;

    fn settings(networks: &str) -> FleetSettings {
        FleetSettings {
            host: "h1".into(),
            networks: parse_networks(networks).unwrap(),
            ephemeral: 32768..=60999,
            udp: false,
        }
    }

    fn listener(addr: &str, owner: u32) -> Socket {
        Socket {
            proto: Proto::Tcp,
            local: addr.parse().unwrap(),
            remote: None,
            state: SocketState::Listen,
            inode: 1,
            uid: None,
            owners: smallvec::smallvec![owner],
            unowned_reason: None,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: None,
            closed: false,
            io_owner: None,
        }
    }

    fn conn(local: &str, remote: &str, owner: Option<u32>, sent: u64, recv: u64) -> Socket {
        Socket {
            state: SocketState::Established,
            remote: Some(remote.parse().unwrap()),
            local: local.parse().unwrap(),
            owners: owner.into_iter().collect(),
            bytes_sent: Some(sent),
            bytes_received: Some(recv),
            ..listener("0.0.0.0:0", 0)
        }
    }

    fn snap(at: u64, sockets: Vec<Socket>) -> Snapshot {
        let proc_ = |pid, name: &str| Process {
            pid,
            name: name.into(),
            ..Process::default()
        };
        Snapshot {
            taken_at_ms: at,
            local_addresses: vec!["10.0.0.5".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            interfaces: vec![Interface {
                name: "eth0".into(),
                addresses: vec!["10.0.0.5".parse().unwrap()],
            }],
            processes: vec![proc_(SERVER_PID, "postgres"), proc_(CLIENT_PID, "api")],
            sockets: sockets.into(),
            ..Snapshot::default()
        }
    }

    fn deltas(d: Vec<Option<(u64, u64)>>) -> TrafficSample {
        TrafficSample {
            interval_secs: Some(1.0),
            deltas: d.into_iter().collect(),
        }
    }

    fn run(agg: &mut FleetAggregator, s: &Snapshot, d: Vec<Option<(u64, u64)>>) -> FleetExport {
        let c = ContainerLabels::default();
        agg.observe(s, &deltas(d), &c, &ServicePorts::new([]));
        agg.export(s, &c)
    }

    #[test]
    fn many_client_connections_are_one_series_without_their_ports() {
        let mut agg = FleetAggregator::new(settings("10.0.0.0/8"));
        let sockets = |sent, recv| {
            let mut v = vec![listener("0.0.0.0:5432", SERVER_PID)];
            for port in 40000..41000u16 {
                v.push(conn(
                    &format!("10.0.0.5:{port}"),
                    "10.0.0.9:6379",
                    Some(CLIENT_PID),
                    sent,
                    recv,
                ));
            }
            v
        };
        // The first sample is the baseline; the second brings 3 + 1 bytes
        // per connection.
        run(&mut agg, &snap(1000, sockets(10, 10)), vec![None; 1001]);
        let out = run(&mut agg, &snap(2000, sockets(13, 11)), vec![None; 1001]);
        assert_eq!(out.flows.len(), 1, "{:?}", out.flows);
        let (k, t) = &out.flows[0];
        assert_eq!(
            (
                k.role,
                k.process.as_str(),
                k.local_port,
                k.peer_ip.as_str(),
                k.peer_port
            ),
            (Role::Client, "api", None, "10.0.0.9", Some(6379))
        );
        assert_eq!((t.open, t.sent, t.received), (1000, 3000, 1000));
    }

    #[test]
    fn server_halves_carry_the_listen_port_and_fold_outsiders() {
        let mut agg = FleetAggregator::new(settings("10.0.0.0/8"));
        let s = snap(
            1000,
            vec![
                listener("0.0.0.0:5432", SERVER_PID),
                conn("10.0.0.5:5432", "10.0.0.7:41000", Some(SERVER_PID), 0, 0),
                conn("10.0.0.5:5432", "10.0.0.7:41001", Some(SERVER_PID), 0, 0),
                conn(
                    "10.0.0.5:5432",
                    "93.184.216.34:50000",
                    Some(SERVER_PID),
                    0,
                    0,
                ),
                conn("10.0.0.5:5432", "8.8.8.8:50001", Some(SERVER_PID), 0, 0),
            ],
        );
        let out = run(&mut agg, &s, vec![None; 5]);
        let got: Vec<(&str, Option<u16>, Option<u16>, u64)> = out
            .flows
            .iter()
            .map(|(k, t)| (k.peer_ip.as_str(), k.local_port, k.peer_port, t.open))
            .collect();
        assert_eq!(
            got,
            vec![
                ("10.0.0.7", Some(5432), None, 2),
                (EXTERNAL, Some(5432), None, 2)
            ]
        );
        assert!(out.flows.iter().all(|(k, _)| k.role == Role::Server));
        // The wildcard listener is listed on each exported host address
        // (not loopback: outside the fleet networks).
        assert_eq!(out.addresses, vec!["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(out.listeners.len(), 1);
        assert_eq!(
            (out.listeners[0].ip.to_string(), out.listeners[0].port),
            ("10.0.0.5".to_string(), 5432)
        );
    }

    #[test]
    fn loopback_is_exported_only_when_the_fleet_networks_cover_it() {
        let sockets = || {
            vec![
                listener("127.0.0.1:5432", SERVER_PID),
                conn("127.0.0.1:5432", "127.0.0.1:41000", Some(SERVER_PID), 0, 0),
                conn("127.0.0.1:41000", "127.0.0.1:5432", Some(CLIENT_PID), 0, 0),
            ]
        };
        let mut without = FleetAggregator::new(settings("10.0.0.0/8"));
        let out = run(&mut without, &snap(1000, sockets()), vec![None; 3]);
        assert!(out.flows.is_empty() && out.listeners.is_empty());
        let mut with = FleetAggregator::new(settings("127.0.0.0/8"));
        let out = run(&mut with, &snap(1000, sockets()), vec![None; 3]);
        let roles: Vec<(Role, &str)> = out
            .flows
            .iter()
            .map(|(k, _)| (k.role, k.process.as_str()))
            .collect();
        assert_eq!(
            roles,
            vec![(Role::Client, "api"), (Role::Server, "postgres")]
        );
        assert_eq!(out.listeners.len(), 1);
        assert!(out.addresses.contains(&"127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn totals_survive_closed_connections_and_exited_processes() {
        let mut agg = FleetAggregator::new(settings("10.0.0.0/8"));
        let c = |owner, sent| conn("10.0.0.5:40000", "10.0.0.9:80", owner, sent, 0);
        run(
            &mut agg,
            &snap(1000, vec![c(Some(CLIENT_PID), 0)]),
            vec![None],
        );
        let out = run(
            &mut agg,
            &snap(2000, vec![c(Some(CLIENT_PID), 100)]),
            vec![Some((100, 0))],
        );
        assert_eq!((out.flows[0].1.sent, out.flows[0].1.open), (100, 1));
        // The process exited; the kernel's destroy report has no owner but
        // brings the last bytes: they go to the same series.
        let mut closed = c(None, 150);
        closed.closed = true;
        let mut s = snap(3000, vec![closed]);
        s.processes.retain(|p| p.pid != CLIENT_PID);
        let out = run(&mut agg, &s, vec![Some((50, 0))]);
        assert_eq!(out.flows.len(), 1);
        // A late second report of the same connection adds nothing.
        let out = run(&mut agg, &s, vec![Some((150, 0))]);
        assert_eq!(out.flows.len(), 1);
        assert_eq!(out.flows[0].0.process, "api");
        assert_eq!((out.flows[0].1.sent, out.flows[0].1.open), (150, 0));
        // Kept while idle, dropped after the retention.
        let out = run(&mut agg, &snap(2000 + IDLE_RETENTION_MS, vec![]), vec![]);
        assert_eq!(out.flows[0].1.sent, 150);
        let out = run(&mut agg, &snap(2001 + IDLE_RETENTION_MS, vec![]), vec![]);
        assert!(out.flows.is_empty());
    }

    #[test]
    fn ephemeral_listeners_are_listed_only_with_open_connections() {
        let mut agg = FleetAggregator::new(settings("10.0.0.0/8"));
        let idle = snap(1000, vec![listener("10.0.0.5:45000", SERVER_PID)]);
        assert!(run(&mut agg, &idle, vec![None]).listeners.is_empty());
        let busy = snap(
            2000,
            vec![
                listener("10.0.0.5:45000", SERVER_PID),
                conn("10.0.0.5:45000", "10.0.0.7:50000", Some(SERVER_PID), 0, 0),
            ],
        );
        let out = run(&mut agg, &busy, vec![None, None]);
        assert_eq!(out.listeners.len(), 1);
        assert_eq!(out.flows[0].0.local_port, Some(45000));
    }

    #[test]
    fn past_the_cap_new_peers_fold_into_overflow() {
        let mut agg = FleetAggregator::new(settings("10.0.0.0/8"));
        let mut sockets = Vec::new();
        for n in 0..(MAX_FLOW_SERIES as u32 + 500) {
            let peer = std::net::Ipv4Addr::from(0x0a01_0000 + n);
            sockets.push(conn(
                "10.0.0.5:40000",
                &format!("{peer}:80"),
                Some(CLIENT_PID),
                0,
                0,
            ));
        }
        let n = sockets.len();
        let out = run(&mut agg, &snap(1000, sockets), vec![None; n]);
        assert_eq!(out.flows.len(), MAX_FLOW_SERIES + 1);
        let overflow = out
            .flows
            .iter()
            .find(|(k, _)| k.peer_ip == OVERFLOW)
            .unwrap();
        assert_eq!(overflow.1.open, 500);
    }

    #[test]
    fn a_lower_report_of_the_same_connection_is_not_counted_again() {
        let mut agg = FleetAggregator::new(settings("10.0.0.0/8"));
        let c = |sent, recv| {
            conn(
                "10.0.0.5:40000",
                "10.0.0.9:80",
                Some(CLIENT_PID),
                sent,
                recv,
            )
        };
        run(&mut agg, &snap(1000, vec![c(0, 0)]), vec![None]);
        run(&mut agg, &snap(2000, vec![c(1000, 1001)]), vec![None]);
        // The destroy report leaves the FIN out of the received bytes.
        let mut closed = c(1000, 1000);
        (closed.closed, closed.owners, closed.inode) = (true, Default::default(), 0);
        let out = run(&mut agg, &snap(3000, vec![closed]), vec![None]);
        assert_eq!(
            (
                out.flows.len(),
                out.flows[0].1.sent,
                out.flows[0].1.received
            ),
            (1, 1000, 1001)
        );
    }

    #[test]
    fn connections_that_outlive_their_listener_stay_server_halves() {
        let mut agg = FleetAggregator::new(settings("10.0.0.0/8"));
        let served = |owner| conn("10.0.0.5:45000", "10.0.0.7:50000", owner, 0, 0);
        let with_listener = vec![
            listener("0.0.0.0:45000", SERVER_PID),
            served(Some(SERVER_PID)),
        ];
        run(&mut agg, &snap(1000, with_listener), vec![None; 2]);
        // The listener closed; the connection goes on, then a new one the
        // aggregator never saw arrives owner-less (both ports ephemeral).
        let other = conn("10.0.0.5:45000", "10.0.0.8:50001", None, 0, 0);
        let out = run(
            &mut agg,
            &snap(2000, vec![served(Some(SERVER_PID)), other]),
            vec![None; 2],
        );
        assert!(
            out.flows.iter().all(|(k, _)| k.role == Role::Server
                && k.local_port == Some(45000)
                && k.peer_port.is_none()),
            "{:?}",
            out.flows
        );
        // Without any listener ever: the ephemeral end is the client.
        let mut fresh = FleetAggregator::new(settings("10.0.0.0/8"));
        let orphan = conn("10.0.0.5:7000", "10.0.0.8:50002", None, 0, 0);
        let out = run(&mut fresh, &snap(1000, vec![orphan]), vec![None]);
        assert_eq!(
            (
                out.flows[0].0.role,
                out.flows[0].0.local_port,
                out.flows[0].0.peer_port
            ),
            (Role::Server, Some(7000), None)
        );
    }

    #[test]
    fn networks_parse_or_name_the_bad_one() {
        let nets = parse_networks("10.1.2.3/8, fd00::/8,192.0.2.1").unwrap();
        let shown: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, vec!["10.0.0.0/8", "fd00::/8", "192.0.2.1/32"]);
        assert!(parse_networks("").unwrap().is_empty());
        let e = parse_networks("10.0.0.0/8,10.0.0.0/33").unwrap_err();
        assert!(e.to_string().contains("`10.0.0.0/33`"), "{e}");
        assert!(parse_networks("bogus").is_err());
        assert_eq!(default_networks().len(), DEFAULT_NETWORKS.len());
    }
}
