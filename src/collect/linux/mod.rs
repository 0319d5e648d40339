//! Linux collector: sockets from netlink `NETLINK_SOCK_DIAG` (inet_diag,
//! with `/proc/net/{tcp,udp}{,6}` as a fallback), owners from a scan of
//! `/proc/<pid>/fd`, process details from `/proc/<pid>/*` (cached by pid and
//! start time), addresses from `getifaddrs`.
//!
//! As root with kernel BTF, TCP sockets and their byte counters come from
//! a BPF `tcp` iterator instead of netlink: the same data for a fraction of
//! the kernel's time (see [`tcp_iter`]).
//!
//! One sample: the netlink dump, then the owners of every socket inode: as
//! root, from a BPF `task_file` iterator (one `read` for all processes);
//! otherwise from `/proc/<pid>/fd`, scanned by other threads while the dump
//! runs. Then sockets are matched to owners by inode, and details are read
//! for the owners that are not cached yet.
//!
//! Tiers (`/healthz` `collector.tier`, see [`tier`]): T0 is T1 plus
//! kernel events ([`events`]: owners of sockets that close between two
//! samples, UDP bytes per socket; `serve` and `Monitor`, not one-shot
//! snapshots), T1 is both BPF iterators, T2 netlink and the `/proc` scan,
//! T3 `/proc/net` alone. A BPF iterator that fails for a reason that can
//! pass (EMFILE) is tried again later; `PROCNET_TIER` (or
//! `PROCNET_NO_BPF`) caps the tier.

pub mod bpf_iter;
pub mod btf;
pub mod capture;
pub mod cgroup;
mod destroyed;
pub mod events;
pub mod ifaddrs;
pub mod inet_diag;
pub mod netlink;
pub mod procfs;
pub mod procnet_fallback;
pub mod sockstat;
pub mod tcp_iter;
pub mod tier;
pub mod unowned;
pub mod users;

use crate::collect::{now_ms, CollectError};
use crate::snapshot::{
    CapturedFlow, Diagnostics, Process, Proto, Snapshot, Socket, SocketChanges, SocketList,
    SocketState, Tier,
};
use inet_diag::DiagSocket;
use netlink::{DiagSocketConn, NetlinkError};
use procfs::{Dir, FdScan, StatInfo};
use std::collections::HashMap;

/// Where socket tables come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SocketSource {
    /// TCP from the BPF `tcp` iterator when it loads (root, BTF), else
    /// netlink sock_diag; UDP from netlink; `/proc/net` when netlink is
    /// unavailable.
    #[default]
    Auto,
    /// Netlink sock_diag only (falling back to `/proc/net`), never BPF.
    Netlink,
    /// Only `/proc/net/{tcp,tcp6,udp,udp6}` (no byte counters).
    ProcNet,
}

/// Where socket owners come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OwnerSource {
    /// The BPF `task_file` iterator when it loads (root, BTF), else
    /// `/proc/<pid>/fd`.
    #[default]
    Auto,
    /// Only the `/proc/<pid>/fd` scan.
    ProcFd,
}

/// Settings of the Linux collector.
#[derive(Debug, Clone, Default)]
pub struct LinuxOptions {
    pub source: SocketSource,
    pub owners: OwnerSource,
    /// Threads scanning `/proc/<pid>/fd` (the calling thread included);
    /// 0 means one per CPU, at most 4.
    pub scan_threads: usize,
    /// Count bytes per flow from packets (`--capture`).
    pub capture: bool,
    /// Load the kernel event program (tier T0) when permitted.
    pub events: bool,
    /// Tier T0: walk every sample (see
    /// [`crate::collect::CollectOptions::walk_every_sample`]).
    pub walk_every_sample: bool,
}

/// How long owners from one full scan may be reused on a steady machine.
/// A socket inherited by a new child after the scan shows the child after
/// at most this long.
const FULL_OWNER_SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The owners found by the last full scan, and every socket inode that
/// sample saw (owned or not).
struct LastScan {
    at: std::time::Instant,
    scan: std::sync::Arc<FdScan>,
    inodes: rustc_hash::FxHashSet<u64>,
    /// The scan came from the BPF owner iterator (every process's fds).
    from_bpf: bool,
}

/// Process details kept between samples.
struct CachedProcess {
    starttime: u64,
    process: Process,
}

/// Linux implementation behind [`crate::collect::Collector`].
pub struct PlatformCollector {
    options: LinuxOptions,
    netlink_unsupported: bool,
    cache: HashMap<u32, CachedProcess>,
    users: users::UserNames,
    btime: Option<u64>,
    clk_tck: u64,
    /// The BPF owner iterator, once loaded.
    bpf: Option<bpf_iter::OwnerIter>,
    /// Whether to load or use it now, and why not.
    owner_health: tier::IterHealth,
    /// The BPF TCP socket iterator, once loaded.
    tcp_iter: Option<tcp_iter::TcpIter>,
    /// Whether to load or use it now, and why not.
    tcp_health: tier::IterHealth,
    /// Why the tier is capped below T1 by choice (`PROCNET_TIER`, options).
    tier_note: Option<String>,
    /// An environment setting that could not be understood.
    tier_warning: Option<String>,
    /// This process is in the initial pid namespace, so `/proc` lists
    /// every process: a socket none of them holds is an orphan.
    sees_every_pid: bool,
    /// Capacity for the next owner table.
    pairs_hint: usize,
    /// Socket-destroy notifications; `None` without CAP_NET_ADMIN.
    destroyed: Option<destroyed::DestroyListener>,
    /// Why `destroyed` is `None`, said once in the log and in every sample.
    destroyed_off: Option<String>,
    /// The last full owner scan, reused while no new socket appears.
    last_scan: Option<LastScan>,
    /// Read each process's container id from its cgroup (off with
    /// `--no-containers`).
    containers: bool,
    /// Packet capture (`--capture`), when asked for and permitted.
    capture: Option<capture::PacketCounter>,
    /// Why capture was asked for but is off.
    capture_off: Option<String>,
    /// The kernel event program (tier T0), when asked for and loaded.
    events: Option<events::EventCollector>,
    /// Why it was asked for but is not loaded (`tierReason`).
    events_off: Option<String>,
    /// Endpoints of the sockets the events reported closed in the last
    /// sample: a socket's destroy notification can come a sample after
    /// its close event, and must not report it a second time.
    events_reported: std::collections::HashSet<(Proto, ClosedEnds)>,
    /// Tier T0's socket table and what it needs between samples; `None`
    /// until the first walk (and again when a walk is due).
    fed: Option<EventFed>,
    /// Tier-T0 reconciles done in place (for tests of that path).
    reconciles: u64,
    /// What the last walk's owner scan saw (kept for T0's table).
    last_view: Option<unowned::OwnerView>,
    /// Which sockets of the last sample differ from the one before (T0,
    /// when only counters moved); see [`PlatformCollector::take_changes`].
    changes: Option<SocketChanges>,
}

/// A closed socket's endpoints (local, remote).
type ClosedEnds = (std::net::SocketAddr, Option<std::net::SocketAddr>);

const FAMILIES: [(u8, Proto, &str); 4] = [
    (libc::AF_INET as u8, Proto::Tcp, "/proc/net/tcp"),
    (libc::AF_INET6 as u8, Proto::Tcp, "/proc/net/tcp6"),
    (libc::AF_INET as u8, Proto::Udp, "/proc/net/udp"),
    (libc::AF_INET6 as u8, Proto::Udp, "/proc/net/udp6"),
];

/// Where a sample's sockets came from (`/healthz` `collector.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// T0 between walks: TCP from the event-fed table, UDP from netlink.
    EventsNetlink,
    /// TCP from the BPF iterator, UDP from netlink (T0's walks, T1).
    BpfNetlink,
    BpfProcFs,
    NetlinkProcFs,
    Netlink,
    /// `/proc/net` only (T3).
    ProcFs,
}

impl Backend {
    fn as_str(self) -> &'static str {
        match self {
            Backend::EventsNetlink => "events+netlink",
            Backend::BpfNetlink => "bpf+netlink",
            Backend::BpfProcFs => "bpf+procfs",
            Backend::NetlinkProcFs => "netlink+procfs",
            Backend::Netlink => "netlink",
            Backend::ProcFs => "procfs",
        }
    }
}

