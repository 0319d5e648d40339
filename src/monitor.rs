//! [`Monitor`]: netprocmon's abilities as a Rust API — bytes received and
//! sent per process and per interface, its children's included, and which
//! watched process owns which port — refreshed by hand or on a background
//! thread.
//!
//! ```no_run
//! use procnet::monitor::Monitor;
//! use std::time::Duration;
//! let mut monitor = Monitor::new()?;
//! monitor.add_pid(std::process::id());
//! // Manual: call refresh() when you want fresh numbers ...
//! monitor.refresh()?;
//! // ... or let a thread do it; it stops when `background` is dropped.
//! let background = monitor.start(Duration::from_secs(1))?;
//! loop {
//!     std::thread::sleep(Duration::from_secs(5));
//!     for t in background.count_by_pid(std::process::id()) {
//!         println!("{}: received {} B, sent {} B (UDP: {})", t.interface, t.recv, t.send, t.udp);
//!     }
//! }
//! # Ok::<(), procnet::monitor::MonitorError>(())
//! ```
//!
//! What is counted:
//! - **TCP** from the kernel's own per-socket counters (no capture needed).
//! - **UDP** from the best source this process may use, and every result
//!   says which ([`UdpSource`]); the kernel itself keeps no per-socket UDP
//!   counters:
//!   1. the kernel's **socket hooks** (Linux, root with BTF: the collector's
//!      tier T0 adds up what each UDP send and receive call moved, per
//!      socket, with its owner). No capture is opened then: it would cost
//!      about 1 µs per packet on the whole machine to learn the same bytes.
//!      A user who wants capture anyway (below) turns the hooks off with
//!      [`MonitorOptions::socket_hooks`].
//!   2. **packet capture** (AF_PACKET, root or CAP_NET_RAW) when the hooks
//!      cannot load and [`MonitorOptions::capture`] allows it;
//!   3. else none: UDP is not counted, and the result says why for both.
//!
//!   Interfaces differ: capture sees the interface each packet crossed;
//!   the hooks know a socket, not a packet, so its bytes go to the
//!   interface of its local address (as TCP's), and a UDP socket bound to
//!   the wildcard address (`0.0.0.0`, `::`) that sends with `sendto`
//!   without `connect` has none: its bytes are counted under the interface
//!   `"?"` (an address restriction, [`MonitorState::add_address`], leaves
//!   them out). Both count UDP payload bytes, as TCP's counters do.
//! - **Children**: a watched process's count includes every descendant
//!   (children, grandchildren, ... through parents that hold no socket)
//!   by default, as netprocmon does; [`MonitorOptions::descendants`] or
//!   [`MonitorState::set_descendants`] turns it off. Processes are (pid,
//!   start time): a pid reused by an unrelated process is not counted. A
//!   socket held by several processes of one family (inherited across
//!   `fork`) counts once for it.
//!
//! Counts start at the first sample ([`Monitor::new`]): bytes a socket
//! moved before that are not counted, bytes of sockets opened later are, in
//! full. A socket that closes between two samples is counted (as root, the
//! kernel events name its owner even after it exited; otherwise its last
//! bytes go to the listener's owner when it is local), but a child that
//! starts, uses its sockets and exits between two samples was never seen
//! with its parent, so it counts for no watched process; sample often
//! enough for your processes.

mod background;
mod lineage;

pub use background::{BackgroundMonitor, BACKGROUND_THREAD_NAME};

use crate::collect::proc_info::ProcReader;
use crate::collect::{CollectError, CollectOptions, Collector};
use crate::graph::pairing::{is_listener, SocketIndex};
use crate::graph::traffic::{interface_of, Delta, SocketDeltas, TrafficTracker};
use crate::snapshot::{Interface, Proto, Snapshot, Socket};
use lineage::{is_root, Lineage, ProcInfo, ProcKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// Traffic of one watched process (with its descendants, unless turned
/// off) on one interface since monitoring started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkTraffic {
    pub interface: String,
    pub pid: u32,
    /// Bytes received.
    pub recv: u64,
    /// Bytes sent.
    pub send: u64,
    /// Where the UDP part of these numbers comes from (TCP always comes
    /// from the kernel's per-socket counters).
    pub udp: UdpSource,
}

