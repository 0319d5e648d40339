//! Tier T0: socket lifecycle and owners from kernel events.
//!
//! The BPF program (`procnet.bpf.c`, compiled by build.rs with clang and
//! loaded here by libbpf through libbpf-rs) takes each socket's owner in
//! process context (connect, accept, send, receive) and, when a socket
//! closes, writes one record with its endpoints, owner and final counters
//! to a ring buffer. The collector drains it every sample: a connection
//! that opened and closed between two samples still has its process on
//! both ends and its exact bytes, which the socket-destroy notifications
//! of tier T1 cannot give (they come after the owner let go).
//!
//! Why libbpf-rs and not aya: the program needs socket-local storage, a
//! ring buffer, tp_btf attachments and CO-RE relocations
//! against the running kernel; libbpf is the reference loader for all of
//! them (the kernel's own selftests use it), Debian ships the clang that
//! compiles the C, and the loader is one crate with a vendored libbpf
//! (needs only libelf and zlib at build time, both in Debian). aya would
//! spare the C library but its support for socket storage and for C
//! objects' CO-RE is younger; a wrong relocation here is a silent wrong
//! byte count.
//!
//! Live TCP sockets come from the events too ([`table`]): every state a
//! socket enters is a ring-buffer record, and every socket that did I/O
//! leaves its latest counters in the `tcp_active` map, which each sample
//! reads and empties in one batch (one record per socket per sample,
//! however many calls it made; nothing for an idle one). The iterator walk
//! of tier T1 runs only at start, after a lost record, and every 60 s, to
//! reconcile. A ring-buffer overflow is counted by the program and said
//! in the sample's warnings.

pub mod meter;
pub mod record;
pub mod table;

use crate::snapshot::{Process, Socket, SocketState, TcpHealth, UnknownReason};

use libbpf_rs::{Link, MapCore, Object, ObjectBuilder, RingBuffer, RingBufferBuilder};
use record::{Closed, Record};
use std::sync::{Arc, Mutex};

/// The compiled program (empty when build.rs could not build it).
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/procnet.bpf.o"));

/// At most this many closed sockets wait for the next sample; beyond that
/// they are counted as lost (a flood must not grow memory without bound).
const MAX_PENDING: usize = 200_000;

/// Why the event path is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// build.rs could not compile the program (no clang at build time).
    #[error("this binary was built without its BPF event program ({0})")]
    NotBuilt(&'static str),
    /// libbpf could not open, load or attach the program.
    #[error("{step} failed: {source}{hint}")]
    Libbpf {
        step: String,
        #[source]
        source: libbpf_rs::Error,
        hint: &'static str,
    },
}

impl EventsError {
    fn libbpf(step: impl Into<String>, source: libbpf_rs::Error) -> EventsError {
        let hint = match source.kind() {
            libbpf_rs::ErrorKind::PermissionDenied => {
                " (kernel events need root: CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)"
            }
            libbpf_rs::ErrorKind::NotFound => " (the kernel lacks BTF or a hooked function)",
            _ => "",
        };
        EventsError::Libbpf {
            step: step.into(),
            source,
            hint,
        }
    }

    /// Not root, no BTF: the common case, worth a debug line only.
    pub fn is_expected(&self) -> bool {
        match self {
            EventsError::NotBuilt(_) => true,
            EventsError::Libbpf { source, .. } => matches!(
                source.kind(),
                libbpf_rs::ErrorKind::PermissionDenied | libbpf_rs::ErrorKind::NotFound
            ),
        }
    }
}

/// Records waiting for the next sample, and how many were lost.
#[derive(Default)]
struct Pending {
    closed: Vec<Closed>,
    dropped: u64,
}

/// At most this many `tcp_active` entries are read per batch call.
const ACTIVE_BATCH: u32 = 4096;