/// What [`PlatformCollector::walk_tables`] read.
struct Walked {
    /// `/proc` and its pids, when it could be read.
    proc_dir: Option<(Dir, Vec<u32>)>,
    scan: Option<std::sync::Arc<FdScan>>,
    table: SocketTable,
    owners_from_bpf: bool,
}

/// The sockets of one sample, and how they were obtained.
struct SocketTable {
    /// Owners not filled in yet.
    sockets: Vec<Socket>,
    backend: Backend,
    warnings: Vec<String>,
    /// TCP sockets came from the BPF iterator.
    tcp_from_bpf: bool,
}

impl PlatformCollector {
    /// A collector with default options.
    pub fn new() -> Result<PlatformCollector, CollectError> {
        PlatformCollector::with_options(LinuxOptions::default())
    }

    /// A collector with explicit options (tests use this to force the
    /// `/proc/net` fallback).
    pub fn with_options(mut options: LinuxOptions) -> Result<PlatformCollector, CollectError> {
        let asked = tier::requested(
            std::env::var_os("PROCNET_TIER").as_deref(),
            std::env::var_os("PROCNET_NO_BPF").as_deref(),
        );
        if let Some(w) = &asked.warning {
            log::warn!("{w}");
        }
        match asked.cap {
            Some(Tier::T3) => {
                options.source = SocketSource::ProcNet;
                options.owners = OwnerSource::ProcFd;
            }
            Some(Tier::T2) => {
                if options.source == SocketSource::Auto {
                    options.source = SocketSource::Netlink;
                }
                options.owners = OwnerSource::ProcFd;
            }
            Some(Tier::T0 | Tier::T1) | None => {}
        }
        let mut owner_health = tier::IterHealth::new("BPF owner iterator", "the /proc fd scan");
        let mut tcp_health = tier::IterHealth::new("BPF TCP iterator", "netlink sock_diag");
        if options.owners != OwnerSource::Auto {
            owner_health.disable();
        }
        if options.source != SocketSource::Auto {
            tcp_health.disable();
        }
        let (events, events_off) = start_events(&options, asked.cap);
        let by_options = (options.owners != OwnerSource::Auto
            || options.source != SocketSource::Auto)
            .then(|| "BPF iterators not asked for (collector options)".to_string());
        let btime = std::fs::read("/proc/stat")
            .ok()
            .and_then(|b| procfs::parse_btime(&b));
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let (destroyed, destroyed_off) = match destroyed::DestroyListener::start() {
            Ok(l) => (Some(l), None),
            Err(e) => {
                let why = format!(
                    "connections that open and close between two samples are not seen: subscribing to socket-destroy events needs CAP_NET_ADMIN (run as root) ({e})"
                );
                log::warn!("{why}");
                (None, Some(why))
            }
        };
        let (capture, capture_off) = if options.capture {
            match capture::PacketCounter::start() {
                Ok(c) => (Some(c), None),
                Err(e) => {
                    let why = format!(
                        "--capture is off: packet capture needs root or CAP_NET_RAW ({e}); UDP bytes stay unknown"
                    );
                    log::warn!("{why}");
                    (None, Some(why))
                }
            }
        } else {
            (None, None)
        };
        Ok(PlatformCollector {
            last_scan: None,
            containers: true,
            capture,
            capture_off,
            options,
            netlink_unsupported: false,
            cache: HashMap::new(),
            users: users::UserNames::default(),
            btime,
            clk_tck: if tck > 0 { tck as u64 } else { 100 },
            bpf: None,
            owner_health,
            tcp_iter: None,
            tcp_health,
            tier_note: asked.note.or(by_options),
            tier_warning: asked.warning,
            sees_every_pid: bpf_iter::check_pid_namespace().is_ok(),
            pairs_hint: 1024,
            destroyed,
            destroyed_off,
            events,
            events_off,
            events_reported: std::collections::HashSet::new(),
            fed: None,
            reconciles: 0,
            last_view: None,
            changes: None,
        })
    }

    /// See [`crate::collect::Collector::set_containers`].
    pub fn set_containers(&mut self, on: bool) {
        if self.containers != on {
            self.containers = on;
            self.cache.clear(); // cached details carry the old choice
        }
    }

    /// Owners only (the socket tables are already dumped): the BPF
    /// iterator when it may be used and works, else the `/proc` fd scan;
    /// and whether they came from BPF.
    fn owner_scan(
        &mut self,
        dir: &Dir,
        pids: &[u32],
        threads: usize,
        want_bpf: bool,
        now: std::time::Instant,
        warnings: &mut Vec<String>,
    ) -> (FdScan, bool) {
        if want_bpf {
            if let Some(it) = self.bpf.take() {
                let (it, result) = bpf_owners(it, self.pairs_hint);
                if let Some(pairs) = self.owners_read(it, result, now, warnings) {
                    let scan = FdScan {
                        pairs,
                        ..FdScan::default()
                    };
                    return (scan, true);
                }
            }
        }
        (dir.scan_fds(pids, threads, || ()).0, false)
    }

    /// Takes the owner iterator back (unless it failed for good) and
    /// records how its read went; the owner pairs when it worked.
    fn owners_read(
        &mut self,
        it: bpf_iter::OwnerIter,
        result: Result<Vec<(u64, u32)>, bpf_iter::BpfError>,
        now: std::time::Instant,
        warnings: &mut Vec<String>,
    ) -> Option<Vec<(u64, u32)>> {
        match result {
            Ok(pairs) => {
                self.bpf = Some(it);
                self.owner_health.worked();
                self.pairs_hint = pairs.len() + pairs.len() / 8;
                Some(pairs)
            }
            Err(e) => {
                warnings.push(format!(
                    "BPF owner iterator failed ({e}); scanning /proc instead"
                ));
                self.owner_health.failed(now, &e, false);
                if e.is_transient() {
                    self.bpf = Some(it);
                }
                None
            }
        }
    }