/// Which source counted UDP bytes (see the [module docs](self) for the
/// order they are tried in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpSource {
    /// The kernel's socket hooks (Linux tier T0: `sock_send_length` and
    /// `sock_recv_length` add up each UDP call's bytes per socket): UDP
    /// payload bytes are included, per socket, under the interface of the
    /// socket's local address.
    SocketHooks,
    /// Packet capture (AF_PACKET): UDP payload bytes are included, under
    /// the interface each packet crossed.
    Capture,
    /// UDP bytes are not included, and why (e.g. not root).
    Unavailable { why: String },
}

impl std::fmt::Display for UdpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UdpSource::SocketHooks => f.write_str("kernel socket hooks"),
            UdpSource::Capture => f.write_str("packet capture"),
            UdpSource::Unavailable { why } => write!(f, "not counted: {why}"),
        }
    }
}

/// How a [`Monitor`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorOptions {
    /// Count a watched process's descendants under it (default: on).
    pub descendants: bool,
    /// Count UDP (and follow sockets that close between samples) with the
    /// kernel's socket hooks when they load (Linux, root with BTF; default:
    /// on). Off, or when they cannot load, UDP comes from capture if
    /// [`MonitorOptions::capture`] allows it.
    pub socket_hooks: bool,
    /// Count UDP from packet capture when the socket hooks are off or
    /// cannot load, and capture is permitted (default: on). Capture costs
    /// about 1 µs of CPU per packet on the whole machine.
    pub capture: bool,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            descendants: true,
            socket_hooks: true,
            capture: true,
        }
    }
}

/// Why a monitor call failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error("{0} is not an address of any interface of this host")]
    NotAnInterfaceAddress(IpAddr),
    #[error("could not start the monitor's background thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the monitor's background thread panicked; its counts are lost")]
    ThreadPanicked,
}

/// The start of the collector's warning when `--capture` could not start.
/// Matched so the monitor can say why UDP is not counted.
const CAPTURE_OFF: &str = "--capture is off";
/// The end of that warning, said by the monitor's own "not counted".
const CAPTURE_OFF_TAIL: &str = "; UDP bytes stay unknown";

/// Watches processes' traffic. Call [`Monitor::refresh`] periodically, or
/// [`Monitor::start`] a background thread that does. Every query and watch
/// list change is on [`MonitorState`], which a `Monitor` derefs to.
pub struct Monitor {
    collector: Collector,
    state: MonitorState,
}

impl std::ops::Deref for Monitor {
    type Target = MonitorState;
    fn deref(&self) -> &MonitorState {
        &self.state
    }
}

impl std::ops::DerefMut for Monitor {
    fn deref_mut(&mut self) -> &mut MonitorState {
        &mut self.state
    }
}

impl Monitor {
    /// Creates a monitor with the default options and takes its first
    /// sample (the baseline).
    pub fn new() -> Result<Monitor, MonitorError> {
        Monitor::with_options(MonitorOptions::default())
    }

    /// Creates a monitor and takes its first sample (the baseline).
    pub fn with_options(options: MonitorOptions) -> Result<Monitor, MonitorError> {
        let (mut collector, hooks) = udp_collector(options)?;
        // Container names are not part of a traffic count.
        collector.set_containers(false);
        let first = collector.sample()?;
        let mut state = MonitorState {
            tracker: TrafficTracker::default(),
            lineage: Lineage::default(),
            procs: ProcReader::new(),
            watched: Vec::new(),
            membership: HashMap::new(),
            descendants: options.descendants,
            capture: options.capture,
            hooks,
            addresses: BTreeSet::new(),
            last: Snapshot::default(),
            udp: UdpSource::Capture,
            samples: 0,
            last_error: None,
        };
        state.absorb(first);
        Ok(Monitor { collector, state })
    }

