//! Everything read from `/proc`: which process holds which socket inode
//! (a scan of `/proc/<pid>/fd`, relative to directory fds, on several
//! threads) and the details of a process (`stat`, `cmdline`, `exe`,
//! `status`, `cgroup`). The text decoders are pure functions.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Why a `/proc` text file could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcError {
    #[error("malformed /proc/<pid>/stat: {0}")]
    Stat(&'static str),
}

/// Buffer size for `getdents64`.
const DENTS_BUF: usize = 32 * 1024;

/// What scanning one process's fd table gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FdOutcome {
    Read,
    Denied,
    Vanished,
    Failed(i32),
}

/// The merged result of the fd scan.
#[derive(Debug, Default, Clone)]
pub struct FdScan {
    /// `(socket inode, pid)` pairs, sorted and deduplicated.
    pub pairs: Vec<(u64, u32)>,
    /// Pids whose fd table we may not read, sorted.
    pub denied: Vec<u32>,
    /// Processes that exited while being read.
    pub vanished: u32,
    /// Other failures: how many, and the first errno.
    pub failed: u32,
    pub first_failure: Option<i32>,
    /// Where each inode's run of `pairs` starts, once [`FdScan::index`]
    /// ran: one hash probe per lookup instead of a binary search whose
    /// last steps all miss the cache (it showed as the collector's biggest
    /// user-space cost at 20k sockets). Positions only, hashed by the
    /// inode they point at: 4 bytes an entry, not a map's 16 (2.2 → 0.66
    /// MB at 100k sockets, alive as long as the scan).
    pub by_inode: hashbrown::HashTable<u32>,
}

fn hash_inode(inode: u64) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(inode)
}

impl FdScan {
    /// Builds [`FdScan::by_inode`]; worth it when the scan is looked up
    /// for many samples.
    pub fn index(mut self) -> FdScan {
        let pairs = &self.pairs;
        let mut by_inode = hashbrown::HashTable::with_capacity(pairs.len());
        for (k, &(inode, _)) in pairs.iter().enumerate() {
            // `pairs` is sorted: only the first of an inode's run is new.
            if k == 0 || pairs[k - 1].0 != inode {
                by_inode.insert_unique(hash_inode(inode), k as u32, |&j: &u32| {
                    hash_inode(pairs[j as usize].0)
                });
            }
        }
        self.by_inode = by_inode;
        self
    }

    /// Pids that hold `inode`, ascending.
    pub fn owners_of(&self, inode: u64) -> impl Iterator<Item = u32> + '_ {
        let start = if self.by_inode.is_empty() {
            self.pairs.partition_point(|&(i, _)| i < inode)
        } else {
            self.by_inode
                .find(hash_inode(inode), |&k| self.pairs[k as usize].0 == inode)
                .map_or(self.pairs.len(), |&k| k as usize)
        };
        self.pairs[start..]
            .iter()
            .take_while(move |&&(i, _)| i == inode)
            .map(|&(_, pid)| pid)
    }
}

/// An open directory fd, `/proc` or below.
pub struct Dir {
    fd: OwnedFd,
}

/// A NUL-terminated path built in a stack buffer (no allocation).
struct PathBuf64 {
    buf: [u8; 64],
}