    fn scan_threads(&self) -> usize {
        // available_parallelism reads cgroup files: once per process.
        static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        match self.options.scan_threads {
            0 => *CPUS.get_or_init(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
                    .clamp(1, 4)
            }),
            n => n,
        }
    }

    /// See [`crate::collect::Collector::kernel_events`].
    pub fn kernel_events(&self) -> Result<(), String> {
        if self.events.is_some() {
            return Ok(());
        }
        Err(self
            .events_off
            .clone()
            .or_else(|| self.tier_note.clone())
            .unwrap_or_else(|| "kernel events (tier T0) not asked for".to_string()))
    }

    /// Takes one sample: at tier T0 from the socket table the events keep
    /// (a walk only to seed or reconcile it), else by walking.
    pub fn sample(&mut self) -> Result<Snapshot, CollectError> {
        self.changes = None;
        let mut warnings: Vec<String> = Vec::new();
        let side = self.side_channels(&mut warnings);
        let Some(ev) = self.events.as_mut() else {
            return self.walk_sample(warnings, side, Vec::new(), Vec::new());
        };
        let (records, lost) = ev.drain();
        if lost > 0 {
            warnings.push(format!(
                "{lost} kernel socket events were lost (ring buffer full); the socket table is walked again"
            ));
        }
        let udp_before = ev.udp_table();
        let now = std::time::Instant::now();
        let reconcile = match &self.fed {
            None => true,
            Some(fed) => {
                lost > 0 || self.options.walk_every_sample || fed.reconcile_due(now, monotonic_ns())
            }
        };
        if !reconcile {
            return self.event_sample(warnings, side, records, udp_before);
        }
        // The walk is newer than every record but the closes.
        let closed: Vec<_> = records
            .into_iter()
            .filter(|r| r.kind == events::record::Kind::Closed)
            .collect();
        if self.reconcile_in_place(&mut warnings, now) {
            self.reconciles += 1;
            return self.event_sample(warnings, side, closed, udp_before);
        }
        // No iterator at hand (or none yet: the seeding walk): the whole
        // walk, its sockets as a list. The table is kept through it and
        // brought in line in place: what stays the same stays shared with
        // the samples that hold it.
        let fed = self.fed.take();
        let mut snap = self.walk_sample(warnings, side, closed, udp_before)?;
        if snap.diagnostics.tier == Some(Tier::T0) {
            let view = self.last_view.take();
            // The sample is the table's sockets (shared) and what the walk
            // found that the table does not follow (UDP, TIME_WAIT, request
            // sockets, the closed ones), as every T0 sample lists them.
            let (fed, rest) = match fed {
                Some(mut fed) => {
                    fed.reconcile(&snap, view);
                    let rest = std::mem::take(&mut snap.sockets)
                        .into_iter()
                        .filter(|s| !events::table::follows(s))
                        .collect();
                    (fed, rest)
                }
                None => EventFed::from_list(&mut snap, view),
            };
            let mut sockets = fed.table.sockets().clone();
            sockets.extend(rest);
            snap.sockets = sockets;
            self.fed = Some(fed);
        }
        Ok(snap)
    }

    /// Tier T0's reconcile walk without a list of the walk's sockets (at
    /// 100k sockets that list was 15 MB on top of the table, the largest
    /// part of the server's peak memory): the BPF owner iterator runs
    /// first, then the TCP iterator's sockets go into the table one at a
    /// time (an unchanged one compared and dropped, a changed or new one
    /// written), those it did not list are removed, and the owners are
    /// set from the scan. The sample is then built from the table as
    /// every T0 sample is. `false` (and nothing changed) when an iterator
    /// is not at hand or fails; the full walk runs then.
    fn reconcile_in_place(&mut self, warnings: &mut Vec<String>, now: std::time::Instant) -> bool {
        if self.fed.is_none()
            || self.options.owners != OwnerSource::Auto
            || self.tcp_iter.is_none()
            || !self.tcp_health.due(now)
            || self.bpf.is_none()
            || !self.owner_health.due(now)
        {
            return false;
        }
        let Ok(dir) = Dir::open(c"/proc") else {
            return false;
        };
        let Ok(pids) = dir.list_pids() else {
            return false;
        };
        let threads = self.scan_threads();
        let (scan, from_bpf) = self.owner_scan(&dir, &pids, threads, true, now, warnings);
        if !from_bpf {
            return false; // the walk reads /proc and says what it could not
        }
        let (Some(mut fed), Some(mut it)) = (self.fed.take(), self.tcp_iter.take()) else {
            return false;
        };
        let mut seen = vec![false; fed.table.len()];
        let read = it.read(&mut |d| fed.table.reconcile_one(to_socket(d), &mut seen));
        match read {
            Ok(()) => {
                self.tcp_health.worked();
                self.tcp_iter = Some(it);
            }
            Err(e) => {
                // What was read is newer than the table; the walk that
                // follows finishes the job.
                warnings.push(format!(
                    "BPF TCP iterator failed ({e}); using netlink sock_diag"
                ));
                self.tcp_health.failed(now, &e, false);
                if e.is_transient() {
                    self.tcp_iter = Some(it);
                }
                self.fed = Some(fed);
                return false;
            }
        }
        fed.table.remove_unseen(&seen);
        drop(seen);
        fed.table
            .set_owners(|inode| scan.owners_of(inode).collect());
        // UDP owners as the scan says (a UDP socket has no lifecycle event).
        fed.udp_owners.retain(|_, _| false);
        fed.fresh_scan = Some(scan);
        // Every owner's details read again, as the walk reads them.
        fed.processes.clear();
        fed.view = unowned::OwnerView {
            scanned: true,
            complete: true, // the iterator sees every process's fds
            denied_uids: Vec::new(),
            denied_unknown_uid: false,
        };
        fed.walked_at = std::time::Instant::now();
        fed.generations = (u64::MAX, fed.table.generation());
        fed.last = None;
        fed.listeners_changed();
        self.fed = Some(fed);
        true
    }

    /// How many tier-T0 reconciles ran in place ([`Self::reconcile_in_place`]).
    #[doc(hidden)]
    pub fn reconciles(&self) -> u64 {
        self.reconciles
    }

    /// Makes the next tier-T0 sample a reconcile walk (as the one due
    /// every [`RECONCILE_EVERY`]), for tests of that path.
    #[doc(hidden)]
    pub fn reconcile_next(&mut self) {
        if let Some(fed) = self.fed.as_mut() {
            fed.walked_at = std::time::Instant::now()
                .checked_sub(RECONCILE_EVERY)
                .unwrap_or(fed.walked_at);
        }
    }

    /// Which sockets of the last sample differ from the sample before, when
    /// only counters moved (tier T0 knows from its events); `None` after a
    /// walk, or when a socket opened, closed or changed owner or state.
    pub fn take_changes(&mut self) -> Option<SocketChanges> {
        self.changes.take()
    }

    /// Whether nothing at all happened since the last sample and that
    /// sample moved no counter either (so every rate is already zero):
    /// then the last sample still describes the machine and the sampler
    /// need not take or build another. Only tier T0 can tell; the walks
    /// always say `false`.
    pub fn unchanged(&mut self) -> bool {
        let (Some(ev), Some(fed)) = (self.events.as_mut(), self.fed.as_ref()) else {
            return false;
        };
        if self.capture.is_some()
            || !fed.settled()
            || fed.reconcile_due(std::time::Instant::now(), monotonic_ns())
        {
            return false;
        }
        let destroyed = self.destroyed.as_ref().is_some_and(|d| d.has_pending());
        !ev.poll() && !destroyed
    }

    /// What comes besides the socket tables: sockets destroyed since the
    /// last sample (they belong to this interval), captured flows, and the
    /// warnings of the parts that are off.
    fn side_channels(&mut self, warnings: &mut Vec<String>) -> SideChannels {
        let (closed, lost) = match &self.destroyed {
            Some(l) => l.drain(),
            None => (Vec::new(), 0),
        };
        if let Some(why) = &self.destroyed_off {
            warnings.push(why.clone());
        }
        if let Some(why) = &self.capture_off {
            warnings.push(why.clone());
        }
        let captured = match &self.capture {
            Some(c) => {
                let (flows, lost) = c.drain();
                if lost > 0 {
                    warnings.push(format!(
                        "packet capture lost {lost} packets (counts are low)"
                    ));
                }
                flows
                    .into_iter()
                    .map(|f| CapturedFlow {
                        proto: f.proto,
                        local: f.local,
                        remote: f.remote,
                        interface: f.interface.unwrap_or_else(|| format!("if{}", f.ifindex)),
                        sent: f.sent,
                        received: f.received,
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        if lost > 0 {
            warnings.push(format!(
                "{lost} socket-destroy notifications were lost (too many short-lived connections at once)"
            ));
        }
        if let Some(w) = self.users.refresh() {
            warnings.push(w);
        }
        SideChannels { closed, captured }
    }

    /// Step one of a walk: the socket tables (the BPF TCP iterator, netlink
    /// or `/proc/net`) and the owner scan (the BPF owner iterator, the
    /// `/proc` fd scan, or the last scan's owners while no new inode
    /// appeared), run side by side where they can.
    fn walk_tables(
        &mut self,
        now: std::time::Instant,
        warnings: &mut Vec<String>,
    ) -> Result<Walked, CollectError> {
        let proc_dir = Dir::open(c"/proc").and_then(|d| {
            let pids = d.list_pids()?;
            Ok((d, pids))
        });
        let stat = sockstat::read();
        let buf =
            Vec::with_capacity(stat.map_or(1024, |s| s.total() + s.total() / 16 + 64) as usize);
        let threads = self.scan_threads();
        let source = self.options.source;
        let netlink_unsupported = self.netlink_unsupported;

        self.load_bpf(now);
        let want_bpf = self.bpf.is_some() && self.owner_health.due(now);
        let mut tcp = match self.tcp_health.due(now) {
            true => self.tcp_iter.take(),
            false => None,
        };
        let tcp_ref = tcp.as_mut();
        let mut tcp_error: Option<bpf_iter::BpfError> = None;
        let tcp_err = &mut tcp_error;

        // A steady machine: while every socket inode was already there at
        // the last full owner scan, its owners are reused (no BPF read, no
        // /proc walk); a new inode, or every few seconds, scans again.
        let fresh = self.last_scan.take().filter(|l| {
            l.at.elapsed() < FULL_OWNER_SCAN_EVERY && self.options.owners == OwnerSource::Auto
        });
        let (scan, table, owners_from_bpf) = match (&proc_dir, fresh) {
            (Ok((dir, pids)), Some(last)) => {
                let table =
                    collect_sockets(source, netlink_unsupported, stat, buf, tcp_ref, tcp_err);
                let known = table.as_ref().is_ok_and(|t| {
                    t.sockets
                        .iter()
                        .all(|s| s.inode == 0 || last.inodes.contains(&s.inode))
                });
                if known {
                    let scan = std::sync::Arc::clone(&last.scan);
                    let from_bpf = last.from_bpf;
                    self.last_scan = Some(last);
                    (Some(scan), table, from_bpf)
                } else {
                    let (scan, from_bpf) =
                        self.owner_scan(dir, pids, threads, want_bpf, now, warnings);
                    (Some(std::sync::Arc::new(scan.index())), table, from_bpf)
                }
            }
            (Ok((dir, pids)), None) if want_bpf => {
                // The BPF iterator runs on a second thread while this one
                // dumps the socket tables.
                let taken = self.bpf.take();
                let hint = self.pairs_hint;
                let (owned, table) = std::thread::scope(|s| {
                    let worker = s.spawn(move || taken.map(|it| bpf_owners(it, hint)));
                    let table =
                        collect_sockets(source, netlink_unsupported, stat, buf, tcp_ref, tcp_err);
                    (worker.join(), table)
                });
                let pairs = match owned {
                    Ok(Some((it, result))) => self.owners_read(it, result, now, warnings),
                    _ => {
                        warnings.push("BPF owner iterator failed; scanning /proc instead".into());
                        None
                    }
                };
                match pairs {
                    // The iterator sees every process's fds: nothing is
                    // hidden, so no process counts as denied.
                    Some(pairs) => {
                        let scan = FdScan {
                            pairs,
                            ..FdScan::default()
                        };
                        (Some(std::sync::Arc::new(scan.index())), table, true)
                    }
                    None => {
                        let (scan, table) = dir.scan_fds(pids, threads, move || table);
                        (Some(std::sync::Arc::new(scan.index())), table, false)
                    }
                }
            }
            (Ok((dir, pids)), None) => {
                let (scan, table) = dir.scan_fds(pids, threads, || {
                    collect_sockets(source, netlink_unsupported, stat, buf, tcp_ref, tcp_err)
                });
                (Some(std::sync::Arc::new(scan.index())), table, false)
            }
            (Err(e), _) => {
                warnings.push(format!(
                    "cannot read /proc ({e}); socket owners are unknown"
                ));
                (
                    None,
                    collect_sockets(source, netlink_unsupported, stat, buf, tcp_ref, tcp_err),
                    false,
                )
            }
        };
        // The TCP iterator is kept (even when this sample fails) unless it
        // failed for good; how it went decides when it is used next.
        match &tcp_error {
            Some(e) => {
                self.tcp_health.failed(now, e, false);
                if e.is_transient() {
                    self.tcp_iter = tcp;
                }
            }
            None => {
                if tcp.is_some() {
                    self.tcp_health.worked();
                }
                self.tcp_iter = tcp.or(self.tcp_iter.take());
            }
        }
        let table = table?;
        if let Some(scan) = &scan {
            if self.last_scan.is_none() {
                self.last_scan = Some(LastScan {
                    at: std::time::Instant::now(),
                    scan: std::sync::Arc::clone(scan),
                    inodes: table
                        .sockets
                        .iter()
                        .map(|s| s.inode)
                        .filter(|&i| i != 0)
                        .collect(),
                    from_bpf: owners_from_bpf,
                });
            }
        }
        if table.backend == Backend::ProcFs && source != SocketSource::ProcNet {
            self.netlink_unsupported = true;
        }
        Ok(Walked {
            proc_dir: proc_dir.ok(),
            scan,
            table,
            owners_from_bpf,
        })
    }

    /// One sample by walking every socket and owner (tiers T1–T3, and the
    /// seeding and reconciling walks of T0). `events_closed` and
    /// `udp_before`: what the events reported (T0; see merge_events).
    fn walk_sample(
        &mut self,
        mut warnings: Vec<String>,
        side: SideChannels,
        events_closed: Vec<events::record::Closed>,
        udp_before: Vec<(u64, events::record::Closed)>,
    ) -> Result<Snapshot, CollectError> {
        let mut diag = Diagnostics::default();
        let SideChannels { closed, captured } = side;

        let now = std::time::Instant::now();
        let Walked {
            proc_dir,
            scan,
            table,
            owners_from_bpf,
        } = self.walk_tables(now, &mut warnings)?;
        diag.backend = table.backend.as_str().to_string();
        let tier = match (table.tcp_from_bpf && owners_from_bpf, table.backend) {
            (true, _) if self.events.is_some() => Tier::T0,
            (true, _) => Tier::T1,
            (false, Backend::ProcFs) => Tier::T3,
            (false, _) => Tier::T2,
        };
        diag.tier = Some(tier);
        if let Some(m) = self.events.as_mut().and_then(|e| e.meter()) {
            m.fill(&mut diag);
        }
        diag.tier_reason = self.tier_reason(tier, table.tcp_from_bpf, owners_from_bpf, now);
        if let Some(w) = &self.tier_warning {
            warnings.push(w.clone());
        }
        warnings.extend(table.warnings);
        let (proc_dir, pids) = match proc_dir {
            Some((d, p)) => (Some(d), p),
            None => (None, Vec::new()),
        };

        // Uids of the processes we could not read, for `Permission`.
        let (denied_uids, any_denied_unknown_uid) = match (&scan, &proc_dir) {
            (Some(scan), Some(dir)) => denied_owners(scan, dir, &mut diag, &mut warnings),
            _ => (Vec::new(), false),
        };

        // Owners: every pid holding an inet socket gets its details.
        let mut sockets = table.sockets;
        let mut owner_pids: Vec<u32> = Vec::new();
        if let Some(scan) = &scan {
            for s in &mut sockets {
                if s.inode != 0 {
                    s.owners.extend(scan.owners_of(s.inode));
                    owner_pids.extend_from_slice(&s.owners);
                }
            }
        }
        owner_pids.sort_unstable();
        owner_pids.dedup();

        let mut processes = Vec::with_capacity(owner_pids.len());
        let mut gone: Vec<u32> = Vec::new();
        if let Some(dir) = &proc_dir {
            let mut fbuf = Vec::with_capacity(4096);
            for &pid in &owner_pids {
                match self.process_details(dir, pid, &mut fbuf) {
                    Some(p) => processes.push(p),
                    None => gone.push(pid),
                }
            }
        }
        diag.processes_vanished += gone.len() as u32;
        if proc_dir.is_some() {
            self.cache.retain(|pid, _| pids.binary_search(pid).is_ok());
        }

        let view = unowned::OwnerView {
            scanned: scan.is_some(),
            complete: scan.as_ref().is_some_and(|scan| {
                owners_from_bpf
                    || (self.sees_every_pid && scan.denied.is_empty() && scan.failed == 0)
            }),
            denied_uids,
            denied_unknown_uid: any_denied_unknown_uid,
        };
        self.last_view = Some(view.clone());
        let listeners = unowned::Listeners::of(&sockets);
        for s in &mut sockets {
            if !gone.is_empty() {
                s.owners.retain(|p| gone.binary_search(p).is_err());
            }
            s.unowned_reason = unowned::reason(s, &view, &listeners);
            if let Some(reason) = s.unowned_reason {
                diag.count_unowned(reason);
            }
        }

        let mut closed = closed;
        let mut sockets = SocketList::from(sockets);
        if self.events.is_some() {
            self.merge_events(
                proc_dir.as_ref(),
                &mut sockets,
                &mut processes,
                &mut closed,
                events_closed,
                udp_before,
            );
        }
        diag.unowned_exited += closed.iter().filter(|s| s.owners.is_empty()).count() as u32;
        sockets.extend(closed);

        let (interfaces, local_addresses) = interfaces(&mut warnings);

        warnings.dedup();
        diag.warnings = warnings;
        Ok(Snapshot {
            taken_at_ms: now_ms(),
            local_addresses,
            interfaces,
            processes,
            sockets,
            diagnostics: diag,
            captured,
        })
    }

    /// One tier-T0 sample from the socket table the events keep: the
    /// records since the last sample are applied, UDP sockets are dumped
    /// (few, and no event says when one opens), owners of new sockets come
    /// from the events, and only processes not seen yet are read.
    fn event_sample(
        &mut self,
        mut warnings: Vec<String>,
        side: SideChannels,
        records: Vec<events::record::Record>,
        udp_before: Vec<(u64, events::record::Closed)>,
    ) -> Result<Snapshot, CollectError> {
        let now = std::time::Instant::now();
        let SideChannels {
            mut closed,
            captured,
        } = side;
        let mut fed = self.fed.take().expect("event_sample runs with a table");
        let mut applied = fed.table.apply(records);
        // Only counters of known sockets moved: the sockets, their order
        // and owners are the last sample's (see SocketChanges).
        let counters_only = !applied.opened_or_closed && !applied.reshaped && fed.last.is_some();
        let changed_slots = std::mem::take(&mut applied.changed_slots);
        if applied.listeners_changed {
            fed.listeners_changed();
        }
        let udp = match dump_udp(sockstat::read()) {
            Ok(udp) => udp,
            Err(e) => {
                // Not a reason to lose the sample: walk instead.
                warnings.push(format!("UDP dump failed ({e}); walking every socket"));
                let closed_records = applied.closed;
                return self.walk_sample(
                    warnings,
                    SideChannels { closed, captured },
                    closed_records,
                    udp_before,
                );
            }
        };
        let by_ends: HashMap<ClosedEnds, u32> = udp_before
            .iter()
            .filter_map(|(_, c)| Some(((c.local, c.remote), c.owner.as_ref()?.tgid)))
            .collect();
        // A UDP socket no walk saw and no I/O named (bound, no datagram
        // yet): its owner from one owner scan, only then.
        let unknown: Vec<u64> = udp
            .iter()
            .filter(|s| {
                s.inode != 0
                    && !fed.udp_owners.contains_key(&s.inode)
                    && !by_ends.contains_key(&(s.local, s.remote))
            })
            .map(|s| s.inode)
            .collect();
        if let Some(scan) = fed.fresh_scan.take() {
            // A reconcile's owner scan, just taken: no second one.
            for &inode in &unknown {
                fed.udp_owners
                    .insert(inode, scan.owners_of(inode).collect());
            }
        } else if !unknown.is_empty() {
            self.look_up_udp_owners(&mut fed, &unknown, &mut warnings);
        }
        // A set, not a scan of the dump per kept owner: with thousands of
        // UDP sockets that was quadratic every sample.
        let live: rustc_hash::FxHashSet<u64> = udp.iter().map(|s| s.inode).collect();
        fed.udp_owners.retain(|inode, _| live.contains(inode));
        let tcp_len = fed.table.len();
        // The reasons are kept in the table, so they are written only when
        // one changes, and the sample below shares the table's sockets.
        {
            let (view, listeners) = (&fed.view, &fed.listeners);
            fed.table
                .mark_unowned(|s| unowned::reason(s, view, listeners));
        }
        let mut sockets: SocketList = fed.table.sockets().clone();
        let udp_count = udp.len();
        for mut s in udp {
            match fed.udp_owners.get(&s.inode) {
                Some(owners) => s.owners.clone_from(owners),
                None => s.owners.extend(by_ends.get(&(s.local, s.remote)).copied()),
            }
            s.unowned_reason = unowned::reason(&s, &fed.view, &fed.listeners);
            sockets.push(s);
        }
        let mut diag = Diagnostics::default();
        for s in &sockets {
            if let Some(reason) = s.unowned_reason {
                diag.count_unowned(reason);
            }
        }
        // Processes: the known ones as they were, new owners read once.
        // The table's owners are the last sample's when only counters moved.
        let tcp_pids = match fed.last.as_mut() {
            Some(last) if counters_only => std::mem::take(&mut last.tcp_pids),
            _ => {
                let mut pids: Vec<u32> = sockets
                    .iter_range(0..tcp_len)
                    .flat_map(|s| s.owners.iter().copied())
                    .collect();
                pids.sort_unstable();
                pids.dedup();
                pids
            }
        };
        let mut pids = tcp_pids.clone();
        pids.extend(
            sockets
                .iter_from(tcp_len)
                .flat_map(|s| s.owners.iter().copied()),
        );
        if pids.len() > tcp_pids.len() {
            pids.sort_unstable();
            pids.dedup();
        }
        let dir = Dir::open(c"/proc").ok();
        let mut processes = Vec::with_capacity(pids.len());
        let mut fbuf = Vec::new();
        let mut gone = Vec::new();
        for &pid in &pids {
            if let Some(p) = fed.processes.get(&pid) {
                processes.push(p.clone());
                continue;
            }
            match dir
                .as_ref()
                .and_then(|d| self.process_details(d, pid, &mut fbuf))
            {
                Some(p) => {
                    fed.processes.insert(pid, p.clone());
                    processes.push(p);
                }
                None => gone.push(pid),
            }
        }
        if !gone.is_empty() {
            // Owners that exited before they could be read: said as the
            // walk says them (only those sockets are written).
            let is_gone = |p: &u32| gone.binary_search(p).is_ok();
            for i in 0..sockets.len() {
                if !sockets[i].owners.iter().any(is_gone) {
                    continue;
                }
                let s = sockets.make_mut(i);
                s.owners.retain(|p| !is_gone(p));
                if s.owners.is_empty() && s.unowned_reason.is_none() {
                    s.unowned_reason = unowned::reason(s, &fed.view, &fed.listeners);
                    if let Some(reason) = s.unowned_reason {
                        diag.count_unowned(reason);
                    }
                }
            }
        }
        diag.processes_vanished = gone.len() as u32;
        fed.processes
            .retain(|pid, _| pids.binary_search(pid).is_ok());
        self.merge_events(
            dir.as_ref(),
            &mut sockets,
            &mut processes,
            &mut closed,
            applied.closed,
            udp_before,
        );
        diag.unowned_exited += closed.iter().filter(|s| s.owners.is_empty()).count() as u32;
        sockets.extend(closed);
        fed.sampled();

        diag.backend = Backend::EventsNetlink.as_str().to_string();
        diag.tier = Some(Tier::T0);
        if let Some(m) = self.events.as_mut().and_then(|e| e.meter()) {
            m.fill(&mut diag);
        }
        diag.tier_reason = self.tier_reason(Tier::T0, true, true, now);
        if let Some(w) = &self.tier_warning {
            warnings.push(w.clone());
        }
        let (interfaces, local_addresses) = interfaces(&mut warnings);
        warnings.dedup();
        diag.warnings = warnings;
        let snap = Snapshot {
            taken_at_ms: now_ms(),
            local_addresses,
            interfaces,
            processes,
            sockets,
            diagnostics: diag,
            captured,
        };
        self.changes = match &fed.last {
            Some(last) if counters_only && gone.is_empty() => {
                last.changes_to(&snap, tcp_len, changed_slots)
            }
            _ => None,
        };
        fed.last = Some(LastT0 {
            tcp_pids,
            udp: snap
                .sockets
                .iter_range(tcp_len..tcp_len + udp_count)
                .cloned()
                .collect(),
            len: snap.sockets.len(),
            processes: snap.processes.clone(),
            interfaces: snap.interfaces.clone(),
            local_addresses: snap.local_addresses.clone(),
        });
        self.fed = Some(fed);
        Ok(snap)
    }

    /// Owners of UDP sockets T0 knows nothing about, from one owner scan
    /// (the BPF iterator when loaded, else `/proc`); an inode no process
    /// holds is remembered as such, so it is not looked up again.
    fn look_up_udp_owners(
        &mut self,
        fed: &mut EventFed,
        inodes: &[u64],
        warnings: &mut Vec<String>,
    ) {
        let Ok(dir) = Dir::open(c"/proc") else {
            return;
        };
        let Ok(pids) = dir.list_pids() else {
            return;
        };
        let now = std::time::Instant::now();
        let want_bpf = self.bpf.is_some() && self.owner_health.due(now);
        let threads = self.scan_threads();
        let (scan, _) = self.owner_scan(&dir, &pids, threads, want_bpf, now, warnings);
        let scan = scan.index();
        for &inode in inodes {
            fed.udp_owners
                .insert(inode, scan.owners_of(inode).collect());
        }
    }

    /// Why this sample's tier is below T1 (or what was asked for and not
    /// built); `None` at T1 as asked.
    fn tier_reason(
        &self,
        tier: Tier,
        tcp_from_bpf: bool,
        owners_from_bpf: bool,
        now: std::time::Instant,
    ) -> Option<String> {
        let mut why: Vec<String> = Vec::new();
        // A cap below T0 is always said.
        why.extend(self.tier_note.clone());
        if tier != Tier::T0 {
            why.extend(self.events_off.clone());
        }
        match (self.tcp_health.failed_for_good(), self.owner_health.failed_for_good()) {
            // The usual case without root or BTF: one cause, said once.
            (Some(a), Some(b)) if a == b && !tcp_from_bpf && !owners_from_bpf => why.push(format!(
                "BPF iterators unavailable: {a}; netlink sock_diag and the /proc fd scan (not retried)"
            )),
            _ => {
                if !tcp_from_bpf {
                    why.extend(self.tcp_health.reason(now));
                }
                if !owners_from_bpf {
                    why.extend(self.owner_health.reason(now));
                }
            }
        }
        if tier == Tier::T3 && self.options.source != SocketSource::ProcNet {
            why.push("netlink sock_diag is unavailable: /proc/net only, no byte counters".into());
        }
        if tier > Tier::T1 && why.is_empty() {
            // E.g. owners reused from a /proc scan taken before the
            // iterator came back: the next full scan uses it.
            why.push("waiting for the next full owner scan to use the BPF iterators".into());
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// Loads the BPF programs wanted, not loaded yet and due (see
    /// [`tier::IterHealth`]), from one read and parse of the kernel's BTF
    /// (~5 MB: a third of a one-shot snapshot's time when each program
    /// read it). A kernel or user that cannot run them (not root, no BTF, a
    /// kernel before 5.9) is the common case and only logged at debug
    /// level; a verifier refusal is logged once; a failure that can pass
    /// (EMFILE) is tried again later. Meanwhile netlink and `/proc` do the
    /// job.
    fn load_bpf(&mut self, now: std::time::Instant) {
        let owners = self.bpf.is_none() && self.owner_health.due(now);
        let tcp = self.tcp_iter.is_none() && self.tcp_health.due(now);
        if !owners && !tcp {
            return;
        }
        let quiet = |e: &bpf_iter::BpfError| {
            matches!(e, bpf_iter::BpfError::Os { source, .. }
                if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES | libc::ENOSYS)))
                || matches!(
                    e,
                    bpf_iter::BpfError::Btf(_)
                        | bpf_iter::BpfError::BtfRead(_)
                        | bpf_iter::BpfError::PidNamespace
                )
        };
        let off = |me: &mut Self, e: bpf_iter::BpfError| {
            if owners {
                me.owner_health.failed(now, &e, quiet(&e));
            }
            if tcp {
                me.tcp_health.failed(now, &e, quiet(&e));
            }
        };
        // Without the capabilities bpf() refuses them: no BTF read first.
        if procfs::may_load_bpf_tracing() == Some(false) {
            let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
            return off(
                self,
                bpf_iter::BpfError::Os {
                    call: "bpf(BPF_PROG_LOAD)",
                    source: eperm,
                },
            );
        }
        let vmlinux = match bpf_iter::read_vmlinux_btf() {
            Ok(v) => v,
            Err(e) => return off(self, e),
        };
        let btf = match btf::Btf::parse(&vmlinux) {
            Ok(b) => b,
            Err(e) => return off(self, e.into()),
        };
        if owners {
            match bpf_iter::OwnerIter::load_from(&btf) {
                Ok(it) => self.bpf = Some(it),
                Err(e) => self.owner_health.failed(now, &e, quiet(&e)),
            }
        }
        if tcp {
            match tcp_iter::TcpIter::load_from(&btf) {
                Ok(it) => self.tcp_iter = Some(it),
                Err(e) => self.tcp_health.failed(now, &e, quiet(&e)),
            }
        }
    }

    /// Adds what the kernel events saw to a sample: the live UDP sockets'
    /// byte counts, and every socket that closed since the last sample
    /// with its owner (a process that has exited is named from the event).
    /// A destroy notification for a socket an event already reported is
    /// dropped: each closed socket is reported once.
    fn merge_events(
        &mut self,
        dir: Option<&Dir>,
        sockets: &mut SocketList,
        processes: &mut Vec<Process>,
        destroyed: &mut Vec<Socket>,
        closed: Vec<events::record::Closed>,
        udp_before: Vec<(u64, events::record::Closed)>,
    ) {
        type Ends = ClosedEnds;
        let mut udp: HashMap<Ends, usize> = HashMap::with_capacity(udp_before.len());
        for (k, (_, c)) in udp_before.iter().enumerate() {
            udp.insert((c.local, c.remote), k);
        }
        let mut live = vec![false; udp_before.len()];
        if !udp.is_empty() {
            for i in 0..sockets.len() {
                let s = &sockets[i];
                if s.proto != Proto::Udp {
                    continue;
                }
                if let Some(&k) = udp.get(&(s.local, s.remote)) {
                    live[k] = true;
                    let (sent, received) = (udp_before[k].1.sent, udp_before[k].1.received);
                    // Who did its latest send or receive (a shared socket's
                    // bytes are credited to that holder).
                    let io = udp_before[k].1.owner.as_ref().map(|o| o.tgid);
                    let now = (Some(sent), Some(received), io);
                    sockets.update_if(
                        i,
                        |s| (s.bytes_sent, s.bytes_received, s.io_owner) != now,
                        |s| (s.bytes_sent, s.bytes_received, s.io_owner) = now,
                    );
                }
            }
        }
        // A UDP socket read before the dump and not in it has closed.
        let mut gone = Vec::new();
        let mut all = closed;
        for ((cookie, c), live) in udp_before.into_iter().zip(live) {
            if !live {
                gone.push(cookie);
                all.push(c);
            }
        }
        if let Some(ev) = &self.events {
            ev.forget_udp(&gone);
        }
        let reported: std::collections::HashSet<(Proto, Ends)> =
            all.iter().map(|c| (c.proto, (c.local, c.remote))).collect();
        let before = std::mem::replace(&mut self.events_reported, reported);
        let reported = &self.events_reported;
        destroyed.retain(|s| {
            let key = (s.proto, (s.local, s.remote));
            !reported.contains(&key) && !before.contains(&key)
        });
        if all.is_empty() {
            return;
        }
        let mut known: HashMap<u32, Option<u64>> =
            processes.iter().map(|p| (p.pid, p.start_time)).collect();
        let mut fbuf = Vec::new();
        for c in &all {
            let mut s = events::closed_socket(c);
            if let Some(o) = &c.owner {
                let exited = events::exited_process(o, self.btime);
                match known.get(&o.tgid) {
                    // A reused pid: the event's process is not this one.
                    Some(start) if *start != exited.start_time && start.is_some() => {
                        s.owners.clear();
                        s.unowned_reason = Some(crate::snapshot::UnknownReason::Exited);
                    }
                    Some(_) => {}
                    None => {
                        let alive = dir
                            .and_then(|d| self.process_details(d, o.tgid, &mut fbuf))
                            .filter(|p| p.start_time == exited.start_time);
                        let p = alive.unwrap_or(exited);
                        known.insert(p.pid, p.start_time);
                        processes.push(p);
                    }
                }
            }
            destroyed.push(s);
        }
    }

    /// Details of `pid`, from the cache when its start time is unchanged.
    /// `None` when the process is gone.
    fn process_details(&mut self, dir: &Dir, pid: u32, buf: &mut Vec<u8>) -> Option<Process> {
        dir.read_pid_file(pid, b"/stat", buf).ok()?;
        let stat: StatInfo = procfs::parse_stat(buf).ok()?;
        if let Some(c) = self.cache.get_mut(&pid) {
            if c.starttime == stat.starttime {
                // Reparenting and renames (prctl) are cheap to follow.
                c.process.ppid = Some(stat.ppid);
                if c.process.name != stat.comm {
                    c.process.name = stat.comm;
                }
                return Some(c.process.clone());
            }
        }
        let cmdline = match dir.read_pid_file(pid, b"/cmdline", buf) {
            Ok(()) => procfs::parse_cmdline(buf),
            Err(_) => Vec::new(),
        };
        let uid = match dir.read_pid_file(pid, b"/status", buf) {
            Ok(()) => procfs::parse_status_uid(buf),
            Err(_) => None,
        };
        let container_id = match self.containers && dir.read_pid_file(pid, b"/cgroup", buf).is_ok()
        {
            true => cgroup::container_id_from_cgroup(&String::from_utf8_lossy(buf)),
            false => None,
        };
        let start_time = self
            .btime
            .map(|bt| bt + stat.starttime / self.clk_tck.max(1));
        let process = Process {
            pid,
            start_time,
            name: stat.comm,
            cmdline,
            exe: dir.read_pid_link(pid, b"/exe"),
            uid,
            user: uid.and_then(|u| self.users.name(u)).map(str::to_string),
            ppid: Some(stat.ppid),
            container_id,
        };
        self.cache.insert(
            pid,
            CachedProcess {
                starttime: stat.starttime,
                process: process.clone(),
            },
        );
        Some(process)
    }
}

/// The processes whose fds a scan could not read: their users (for the
/// `permission` reason; `true` when one's user is unknown), counted in
/// `diag` and said in a warning.
fn denied_owners(
    scan: &FdScan,
    dir: &Dir,
    diag: &mut Diagnostics,
    warnings: &mut Vec<String>,
) -> (Vec<u32>, bool) {
    let mut denied_uids: Vec<u32> = Vec::new();
    let mut any_denied_unknown_uid = false;
    diag.processes_denied = scan.denied.len() as u32;
    diag.processes_vanished = scan.vanished;
    for &pid in &scan.denied {
        match dir.pid_uid(pid) {
            Some(uid) => denied_uids.push(uid),
            None => any_denied_unknown_uid = true,
        }
    }
    denied_uids.sort_unstable();
    denied_uids.dedup();
    if !scan.denied.is_empty() {
        // SAFETY: geteuid has no preconditions.
        let hint = if unsafe { libc::geteuid() } == 0 {
            "they are more privileged than this process"
        } else {
            "run as root to see them"
        };
        let n = scan.denied.len();
        warnings.push(format!(
                "{n} {} could not be inspected (permission denied); {} sockets are reported without owner (reason permission); {hint}",
                if n == 1 { "process" } else { "processes" },
                if n == 1 { "its" } else { "their" },
            ));
    }
    if scan.failed > 0 {
        let e = std::io::Error::from_raw_os_error(scan.first_failure.unwrap_or(0));
        warnings.push(format!(
            "{} processes' fd tables could not be read ({e})",
            scan.failed
        ));
    }
    (denied_uids, any_denied_unknown_uid)
}

/// The interfaces and local addresses; a failure is a warning.
fn interfaces(
    warnings: &mut Vec<String>,
) -> (Vec<crate::snapshot::Interface>, Vec<std::net::IpAddr>) {
    match ifaddrs::interfaces() {
        Ok(ifaces) => {
            let addrs = ifaddrs::local_addresses(&ifaces);
            (ifaces, addrs)
        }
        Err(e) => {
            warnings.push(format!("getifaddrs failed: {e}; local addresses unknown"));
            (Vec::new(), Vec::new())
        }
    }
}

/// What a sample gets besides the socket tables (see `side_channels`).
struct SideChannels {
    /// Sockets the destroy notifications reported.
    closed: Vec<Socket>,
    captured: Vec<CapturedFlow>,
}

/// Every this long tier T0 walks the sockets again to reconcile its table
/// with the kernel's (a record the events could not give is corrected).
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// A live socket with no owner this long after it appeared (an accepted
/// connection that did no I/O yet) makes T0 walk to find its process ...
const OWNERLESS_FOR_NS: u64 = 2_000_000_000;
/// ... but not more often than this.
const OWNERLESS_WALK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Tier T0's state between samples: the socket table the events keep,
/// and what the last walk found that the events do not carry.
struct EventFed {
    table: events::table::EventTable,
    walked_at: std::time::Instant,
    /// The processes the owners are, by pid (read once each).
    processes: rustc_hash::FxHashMap<u32, Process>,
    /// UDP sockets' owners by inode, from the walk (UDP has no lifecycle
    /// events; a new UDP socket's owner comes from its I/O).
    udp_owners: rustc_hash::FxHashMap<u64, crate::snapshot::Owners>,
    /// What the walk's owner scan saw, for the reasons of unowned sockets.
    view: unowned::OwnerView,
    listeners: unowned::Listeners,
    /// Table generation at the last two samples: equal means the last
    /// sample changed nothing, so its rates are all zero already.
    generations: (u64, u64),
    /// What the last T0 sample handed out, for the next one's change set;
    /// `None` until the first sample after a walk.
    last: Option<LastT0>,
    /// The owner scan of a reconcile just done, for the sample that
    /// follows it (its UDP sockets' owners); `None` otherwise.
    fresh_scan: Option<FdScan>,
}

/// The parts of tier T0's last sample that the next one is compared with
/// to tell which sockets changed (the table's own sockets need no
/// comparing: the events name the slots they moved).
struct LastT0 {
    /// Owners of the table's sockets, sorted, without repeats.
    tcp_pids: Vec<u32>,
    /// The UDP sockets as handed out (after the table's).
    udp: Vec<Socket>,
    /// How many sockets it had (closed ones after the UDP sockets).
    len: usize,
    processes: Vec<Process>,
    interfaces: Vec<crate::snapshot::Interface>,
    local_addresses: Vec<std::net::IpAddr>,
}

impl LastT0 {
    /// The change set from this sample to `next`, whose first `tcp_len`
    /// sockets are the table's with only the sockets at `changed` moved;
    /// `None` when `next` differs in more than counters.
    fn changes_to(
        &self,
        next: &Snapshot,
        tcp_len: usize,
        mut changed: Vec<u32>,
    ) -> Option<SocketChanges> {
        if next.sockets.len() != self.len
            || self.len != tcp_len + self.udp.len()
            || next.processes != self.processes
            || next.interfaces != self.interfaces
            || next.local_addresses != self.local_addresses
        {
            return None;
        }
        for (j, (a, b)) in self
            .udp
            .iter()
            .zip(next.sockets.iter_from(tcp_len))
            .enumerate()
        {
            if a != b {
                if !a.differs_only_in_counters(b) {
                    return None;
                }
                changed.push((tcp_len + j) as u32);
            }
        }
        Some(SocketChanges { changed })
    }
}

impl EventFed {
    /// The state a seeding walk leaves, its sockets moved out of `snap`
    /// into the table; what the table does not follow is handed back.
    fn from_list(snap: &mut Snapshot, view: Option<unowned::OwnerView>) -> (EventFed, SocketList) {
        let udp_owners = udp_owners_of(snap);
        let (table, rest) = events::table::EventTable::from_list(std::mem::take(&mut snap.sockets));
        let mut fed = EventFed {
            generations: (u64::MAX, table.generation()),
            table,
            walked_at: std::time::Instant::now(),
            processes: snap.processes.iter().map(|p| (p.pid, p.clone())).collect(),
            udp_owners,
            view: view.unwrap_or_default(),
            listeners: unowned::Listeners::default(),
            last: None,
            fresh_scan: None,
        };
        fed.listeners_changed();
        (fed, rest)
    }

    /// Brings this state in line with a walk's sample (see
    /// [`events::table::EventTable::reconcile`]).
    fn reconcile(&mut self, snap: &Snapshot, view: Option<unowned::OwnerView>) {
        self.table.reconcile(&snap.sockets);
        self.udp_owners = udp_owners_of(snap);
        self.processes = snap.processes.iter().map(|p| (p.pid, p.clone())).collect();
        self.view = view.unwrap_or_default();
        self.walked_at = std::time::Instant::now();
        self.generations = (u64::MAX, self.table.generation());
        self.last = None;
        self.listeners_changed();
    }

    fn listeners_changed(&mut self) {
        let listening: Vec<Socket> = self
            .table
            .sockets()
            .iter()
            .filter(|s| s.state == SocketState::Listen)
            .cloned()
            .collect();
        self.listeners = unowned::Listeners::of(&listening);
    }

    /// A walk is due: every [`RECONCILE_EVERY`], or for a socket whose
    /// owner no event named.
    fn reconcile_due(&self, now: std::time::Instant, now_ns: u64) -> bool {
        let since = now.saturating_duration_since(self.walked_at);
        since >= RECONCILE_EVERY
            || (since >= OWNERLESS_WALK_EVERY
                && self
                    .table
                    .ownerless_since()
                    .is_some_and(|t| now_ns.saturating_sub(t) >= OWNERLESS_FOR_NS))
    }

    fn sampled(&mut self) {
        self.generations = (self.generations.1, self.table.generation());
    }

    /// The last sample changed nothing against the one before.
    fn settled(&self) -> bool {
        self.generations.0 == self.generations.1
    }
}

/// The owners of a walk's UDP sockets, by inode.
fn udp_owners_of(snap: &Snapshot) -> rustc_hash::FxHashMap<u64, crate::snapshot::Owners> {
    snap.sockets
        .iter()
        .filter(|s| s.proto == Proto::Udp && s.inode != 0 && !s.owners.is_empty())
        .map(|s| (s.inode, s.owners.clone()))
        .collect()
}

/// CLOCK_MONOTONIC in ns, the clock of the events' `ts_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Every UDP socket from netlink (skipping a family sockstat says is
/// empty), owners not filled in.
fn dump_udp(stat: Option<sockstat::SockStat>) -> Result<Vec<Socket>, NetlinkError> {
    let mut out = Vec::new();
    if stat.is_some_and(|st| st.udp4 == 0 && st.udp6 == 0) {
        return Ok(out);
    }
    let mut conn = DiagSocketConn::open()?;
    for (family, proto, _) in FAMILIES {
        if proto != Proto::Udp || stat.is_some_and(|st| known_empty(&st, family, proto)) {
            continue;
        }
        conn.dump(family, proto, &mut |d| out.push(to_socket(d)))?;
    }
    Ok(out)
}

/// Loads the kernel event program (tier T0) when the options ask for it
/// and no lower tier is forced; else says why not (once in the log, then
/// in every sample's `tierReason`). Never fails the collector.
fn start_events(
    options: &LinuxOptions,
    cap: Option<Tier>,
) -> (Option<events::EventCollector>, Option<String>) {
    let walks = options.source == SocketSource::Auto && options.owners == OwnerSource::Auto;
    if !options.events || cap.is_some() || !walks {
        return (None, None);
    }
    match events::EventCollector::start() {
        Ok(ev) => {
            log::info!("tier T0: kernel socket events loaded");
            (Some(ev), None)
        }
        Err(e) => {
            let why = format!("kernel events (tier T0) unavailable: {e}");
            if e.is_expected() {
                log::info!("{why}; using the walks of tier T1/T2");
            } else {
                log::warn!("{why}; using the walks of tier T1/T2");
            }
            (None, Some(why))
        }
    }
}

/// Reads every TCP/UDP socket table: TCP from the BPF iterator when given
/// one (its failure is put in `tcp_error`, even when the sample then fails,
/// and netlink is used), else netlink unless told otherwise or known
/// unsupported; a table netlink cannot give comes from `/proc/net`.
fn collect_sockets(
    source: SocketSource,
    netlink_unsupported: bool,
    stat: Option<sockstat::SockStat>,
    mut out: Vec<Socket>,
    tcp: Option<&mut tcp_iter::TcpIter>,
    tcp_error: &mut Option<bpf_iter::BpfError>,
) -> Result<SocketTable, CollectError> {
    let mut warnings = Vec::new();
    let mut tcp_done = false;
    if let Some(it) = tcp {
        match it.read(&mut |d| out.push(to_socket(d))) {
            Ok(()) => tcp_done = true,
            Err(e) => {
                out.clear();
                warnings.push(format!(
                    "BPF TCP iterator failed ({e}); using netlink sock_diag"
                ));
                *tcp_error = Some(e);
            }
        }
    }
    let mut conn = None;
    if source != SocketSource::ProcNet && !netlink_unsupported {
        match DiagSocketConn::open() {
            Ok(c) => conn = Some(c),
            Err(e) if e.is_unsupported() => warnings.push(format!(
                "netlink sock_diag unavailable ({e}); reading /proc/net instead (no byte counters)"
            )),
            Err(e) => return Err(netlink_error(e)),
        }
    } else if source != SocketSource::ProcNet {
        warnings.push(
            "netlink sock_diag unavailable; reading /proc/net instead (no byte counters)".into(),
        );
    }
    let mut used_netlink = false;
    let mut used_procfs = false;
    for (family, proto, path) in FAMILIES {
        if tcp_done && proto == Proto::Tcp {
            continue;
        }
        if let Some(c) = conn.as_mut() {
            if stat.is_some_and(|st| known_empty(&st, family, proto)) {
                used_netlink = true;
                continue;
            }
            let before = out.len();
            match c.dump(family, proto, &mut |d| out.push(to_socket(d))) {
                Ok(()) => {
                    used_netlink = true;
                    continue;
                }
                Err(e) if e.is_unsupported() => {
                    out.truncate(before);
                    warnings.push(format!(
                        "netlink sock_diag cannot dump {path} sockets ({e}); reading {path}"
                    ));
                }
                Err(e) => return Err(netlink_error(e)),
            }
        }
        used_procfs = true;
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let v6 = family == libc::AF_INET6 as u8;
                let mut parsed = Vec::new();
                procnet_fallback::parse_proc_net(&text, proto, v6, &mut parsed).map_err(|e| {
                    CollectError::Malformed {
                        what: "/proc/net socket table",
                        detail: format!("{path}: {e}"),
                    }
                })?;
                out.extend(parsed.into_iter().map(to_socket));
            }
            // No IPv6 (or no UDP) in this kernel: nothing to list.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CollectError::Os {
                    call: "read /proc/net",
                    source: e,
                })
            }
        }
    }
    let backend = match (tcp_done, used_netlink, used_procfs) {
        (true, _, false) => Backend::BpfNetlink,
        (true, _, true) => Backend::BpfProcFs,
        (false, true, true) => Backend::NetlinkProcFs,
        (false, true, false) => Backend::Netlink,
        _ => Backend::ProcFs,
    };
    Ok(SocketTable {
        sockets: out,
        backend,
        warnings,
        tcp_from_bpf: tcp_done,
    })
}

