//! macOS collector: libproc. Every pid from `proc_listallpids`, its fds from
//! `proc_pidinfo(PROC_PIDLISTFDS)`, each socket fd from
//! `proc_pidfdinfo(PROC_PIDFDSOCKETINFO)` (TCP and UDP, IPv4 and IPv6);
//! process details from `proc_bsdinfo`, `proc_name`, `proc_pidpath` and
//! `sysctl(KERN_PROCARGS2)`; addresses from `getifaddrs`.
//!
//! A socket shared by several processes (after `fork`) is reported once
//! with every pid that holds it (keyed by the kernel socket `soi_so`).
//! Without root only the caller's own processes can be read: the others
//! are counted in `processes_denied` and their sockets are not seen.
//! Per-socket byte counters are not available through libproc (`None`).
//! The pure decoding lives in [`parse`].

// Pure decoders, also compiled into `tests/collect_windows.rs` on every OS.
pub(crate) mod parse;

use crate::collect::{now_ms, CollectError};
use crate::snapshot::{
    canonical_ip, Diagnostics, Interface, Process, Proto, Snapshot, Socket, SocketState,
};
use libproc::net_info::{InSockInfo, SocketFDInfo};
use std::collections::HashMap;
use std::ffi::c_void;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `proc_pidfdinfo` flavor for sockets (`sys/proc_info.h`).
const PROC_PIDFDSOCKETINFO: libc::c_int = 3;
/// `soi_kind` values.
const SOCKINFO_IN: libc::c_int = 1;
const SOCKINFO_TCP: libc::c_int = 2;
/// `insi_vflag` bits.
const INI_IPV4: u8 = 0x1;
const INI_IPV6: u8 = 0x2;
/// Upper bound for a `KERN_PROCARGS2` buffer.
const MAX_ARGS_BYTES: usize = 4 << 20;

struct CachedProcess {
    start_time: u64,
    process: Process,
}

/// macOS implementation behind [`crate::collect::Collector`].
pub struct PlatformCollector {
    /// Details by pid, valid while the start time matches.
    processes: HashMap<u32, CachedProcess>,
    /// User names by uid.
    users: HashMap<u32, Option<String>>,
    /// `kern.argmax`: size of a `KERN_PROCARGS2` buffer.
    argmax: usize,
}

/// Why reading one process failed.
enum PidError {
    Denied,
    Vanished,
    Other,
}

fn pid_error() -> PidError {
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => PidError::Denied,
        Some(libc::ESRCH) => PidError::Vanished,
        _ => PidError::Other,
    }
}

impl PlatformCollector {
    pub fn new() -> Result<PlatformCollector, CollectError> {
        Ok(PlatformCollector {
            processes: HashMap::new(),
            users: HashMap::new(),
            argmax: kern_argmax().unwrap_or(1 << 20).clamp(4096, MAX_ARGS_BYTES),
        })
    }

    pub fn sample(&mut self) -> Result<Snapshot, CollectError> {
        let mut diag = Diagnostics {
            backend: "libproc".into(),
            ..Diagnostics::default()
        };
        let pids = list_all_pids()?;
        let mut sockets: Vec<Socket> = Vec::new();
        let mut by_so: HashMap<u64, usize> = HashMap::new();
        let mut processes: Vec<Process> = Vec::new();

        for pid in pids {
            if pid <= 0 {
                continue;
            }
            let fds = match list_fds(pid) {
                Ok(fds) => fds,
                Err(PidError::Denied) => {
                    diag.processes_denied += 1;
                    continue;
                }
                Err(PidError::Vanished) => {
                    diag.processes_vanished += 1;
                    continue;
                }
                Err(PidError::Other) => continue,
            };
            let mut owns = false;
            for fd in fds {
                if fd.proc_fdtype != libc::PROX_FDTYPE_SOCKET as u32 {
                    continue;
                }
                let Some(info) = socket_fdinfo(pid, fd.proc_fd) else {
                    continue;
                };
                let Some(socket) = decode_socket(&info, pid as u32) else {
                    continue;
                };
                owns = true;
                let so = info.psi.soi_so;
                match by_so.get(&so).copied().filter(|_| so != 0) {
                    Some(i) => {
                        let owners = &mut sockets[i].owners;
                        if !owners.contains(&(pid as u32)) {
                            owners.push(pid as u32);
                        }
                    }
                    None => {
                        by_so.insert(so, sockets.len());
                        sockets.push(socket);
                    }
                }
            }
            if owns {
                processes.push(self.process_details(pid));
            }
        }
        self.processes
            .retain(|pid, _| processes.iter().any(|p| p.pid == *pid));
        if diag.processes_denied > 0 {
            diag.warnings.push(format!(
                "{} processes of other users cannot be read without root; their sockets are not shown",
                diag.processes_denied
            ));
        }

        let interfaces = interfaces().unwrap_or_else(|e| {
            diag.warnings.push(format!("interfaces: {e}"));
            Vec::new()
        });
        let mut local_addresses: Vec<IpAddr> = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        for a in interfaces.iter().flat_map(|i| i.addresses.iter()) {
            if !local_addresses.contains(a) {
                local_addresses.push(*a);
            }
        }
        Ok(Snapshot {
            taken_at_ms: now_ms(),
            local_addresses,
            interfaces,
            processes,
            sockets: sockets.into(),
            diagnostics: diag,
            captured: Vec::new(),
        })
    }

