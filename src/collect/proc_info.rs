//! A process's parent and start time from its pid, for processes the
//! snapshot does not list (a snapshot only lists processes that hold
//! sockets, so a watched parent that only forks, or a middle process of a
//! tree, is not in it).
//!
//! Linux reads `/proc/<pid>/stat` with the collector's own `/proc` reader
//! and decoder, and computes the start time as the collector does (boot
//! time + start ticks / `CLK_TCK`). The boot time is taken from the
//! collector's own numbers ([`ProcReader::calibrate`]), not re-read:
//! `/proc/stat`'s `btime` can differ by a second between two reads (it is
//! derived from the clock), and one second off would make every process
//! read here a stranger to the same process in the snapshot.
//! Other systems answer `None`: their trees come from the snapshot alone.
//! It is OS access, so it lives in `collect/`; the monitor's pure lineage
//! tracking only sees [`ProcInfo`].

/// A process's start time and parent, as far as they could be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcInfo {
    /// Seconds since the Unix epoch, as in [`crate::snapshot::Process`].
    pub start_time: Option<u64>,
    pub ppid: Option<u32>,
}

#[cfg(target_os = "linux")]
pub struct ProcReader {
    dir: Option<super::linux::procfs::Dir>,
    btime: Option<u64>,
    /// `btime` is the collector's (see [`ProcReader::calibrate`]).
    calibrated: bool,
    clk_tck: u64,
    buf: Vec<u8>,
}

impl Default for ProcReader {
    fn default() -> ProcReader {
        ProcReader::new()
    }
}

#[cfg(target_os = "linux")]
impl ProcReader {
    pub fn new() -> ProcReader {
        use super::linux::procfs;
        let btime = std::fs::read("/proc/stat")
            .ok()
            .and_then(|b| procfs::parse_btime(&b));
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        ProcReader {
            dir: procfs::Dir::open(c"/proc").ok(),
            btime,
            calibrated: false,
            clk_tck: if tck > 0 { tck as u64 } else { 100 },
            buf: Vec::with_capacity(512),
        }
    }

    /// Takes the boot time the collector used from a process of `snap`
    /// (its start time less its start ticks in seconds), once.
    pub fn calibrate(&mut self, snap: &crate::snapshot::Snapshot) {
        if self.calibrated {
            return;
        }
        for p in snap.processes.iter().take(16) {
            let Some(start) = p.start_time else { continue };
            let Some(ticks) = self.stat(p.pid).map(|s| s.starttime) else {
                continue;
            };
            if let Some(bt) = start.checked_sub(ticks / self.clk_tck) {
                self.btime = Some(bt);
                self.calibrated = true;
                return;
            }
        }
    }

    fn stat(&mut self, pid: u32) -> Option<super::linux::procfs::StatInfo> {
        let dir = self.dir.as_ref()?;
        dir.read_pid_file(pid, b"/stat", &mut self.buf).ok()?;
        super::linux::procfs::parse_stat(&self.buf).ok()
    }

    /// `None` when `pid` is gone (or `/proc` cannot be read).
    pub fn read(&mut self, pid: u32) -> Option<ProcInfo> {
        let stat = self.stat(pid)?;
        Some(ProcInfo {
            start_time: self.btime.map(|bt| bt + stat.starttime / self.clk_tck),
            ppid: Some(stat.ppid),
        })
    }
}

#[cfg(not(target_os = "linux"))]
pub struct ProcReader;

#[cfg(not(target_os = "linux"))]
impl ProcReader {
    pub fn new() -> ProcReader {
        ProcReader
    }

    pub fn calibrate(&mut self, _snap: &crate::snapshot::Snapshot) {}

    pub fn read(&mut self, _pid: u32) -> Option<ProcInfo> {
        None
    }
}
