//! The plain data one sample of the machine produces: processes, sockets and
//! what could not be seen. Every collector (Linux, Windows, macOS) fills the
//! same types; a field an OS cannot fill is an `Option`, never a `#[cfg]`.
//!
//! Everything here is serde data so a snapshot can be recorded as a JSON
//! fixture and replayed through the graph engine without touching the OS.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

mod socket_list;
pub use socket_list::{SocketList, CHUNK as SOCKET_CHUNK};

/// One sample of the machine's sockets and the processes that own them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// When the sample was taken, milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    /// Addresses that belong to this host (all interfaces, loopback
    /// included). A remote address in this set is a local peer, not an
    /// external endpoint.
    #[serde(default)]
    pub local_addresses: Vec<IpAddr>,
    /// Network interfaces and their addresses, for per-interface traffic.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// Every process that owns at least one socket in `sockets`.
    #[serde(default)]
    pub processes: Vec<Process>,
    /// Every TCP and UDP socket, IPv4 and IPv6, in every state; shared
    /// with other samples until they differ (see [`SocketList`]).
    #[serde(default)]
    pub sockets: SocketList,
    /// What the collector could not see, so nothing is hidden silently.
    #[serde(default)]
    pub diagnostics: Diagnostics,
    /// Payload bytes per flow seen by packet capture since the previous
    /// sample (`--capture`); empty without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captured: Vec<CapturedFlow>,
}

/// Bytes one flow moved since the previous sample, counted from packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapturedFlow {
    pub proto: Proto,
    /// This host's end.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Interface the packets crossed.
    pub interface: String,
    /// Payload bytes from `local` to `remote`.
    pub sent: u64,
    /// Payload bytes from `remote` to `local`.
    pub received: u64,
}

/// A network interface of this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    /// Kernel name, e.g. `lo`, `eth0`.
    pub name: String,
    /// Addresses assigned to it.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// A process that owns sockets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Start time, seconds since the Unix epoch. With `pid` it identifies a
    /// process across samples: a reused pid has another start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// Short name (`comm` on Linux, the image name on Windows).
    pub name: String,
    /// Full command line, one element per argument (empty for kernel threads
    /// or when it could not be read).
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// Path of the executable, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Real user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// User name for `uid`, when it resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Parent process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Container id (full hex id) when the process runs in a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// Transport protocol of a socket.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// Lower-case name as used in the JSON (`tcp`, `udp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// Socket state, with the kernel's TCP state names. UDP sockets use
/// `Established` when connected and `Close` when only bound, as the Linux
/// kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SocketState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    Unknown,
}

impl SocketState {
    /// Maps the Linux kernel's `TCP_*` state number (`include/net/tcp_states.h`).
    pub fn from_linux(state: u8) -> SocketState {
        match state {
            1 => SocketState::Established,
            2 => SocketState::SynSent,
            3 => SocketState::SynRecv,
            4 => SocketState::FinWait1,
            5 => SocketState::FinWait2,
            6 => SocketState::TimeWait,
            7 => SocketState::Close,
            8 => SocketState::CloseWait,
            9 => SocketState::LastAck,
            10 => SocketState::Listen,
            11 => SocketState::Closing,
            12 => SocketState::NewSynRecv,
            _ => SocketState::Unknown,
        }
    }

    /// The name used in JSON and tables, e.g. `ESTABLISHED`.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketState::Established => "ESTABLISHED",
            SocketState::SynSent => "SYN_SENT",
            SocketState::SynRecv => "SYN_RECV",
            SocketState::FinWait1 => "FIN_WAIT1",
            SocketState::FinWait2 => "FIN_WAIT2",
            SocketState::TimeWait => "TIME_WAIT",
            SocketState::Close => "CLOSE",
            SocketState::CloseWait => "CLOSE_WAIT",
            SocketState::LastAck => "LAST_ACK",
            SocketState::Listen => "LISTEN",
            SocketState::Closing => "CLOSING",
            SocketState::NewSynRecv => "NEW_SYN_RECV",
            SocketState::Unknown => "UNKNOWN",
        }
    }
}