    /// Details of `pid`, from the cache while its start time is unchanged.
    fn process_details(&mut self, pid: libc::c_int) -> Process {
        let bsd = bsd_info(pid);
        let start_time = bsd.as_ref().map(|b| b.pbi_start_tvsec);
        if let (Some(start), Some(c)) = (start_time, self.processes.get(&(pid as u32))) {
            if c.start_time == start {
                return c.process.clone();
            }
        }
        let name = proc_name(pid)
            .or_else(|| {
                bsd.as_ref().map(|b| {
                    let raw: Vec<u8> = b.pbi_name.iter().map(|&c| c as u8).collect();
                    parse::c_chars_to_string(&raw)
                })
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "?".into());
        let uid = bsd.as_ref().map(|b| b.pbi_ruid);
        let user = uid.and_then(|u| self.user_name(u));
        let process = Process {
            pid: pid as u32,
            start_time,
            name,
            cmdline: self.cmdline(pid),
            exe: proc_path(pid),
            uid,
            user,
            ppid: bsd.as_ref().map(|b| b.pbi_ppid),
            container_id: None,
        };
        if let Some(start) = start_time {
            self.processes.insert(
                pid as u32,
                CachedProcess {
                    start_time: start,
                    process: process.clone(),
                },
            );
        }
        process
    }

    fn cmdline(&self, pid: libc::c_int) -> Vec<String> {
        let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
        let mut buf = vec![0u8; self.argmax];
        let mut len = buf.len();
        // SAFETY: `buf` has `len` writable bytes; `mib` is a valid name.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                mib.len() as libc::c_uint,
                buf.as_mut_ptr() as *mut c_void,
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return Vec::new();
        }
        parse::parse_procargs2(&buf[..len.min(buf.len())])
    }

    fn user_name(&mut self, uid: u32) -> Option<String> {
        if let Some(u) = self.users.get(&uid) {
            return u.clone();
        }
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let mut buf = vec![0 as libc::c_char; 4096];
        // SAFETY: all out-pointers are valid for the sizes given.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) };
        let name = (rc == 0 && !result.is_null() && !pw.pw_name.is_null()).then(|| {
            // SAFETY: getpwuid_r filled a NUL-terminated name inside `buf`.
            unsafe { std::ffi::CStr::from_ptr(pw.pw_name) }
                .to_string_lossy()
                .into_owned()
        });
        self.users.insert(uid, name.clone());
        name
    }
}

/// Decodes one socket fd: TCP (with its state) or UDP, IPv4 or IPv6.
/// Other socket kinds (Unix, raw, kernel control) give `None`.
fn decode_socket(info: &SocketFDInfo, pid: u32) -> Option<Socket> {
    let psi = &info.psi;
    if psi.soi_family != libc::AF_INET && psi.soi_family != libc::AF_INET6 {
        return None;
    }
    // SAFETY: `soi_kind` says which union member the kernel filled.
    let (ini, proto, tcp_state): (InSockInfo, Proto, Option<i32>) = unsafe {
        match psi.soi_kind {
            SOCKINFO_TCP => {
                let t = psi.soi_proto.pri_tcp;
                (t.tcpsi_ini, Proto::Tcp, Some(t.tcpsi_state))
            }
            SOCKINFO_IN if psi.soi_protocol == libc::IPPROTO_UDP => {
                (psi.soi_proto.pri_in, Proto::Udp, None)
            }
            _ => return None,
        }
    };
    // SAFETY: `insi_vflag` says which address form is valid; both union
    // members are plain bytes.
    let (lip, fip) = unsafe {
        if ini.insi_vflag & INI_IPV4 != 0 {
            (
                IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    ini.insi_laddr.ina_46.i46a_addr4.s_addr,
                ))),
                IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    ini.insi_faddr.ina_46.i46a_addr4.s_addr,
                ))),
            )
        } else if ini.insi_vflag & INI_IPV6 != 0 {
            (
                IpAddr::V6(Ipv6Addr::from(ini.insi_laddr.ina_6.s6_addr)),
                IpAddr::V6(Ipv6Addr::from(ini.insi_faddr.ina_6.s6_addr)),
            )
        } else {
            return None;
        }
    };
    let local = SocketAddr::new(canonical_ip(lip), parse::port_from_net(ini.insi_lport));
    let fport = parse::port_from_net(ini.insi_fport);
    let connected = !(fip.is_unspecified() && fport == 0);
    let state = match tcp_state {
        Some(s) => parse::state_from_tsi(s),
        None if connected => SocketState::Established,
        None => SocketState::Close,
    };
    let remote = (connected && state != SocketState::Listen)
        .then(|| SocketAddr::new(canonical_ip(fip), fport));
    Some(Socket {
        proto,
        local,
        remote,
        state,
        inode: 0,
        uid: Some(psi.soi_stat.vst_uid),
        owners: smallvec::smallvec![pid],
        unowned_reason: None,
        bytes_sent: None,
        bytes_received: None,
        tcp_health: None,
        closed: false,
        io_owner: None,
    })
}

