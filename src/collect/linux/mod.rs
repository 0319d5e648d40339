//! Linux collector: sockets from netlink `NETLINK_SOCK_DIAG` (with
//! `tcp_info` byte counters), owners from a `/proc/<pid>/fd` scan that runs
//! at the same time. Falls back to `/proc/net/{tcp,udp}[6]` only when
//! sock_diag is unavailable.

pub mod inet_diag;
mod interfaces;
pub mod netlink;
pub mod procfs;

use crate::collect::{now_ms, CollectError};
use crate::snapshot::{Diagnostics, Proto, Snapshot, Socket, UnknownReason};
use netlink::DiagSocket;
use procfs::{FdScan, ProcessCache};
use std::collections::HashSet;

/// Linux implementation behind [`crate::collect::Collector`].
pub struct PlatformCollector {
    diag: Option<DiagSocket>,
    processes: ProcessCache,
    /// Warnings already logged, so each is said once.
    warned: HashSet<String>,
}

const TABLES: [(u8, Proto, &str); 4] = [
    (libc::AF_INET as u8, Proto::Tcp, "/proc/net/tcp"),
    (libc::AF_INET6 as u8, Proto::Tcp, "/proc/net/tcp6"),
    (libc::AF_INET as u8, Proto::Udp, "/proc/net/udp"),
    (libc::AF_INET6 as u8, Proto::Udp, "/proc/net/udp6"),
];

impl PlatformCollector {
    pub fn new() -> Result<PlatformCollector, CollectError> {
        let diag = match DiagSocket::open() {
            Ok(d) => Some(d),
            Err(e) => {
                log::warn!("netlink sock_diag unavailable ({e}); reading /proc/net instead (no byte counters)");
                None
            }
        };
        Ok(PlatformCollector {
            diag,
            processes: ProcessCache::default(),
            warned: HashSet::new(),
        })
    }

    /// See [`crate::collect::Collector::set_containers`].
    pub fn set_containers(&mut self, on: bool) {
        self.processes.set_containers(on);
    }

    fn warn_once(&mut self, warnings: &mut Vec<String>, msg: String) {
        if self.warned.insert(msg.clone()) {
            log::warn!("{msg}");
        }
        warnings.push(msg);
    }

    /// All sockets: sock_diag per table, `/proc/net` for a table whose dump
    /// fails (e.g. the `udp_diag` module is not loaded).
    fn sockets(
        &mut self,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<Socket>, &'static str), CollectError> {
        let mut out = Vec::new();
        let mut backend = "netlink";
        for (family, proto, file) in TABLES {
            let dumped = match self.diag.as_mut() {
                Some(d) => d.dump(family, proto, &mut out).map_err(|e| e.to_string()),
                None => Err("netlink sock_diag unavailable".to_string()),
            };
            if let Err(why) = dumped {
                backend = "netlink+procfs";
                match std::fs::read_to_string(file) {
                    Ok(text) => {
                        let parsed =
                            inet_diag::parse_proc_net(&text, proto, file).map_err(|e| {
                                CollectError::Malformed {
                                    what: "/proc/net table",
                                    detail: e.to_string(),
                                }
                            })?;
                        out.extend(parsed);
                        self.warn_once(warnings, format!("{file}: read from /proc because sock_diag failed ({why}); no byte counters"));
                    }
                    // IPv6 disabled: no table, no sockets.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(CollectError::Os {
                            call: "read /proc/net",
                            source: e,
                        })
                    }
                }
            }
        }
        if self.diag.is_none() {
            backend = "procfs";
        }
        Ok((out, backend))
    }

    pub fn sample(&mut self) -> Result<Snapshot, CollectError> {
        let taken_at_ms = now_ms();
        let mut warnings = Vec::new();
        // The fd scan and the socket dumps are independent: run them at once.
        let (scan, sockets) = std::thread::scope(|s| {
            let scan = s.spawn(procfs::scan_fds);
            let sockets = self.sockets(&mut warnings);
            (scan.join(), sockets)
        });
        let (mut sockets, backend) = sockets?;
        let scan: FdScan = match scan {
            Ok(Ok(scan)) => scan,
            Ok(Err(e)) => {
                return Err(CollectError::Os {
                    call: "scan /proc",
                    source: e,
                })
            }
            Err(_) => {
                return Err(CollectError::Malformed {
                    what: "/proc scan",
                    detail: "the scanning thread panicked".into(),
                })
            }
        };

        let mut diagnostics = Diagnostics {
            backend: backend.to_string(),
            processes_denied: scan.denied,
            processes_vanished: scan.vanished,
            ..Diagnostics::default()
        };
        let mut owning: HashSet<u32> = HashSet::new();
        for s in &mut sockets {
            if let Some(pids) = (s.inode != 0).then(|| scan.owners.get(&s.inode)).flatten() {
                let mut pids = pids.clone();
                pids.sort_unstable();
                owning.extend(pids.iter().copied());
                s.owners = pids;
                continue;
            }
            let reason = if s.inode == 0 {
                UnknownReason::Exited
            } else if s.uid.is_some_and(|u| scan.denied_uids.contains(&u)) {
                UnknownReason::Permission
            } else {
                // Held by no process we can see: a process in another PID
                // namespace, or one that closed it during the scan.
                UnknownReason::Unknown
            };
            match reason {
                UnknownReason::Permission => diagnostics.unowned_permission += 1,
                UnknownReason::Exited => diagnostics.unowned_exited += 1,
                UnknownReason::Netns => diagnostics.unowned_netns += 1,
                UnknownReason::Unknown => diagnostics.unowned_unknown += 1,
            }
            s.unowned_reason = Some(reason);
        }
        if scan.denied > 0 {
            self.warn_once(
                &mut warnings,
                format!(
                    "no permission to read the sockets of {} processes (run as root to see every owner); their sockets are shown as unknown:permission",
                    scan.denied
                ),
            );
        }
        let mut processes = Vec::with_capacity(owning.len());
        let mut gone: HashSet<u32> = HashSet::new();
        let mut pids: Vec<u32> = owning.iter().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            match self.processes.get(pid) {
                Some(p) => processes.push(p),
                None => {
                    gone.insert(pid);
                }
            }
        }
        if !gone.is_empty() {
            // Exited between the fd scan and now: its sockets are orphans.
            diagnostics.processes_vanished += gone.len() as u32;
            for s in &mut sockets {
                s.owners.retain(|p| !gone.contains(p));
                if s.owners.is_empty() && s.unowned_reason.is_none() {
                    s.unowned_reason = Some(UnknownReason::Exited);
                    diagnostics.unowned_exited += 1;
                }
            }
        }
        self.processes.retain(&owning);
        diagnostics.warnings = warnings;
        let interfaces = interfaces::list();
        let local_addresses = interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().copied())
            .collect();
        Ok(Snapshot {
            taken_at_ms,
            local_addresses,
            interfaces,
            processes,
            sockets,
            diagnostics,
        })
    }
}