/// The loaded and attached event program.
pub struct EventCollector {
    /// Read by the sampler and, between samples, by [`RingReader`]'s
    /// thread (never both at once: libbpf's consumer is one reader).
    ring: Arc<Mutex<RingBuffer<'static>>>,
    /// Stops the reader thread when dropped.
    _reader: RingReader,
    pending: Arc<Mutex<Pending>>,
    /// Detach on drop; kept before `object` so they go first.
    _links: Vec<Link>,
    object: Object,
    /// The program's own loss counter as last read.
    lost_seen: u64,
    /// Its count of UDP calls as last read (see [`EventCollector::poll`]).
    udp_io_seen: u64,
    /// Activity records read by [`EventCollector::poll`], not drained yet.
    active: Vec<Record>,
    /// Keeps the kernel's BPF run-time statistics on while held
    /// (`BPF_ENABLE_STATS`); `None` when the kernel refused.
    _stats: Option<std::os::fd::OwnedFd>,
    /// The programs' cost and the activity back-off ([`meter`]).
    meter: meter::SelfMeter,
    /// The clock the meter measures sample intervals on.
    loaded_at: std::time::Instant,
    /// The interval last written to the program's `activity_gap` map.
    gap_written: u64,
}

/// What the programs cost over the last sample and the back-off in force
/// (see [`meter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metering {
    /// Kernel time spent in the programs since loading, ns, and their runs.
    pub run_time_ns: u64,
    pub run_count: u64,
    /// Their share of one CPU over the last sample interval, millionths;
    /// `None` at the first sample.
    pub share_ppm: Option<u32>,
    /// The share they are kept within, millionths.
    pub budget_ppm: u32,
    /// The least time between two activity records of one TCP socket, ns.
    pub activity_interval_ns: u64,
}

impl Metering {
    /// Into a sample's diagnostics (`/healthz` `collector`, `/metrics`).
    pub fn fill(&self, diag: &mut crate::snapshot::Diagnostics) {
        diag.bpf_run_time_ns = Some(self.run_time_ns);
        diag.bpf_run_count = Some(self.run_count);
        diag.bpf_cpu_share_ppm = self.share_ppm;
        diag.bpf_cpu_budget_ppm = Some(self.budget_ppm);
        diag.bpf_activity_interval_ns = Some(self.activity_interval_ns);
    }
}

/// Empties the ring buffer as records arrive, on a thread of its own that
/// sleeps in `epoll_wait` until the kernel says there is something (a
/// burst wakes it once; an idle machine, once a second). The ring is then
/// a queue, not the storage of a whole sampling interval: 2 MiB (4 MiB of
/// resident mappings, libbpf maps the data twice) carries bursts that an
/// 8 MiB ring emptied only at each sample lost (6,000 sockets opened and
/// closed within a second needed more than 2 MiB).
struct RingReader {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RingReader {
    fn start(ring: Arc<Mutex<RingBuffer<'static>>>) -> RingReader {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let epoll = ring.lock().unwrap_or_else(|e| e.into_inner()).epoll_fd();
        let spawned = std::thread::Builder::new()
            .name("procnet-bpf-ring".into())
            .spawn(move || {
                // The thread holds the ring (and so its epoll descriptor)
                // until it stops.
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut ev = libc::epoll_event { events: 0, u64: 0 };
                    // SAFETY: `epoll` stays open while `ring` is held;
                    // `ev` is one valid event to fill.
                    let n = unsafe { libc::epoll_wait(epoll, &mut ev, 1, 1000) };
                    if n > 0 {
                        let ring = ring.lock().unwrap_or_else(|e| e.into_inner());
                        if let Err(e) = ring.consume() {
                            log::debug!("BPF ring buffer: {e}");
                        }
                    } else if n < 0
                        && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                    {
                        log::debug!(
                            "BPF ring buffer reader stops: {}",
                            std::io::Error::last_os_error()
                        );
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            // The sampler still empties the ring at each sample.
            log::warn!("cannot start the BPF ring buffer reader ({e}); bursts may be lost");
        }
        RingReader { stop }
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// libbpf's own messages go to the log, not to stderr.
fn route_libbpf_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, |level, msg| {
            let msg = msg.trim_end();
            match level {
                libbpf_rs::PrintLevel::Warn => log::debug!("libbpf: {msg}"),
                _ => log::trace!("libbpf: {msg}"),
            }
        })));
    });
}