fn list_all_pids() -> Result<Vec<libc::c_int>, CollectError> {
    for _ in 0..4 {
        // SAFETY: size query with a null buffer.
        let n = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
        if n <= 0 {
            break;
        }
        let cap = n as usize + 64;
        let mut pids = vec![0 as libc::c_int; cap];
        let bytes = (cap * std::mem::size_of::<libc::c_int>()) as libc::c_int;
        // SAFETY: `pids` has `bytes` writable bytes.
        let got = unsafe { libc::proc_listallpids(pids.as_mut_ptr() as *mut c_void, bytes) };
        if got < 0 {
            break;
        }
        if (got as usize) < cap {
            pids.truncate(got as usize);
            return Ok(pids);
        }
    }
    Err(CollectError::Os {
        call: "proc_listallpids",
        source: std::io::Error::last_os_error(),
    })
}

fn list_fds(pid: libc::c_int) -> Result<Vec<libc::proc_fdinfo>, PidError> {
    let item = std::mem::size_of::<libc::proc_fdinfo>();
    // SAFETY: size query with a null buffer.
    let need =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, std::ptr::null_mut(), 0) };
    if need <= 0 {
        return Err(pid_error());
    }
    let cap = need as usize / item + 32;
    let mut fds: Vec<libc::proc_fdinfo> = Vec::with_capacity(cap);
    // SAFETY: `fds` has room for `cap` items; the kernel writes at most the
    // size given and returns the bytes written.
    let got = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDLISTFDS,
            0,
            fds.as_mut_ptr() as *mut c_void,
            (cap * item) as libc::c_int,
        )
    };
    if got <= 0 {
        return Err(pid_error());
    }
    // SAFETY: the kernel initialised `got` bytes of whole items.
    unsafe { fds.set_len((got as usize / item).min(cap)) };
    Ok(fds)
}

fn socket_fdinfo(pid: libc::c_int, fd: i32) -> Option<SocketFDInfo> {
    let mut info = SocketFDInfo::default();
    let size = std::mem::size_of::<SocketFDInfo>() as libc::c_int;
    // SAFETY: `info` is writable for `size` bytes.
    let got = unsafe {
        libc::proc_pidfdinfo(
            pid,
            fd,
            PROC_PIDFDSOCKETINFO,
            &mut info as *mut SocketFDInfo as *mut c_void,
            size,
        )
    };
    (got == size).then_some(info)
}

fn bsd_info(pid: libc::c_int) -> Option<libc::proc_bsdinfo> {
    // SAFETY: all-zero is a valid proc_bsdinfo.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is writable for `size` bytes.
    let got = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            &mut info as *mut libc::proc_bsdinfo as *mut c_void,
            size,
        )
    };
    (got == size).then_some(info)
}

fn proc_name(pid: libc::c_int) -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::proc_name(pid, buf.as_mut_ptr() as *mut c_void, buf.len() as u32) };
    (n > 0).then(|| parse::c_chars_to_string(&buf[..(n as usize).min(buf.len())]))
}

fn proc_path(pid: libc::c_int) -> Option<String> {
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr() as *mut c_void, buf.len() as u32) };
    (n > 0).then(|| parse::c_chars_to_string(&buf[..(n as usize).min(buf.len())]))
}

fn kern_argmax() -> Option<usize> {
    let mut mib = [libc::CTL_KERN, libc::KERN_ARGMAX];
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>();
    // SAFETY: `value` is writable for `len` bytes.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as libc::c_uint,
            &mut value as *mut libc::c_int as *mut c_void,
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0 && value > 0).then_some(value as usize)
}

/// Interfaces and their IPv4/IPv6 addresses from `getifaddrs`.
fn interfaces() -> Result<Vec<Interface>, CollectError> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` receives a list freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(CollectError::Os {
            call: "getifaddrs",
            source: std::io::Error::last_os_error(),
        });
    }
    let mut out: Vec<Interface> = Vec::new();
    let mut p = head;
    // SAFETY: walking the list getifaddrs returned; addresses are read
    // according to their family.
    unsafe {
        while !p.is_null() {
            let ifa = &*p;
            p = ifa.ifa_next;
            if ifa.ifa_name.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let ip = if ifa.ifa_addr.is_null() {
                None
            } else {
                match (*ifa.ifa_addr).sa_family as libc::c_int {
                    libc::AF_INET => {
                        let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))))
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                        Some(canonical_ip(IpAddr::V6(Ipv6Addr::from(
                            sin6.sin6_addr.s6_addr,
                        ))))
                    }
                    _ => None,
                }
            };
            let idx = match out.iter().position(|i| i.name == name) {
                Some(i) => i,
                None => {
                    out.push(Interface {
                        name,
                        addresses: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            if let Some(ip) = ip {
                if !out[idx].addresses.contains(&ip) {
                    out[idx].addresses.push(ip);
                }
            }
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}