    /// Takes a sample and adds what moved since the previous one.
    pub fn refresh(&mut self) -> Result<(), MonitorError> {
        let snap = self.collector.sample()?;
        self.state.absorb(snap);
        Ok(())
    }

    /// Refreshes every `interval` on a background thread until the
    /// returned handle is dropped (or [`BackgroundMonitor::stop`]ped).
    /// Intervals under 1 ms are taken as 1 ms.
    pub fn start(self, interval: std::time::Duration) -> Result<BackgroundMonitor, MonitorError> {
        BackgroundMonitor::spawn(self.collector, self.state, interval)
    }
}

/// Per watched process: bytes per interface, (sent, received).
#[derive(Debug, Clone)]
struct Watched {
    key: ProcKey,
    /// Its own sockets only.
    own: BTreeMap<String, Delta>,
    /// Its sockets and its descendants', each socket once.
    family: BTreeMap<String, Delta>,
}

/// Which watched processes a process of the last sample counts for.
#[derive(Debug, Clone, Default)]
struct Membership {
    /// The watched process it is.
    own: Option<usize>,
    /// The watched processes it is or descends from.
    family: Vec<usize>,
}

/// What a monitor knows: the watch lists, the counts and the last sample.
/// Reached through [`Monitor`] (deref) or [`BackgroundMonitor::lock`].
pub struct MonitorState {
    tracker: TrafficTracker,
    lineage: Lineage,
    procs: ProcReader,
    /// Sorted by pid; an index into it is a root index for `lineage`.
    watched: Vec<Watched>,
    /// Pid → what it counts for, for the processes of `last`.
    membership: HashMap<u32, Membership>,
    descendants: bool,
    capture: bool,
    /// Whether the collector's socket hooks count UDP, or why not.
    hooks: Result<(), String>,
    addresses: BTreeSet<IpAddr>,
    last: Snapshot,
    udp: UdpSource,
    samples: u64,
    last_error: Option<String>,
}

impl MonitorState {
    /// Adds one sample: counts, memberships, the UDP source.
    fn absorb(&mut self, snap: Snapshot) {
        self.procs.calibrate(&snap);
        let sample = self.tracker.observe(&snap);
        self.tracker.forget_exited(&snap);
        self.udp = udp_source(&self.hooks, self.capture, &snap);
        self.classify(&snap);
        if sample.interval_secs.is_some() {
            self.credit(&snap, &sample.deltas);
        }
        let alive: std::collections::HashSet<ProcKey> = snap
            .processes
            .iter()
            .map(|p| (p.pid, p.start_time))
            .collect();
        self.lineage.retain(|k| alive.contains(k));
        self.last = snap;
        self.samples += 1;
        self.last_error = None;
    }

    /// Binds watched processes whose start time was unknown, then works
    /// out what every process of `snap` counts for.
    fn classify(&mut self, snap: &Snapshot) {
        let mut rebound = false;
        for w in self.watched.iter_mut().filter(|w| w.key.1.is_none()) {
            if let Some(p) = snap.process(w.key.0).filter(|p| p.start_time.is_some()) {
                w.key.1 = p.start_time;
                rebound = true;
            }
        }
        if rebound {
            self.lineage.clear();
        }
        self.membership.clear();
        if self.watched.is_empty() {
            return;
        }
        let roots: Vec<ProcKey> = self.watched.iter().map(|w| w.key).collect();
        let in_snap: HashMap<u32, ProcInfo> = snap
            .processes
            .iter()
            .map(|p| {
                let info = ProcInfo {
                    start_time: p.start_time,
                    ppid: p.ppid,
                };
                (p.pid, info)
            })
            .collect();
        let procs = &mut self.procs;
        let mut parent = |pid: u32| in_snap.get(&pid).copied().or_else(|| procs.read(pid));
        for p in &snap.processes {
            let key = (p.pid, p.start_time);
            let own = roots.iter().position(|r| is_root(r, &key));
            let family = self
                .lineage
                .roots_of(key, p.ppid, &roots, &mut parent)
                .to_vec();
            if own.is_some() || !family.is_empty() {
                self.membership.insert(p.pid, Membership { own, family });
            }
        }
    }