impl PathBuf64 {
    /// `<pid><suffix>`, e.g. `1234/fd`. `suffix` must be short.
    fn pid_path(pid: u32, suffix: &[u8]) -> PathBuf64 {
        let mut buf = [0u8; 64];
        let mut digits = [0u8; 10];
        let mut n = pid;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[i] = digits[len - 1 - i];
        }
        let rest = suffix.len().min(64 - 1 - len);
        buf[len..len + rest].copy_from_slice(&suffix[..rest]);
        PathBuf64 { buf }
    }

    fn as_ptr(&self) -> *const libc::c_char {
        self.buf.as_ptr().cast()
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl Dir {
    /// Opens `path` (an absolute path such as `/proc`) as a directory.
    pub fn open(path: &CStr) -> io::Result<Dir> {
        // SAFETY: path is NUL-terminated; result checked.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fd owned by nobody else.
        Ok(Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn openat_raw(dirfd: RawFd, path: &PathBuf64, flags: i32) -> Result<OwnedFd, i32> {
        // SAFETY: path is NUL-terminated; result checked.
        let fd = unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(errno());
        }
        // SAFETY: fresh fd owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Lists the numeric entries (pids) of this directory, ascending.
    pub fn list_pids(&self) -> io::Result<Vec<u32>> {
        let mut buf = vec![0u8; DENTS_BUF];
        let mut pids = Vec::with_capacity(512);
        loop {
            let n =
                getdents(self.fd.as_raw_fd(), &mut buf).map_err(io::Error::from_raw_os_error)?;
            if n == 0 {
                break;
            }
            for_each_dirent(&buf[..n], |name| {
                if let Some(pid) = parse_decimal(name) {
                    if let Ok(pid) = u32::try_from(pid) {
                        pids.push(pid);
                    }
                }
            });
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// The owner uid of entry `<pid>` (the process's effective uid).
    pub fn pid_uid(&self, pid: u32) -> Option<u32> {
        let path = PathBuf64::pid_path(pid, b"");
        // SAFETY: zeroed stat is valid; path NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::fstatat(self.fd.as_raw_fd(), path.as_ptr(), &mut st, 0) };
        (r == 0).then_some(st.st_uid)
    }

    /// Reads `<pid><suffix>` whole into `buf` (cleared first).
    pub fn read_pid_file(&self, pid: u32, suffix: &[u8], buf: &mut Vec<u8>) -> Result<(), i32> {
        let path = PathBuf64::pid_path(pid, suffix);
        let fd = Dir::openat_raw(self.fd.as_raw_fd(), &path, libc::O_RDONLY)?;
        buf.clear();
        loop {
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(4096);
            }
            let spare = buf.capacity() - buf.len();
            // SAFETY: we read into the spare capacity and only extend the
            // length by what the kernel wrote.
            let n = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().add(buf.len()).cast(),
                    spare,
                )
            };
            if n < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(());
            }
            // SAFETY: the kernel initialised n more bytes.
            unsafe { buf.set_len(buf.len() + n as usize) };
            if buf.len() > 1 << 20 {
                return Ok(()); // cap: nothing we read is legitimately this big
            }
        }
    }

    /// `readlink` of `<pid><suffix>`.
    pub fn read_pid_link(&self, pid: u32, suffix: &[u8]) -> Option<String> {
        let path = PathBuf64::pid_path(pid, suffix);
        let mut buf = [0u8; 4096];
        // SAFETY: buf is valid for its length; path NUL-terminated.
        let n = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                path.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n <= 0 {
            return None;
        }
        let n = (n as usize).min(buf.len());
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Scans `/proc/<pid>/fd` of every pid in `pids` on `threads` threads
    /// (the calling thread included). `meanwhile` runs on the calling thread
    /// first, in parallel with the other threads' scanning; its result is
    /// returned with the scan.
    ///
    /// Threads take pids in turn; a process with at least [`SHARED_TABLE`]
    /// open fds is cut into ranges of [`FD_CHUNK`] fd numbers, and a thread
    /// that finds no pid left helps with those ranges. Without that, one
    /// server holding 10,000 sockets was one thread's job while the others
    /// sat idle: without root, where one `readlinkat` per fd is the biggest
    /// cost of a sample, the wall time was that of the biggest table. Help
    /// comes only at the end: two threads reading the same table contend
    /// on its directory entry, which costs CPU time.
    pub fn scan_fds<T>(
        &self,
        pids: &[u32],
        threads: usize,
        meanwhile: impl FnOnce() -> T,
    ) -> (FdScan, T) {
        let next = AtomicUsize::new(0);
        let shared: Mutex<Vec<Arc<SharedTable>>> = Mutex::new(Vec::new());
        let dirfd = self.fd.as_raw_fd();
        let work = || {
            let mut part = FdScan::default();
            let mut dents = vec![0u8; DENTS_BUF];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&pid) = pids.get(i) else {
                    // No pid left: help with the shared tables, then stop.
                    while let Some(table) = SharedTable::with_work(&shared) {
                        table.run_chunk(&mut dents, &mut part);
                    }
                    break;
                };
                let outcome = match open_fd_dir(dirfd, pid) {
                    Err(e) => classify(e),
                    Ok(dir) => {
                        let open_fds = open_fd_count(dir.as_raw_fd());
                        if open_fds >= SHARED_TABLE {
                            let table = Arc::new(SharedTable::new(pid, dir, open_fds));
                            if let Ok(mut list) = shared.lock() {
                                list.push(Arc::clone(&table));
                            }
                            while table.run_chunk(&mut dents, &mut part) {}
                            continue; // its outcome is recorded by its last chunk
                        }
                        scan_open(dir.as_raw_fd(), pid, open_fds, &mut dents, &mut part.pairs)
                    }
                };
                part.record(pid, outcome);
            }
            part
        };
        let (mut parts, extra) = std::thread::scope(|s| {
            let handles: Vec<_> = (1..threads.max(1)).map(|_| s.spawn(work)).collect();
            let extra = meanwhile();
            let mut parts = vec![work()];
            for h in handles {
                // A worker that panicked (it should not) loses its part only.
                if let Ok(p) = h.join() {
                    parts.push(p);
                }
            }
            (parts, extra)
        });
        let mut all = parts.pop().unwrap_or_default();
        let total: usize = all.pairs.len() + parts.iter().map(|p| p.pairs.len()).sum::<usize>();
        all.pairs.reserve(total - all.pairs.len());
        for p in parts {
            all.pairs.extend_from_slice(&p.pairs);
            all.denied.extend_from_slice(&p.denied);
            all.vanished += p.vanished;
            all.failed += p.failed;
            if all.first_failure.is_none() {
                all.first_failure = p.first_failure;
            }
        }
        all.pairs.sort_unstable();
        all.pairs.dedup();
        all.denied.sort_unstable();
        all.denied.dedup();
        (all, extra)
    }
}