/// Why a socket has no owner process.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "lowercase")]
pub enum UnknownReason {
    /// The owner is another user's process and we may not read its fds.
    Permission,
    /// The owner exited (or closed the socket) before it could be matched.
    Exited,
    /// The owner lives in another network namespace.
    Netns,
    /// No process holds the socket, and the collector saw every process's
    /// fds (root): e.g. one only referenced by an fd in flight in a unix
    /// socket's queue. Not a permission problem.
    Orphan,
    /// A TCP connection in a listener's accept queue, not accepted yet: no
    /// process holds it, but it is the listener's (the graph gives it the
    /// listener's owners).
    Pending,
    /// None of the above could be established.
    Unknown,
}

impl UnknownReason {
    /// Lower-case name as used in ids and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownReason::Permission => "permission",
            UnknownReason::Exited => "exited",
            UnknownReason::Netns => "netns",
            UnknownReason::Orphan => "orphan",
            UnknownReason::Pending => "pending",
            UnknownReason::Unknown => "unknown",
        }
    }
}

/// The pids holding one socket. Inline up to two (nearly every socket
/// has one owner, a forked server's two): copying a sample's 100k sockets
/// then allocates and frees nothing per socket, which was a third of what
/// an event-fed (T0) sample still cost. Serialized as a plain list.
pub type Owners = smallvec::SmallVec<[u32; 2]>;

/// One TCP or UDP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Socket {
    pub proto: Proto,
    /// Local address and port. IPv4-mapped IPv6 addresses are already
    /// reported as IPv4.
    pub local: SocketAddr,
    /// Remote address and port; `None` when the socket is not connected
    /// (a listener, or a bound UDP socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<SocketAddr>,
    pub state: SocketState,
    /// Kernel socket inode (Linux); 0 when the socket has none (TIME_WAIT)
    /// or the OS has no such notion.
    #[serde(default)]
    pub inode: u64,
    /// Owning user id as the kernel reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Pids of every process that holds this socket (several after `fork`).
    #[serde(default)]
    pub owners: Owners,
    /// Why `owners` is empty; `None` when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unowned_reason: Option<UnknownReason>,
    /// Payload bytes sent, as the kernel counts them (TCP `tcpi_bytes_sent`
    /// less `tcpi_bytes_retrans`, so a retransmission is not counted twice);
    /// `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// Bytes received (TCP `tcpi_bytes_received`); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// TCP round-trip time and retransmissions as the kernel keeps them;
    /// `None` for UDP, TIME_WAIT and request sockets, listeners, and where
    /// the OS does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_health: Option<TcpHealth>,
    /// The kernel reported this socket destroyed since the previous sample
    /// (sock_diag destroy notifications): a connection that ended, perhaps
    /// one that opened and closed between two samples. Its counters are
    /// final; it is shown for one interval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    /// The process that did the socket's latest send or receive, where the
    /// collector saw it happen (tier T0: the kernel event names the task
    /// doing the I/O); `None` elsewhere. Of a socket several processes
    /// hold (inherited across `fork`) only this one moved the bytes, so
    /// they are credited to it (see [`Socket::io_holder`]). A pid, like
    /// `owners`: it is compared with them, in the same sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_owner: Option<u32>,
}

impl Socket {
    /// A socket with these endpoints and state, and nothing else known
    /// yet: no inode, uid, owners or counters, not closed. Collectors fill
    /// in what their source gives.
    pub fn new(
        proto: Proto,
        local: SocketAddr,
        remote: Option<SocketAddr>,
        state: SocketState,
    ) -> Socket {
        Socket {
            proto,
            local,
            remote,
            state,
            inode: 0,
            uid: None,
            owners: Owners::new(),
            unowned_reason: None,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: None,
            closed: false,
            io_owner: None,
        }
    }

    /// The holder that did the latest I/O, when that says something the
    /// holders do not: the socket has several and `io_owner` is one of
    /// them. What the bytes' credit depends on (see
    /// [`crate::graph::traffic::credited_owner`]), so what counts as the
    /// socket's identity; an `io_owner` of a socket with one holder is
    /// that holder or stale, and changes nothing.
    pub fn io_holder(&self) -> Option<u32> {
        self.io_owner
            .filter(|pid| self.owners.len() > 1 && self.owners.contains(pid))
    }