    /// Adds the sample's per-socket deltas, and the captured UDP bytes of
    /// sockets that carry no delta, to the watched processes they belong
    /// to. Mirrors what [`TrafficTracker`] credits per process, but once
    /// per family instead of once per holder.
    fn credit(&mut self, snap: &Snapshot, deltas: &SocketDeltas) {
        if self.membership.is_empty() {
            return;
        }
        let mut index: Option<SocketIndex<'_>> = None;
        for (i, d) in deltas.moved() {
            let Some(s) = snap.sockets.get(i) else {
                continue;
            };
            // A closed server-side socket counts for the listener's owners.
            let owners = if s.owners.is_empty() {
                let index = index.get_or_insert_with(|| SocketIndex::new(snap));
                match index.listener_for(s.proto, s.local) {
                    Some(l) => &snap.sockets[l].owners,
                    None => continue,
                }
            } else {
                &s.owners
            };
            let iface = interface_of(s.local.ip(), snap);
            self.add(owners, &iface, d);
        }
        for f in snap.captured.iter().filter(|f| f.proto == Proto::Udp) {
            let index = index.get_or_insert_with(|| SocketIndex::new(snap));
            let socket = index
                .connected(f.proto, f.local, f.remote)
                .or_else(|| index.listener_for(f.proto, f.local));
            let Some(i) = socket else { continue };
            let s = &snap.sockets[i];
            // A connected socket's captured bytes are already its delta, and
            // so are the bytes of a socket with its own counters (the socket
            // hooks): capture would count them twice.
            let own_counters = s.bytes_sent.is_some() || s.bytes_received.is_some();
            if s.remote.is_none() && !own_counters {
                self.add(&s.owners, &f.interface, (f.sent, f.received));
            }
        }
    }

    /// Adds `delta` once to each watched process (and family) `owners`
    /// count for.
    fn add(&mut self, owners: &[u32], iface: &str, delta: Delta) {
        let mut own: Vec<usize> = Vec::new();
        let mut family: Vec<usize> = Vec::new();
        for pid in owners {
            if let Some(m) = self.membership.get(pid) {
                own.extend(m.own);
                family.extend_from_slice(&m.family);
            }
        }
        for (list, pick) in [(own, false), (family, true)] {
            let mut list = list;
            list.sort_unstable();
            list.dedup();
            for i in list {
                let w = &mut self.watched[i];
                let map = if pick { &mut w.family } else { &mut w.own };
                let e = map.entry(iface.to_string()).or_insert((0, 0));
                e.0 += delta.0;
                e.1 += delta.1;
            }
        }
    }

    /// Recomputes memberships after the watch list changed.
    fn rewatch(&mut self) {
        self.lineage.clear();
        let last = std::mem::take(&mut self.last);
        self.classify(&last);
        self.last = last;
    }

    fn watched_index(&self, pid: u32) -> Option<usize> {
        self.watched.binary_search_by_key(&pid, |w| w.key.0).ok()
    }