/// Open fds from which a process's table is shared out between threads.
pub const SHARED_TABLE: u64 = 2 * FD_CHUNK as u64;
/// Fd numbers one thread probes at a time in a shared table: ~1 ms of
/// `readlinkat`s, small enough to balance two threads, big enough that
/// taking a range costs nothing.
pub const FD_CHUNK: u32 = 512;

/// A big fd table being probed by several threads, range by range.
struct SharedTable {
    pid: u32,
    dir: OwnedFd,
    /// Open fds by the directory's size (Linux 6.2+).
    open_fds: u64,
    /// Fd numbers below this are probed in chunks: a dense table's fds
    /// all are (`0..open_fds`); the rest of a sparse one is found after.
    end: u32,
    /// Start of the next chunk nobody took yet.
    next: AtomicU32,
    /// Chunks taken but not finished; the thread that finishes the last
    /// one completes the table.
    unfinished: AtomicU32,
    /// Open fds found so far.
    found: AtomicU64,
    denied: AtomicBool,
}

impl SharedTable {
    fn new(pid: u32, dir: OwnedFd, open_fds: u64) -> SharedTable {
        let end = u32::try_from(open_fds)
            .unwrap_or(u32::MAX)
            .saturating_add(MAX_FD_GAP);
        SharedTable {
            pid,
            dir,
            open_fds,
            end,
            next: AtomicU32::new(0),
            unfinished: AtomicU32::new(end.div_ceil(FD_CHUNK)),
            found: AtomicU64::new(0),
            denied: AtomicBool::new(false),
        }
    }

    /// A shared table with a chunk left; drops the ones without.
    fn with_work(shared: &Mutex<Vec<Arc<SharedTable>>>) -> Option<Arc<SharedTable>> {
        let mut list = shared.lock().ok()?;
        list.retain(|t| t.next.load(Ordering::Relaxed) < t.end);
        list.first().cloned()
    }

