//! Finds, for a socket, the other end of its connection on this host (its
//! peer socket) or the listening socket it reached. Built once per snapshot;
//! lookups are hash-map hits, so pairing stays linear in the socket count.

use crate::snapshot::{canonical_ip, Proto, Snapshot, Socket, SocketList, SocketState};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Lookup tables over one snapshot's sockets.
pub struct SocketIndex<'s> {
    sockets: &'s SocketList,
    /// Listening sockets (TCP LISTEN, bound unconnected UDP) by (proto, port).
    listeners: HashMap<(Proto, u16), Vec<usize>>,
    /// Connected sockets by (proto, local, remote): positions only, hashed
    /// by the socket's endpoints and compared against `sockets`. A map
    /// keyed by the endpoints held a copy of them, 80 bytes a socket
    /// (10.6 MB at 100k sockets, built on every sample whose shape changed).
    connected: hashbrown::HashTable<u32>,
    local_ips: HashSet<IpAddr>,
}

/// A connected socket's key in [`SocketIndex`]: (proto, local, remote).
type Ends = (Proto, SocketAddr, SocketAddr);

fn ends_of(s: &Socket) -> Option<Ends> {
    s.remote.map(|remote| (s.proto, s.local, remote))
}

fn hash_ends(ends: &Ends) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(ends)
}

/// The hash of an indexed socket (one with a remote end) when the table
/// grows.
fn hash_socket(s: &Socket) -> u64 {
    ends_of(s).map_or(0, |e| hash_ends(&e))
}

/// True for a socket that waits for others to reach it.
pub fn is_listener(s: &Socket) -> bool {
    match s.proto {
        Proto::Tcp => s.state == SocketState::Listen,
        Proto::Udp => s.remote.is_none(),
    }
}

/// True for a socket that stands for a connection worth an edge: connected
/// and live, or reported closed during the last interval — not a leftover
/// (TIME_WAIT, CLOSE) or a half-open request.
pub fn is_connection(s: &Socket) -> bool {
    let leftover = matches!(
        s.state,
        SocketState::Listen | SocketState::TimeWait | SocketState::Close | SocketState::NewSynRecv
    );
    s.remote.is_some() && (s.closed || !leftover)
}

/// 127.0.0.1 ↔ ::1: the same host seen through the other family.
pub fn loopback_alternate(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) if v4 == Ipv4Addr::LOCALHOST => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => None,
    }
}

impl<'s> SocketIndex<'s> {
    pub fn new(snap: &'s Snapshot) -> SocketIndex<'s> {
        let mut listeners: HashMap<(Proto, u16), Vec<usize>> = HashMap::default();
        let sockets = &snap.sockets;
        let mut connected = hashbrown::HashTable::with_capacity(sockets.len());
        for (i, s) in snap.sockets.iter().enumerate() {
            if is_listener(s) {
                listeners
                    .entry((s.proto, s.local.port()))
                    .or_default()
                    .push(i);
            } else if let Some(remote) = s.remote {
                let key = (s.proto, s.local, remote);
                let at = i as u32;
                match connected.entry(
                    hash_ends(&key),
                    |&j: &u32| ends_of(&sockets[j as usize]) == Some(key),
                    |&j: &u32| hash_socket(&sockets[j as usize]),
                ) {
                    // A TIME_WAIT leftover must not shadow a live socket
                    // with the same endpoints.
                    hashbrown::hash_table::Entry::Occupied(mut e) => {
                        if sockets[*e.get() as usize].state == SocketState::TimeWait {
                            *e.get_mut() = at;
                        }
                    }
                    hashbrown::hash_table::Entry::Vacant(e) => {
                        e.insert(at);
                    }
                }
            }
        }
        let local_ips = snap
            .local_addresses
            .iter()
            .copied()
            .map(canonical_ip)
            .chain(
                snap.interfaces
                    .iter()
                    .flat_map(|i| i.addresses.iter().copied()),
            )
            .collect();
        SocketIndex {
            sockets: &snap.sockets,
            listeners,
            connected,
            local_ips,
        }
    }

    /// The connected socket with exactly these endpoints.
    pub fn connected(&self, proto: Proto, local: SocketAddr, remote: SocketAddr) -> Option<usize> {
        let key = (proto, local, remote);
        self.connected
            .find(hash_ends(&key), |&j| {
                ends_of(&self.sockets[j as usize]) == Some(key)
            })
            .map(|&j| j as usize)
    }

    /// The socket at the other end of socket `i`, if it is on this host.
    pub fn peer(&self, i: usize) -> Option<usize> {
        let s = &self.sockets[i];
        let remote = s.remote?;
        self.connected(s.proto, remote, s.local)
    }

    /// The listening socket that `addr` reaches: exact address first, then
    /// a wildcard listener (`0.0.0.0` for IPv4, `::` for both families),
    /// then the loopback alternate (127.0.0.1 ↔ ::1).
    pub fn listener_for(&self, proto: Proto, addr: SocketAddr) -> Option<usize> {
        let candidates = self.listeners.get(&(proto, addr.port()))?;
        let ip = addr.ip();
        let find = |pred: &dyn Fn(IpAddr) -> bool| {
            candidates
                .iter()
                .copied()
                .find(|&i| pred(self.sockets[i].local.ip()))
        };
        find(&|l| l == ip)
            .or_else(|| {
                find(&|l| match l {
                    IpAddr::V4(v4) => v4.is_unspecified() && ip.is_ipv4(),
                    IpAddr::V6(v6) => v6.is_unspecified(),
                })
            })
            .or_else(|| loopback_alternate(ip).and_then(|alt| find(&|l| l == alt)))
    }

    /// True when `ip` belongs to this host.
    pub fn is_local_ip(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || ip.is_unspecified() || self.local_ips.contains(&ip)
    }
}