    /// Whether `other` is this socket with at most its counters (bytes,
    /// RTT, retransmits) moved.
    pub fn differs_only_in_counters(&self, other: &Socket) -> bool {
        self.same_identity(other) && self.state == other.state && self.closed == other.closed
    }

    /// Whether `other` is the same socket held by the same owners: only
    /// its state, counters and `closed` may differ (what a history delta
    /// patches in place).
    pub fn same_identity(&self, other: &Socket) -> bool {
        self.proto == other.proto
            && self.local == other.local
            && self.remote == other.remote
            && self.inode == other.inode
            && self.uid == other.uid
            && self.owners == other.owners
            && self.unowned_reason == other.unowned_reason
            && self.io_holder() == other.io_holder()
    }
}

/// How well one TCP connection is doing, from the kernel's own
/// bookkeeping (Linux `tcp_info` / `struct tcp_sock`). One value for both
/// together: a collector either reads the connection's state or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpHealth {
    /// Smoothed round-trip time in microseconds (`tcpi_rtt`, the kernel's
    /// `srtt_us >> 3`); `None` before the first RTT sample (e.g. a
    /// connection that has not sent anything acknowledged yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<u32>,
    /// Segments retransmitted over the connection's life
    /// (`tcpi_total_retrans`): loss or reordering on the path.
    pub retransmits: u32,
}

/// How a collector reads the machine, cheapest first (`/healthz`
/// `collector.tier`). Linux: `T1` reads sockets and owners with BPF
/// iterators (root, kernel BTF), `T2` with netlink sock_diag and the
/// `/proc/<pid>/fd` scan, `T3` from `/proc/net` alone (no byte counters).
/// `T0` is T1 plus kernel events (tp_btf tracepoints, a ring buffer):
/// owners taken in process context, so a connection that closes between
/// two samples still has its process on both ends, and UDP bytes per
/// socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tier {
    T0,
    T1,
    T2,
    T3,
}

impl Tier {
    /// The name used in JSON and `PROCNET_TIER`, e.g. `T1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::T0 => "T0",
            Tier::T1 => "T1",
            Tier::T2 => "T2",
            Tier::T3 => "T3",
        }
    }

    /// Parses `T0`..`T3` (any case, surrounding blanks ignored).
    pub fn parse(s: &str) -> Option<Tier> {
        match s.trim().to_ascii_uppercase().as_str() {
            "T0" => Some(Tier::T0),
            "T1" => Some(Tier::T1),
            "T2" => Some(Tier::T2),
            "T3" => Some(Tier::T3),
            _ => None,
        }
    }
}

/// What a collector could not see in one sample. Counted, not logged per
/// item, so a busy machine does not flood the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostics {
    /// Which backend produced the sample, e.g. `netlink`, `procfs`,
    /// `iphlpapi`, `libproc`.
    #[serde(default)]
    pub backend: String,
    /// The tier this sample came from (see [`Tier`]); `None` where an OS's
    /// collector does not name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Why `tier` is not the best one (forced, not root, a BPF iterator
    /// that failed and when it is retried); `None` when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_reason: Option<String>,
    /// Processes whose sockets could not be read for lack of permission.
    #[serde(default)]
    pub processes_denied: u32,
    /// Processes that exited while they were being read.
    #[serde(default)]
    pub processes_vanished: u32,
    /// Sockets left without an owner, by reason.
    #[serde(default)]
    pub unowned_permission: u32,
    #[serde(default)]
    pub unowned_exited: u32,
    #[serde(default)]
    pub unowned_netns: u32,
    #[serde(default)]
    pub unowned_orphan: u32,
    #[serde(default)]
    pub unowned_pending: u32,
    #[serde(default)]
    pub unowned_unknown: u32,
    /// Tier T0: kernel CPU time spent in procnet's event programs since
    /// they were loaded, in ns (the kernel's `run_time_ns`, counted while
    /// procnet holds BPF run-time stats on), so their cost is visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_run_time_ns: Option<u64>,
    /// Tier T0: how many times those programs ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_run_count: Option<u64>,
    /// Tier T0: those programs' share of one CPU over the last sample
    /// interval, in millionths (10,000 = 1 %); absent at the first sample
    /// and without BPF run-time statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_cpu_share_ppm: Option<u32>,
    /// Tier T0: the share the programs are kept within (millionths of one
    /// CPU): over it, [`Diagnostics::bpf_activity_interval_ns`] grows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_cpu_budget_ppm: Option<u32>,
    /// Tier T0: the least time between two activity records of one TCP
    /// socket, in ns: 0 (one per send or receive call) unless the programs
    /// are over budget; then doubled each sample, at most 4 sample
    /// intervals, and halved back under a quarter of the budget. Closes
    /// and state changes are never skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_activity_interval_ns: Option<u64>,
    /// Human-readable warnings (one per distinct problem, not per item).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Diagnostics {
    /// Counts one socket left without an owner for `reason`.
    pub fn count_unowned(&mut self, reason: UnknownReason) {
        let n = match reason {
            UnknownReason::Permission => &mut self.unowned_permission,
            UnknownReason::Exited => &mut self.unowned_exited,
            UnknownReason::Netns => &mut self.unowned_netns,
            UnknownReason::Orphan => &mut self.unowned_orphan,
            UnknownReason::Pending => &mut self.unowned_pending,
            UnknownReason::Unknown => &mut self.unowned_unknown,
        };
        *n += 1;
    }
}