/// The optional program: it hangs off `tcp:tcp_probe`, a tracepoint of
/// TCP's receive path that the kernel may lose or reshape, unlike the
/// `sock:` ones. (Not an fexit on `tcp_rcv_established`: BPF trampolines
/// are refused on some kernels, e.g. this project's CI machines, EPERM.)
const ACK_PROGRAM: &str = "on_ack";

/// Opens, loads and attaches the event program, with or without
/// [`ACK_PROGRAM`].
fn load_and_attach(with_ack: bool) -> Result<(Object, Vec<Link>), EventsError> {
    let mut open = ObjectBuilder::default()
        .open_memory(OBJECT)
        .map_err(|e| EventsError::libbpf("opening the BPF event program", e))?;
    // Only this network namespace, the one the walks list.
    let netns = std::fs::metadata("/proc/self/ns/net")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m) as u32)
        .unwrap_or(0);
    if let Some(mut rodata) = open
        .maps_mut()
        .find(|m| m.name().to_string_lossy().ends_with(".rodata"))
    {
        if let Some(v) = rodata.initial_value_mut().filter(|v| v.len() >= 4) {
            v[..4].copy_from_slice(&netns.to_ne_bytes());
        }
    }
    if !with_ack {
        for mut prog in open.progs_mut() {
            if prog.name() == ACK_PROGRAM {
                prog.set_autoload(false);
            }
        }
    }
    let object = open
        .load()
        .map_err(|e| EventsError::libbpf("loading the BPF event program", e))?;
    let mut links = Vec::new();
    for prog in object.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if !with_ack && name == ACK_PROGRAM {
            continue;
        }
        let link = prog
            .attach()
            .map_err(|e| EventsError::libbpf(format!("attaching BPF program {name}"), e))?;
        links.push(link);
    }
    Ok((object, links))
}