    /// Probes the next chunk of fd numbers; false when none was left. The
    /// thread finishing the last chunk completes the table and records it
    /// in `part`.
    fn run_chunk(&self, dents: &mut [u8], part: &mut FdScan) -> bool {
        let start = self.next.fetch_add(FD_CHUNK, Ordering::Relaxed);
        if start >= self.end {
            return false;
        }
        let stop = start.saturating_add(FD_CHUNK).min(self.end);
        let dfd = self.dir.as_raw_fd();
        if !self.denied.load(Ordering::Relaxed) {
            let mut link = [0u8; 64];
            let mut digits = [0u8; 10];
            let mut found = 0u64;
            for fd in start..stop {
                match read_fd_link(dfd, decimal(fd, &mut digits), &mut link) {
                    Link::Open(inode) => {
                        found += 1;
                        if let Some(inode) = inode {
                            part.pairs.push((inode, self.pid));
                        }
                    }
                    Link::Missing => {}
                    Link::Denied => {
                        self.denied.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
            self.found.fetch_add(found, Ordering::Relaxed);
        }
        if self.unfinished.fetch_sub(1, Ordering::AcqRel) == 1 {
            let outcome = self.complete(dents, &mut part.pairs);
            part.record(self.pid, outcome);
        }
        true
    }

    /// After every chunk: what a sparse table has beyond `end`, as the
    /// single-thread scan finds it.
    fn complete(&self, dents: &mut [u8], out: &mut Vec<(u64, u32)>) -> FdOutcome {
        if self.denied.load(Ordering::Acquire) {
            return FdOutcome::Denied;
        }
        let found = self.found.load(Ordering::Acquire);
        if found >= self.open_fds {
            return FdOutcome::Read;
        }
        let dfd = self.dir.as_raw_fd();
        match probe_fds(dfd, self.pid, self.end, found, self.open_fds, out) {
            Probe::Complete => FdOutcome::Read,
            Probe::Denied => FdOutcome::Denied,
            Probe::Incomplete => list_fds(dfd, self.pid, dents, out),
        }
    }
}

impl FdScan {
    /// Counts how scanning `pid`'s fd table went.
    fn record(&mut self, pid: u32, outcome: FdOutcome) {
        match outcome {
            FdOutcome::Read => {}
            FdOutcome::Denied => self.denied.push(pid),
            FdOutcome::Vanished => self.vanished += 1,
            FdOutcome::Failed(e) => {
                self.failed += 1;
                self.first_failure.get_or_insert(e);
            }
        }
    }
}

/// Opens `/proc/<pid>/fd` relative to the open `/proc` at `proc_fd`.
fn open_fd_dir(proc_fd: RawFd, pid: u32) -> Result<OwnedFd, i32> {
    let path = PathBuf64::pid_path(pid, b"/fd");
    Dir::openat_raw(proc_fd, &path, libc::O_RDONLY | libc::O_DIRECTORY)
}

/// Pids in `pids` whose fd table we may not read, found cheaply (open the
/// directory, read one link): used when owners come from elsewhere (BPF)
/// to tell `Permission` from `Exited` for sockets without owner.
pub fn denied_pids(dir: &Dir, pids: &[u32]) -> Vec<u32> {
    let mut denied = Vec::new();
    let mut link = [0u8; 64];
    let mut digits = [0u8; 10];
    let mut dents = [0u8; 512];
    for &pid in pids {
        let path = PathBuf64::pid_path(pid, b"/fd");
        let fd = match Dir::openat_raw(
            dir.fd.as_raw_fd(),
            &path,
            libc::O_RDONLY | libc::O_DIRECTORY,
        ) {
            Ok(fd) => fd,
            Err(e) => {
                if classify(e) == FdOutcome::Denied {
                    denied.push(pid);
                }
                continue;
            }
        };
        // A process with no open fd (every kernel thread) hides nothing:
        // one directory read instead of probing MAX_FD_GAP names (~2,000
        // failed `readlinkat`s per sample on a machine with 60 kthreads).
        if !has_open_fd(fd.as_raw_fd(), &mut dents) {
            continue;
        }
        for n in 0..=MAX_FD_GAP {
            match read_fd_link(fd.as_raw_fd(), decimal(n, &mut digits), &mut link) {
                Link::Open(_) => break,
                Link::Missing => {}
                Link::Denied => {
                    denied.push(pid);
                    break;
                }
            }
        }
    }
    denied
}

/// How many fds the process whose `/proc/<pid>/fd` is open at `dfd` has
/// open: the directory's size on Linux 6.2+, 0 when unknown.
fn open_fd_count(dfd: RawFd) -> u64 {
    // SAFETY: zeroed stat is valid; dfd is open.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(dfd, &mut st) } == 0 {
        u64::try_from(st.st_size).unwrap_or(0)
    } else {
        0
    }
}

/// True unless the fd directory `dfd` is known to be empty: its size
/// (Linux 6.2+ reports the number of open fds) or, when that says 0, its
/// first entries.
fn has_open_fd(dfd: RawFd, dents: &mut [u8]) -> bool {
    if open_fd_count(dfd) > 0 {
        return true;
    }
    match getdents(dfd, dents) {
        Ok(n) => {
            let mut any = false;
            for_each_dirent(&dents[..n], |name| any |= name.first() != Some(&b'.'));
            any
        }
        Err(_) => true, // let the probe below decide
    }
}

fn getdents(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    loop {
        // SAFETY: buf is valid for buf.len() writable bytes.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok((n as usize).min(buf.len()));
    }
}

/// Calls `f` with the name of each `linux_dirent64` record in `buf`.
/// Stops at the first record that does not fit; never panics.
pub fn for_each_dirent(buf: &[u8], mut f: impl FnMut(&[u8])) {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const NAME_AT: usize = 19;
    let mut off = 0usize;
    while let Some(hdr) = buf.get(off..off + NAME_AT) {
        let reclen = usize::from(u16::from_ne_bytes([hdr[16], hdr[17]]));
        if reclen < NAME_AT {
            return;
        }
        let Some(rec) = buf.get(off..off.saturating_add(reclen)) else {
            return;
        };
        let name = &rec[NAME_AT..];
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        f(&name[..len]);
        off += reclen;
    }
}

/// Parses an all-digit name; `None` for anything else (`.`, `self`, ...).
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// The inode in a `socket:[12345]` link target, `None` for other targets.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let rest = link.strip_prefix(b"socket:[")?;
    let digits = rest.strip_suffix(b"]")?;
    parse_decimal(digits)
}

fn classify(e: i32) -> FdOutcome {
    match e {
        libc::EACCES | libc::EPERM => FdOutcome::Denied,
        libc::ENOENT | libc::ESRCH => FdOutcome::Vanished,
        e => FdOutcome::Failed(e),
    }
}

/// Consecutive missing fd numbers after which the numeric walk gives up
/// and lists the directory instead (a sparse fd table).
const MAX_FD_GAP: u32 = 32;

/// What one `readlinkat` of an fd entry gave.
enum Link {
    /// An open fd; `Some(inode)` when it is a socket.
    Open(Option<u64>),
    /// No such fd (closed, or never open).
    Missing,
    /// We may not read it: the process changed credentials under us.
    Denied,
}

/// `readlinkat(dfd, name)`. readlink, unlike stat, never touches the
/// target file, so an fd on a hung NFS or FUSE mount cannot block us.
fn read_fd_link(dfd: RawFd, name: &[u8], link: &mut [u8; 64]) -> Link {
    let mut name_buf = [0u8; 24];
    if name.is_empty() || name.len() >= name_buf.len() {
        return Link::Missing;
    }
    name_buf[..name.len()].copy_from_slice(name);
    // SAFETY: name_buf is NUL-terminated, link valid for its length.
    let r = unsafe {
        libc::readlinkat(
            dfd,
            name_buf.as_ptr().cast(),
            link.as_mut_ptr().cast(),
            link.len(),
        )
    };
    if r < 0 {
        return match errno() {
            libc::EACCES | libc::EPERM => Link::Denied,
            _ => Link::Missing,
        };
    }
    let r = (r as usize).min(link.len());
    Link::Open(socket_inode(&link[..r]))
}

/// Formats `n` in decimal into `buf`, returning the digits.
fn decimal(n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Reads the fd table of `pid`, open at `dfd`, pushing `(inode, pid)` for
/// every socket fd; `open_fds` is the directory's size.
///
/// Since Linux 6.2 `stat` of the directory gives the number of open fds;
/// then fds are probed by number (0, 1, 2, ...) until that many were
/// found, which skips `getdents` (a quarter of the cost). A sparse table
/// or an older kernel falls back to listing the directory.
fn scan_open(
    dfd: RawFd,
    pid: u32,
    open_fds: u64,
    dents: &mut [u8],
    out: &mut Vec<(u64, u32)>,
) -> FdOutcome {
    if open_fds > 0 {
        match probe_fds(dfd, pid, 0, 0, open_fds, out) {
            Probe::Complete => return FdOutcome::Read,
            Probe::Denied => return FdOutcome::Denied,
            // Sparse or changing table: list it (duplicates are removed later).
            Probe::Incomplete => {}
        }
    }
    list_fds(dfd, pid, dents, out)
}

/// How probing fds by number ended.
enum Probe {
    /// As many open fds were found as the table has.
    Complete,
    /// More than [`MAX_FD_GAP`] numbers in a row were not open.
    Incomplete,
    Denied,
}

/// Probes fd numbers from `from` on until `found` (the open fds already
/// found) reaches `open_fds`, or more than [`MAX_FD_GAP`] in a row are
/// not open.
fn probe_fds(
    dfd: RawFd,
    pid: u32,
    from: u32,
    mut found: u64,
    open_fds: u64,
    out: &mut Vec<(u64, u32)>,
) -> Probe {
    let mut link = [0u8; 64];
    let mut digits = [0u8; 10];
    let mut gap = 0u32;
    let mut fd = from;
    while found < open_fds && gap <= MAX_FD_GAP {
        match read_fd_link(dfd, decimal(fd, &mut digits), &mut link) {
            Link::Open(inode) => {
                found += 1;
                gap = 0;
                if let Some(inode) = inode {
                    out.push((inode, pid));
                }
            }
            Link::Missing => gap += 1,
            Link::Denied => return Probe::Denied,
        }
        fd = match fd.checked_add(1) {
            Some(fd) => fd,
            None => break,
        };
    }
    if found >= open_fds {
        Probe::Complete
    } else {
        Probe::Incomplete
    }
}

/// Lists the fd table at `dfd` and reads every entry's link.
fn list_fds(dfd: RawFd, pid: u32, dents: &mut [u8], out: &mut Vec<(u64, u32)>) -> FdOutcome {
    let mut link = [0u8; 64];
    let mut outcome = FdOutcome::Read;
    loop {
        let n = match getdents(dfd, dents) {
            Ok(0) => break,
            Ok(n) => n,
            // The process died while we listed its fds.
            Err(e) => return classify(e),
        };
        for_each_dirent(&dents[..n], |name| {
            if outcome == FdOutcome::Denied || name.first() == Some(&b'.') {
                return;
            }
            match read_fd_link(dfd, name, &mut link) {
                Link::Open(Some(inode)) => out.push((inode, pid)),
                Link::Open(None) | Link::Missing => {}
                Link::Denied => outcome = FdOutcome::Denied,
            }
        });
    }
    outcome
}

/// The fields of `/proc/<pid>/stat` procnet uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatInfo {
    /// `comm`, the short name.
    pub comm: String,
    pub ppid: u32,
    /// Field 22, clock ticks after boot.
    pub starttime: u64,
}

/// Decodes `/proc/<pid>/stat`. The name is in parentheses and may itself
/// contain spaces and `)`, so fields are counted from the last `)`.
pub fn parse_stat(buf: &[u8]) -> Result<StatInfo, ProcError> {
    let open = buf
        .iter()
        .position(|&b| b == b'(')
        .ok_or(ProcError::Stat("no '('"))?;
    let close = buf
        .iter()
        .rposition(|&b| b == b')')
        .ok_or(ProcError::Stat("no ')'"))?;
    if close < open {
        return Err(ProcError::Stat("')' before '('"));
    }
    let comm = String::from_utf8_lossy(&buf[open + 1..close]).into_owned();
    let rest = &buf[close + 1..];
    let mut fields = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    // After ')': state(3) ppid(4) ... starttime(22).
    let _state = fields.next().ok_or(ProcError::Stat("no state"))?;
    let ppid = fields
        .next()
        .and_then(parse_decimal)
        .and_then(|p| u32::try_from(p).ok())
        .ok_or(ProcError::Stat("bad ppid"))?;
    let starttime = fields
        .nth(22 - 5)
        .and_then(parse_decimal)
        .ok_or(ProcError::Stat("bad starttime"))?;
    Ok(StatInfo {
        comm,
        ppid,
        starttime,
    })
}

/// The real uid on the `Uid:` line of `/proc/<pid>/status`.
pub fn parse_status_uid(text: &[u8]) -> Option<u32> {
    let line = text
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"Uid:"))?;
    let real = line[4..]
        .split(|b| b.is_ascii_whitespace())
        .find(|f| !f.is_empty())?;
    parse_decimal(real).and_then(|u| u32::try_from(u).ok())
}

