//! `/proc`: which processes hold which socket inodes, and who they are.
//!
//! The fd scan uses `openat`/`readlinkat` relative to each `/proc/<pid>/fd`
//! directory (no path rebuilding per fd) and runs on two threads. Process
//! details are cached by (pid, start time), so a steady machine costs one
//! `stat` read per owning process per sample.

use crate::snapshot::Process;
use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The result of one fd scan.
#[derive(Debug, Default)]
pub struct FdScan {
    /// Socket inode → every pid holding it.
    pub owners: HashMap<u64, Vec<u32>>,
    /// Uids of processes whose fds we were not allowed to read.
    pub denied_uids: HashSet<u32>,
    pub denied: u32,
    pub vanished: u32,
}

fn open_dir(parent: libc::c_int, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: openat with a NUL-terminated name; result checked.
    let fd = unsafe {
        libc::openat(
            parent,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Lists the numeric entries of a directory (pids in /proc, fds in fd/).
fn numeric_entries(dir: OwnedFd) -> io::Result<Vec<u32>> {
    // SAFETY: fdopendir takes ownership of the fd on success.
    let raw = dir.as_raw_fd();
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(dir); // closedir closes it
    let mut out = Vec::new();
    loop {
        // SAFETY: dirp is a valid DIR* until closedir.
        let ent = unsafe { libc::readdir(dirp) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated within the dirent.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        if let Some(n) = parse_u32(name.to_bytes()) {
            out.push(n);
        }
    }
    // SAFETY: dirp came from fdopendir.
    unsafe { libc::closedir(dirp) };
    Ok(out)
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let inner = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// Scans the fds of `pids`, adding socket inodes to `scan`.
fn scan_pids(proc_fd: libc::c_int, pids: &[u32], scan: &mut FdScan) {
    let mut link = [0u8; 64];
    let mut name = Vec::with_capacity(16);
    for &pid in pids {
        let path = format!("{pid}/fd\0");
        let dir_name = CStr::from_bytes_with_nul(path.as_bytes()).expect("no interior NUL");
        let dir = match open_dir(proc_fd, dir_name) {
            Ok(d) => d,
            Err(e) => {
                match e.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::EPERM) => {
                        scan.denied += 1;
                        if let Some(uid) = owner_uid(proc_fd, pid) {
                            scan.denied_uids.insert(uid);
                        }
                    }
                    _ => scan.vanished += 1,
                }
                continue;
            }
        };
        let dir_fd = dir.as_raw_fd();
        // Keep a second handle for readlinkat: numeric_entries consumes one.
        // SAFETY: dup of a valid fd; checked.
        let dup = unsafe { libc::dup(dir_fd) };
        if dup < 0 {
            continue;
        }
        // SAFETY: fresh descriptor we own.
        let link_dir = unsafe { OwnedFd::from_raw_fd(dup) };
        let fds = match numeric_entries(dir) {
            Ok(f) => f,
            Err(_) => {
                scan.vanished += 1;
                continue;
            }
        };
        for fd in fds {
            name.clear();
            name.extend_from_slice(fd.to_string().as_bytes());
            name.push(0);
            // SAFETY: name is NUL-terminated; link is a valid buffer.
            let n = unsafe {
                libc::readlinkat(
                    link_dir.as_raw_fd(),
                    name.as_ptr() as *const libc::c_char,
                    link.as_mut_ptr() as *mut libc::c_char,
                    link.len(),
                )
            };
            if n <= 0 {
                continue; // the fd closed meanwhile
            }
            if let Some(inode) = socket_inode(&link[..n as usize]) {
                let holders = scan.owners.entry(inode).or_default();
                if !holders.contains(&pid) {
                    holders.push(pid);
                }
            }
        }
    }
}

fn owner_uid(proc_fd: libc::c_int, pid: u32) -> Option<u32> {
    let path = format!("{pid}\0");
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated path, valid out pointer.
    let r = unsafe { libc::fstatat(proc_fd, path.as_ptr() as *const libc::c_char, &mut st, 0) };
    (r == 0).then_some(st.st_uid)
}

/// Scans every process's fds (two threads).
pub fn scan_fds() -> io::Result<FdScan> {
    let proc_dir = open_dir(libc::AT_FDCWD, c"/proc")?;
    // SAFETY: dup of a valid fd; checked.
    let dup = unsafe { libc::dup(proc_dir.as_raw_fd()) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor we own.
    let list_dir = unsafe { OwnedFd::from_raw_fd(dup) };
    let pids = numeric_entries(list_dir)?;
    let own_pid = std::process::id();
    let pids: Vec<u32> = pids.into_iter().filter(|&p| p != own_pid).collect();
    let (a, b) = pids.split_at(pids.len() / 2);
    let proc_fd = proc_dir.as_raw_fd();
    let mut first = FdScan::default();
    let mut second = FdScan::default();
    std::thread::scope(|s| {
        s.spawn(|| scan_pids(proc_fd, a, &mut first));
        scan_pids(proc_fd, b, &mut second);
    });
    for (inode, pids) in second.owners {
        let holders = first.owners.entry(inode).or_default();
        for p in pids {
            if !holders.contains(&p) {
                holders.push(p);
            }
        }
    }
    first.denied_uids.extend(second.denied_uids);
    first.denied += second.denied;
    first.vanished += second.vanished;
    Ok(first)
}

/// Fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    /// Clock ticks since boot.
    pub start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`; `comm` may contain spaces and parentheses, so
/// the fields after it are found from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
    Some(Stat {
        comm,
        ppid: rest.get(1)?.parse().ok()?,
        start_ticks: rest.get(19)?.parse().ok()?,
    })
}

/// Process details, cached across samples by (pid, start time).
#[derive(Default)]
pub struct ProcessCache {
    entries: HashMap<u32, (u64, Process)>,
    users: Option<HashMap<u32, String>>,
    boot_time: Option<u64>,
    ticks_per_sec: u64,
    /// `--no-containers`: do not read `/proc/<pid>/cgroup`.
    skip_containers: bool,
}

fn read_small(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn boot_time() -> Option<u64> {
    read_small("/proc/stat")?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// The container `pid` runs in, from `/proc/<pid>/cgroup`.
fn container_id(pid: u32) -> Option<String> {
    crate::graph::containers::container_id_from_cgroup(&read_small(&format!("/proc/{pid}/cgroup"))?)
}

/// `/etc/passwd` → uid → name.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

impl ProcessCache {
    /// Whether new entries get their container id (see [`container_id`]).
    pub fn set_containers(&mut self, on: bool) {
        if self.skip_containers == on {
            self.skip_containers = !on;
            self.entries.clear();
        }
    }

    /// Details of `pid`, from the cache when its start time is unchanged.
    /// `None` when the process is gone.
    pub fn get(&mut self, pid: u32) -> Option<Process> {
        let stat = parse_stat(&read_small(&format!("/proc/{pid}/stat"))?)?;
        if let Some((start, p)) = self.entries.get(&pid) {
            if *start == stat.start_ticks {
                return Some(p.clone());
            }
        }
        if self.ticks_per_sec == 0 {
            // SAFETY: sysconf has no preconditions.
            let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
            self.ticks_per_sec = if t > 0 { t as u64 } else { 100 };
            self.boot_time = boot_time();
        }
        let users = self.users.get_or_insert_with(|| {
            read_small("/etc/passwd")
                .map(|t| parse_passwd(&t))
                .unwrap_or_default()
        });
        let cmdline: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let uid = read_small(&format!("/proc/{pid}/status")).and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        });
        let process = Process {
            pid,
            start_time: self
                .boot_time
                .map(|b| b + stat.start_ticks / self.ticks_per_sec),
            name: stat.comm,
            cmdline,
            exe: std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            uid,
            user: uid.and_then(|u| users.get(&u).cloned()),
            ppid: Some(stat.ppid),
            container_id: if self.skip_containers {
                None
            } else {
                container_id(pid)
            },
        };
        self.entries
            .insert(pid, (stat.start_ticks, process.clone()));
        Some(process)
    }

    /// Forgets processes that no longer own sockets.
    pub fn retain(&mut self, alive: &HashSet<u32>) {
        self.entries.retain(|pid, _| alive.contains(pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let s = parse_stat(
            "42 (my (odd) proc) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10",
        )
        .unwrap();
        assert_eq!(
            (s.comm.as_str(), s.ppid, s.start_ticks),
            ("my (odd) proc", 7, 12345)
        );
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn inodes_and_passwd() {
        assert_eq!(socket_inode(b"socket:[123]"), Some(123));
        assert_eq!(socket_inode(b"pipe:[123]"), None);
        assert_eq!(socket_inode(b"socket:[x]"), None);
        let p = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nbad\nalice:x:1000:1000::/home/a:/bin/sh\n",
        );
        assert_eq!(p.get(&0).map(String::as_str), Some("root"));
        assert_eq!(p.get(&1000).map(String::as_str), Some("alice"));
    }
}
