//! The only code that talks to the operating system. Each OS backend fills
//! the same [`Snapshot`]; everything downstream is pure.
//!
//! | OS      | sockets                                   | owners                    |
//! |---------|-------------------------------------------|---------------------------|
//! | Linux   | netlink `NETLINK_SOCK_DIAG` (inet_diag)   | `/proc/<pid>/fd` inodes   |
//! | Windows | `GetExtendedTcpTable` / `GetExtendedUdpTable` | pid in the table      |
//! | macOS   | libproc `proc_pidfdinfo`                  | pid of the fd table       |

use crate::snapshot::Snapshot;

pub mod containers;
pub mod host;
pub mod proc_info;

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "linux")]
use linux::PlatformCollector;

#[cfg(target_os = "windows")]
pub mod windows;
#[cfg(target_os = "windows")]
use windows::PlatformCollector;

#[cfg(target_os = "macos")]
pub mod macos;
#[cfg(target_os = "macos")]
use macos::PlatformCollector;

/// Why a whole sample failed. Per-process problems (a vanished pid, EACCES)
/// never fail a sample: they are counted in [`crate::snapshot::Diagnostics`].
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// An OS call that the sample cannot do without failed.
    #[error("{call} failed: {source}")]
    Os {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The kernel answered with something we could not decode.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// This OS has no collector.
    #[error("procnet has no collector for this operating system")]
    Unsupported,
}

/// What a collector should do besides reading the socket tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct CollectOptions {
    /// Count bytes per flow from packets (AF_PACKET; Linux, root /
    /// CAP_NET_RAW): UDP bytes, which the kernel does not count per socket.
    pub capture: bool,
    /// Follow socket lifecycles with kernel events (Linux tier T0, root):
    /// for a collector that samples again and again (`serve`, `Monitor`),
    /// not for a one-shot snapshot, which would only pay for loading them.
    pub events: bool,
    /// With `events`: walk the socket tables every sample anyway (the cost
    /// of tier T1), the events adding UDP bytes and closed sockets' owners.
    /// Between walks a TCP socket's counters are those of its last send or
    /// receive call, so what the kernel transmits after a socket's last
    /// call (up to its send buffer) shows only at the next walk, within
    /// 60 s: fine for rates on a graph, not for a caller that must count
    /// every byte by the next sample (`Monitor`).
    pub walk_every_sample: bool,
}

/// Takes samples of the machine. Keeps caches between samples (process
/// details keyed by pid and start time) so a steady machine is not re-read
/// in full every interval.
pub struct Collector {
    #[cfg(any(target_os = "linux", target_os = "windows", target_os = "macos"))]
    inner: PlatformCollector,
}

impl Collector {
    /// Creates a collector for this OS.
    pub fn new() -> Result<Collector, CollectError> {
        Collector::with_options(CollectOptions::default())
    }

    /// Creates a collector with options. An option this OS cannot honour
    /// is reported in every sample's warnings, not refused.
    pub fn with_options(options: CollectOptions) -> Result<Collector, CollectError> {
        #[cfg(target_os = "linux")]
        {
            Ok(Collector {
                inner: PlatformCollector::with_options(linux::LinuxOptions {
                    capture: options.capture,
                    events: options.events,
                    walk_every_sample: options.walk_every_sample,
                    ..linux::LinuxOptions::default()
                })?,
            })
        }
        #[cfg(any(target_os = "windows", target_os = "macos"))]
        {
            if options.capture {
                log::warn!("--capture is only available on Linux; continuing without it");
            }
            Ok(Collector {
                inner: PlatformCollector::new()?,
            })
        }
        #[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
        {
            Err(CollectError::Unsupported)
        }
    }

    /// Whether to find each process's container (from its cgroup on
    /// Linux); on by default, off with `--no-containers`.
    pub fn set_containers(&mut self, on: bool) {
        #[cfg(target_os = "linux")]
        self.inner.set_containers(on);
        #[cfg(not(target_os = "linux"))]
        let _ = on;
    }

    /// Whether the machine is known not to have changed since the last
    /// sample (and that sample's rates are all zero): then the last sample
    /// still holds and taking another would only cost. Only a collector
    /// fed by kernel events (Linux tier T0) can know; `false` otherwise.
    pub fn unchanged(&mut self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.inner.unchanged()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Which sockets of the last sample differ from the one before, when
    /// the collector knows and only counters moved (tier T0); `None`:
    /// treat the sample as new throughout. See [`crate::snapshot::SocketChanges`].
    pub fn take_changes(&mut self) -> Option<crate::snapshot::SocketChanges> {
        #[cfg(target_os = "linux")]
        {
            self.inner.take_changes()
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Whether the kernel event programs (Linux tier T0) are loaded, which
    /// also count UDP bytes per socket (`sock_send_length` /
    /// `sock_recv_length`); `Err` says why not (not asked for, capped by
    /// `PROCNET_TIER`, not root, no BTF, another OS). Known once the
    /// collector is created: the programs load then or never.
    pub fn kernel_events(&self) -> Result<(), String> {
        #[cfg(target_os = "linux")]
        {
            self.inner.kernel_events()
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err("kernel socket events are only available on Linux".into())
        }
    }

    /// Takes one sample.
    pub fn sample(&mut self) -> Result<Snapshot, CollectError> {
        #[cfg(any(target_os = "linux", target_os = "windows", target_os = "macos"))]
        {
            self.inner.sample()
        }
        #[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
        {
            Err(CollectError::Unsupported)
        }
    }
}

/// Milliseconds since the Unix epoch, for `Snapshot::taken_at_ms`.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