/// The effective capability set on the `CapEff:` line of
/// `/proc/<pid>/status` (a hex bit mask).
pub fn parse_status_cap_eff(text: &[u8]) -> Option<u64> {
    let line = text
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"CapEff:"))?;
    let hex = std::str::from_utf8(line[7..].trim_ascii()).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// `CAP_SYS_ADMIN`, `CAP_PERFMON` and `CAP_BPF` (`linux/capability.h`).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Whether the capabilities `cap_eff` let `bpf()` load tracing programs
/// (BPF iterators): `CAP_SYS_ADMIN`, or `CAP_BPF` with `CAP_PERFMON`.
pub fn caps_allow_bpf_tracing(cap_eff: u64) -> bool {
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// `Some(false)` when this process surely may not load BPF tracing
/// programs, so that the kernel's BTF (~5 MB, a few ms to parse) is not
/// read for programs `bpf()` would refuse; `None` when unknown.
pub fn may_load_bpf_tracing() -> Option<bool> {
    let status = std::fs::read("/proc/self/status").ok()?;
    parse_status_cap_eff(&status).map(caps_allow_bpf_tracing)
}

/// `/proc/<pid>/cmdline` split at NULs (a trailing NUL ends the last one).
pub fn parse_cmdline(buf: &[u8]) -> Vec<String> {
    let buf = buf.strip_suffix(b"\0").unwrap_or(buf);
    if buf.is_empty() {
        return Vec::new();
    }
    buf.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Boot time (`btime` in `/proc/stat`), seconds since the Unix epoch.
pub fn parse_btime(proc_stat: &[u8]) -> Option<u64> {
    let line = proc_stat
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"btime "))?;
    parse_decimal(line[6..].trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn owners_with_and_without_index() {
        let scan = FdScan {
            pairs: vec![(5, 1), (7, 2), (7, 3), (9, 4)],
            ..FdScan::default()
        };
        let plain: Vec<Vec<u32>> = [4, 5, 7, 9, 10]
            .map(|i| scan.owners_of(i).collect())
            .to_vec();
        let scan = scan.index();
        let indexed: Vec<Vec<u32>> = [4, 5, 7, 9, 10]
            .map(|i| scan.owners_of(i).collect())
            .to_vec();
        assert_eq!(plain, indexed);
        assert_eq!(indexed, [vec![], vec![1], vec![2, 3], vec![4], vec![]]);
    }

    #[test]
    fn stat_with_odd_name() {
        let s = b"1234 (we ird) (x) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
        let st = parse_stat(s).unwrap();
        assert_eq!(st.comm, "we ird) (x");
        assert_eq!(st.ppid, 1);
        assert_eq!(st.starttime, 98765);
        assert!(parse_stat(b"1 (x) S").is_err());
    }

    #[test]
    fn small_parsers() {
        assert_eq!(socket_inode(b"socket:[4242]"), Some(4242));
        assert_eq!(socket_inode(b"pipe:[4242]"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(
            parse_status_uid(b"Name:\tx\nUid:\t1000\t0\t0\t0\n"),
            Some(1000)
        );
        assert_eq!(
            parse_cmdline(b"python3\0-c\0x\0"),
            vec!["python3", "-c", "x"]
        );
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(
            parse_btime(b"cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert_eq!(PathBuf64::pid_path(907, b"/fd").buf[..7], *b"907/fd\0");
        assert_eq!(PathBuf64::pid_path(0, b"").buf[..2], *b"0\0");
        let mut d = [0u8; 10];
        assert_eq!(decimal(0, &mut d), b"0");
        assert_eq!(decimal(u32::MAX, &mut d), b"4294967295");
    }

    #[test]
    fn capabilities() {
        let status = b"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        let eff = parse_status_cap_eff(status).unwrap();
        assert!(caps_allow_bpf_tracing(eff));
        assert_eq!(
            parse_status_cap_eff(b"CapEff:\t0000000000000000\n"),
            Some(0)
        );
        assert!(!caps_allow_bpf_tracing(0));
        // CAP_BPF alone does not allow tracing programs; with CAP_PERFMON it does.
        assert!(!caps_allow_bpf_tracing(1 << CAP_BPF));
        assert!(caps_allow_bpf_tracing(1 << CAP_BPF | 1 << CAP_PERFMON));
        assert!(caps_allow_bpf_tracing(1 << CAP_SYS_ADMIN));
        assert_eq!(parse_status_cap_eff(b"CapEff:\tzz\n"), None);
        assert_eq!(parse_status_cap_eff(b"Name:\tx\n"), None);
        // This test process: root in CI has every capability.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(may_load_bpf_tracing(), Some(true));
        }
    }

    /// A table of more than [`SHARED_TABLE`] fds is probed by several
    /// threads in chunks, and a sparse one (an fd far above the others)
    /// is completed after the chunks: every socket is found, with any
    /// number of threads.
    #[test]
    fn big_sparse_fd_table_on_several_threads() {
        use std::os::fd::AsRawFd;
        let far: i32 = 9000;
        // SAFETY: plain rlimit calls on this process.
        unsafe {
            let mut lim: libc::rlimit = std::mem::zeroed();
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
            assert!(
                lim.rlim_max > far as u64 + 16,
                "this test needs a hard RLIMIT_NOFILE above {far}"
            );
            lim.rlim_cur = lim.rlim_cur.max(far as u64 + 16);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
        let pairs: Vec<_> = (0..1500)
            .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
            .collect();
        let inode_of = |fd: i32| {
            // SAFETY: zeroed stat is valid; fd is open.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
            st.st_ino
        };
        let mut expected: Vec<u64> = pairs
            .iter()
            .flat_map(|(a, b)| [inode_of(a.as_raw_fd()), inode_of(b.as_raw_fd())])
            .collect();
        let (moved, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: dup2 onto a free fd number this test owns until the end;
        // the socket is then open at `far` only.
        assert_eq!(unsafe { libc::dup2(moved.as_raw_fd(), far) }, far);
        drop(moved);
        expected.push(inode_of(far));
        let dir = Dir::open(c"/proc").unwrap();
        let me = std::process::id();
        for threads in [1, 2, 3] {
            let (scan, ()) = dir.scan_fds(&[me], threads, || ());
            assert!(scan.denied.is_empty(), "{threads} threads: {scan:?}");
            assert_eq!(scan.failed, 0);
            let missing = expected
                .iter()
                .filter(|&&i| !scan.owners_of(i).any(|p| p == me))
                .count();
            assert_eq!(missing, 0, "{threads} threads: {missing} sockets not found");
        }
        // SAFETY: closes the fd dup2 made above.
        unsafe { libc::close(far) };
    }

    #[test]
    fn dirents() {
        let mut buf = Vec::new();
        for name in ["1", "self", "42"] {
            let reclen = (19 + name.len() + 1 + 7) & !7;
            let mut rec = vec![0u8; reclen];
            rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
            rec[19..19 + name.len()].copy_from_slice(name.as_bytes());
            buf.extend(rec);
        }
        let mut names = Vec::new();
        for_each_dirent(&buf, |n| {
            names.push(String::from_utf8_lossy(n).into_owned())
        });
        assert_eq!(names, ["1", "self", "42"]);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_stat(&b);
            let _ = parse_status_uid(&b);
            let _ = parse_cmdline(&b);
            let _ = parse_btime(&b);
            let _ = socket_inode(&b);
            for_each_dirent(&b, |_| {});
        }
    }
}