    /// Watches `pid` (it is then part of [`MonitorState::counts`] and the
    /// port lists), as the process that has this pid now.
    pub fn add_pid(&mut self, pid: u32) {
        let Err(at) = self.watched.binary_search_by_key(&pid, |w| w.key.0) else {
            return;
        };
        let start = match self.last.process(pid) {
            Some(p) => p.start_time,
            None => self.procs.read(pid).and_then(|p| p.start_time),
        };
        self.watched.insert(
            at,
            Watched {
                key: (pid, start),
                own: BTreeMap::new(),
                family: BTreeMap::new(),
            },
        );
        self.rewatch();
    }
    /// Stops watching `pid` and drops its count.
    pub fn remove_pid(&mut self, pid: u32) {
        if let Some(i) = self.watched_index(pid) {
            self.watched.remove(i);
            self.rewatch();
        }
    }
    /// The watched pids.
    pub fn pids(&self) -> Vec<u32> {
        self.watched.iter().map(|w| w.key.0).collect()
    }
    /// Stops watching every pid.
    pub fn clear_pids(&mut self) {
        self.watched.clear();
        self.rewatch();
    }

    /// Whether a watched process's count includes its descendants. Both
    /// are counted all along, so switching shows the other count at once.
    pub fn set_descendants(&mut self, on: bool) {
        self.descendants = on;
    }
    /// See [`MonitorState::set_descendants`].
    pub fn descendants(&self) -> bool {
        self.descendants
    }