/// Which sockets of a sample differ from the previous sample's, when the
/// collector knows (tier T0 keeps its socket table from events, so it
/// does): the sample then has the same sockets in the same order, the same
/// processes, interfaces and local addresses as the previous one, and only
/// the sockets at `changed` differ, and only in their counters (bytes,
/// RTT, retransmits). Anything more (a socket opened or closed, an owner
/// or a state changed, a walk) gives no change set, and every consumer
/// does its full pass. Lets each per-sample consumer do work in proportion
/// to what moved, not to how many sockets there are.
///
/// Plain data next to the [`Snapshot`], never serialized with it: a
/// recording replays full samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketChanges {
    /// Indexes into [`Snapshot::sockets`], ascending, without repeats.
    pub changed: Vec<u32>,
}

impl SocketChanges {
    /// The change set between two samples, computed the slow way (every
    /// socket compared): `None` when they differ in more than counters.
    /// For tests that check an incremental consumer against its full pass.
    pub fn between(prev: &Snapshot, next: &Snapshot) -> Option<SocketChanges> {
        if prev.sockets.len() != next.sockets.len()
            || prev.processes != next.processes
            || prev.interfaces != next.interfaces
            || prev.local_addresses != next.local_addresses
        {
            return None;
        }
        let mut changed = Vec::new();
        for (i, (a, b)) in prev.sockets.iter().zip(&next.sockets).enumerate() {
            if a == b {
                continue;
            }
            if !a.differs_only_in_counters(b) {
                return None;
            }
            changed.push(i as u32);
        }
        Some(SocketChanges { changed })
    }
}

impl Snapshot {
    /// Looks a process up by pid.
    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.processes.iter().find(|p| p.pid == pid)
    }
}

/// One running container, as the engine lists it (filled by
/// `collect::containers`, interpreted by `graph::containers`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInfo {
    /// Full hex id.
    pub id: String,
    /// Name without the leading `/` the Docker API puts on it.
    pub name: String,
    /// Ports published on the host.
    pub ports: Vec<PublishedPort>,
    /// The container's addresses on its networks (bridge IPs).
    pub addresses: Vec<IpAddr>,
}

/// A container port published on a host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedPort {
    pub proto: Proto,
    /// Host address it is published on; `None` for all addresses.
    pub host_ip: Option<IpAddr>,
    /// Port on the host.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
}

/// Reports an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4
/// address it stands for, so both ends of a dual-stack connection compare
/// equal. Every collector passes addresses through this.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// [`canonical_ip`] for a socket address.
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v6_becomes_v4() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(canonical_ip(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
        let plain: IpAddr = "::1".parse().unwrap();
        assert_eq!(canonical_ip(plain), plain);
    }
}