/// The BPF owner table from one run of the (loaded) iterator, sorted;
/// the iterator is handed back for the next sample.
fn bpf_owners(
    mut it: bpf_iter::OwnerIter,
    hint: usize,
) -> (
    bpf_iter::OwnerIter,
    Result<Vec<(u64, u32)>, bpf_iter::BpfError>,
) {
    let mut pairs = Vec::with_capacity(hint);
    let result = it.read(&mut pairs).map(|()| {
        pairs.sort_unstable();
        pairs.dedup();
        // Kept with the scan for many samples: grown by doubling, a
        // quarter or more of it was room (2.1 MB for 1.6 at 100k sockets).
        pairs.shrink_to_fit();
        pairs
    });
    (it, result)
}

/// Runs a `read`-like system call until a signal does not interrupt it;
/// its byte count, or the error.
pub(crate) fn retry_eintr(mut call: impl FnMut() -> isize) -> std::io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// True when `/proc/net/sockstat` says this table has no socket, so its
/// dump (which walks the whole shared hash table) can be skipped.
fn known_empty(st: &sockstat::SockStat, family: u8, proto: Proto) -> bool {
    let v6 = family == libc::AF_INET6 as u8;
    match (proto, v6) {
        // TIME_WAIT sockets are counted for both families together.
        (Proto::Tcp, false) => st.tcp4 == 0 && st.tcp_tw == 0,
        (Proto::Tcp, true) => st.tcp6 == 0 && st.tcp_tw == 0,
        (Proto::Udp, false) => st.udp4 == 0,
        (Proto::Udp, true) => st.udp6 == 0,
    }
}

/// A decoded kernel socket as a snapshot socket, owners not yet known.
fn to_socket(d: DiagSocket) -> Socket {
    Socket {
        proto: d.proto,
        local: d.local,
        remote: d.remote,
        state: SocketState::from_linux(d.state),
        inode: d.inode,
        // TIME_WAIT and request sockets carry no owner uid (0 here).
        uid: (d.inode != 0).then_some(d.uid),
        owners: Default::default(),
        unowned_reason: None,
        bytes_sent: d.bytes_sent,
        bytes_received: d.bytes_received,
        tcp_health: d.tcp_health,
        closed: false,
        io_owner: None,
    }
}

fn netlink_error(e: NetlinkError) -> CollectError {
    match e {
        NetlinkError::Os { call, source } => CollectError::Os { call, source },
        NetlinkError::Diag(d) => CollectError::Malformed {
            what: "netlink sock_diag reply",
            detail: d.to_string(),
        },
    }
}