    /// Where UDP bytes come from (as of the last sample).
    pub fn udp_source(&self) -> &UdpSource {
        &self.udp
    }
    /// Samples taken so far (the baseline included).
    pub fn samples(&self) -> u64 {
        self.samples
    }
    /// Why the last background refresh failed, until one succeeds.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Counts only traffic on the interface that has `addr`.
    pub fn add_address(&mut self, addr: IpAddr) -> Result<(), MonitorError> {
        if self.interface_by_address(addr).is_none() {
            return Err(MonitorError::NotAnInterfaceAddress(addr));
        }
        self.addresses.insert(addr);
        Ok(())
    }
    /// Drops one address restriction.
    pub fn remove_address(&mut self, addr: IpAddr) {
        self.addresses.remove(&addr);
    }
    /// The address restrictions.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.addresses.iter().copied().collect()
    }
    /// Drops every address restriction (all interfaces count again).
    pub fn clear_addresses(&mut self) {
        self.addresses.clear();
    }

    /// The interfaces whose traffic is counted, with their addresses.
    pub fn listen_interfaces(&self) -> Vec<Interface> {
        let wanted: BTreeSet<String> = self
            .addresses
            .iter()
            .filter_map(|a| self.interface_by_address(*a))
            .collect();
        self.last
            .interfaces
            .iter()
            .filter(|i| wanted.is_empty() || wanted.contains(&i.name))
            .cloned()
            .collect()
    }
    /// The addresses of the interfaces whose traffic is counted.
    pub fn listen_addresses(&self) -> Vec<IpAddr> {
        self.listen_interfaces()
            .into_iter()
            .flat_map(|i| i.addresses)
            .collect()
    }
    /// The interface that has `addr`, if any.
    pub fn interface_by_address(&self, addr: IpAddr) -> Option<String> {
        self.last
            .interfaces
            .iter()
            .find(|i| i.addresses.contains(&addr))
            .map(|i| i.name.clone())
    }

    /// Traffic of `pid` per counted interface since the monitor started.
    /// A watched pid's count includes its descendants (unless turned off)
    /// and lasts after its sockets close; any other pid gives its own
    /// sockets' traffic while it holds sockets.
    pub fn count_by_pid(&self, pid: u32) -> Vec<NetworkTraffic> {
        let interfaces: BTreeSet<String> = self
            .listen_interfaces()
            .into_iter()
            .map(|i| i.name)
            .collect();
        let counted = |iface: &str| interfaces.is_empty() || interfaces.contains(iface);
        let entry = |interface: String, (send, recv): Delta| NetworkTraffic {
            interface,
            pid,
            recv,
            send,
            udp: self.udp.clone(),
        };
        if let Some(i) = self.watched_index(pid) {
            let w = &self.watched[i];
            let map = if self.descendants { &w.family } else { &w.own };
            return map
                .iter()
                .filter(|(iface, _)| counted(iface))
                .map(|(iface, d)| entry(iface.clone(), *d))
                .collect();
        }
        let start = self.last.process(pid).and_then(|p| p.start_time);
        self.tracker
            .totals()
            .into_iter()
            .filter(|t| t.pid == pid && (start.is_none() || t.start_time == start))
            .filter(|t| counted(&t.interface))
            .map(|t| entry(t.interface, (t.send, t.recv)))
            .collect()
    }

    /// [`MonitorState::count_by_pid`] for every watched pid.
    pub fn counts(&self) -> Vec<NetworkTraffic> {
        self.watched
            .iter()
            .flat_map(|w| self.count_by_pid(w.key.0))
            .collect()
    }

    /// Whether `pid` (of the last sample) counts for watched process `i`.
    fn counts_for(&self, pid: u32, i: usize) -> bool {
        self.membership
            .get(&pid)
            .is_some_and(|m| match self.descendants {
                true => m.family.contains(&i),
                false => m.own == Some(i),
            })
    }

    /// The watched pid whose process (or descendant, unless turned off)
    /// has local `port` open (a listener first), in the last sample — as
    /// netprocmon's `get_pid_by_port`. [`MonitorState::owner_of_port`]
    /// looks at every process.
    pub fn pid_by_port(&self, proto: Proto, port: u16) -> Option<u32> {
        let watched_owner = |s: &Socket| {
            s.owners.iter().find_map(|&p| {
                (0..self.watched.len())
                    .find(|&i| self.counts_for(p, i))
                    .map(|i| self.watched[i].key.0)
            })
        };
        self.on_port(proto, port, watched_owner)
    }

    /// The process that owns local `port` (a listener first), in the last
    /// sample, watched or not.
    pub fn owner_of_port(&self, proto: Proto, port: u16) -> Option<u32> {
        self.on_port(proto, port, |s| s.owners.first().copied())
    }

    fn on_port(
        &self,
        proto: Proto,
        port: u16,
        pick: impl Fn(&Socket) -> Option<u32>,
    ) -> Option<u32> {
        let on_port = |s: &&Socket| s.proto == proto && s.local.port() == port;
        let sockets = &self.last.sockets;
        sockets
            .iter()
            .filter(on_port)
            .filter(|s| is_listener(s))
            .find_map(&pick)
            .or_else(|| sockets.iter().filter(on_port).find_map(&pick))
    }

    /// Local (protocol, port) pairs of `pid`'s sockets; a watched pid's
    /// include its descendants' (unless turned off).
    pub fn ports_by_pid(&self, pid: u32) -> Vec<(Proto, u16)> {
        match self.watched_index(pid) {
            Some(i) => self.ports_where(|s| s.owners.iter().any(|&p| self.counts_for(p, i))),
            None => self.ports_where(|s| s.owners.contains(&pid)),
        }
    }

    /// Local ports of the watched processes' sockets of `proto`.
    pub fn ports_by_proto(&self, proto: Proto) -> Vec<u16> {
        self.ports_where(|s| s.proto == proto && self.is_watched_socket(s))
            .into_iter()
            .map(|(_, port)| port)
            .collect()
    }

    /// Local (protocol, port) pairs of the watched processes' sockets.
    pub fn ports(&self) -> Vec<(Proto, u16)> {
        self.ports_where(|s| self.is_watched_socket(s))
    }

    fn is_watched_socket(&self, s: &Socket) -> bool {
        s.owners
            .iter()
            .any(|&p| (0..self.watched.len()).any(|i| self.counts_for(p, i)))
    }

    fn ports_where(&self, pred: impl Fn(&Socket) -> bool) -> Vec<(Proto, u16)> {
        let ports: BTreeSet<(Proto, u16)> = self
            .last
            .sockets
            .iter()
            .filter(|s| pred(s))
            .map(|s| (s.proto, s.local.port()))
            .collect();
        ports.into_iter().collect()
    }
}

