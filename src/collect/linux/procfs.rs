//! Everything read from `/proc`: which process holds which socket inode
//! (a scan of `/proc/<pid>/fd`, relative to directory fds, on several
//! threads) and the details of a process (`stat`, `cmdline`, `exe`,
//! `status`, `cgroup`). The text decoders are pure functions.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// user-space cost at 20k sockets).
    pub by_inode: rustc_hash::FxHashMap<u64, u32>,
}

impl FdScan {
    /// Builds [`FdScan::by_inode`]; worth it when the scan is looked up
    /// for many samples.
    pub fn index(mut self) -> FdScan {
        let mut by_inode =
            rustc_hash::FxHashMap::with_capacity_and_hasher(self.pairs.len(), Default::default());
        for (k, &(inode, _)) in self.pairs.iter().enumerate() {
            by_inode.entry(inode).or_insert(k as u32);
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
                .get(&inode)
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
    pub fn scan_fds<T>(
        &self,
        pids: &[u32],
        threads: usize,
        meanwhile: impl FnOnce() -> T,
    ) -> (FdScan, T) {
        let next = AtomicUsize::new(0);
        let dirfd = self.fd.as_raw_fd();
        let work = || {
            let mut part = FdScan::default();
            let mut dents = vec![0u8; DENTS_BUF];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&pid) = pids.get(i) else { break };
                match scan_pid(dirfd, pid, &mut dents, &mut part.pairs) {
                    FdOutcome::Read => {}
                    FdOutcome::Denied => part.denied.push(pid),
                    FdOutcome::Vanished => part.vanished += 1,
                    FdOutcome::Failed(e) => {
                        part.failed += 1;
                        part.first_failure.get_or_insert(e);
                    }
                }
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

/// Reads `/proc/<pid>/fd`, pushing `(inode, pid)` for every socket fd.
///
/// Since Linux 6.2 `stat` of the directory gives the number of open fds;
/// then fds are probed by number (0, 1, 2, ...) until that many were
/// found, which skips `getdents` (a quarter of the cost). A sparse table
/// or an older kernel falls back to listing the directory.
fn scan_pid(proc_fd: RawFd, pid: u32, dents: &mut [u8], out: &mut Vec<(u64, u32)>) -> FdOutcome {
    let path = PathBuf64::pid_path(pid, b"/fd");
    let dir = match Dir::openat_raw(proc_fd, &path, libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(e) => return classify(e),
    };
    let dfd = dir.as_raw_fd();
    let mut link = [0u8; 64];
    let mut digits = [0u8; 10];

    let open_fds = open_fd_count(dfd);
    if open_fds > 0 {
        let mut found = 0u64;
        let mut gap = 0u32;
        let mut fd = 0u32;
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
                Link::Denied => return FdOutcome::Denied,
            }
            fd = match fd.checked_add(1) {
                Some(fd) => fd,
                None => break,
            };
        }
        if found >= open_fds {
            return FdOutcome::Read;
        }
        // Sparse or changing table: list it (duplicates are removed later).
    }

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