impl EventCollector {
    /// Loads and attaches the program. Fails without root, without kernel
    /// BTF, or when this binary was built without clang.
    pub fn start() -> Result<EventCollector, EventsError> {
        if OBJECT.is_empty() {
            return Err(EventsError::NotBuilt(
                option_env!("PROCNET_BPF_UNAVAILABLE").unwrap_or("clang was not available"),
            ));
        }
        route_libbpf_log();
        let (object, links) = match load_and_attach(true) {
            Ok(loaded) => loaded,
            Err(e) => match load_and_attach(false) {
                Ok(loaded) => {
                    log::info!(
                        "kernel events: the ACK hook ({ACK_PROGRAM}) is unavailable ({e}); \
                         bytes a send left queued are counted at the socket's next call \
                         or state change"
                    );
                    loaded
                }
                // The first error says more: it is the one with every hook.
                Err(_) => return Err(e),
            },
        };
        let pending = Arc::new(Mutex::new(Pending::default()));
        let ring = {
            let map = object
                .maps()
                .find(|m| m.name() == "records")
                .expect("procnet.bpf.c defines the records ring buffer");
            let sink = Arc::clone(&pending);
            let mut builder = RingBufferBuilder::new();
            builder
                .add(&map, move |bytes: &[u8]| {
                    let mut p = sink.lock().unwrap_or_else(|e| e.into_inner());
                    match record::parse(bytes) {
                        Ok(c) if p.closed.len() < MAX_PENDING => p.closed.push(c),
                        Ok(_) => p.dropped += 1,
                        Err(e) => {
                            log::debug!("{e}");
                            p.dropped += 1;
                        }
                    }
                    0
                })
                .map_err(|e| EventsError::libbpf("opening the BPF ring buffer", e))?;
            builder
                .build()
                .map_err(|e| EventsError::libbpf("opening the BPF ring buffer", e))?
        };
        let ring = Arc::new(Mutex::new(ring));
        let reader = RingReader::start(Arc::clone(&ring));
        // SAFETY: a plain syscall wrapper; a non-negative result is a new
        // descriptor we own.
        let stats = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        let stats = (stats >= 0).then(|| {
            // SAFETY: see above: a fresh descriptor nobody else owns.
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(stats) }
        });
        if stats.is_none() {
            log::debug!(
                "BPF run-time statistics unavailable; the event programs' cost is not shown"
            );
        }
        Ok(EventCollector {
            ring,
            _reader: reader,
            pending,
            _links: links,
            object,
            lost_seen: 0,
            udp_io_seen: 0,
            active: Vec::new(),
            _stats: stats,
            meter: meter::SelfMeter::with_budget(meter::SelfMeter::budget_from(
                std::env::var(meter::BUDGET_ENV).ok().as_deref(),
            )),
            loaded_at: std::time::Instant::now(),
            gap_written: 0,
        })
    }

    /// Meters one sample: reads the programs' run time, moves the back-off
    /// (writing the new interval into the program's `activity_gap` map when
    /// it changed) and says both; `None` without BPF run-time statistics
    /// (then nothing is ever skipped).
    pub fn meter(&mut self) -> Option<Metering> {
        let (run_time_ns, run_count) = self.run_time()?;
        let now = u64::try_from(self.loaded_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let gap = self.meter.observe(run_time_ns, now);
        if gap != self.gap_written {
            match self.object.maps().find(|m| m.name() == "activity_gap") {
                Some(map) => match map.update(
                    &0u32.to_ne_bytes(),
                    &gap.to_ne_bytes(),
                    libbpf_rs::MapFlags::ANY,
                ) {
                    Ok(()) => {
                        log::debug!(
                            "BPF programs at {} ppm of a CPU: activity records at most every {gap} ns per socket",
                            self.meter.share_ppm().unwrap_or(0)
                        );
                        self.gap_written = gap;
                    }
                    Err(e) => log::debug!("BPF activity_gap: {e}"),
                },
                None => log::debug!("BPF activity_gap map missing"),
            }
        }
        Some(Metering {
            run_time_ns,
            run_count,
            share_ppm: self.meter.share_ppm(),
            budget_ppm: self.meter.budget_ppm(),
            activity_interval_ns: self.gap_written,
        })
    }

    /// Every record since the last call (state changes, closes and the
    /// latest activity of each socket that did I/O), and how many were
    /// lost meanwhile (ring buffer or `tcp_active` full, or too many
    /// waiting).
    pub fn drain(&mut self) -> (Vec<Record>, u64) {
        self.poll();
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut records = std::mem::take(&mut p.closed);
        let mut lost = std::mem::take(&mut p.dropped);
        drop(p);
        records.append(&mut self.active);
        let counted = self.kernel_counter(0);
        lost += counted.saturating_sub(self.lost_seen);
        self.lost_seen = counted;
        (records, lost)
    }

    /// Reads what the kernel has for us without handing it out (the next
    /// [`drain`](Self::drain) does); whether anything happened since the
    /// last drain: a record, a lost one, or a UDP send or receive.
    pub fn poll(&mut self) -> bool {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = ring.consume() {
            log::debug!("BPF ring buffer: {e}");
        }
        drop(ring);
        self.read_active();
        let udp_io = self.kernel_counter(1);
        let udp_moved = udp_io != self.udp_io_seen;
        self.udp_io_seen = udp_io;
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let waiting = !p.closed.is_empty() || p.dropped > 0;
        drop(p);
        waiting || !self.active.is_empty() || udp_moved || self.kernel_counter(0) != self.lost_seen
    }

    /// Moves the `tcp_active` entries into `self.active`, deleting them
    /// (a batch of syscalls for all of them, none when the map is empty).
    fn read_active(&mut self) {
        let Some(map) = self.object.maps().find(|m| m.name() == "tcp_active") else {
            return;
        };
        let batch = match map.lookup_and_delete_batch(
            ACTIVE_BATCH,
            libbpf_rs::MapFlags::ANY,
            libbpf_rs::MapFlags::ANY,
        ) {
            Ok(b) => b,
            Err(e) => {
                log::debug!("BPF tcp_active: {e}");
                return;
            }
        };
        for (_key, value) in batch {
            match record::parse(&value) {
                Ok(r) => self.active.push(r),
                Err(e) => log::debug!("{e}"),
            }
        }
    }

    /// The UDP sockets that moved bytes (by socket cookie), with their
    /// endpoints, owner and byte counts so far. Read before a dump: an
    /// entry whose socket is not in the dump that follows has closed.
    pub fn udp_table(&self) -> Vec<(u64, Closed)> {
        let Some(map) = self.object.maps().find(|m| m.name() == "udp_socks") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for key in map.keys() {
            let Ok(Some(value)) = map.lookup(&key, libbpf_rs::MapFlags::ANY) else {
                continue; // evicted or deleted meanwhile
            };
            let (Ok(cookie), Ok(c)) = (<[u8; 8]>::try_from(key.as_slice()), record::parse(&value))
            else {
                continue;
            };
            out.push((u64::from_ne_bytes(cookie), c));
        }
        out
    }

    /// Forgets UDP sockets that closed (reported once).
    pub fn forget_udp(&self, cookies: &[u64]) {
        let Some(map) = self.object.maps().find(|m| m.name() == "udp_socks") else {
            return;
        };
        for c in cookies {
            let _ = map.delete(&c.to_ne_bytes());
        }
    }

    /// Kernel time spent in the event programs (ns) and how often they
    /// ran, since loading; `None` without BPF run-time statistics.
    pub fn run_time(&self) -> Option<(u64, u64)> {
        self._stats.as_ref()?;
        let (mut ns, mut runs) = (0u64, 0u64);
        for prog in self.object.progs() {
            // SAFETY: a zeroed bpf_prog_info is valid; the kernel fills
            // at most `len` bytes of it.
            let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&prog));
            // SAFETY: info and len outlive the call; fd is the program's.
            let r = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
            if r == 0 {
                ns += info.run_time_ns;
                runs += info.run_cnt;
            }
        }
        Some((ns, runs))
    }

    /// The program's counter `at` in its `lost` array: 0 the records that
    /// did not fit, 1 the UDP calls seen.
    fn kernel_counter(&self, at: u32) -> u64 {
        let Some(map) = self.object.maps().find(|m| m.name() == "lost") else {
            return 0;
        };
        match map.lookup(&at.to_ne_bytes(), libbpf_rs::MapFlags::ANY) {
            Ok(Some(v)) if v.len() >= 8 => u64::from_ne_bytes(v[..8].try_into().expect("8 bytes")),
            _ => 0,
        }
    }
}

/// A closed socket from an event, as a snapshot socket (reported closed,
/// no inode); its owner's pid in `owners` when the event had one.
pub fn closed_socket(c: &Closed) -> Socket {
    Socket {
        owners: c.owner.iter().map(|o| o.tgid).collect(),
        unowned_reason: c.owner.is_none().then_some(UnknownReason::Exited),
        bytes_sent: Some(c.sent),
        bytes_received: Some(c.received),
        tcp_health: match (c.retransmits, c.rtt_us) {
            (Some(retransmits), rtt) => Some(TcpHealth {
                rtt_us: rtt.filter(|&r| r > 0),
                retransmits,
            }),
            _ => None,
        },
        closed: true,
        ..Socket::new(c.proto, c.local, c.remote, SocketState::Close)
    }
}

/// The process an event named, for when it has exited (or was not seen
/// by the fd scan): its pid, name and start time, no more. `btime`: the
/// boot time, seconds since the epoch.
pub fn exited_process(o: &record::Owner, btime: Option<u64>) -> Process {
    Process {
        pid: o.tgid,
        start_time: btime.map(|bt| bt + o.start_ns / 1_000_000_000),
        name: o.comm.clone(),
        ..Process::default()
    }
}