/// The collector for `options` and whether its socket hooks count UDP (or
/// why not). The hooks are tried first; capture is opened only when they
/// did not load, so a machine never pays for both. Their loading is known
/// once the collector exists, so the fallback is a second collector
/// (nothing costly was loaded by the first).
fn udp_collector(options: MonitorOptions) -> Result<(Collector, Result<(), String>), MonitorError> {
    // Every sample walks: each TCP socket's counters are then current,
    // not those of its last send call (see CollectOptions).
    let collector = |capture: bool, events: bool| {
        Collector::with_options(CollectOptions {
            capture,
            events,
            walk_every_sample: true,
        })
    };
    let hooks = if options.socket_hooks {
        let c = collector(false, true)?;
        match c.kernel_events() {
            Ok(()) => return Ok((c, Ok(()))),
            // Without capture the first collector is as good as any.
            Err(why) if !options.capture => return Ok((c, Err(hooks_off(&why)))),
            Err(why) => Err(hooks_off(&why)),
        }
    } else {
        Err("the kernel socket hooks are turned off (MonitorOptions::socket_hooks)".to_string())
    };
    Ok((collector(options.capture, false)?, hooks))
}

/// Why the socket hooks do not count UDP, from the collector's reason.
fn hooks_off(why: &str) -> String {
    format!("no kernel socket hooks ({why})")
}

/// Where UDP bytes come from, given what was asked, whether the socket
/// hooks run, and what the collector reported about capture. Unavailable
/// names why for both sources.
fn udp_source(hooks: &Result<(), String>, capture: bool, snap: &Snapshot) -> UdpSource {
    let hooks_why = match hooks {
        Ok(()) => return UdpSource::SocketHooks,
        Err(why) => why,
    };
    let capture_why = if !capture {
        "packet capture is turned off (MonitorOptions::capture)".to_string()
    } else if !cfg!(target_os = "linux") {
        "packet capture is only available on Linux".to_string()
    } else {
        match snap
            .diagnostics
            .warnings
            .iter()
            .find(|w| w.starts_with(CAPTURE_OFF))
        {
            Some(w) => w
                .strip_prefix(CAPTURE_OFF)
                .map(|r| r.trim_start_matches([':', ' ']))
                .unwrap_or(w)
                .trim_end_matches(CAPTURE_OFF_TAIL)
                .to_string(),
            None => return UdpSource::Capture,
        }
    };
    UdpSource::Unavailable {
        why: format!("{capture_why}; {hooks_why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_warning(w: &str) -> Snapshot {
        let mut snap = Snapshot::default();
        snap.diagnostics.warnings.push(w.to_string());
        snap
    }

    #[test]
    fn the_hooks_come_first_and_capture_is_not_looked_at() {
        let snap = with_warning("--capture is off: packet capture needs root");
        assert_eq!(udp_source(&Ok(()), true, &snap), UdpSource::SocketHooks);
        assert_eq!(udp_source(&Ok(()), false, &snap), UdpSource::SocketHooks);
        assert_eq!(UdpSource::SocketHooks.to_string(), "kernel socket hooks");
    }

    #[test]
    fn without_hooks_capture_counts_and_else_both_reasons_are_said() {
        let hooks = Err(hooks_off("not root"));
        if cfg!(target_os = "linux") {
            let ok = Snapshot::default();
            assert_eq!(udp_source(&hooks, true, &ok), UdpSource::Capture);
            let denied = with_warning(
                "--capture is off: packet capture needs root or CAP_NET_RAW (EPERM); UDP bytes stay unknown",
            );
            assert_eq!(
                udp_source(&hooks, true, &denied).to_string(),
                "not counted: packet capture needs root or CAP_NET_RAW (EPERM); no kernel socket hooks (not root)"
            );
        }
        assert_eq!(
            udp_source(&hooks, false, &Snapshot::default()).to_string(),
            "not counted: packet capture is turned off (MonitorOptions::capture); no kernel socket hooks (not root)"
        );
    }
}
