//! [`Monitor`]: netprocmon's abilities as a Rust API — bytes received and
//! sent per process and per interface, and which process owns which port —
//! from the kernel's own per-socket counters (no packet capture).
//!
//! ```no_run
//! use procnet::monitor::Monitor;
//! let mut monitor = Monitor::new()?;
//! monitor.add_pid(std::process::id());
//! loop {
//!     monitor.refresh()?;
//!     for t in monitor.count_by_pid(std::process::id()) {
//!         println!("{}: received {} B, sent {} B", t.interface, t.recv, t.send);
//!     }
//!     std::thread::sleep(std::time::Duration::from_secs(5));
//! }
//! # Ok::<(), procnet::monitor::MonitorError>(())
//! ```
//!
//! Counts start at the first [`Monitor::refresh`]: bytes a socket moved
//! before that are not counted, bytes of sockets opened later are, in full.
//! TCP only: the kernel keeps no per-socket byte counters for UDP.

use crate::collect::{CollectError, Collector};
use crate::graph::pairing::is_listener;
use crate::graph::traffic::TrafficTracker;
use crate::snapshot::{Interface, Proto, Snapshot};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Traffic of one process on one interface since monitoring started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkTraffic {
    pub interface: String,
    pub pid: u32,
    /// Bytes received.
    pub recv: u64,
    /// Bytes sent.
    pub send: u64,
}

/// Why a monitor call failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error("{0} is not an address of any interface of this host")]
    NotAnInterfaceAddress(IpAddr),
}

/// Watches processes' traffic. Call [`Monitor::refresh`] periodically.
pub struct Monitor {
    collector: Collector,
    tracker: TrafficTracker,
    pids: BTreeSet<u32>,
    addresses: BTreeSet<IpAddr>,
    last: Snapshot,
}

impl Monitor {
    /// Creates a monitor and takes its first sample (the baseline).
    pub fn new() -> Result<Monitor, MonitorError> {
        let mut collector = Collector::new()?;
        let last = collector.sample()?;
        let mut tracker = TrafficTracker::default();
        tracker.observe(&last);
        Ok(Monitor {
            collector,
            tracker,
            pids: BTreeSet::new(),
            addresses: BTreeSet::new(),
            last,
        })
    }

    /// Takes a sample and adds what moved since the previous one.
    pub fn refresh(&mut self) -> Result<(), MonitorError> {
        let snap = self.collector.sample()?;
        self.tracker.observe(&snap);
        self.last = snap;
        Ok(())
    }

    /// Watches `pid` (it is then part of [`Monitor::counts`] and the port lists).
    pub fn add_pid(&mut self, pid: u32) {
        self.pids.insert(pid);
    }
    /// Stops watching `pid`.
    pub fn remove_pid(&mut self, pid: u32) {
        self.pids.remove(&pid);
    }
    /// The watched pids.
    pub fn pids(&self) -> Vec<u32> {
        self.pids.iter().copied().collect()
    }
    /// Stops watching every pid.
    pub fn clear_pids(&mut self) {
        self.pids.clear();
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
    pub fn count_by_pid(&self, pid: u32) -> Vec<NetworkTraffic> {
        let interfaces: BTreeSet<String> = self
            .listen_interfaces()
            .into_iter()
            .map(|i| i.name)
            .collect();
        let start = self.last.process(pid).and_then(|p| p.start_time);
        self.tracker
            .totals()
            .into_iter()
            .filter(|t| t.pid == pid && (start.is_none() || t.start_time == start))
            .filter(|t| interfaces.is_empty() || interfaces.contains(&t.interface))
            .map(|t| NetworkTraffic {
                interface: t.interface,
                pid,
                recv: t.recv,
                send: t.send,
            })
            .collect()
    }

    /// [`Monitor::count_by_pid`] for every watched pid.
    pub fn counts(&self) -> Vec<NetworkTraffic> {
        self.pids
            .iter()
            .flat_map(|&p| self.count_by_pid(p))
            .collect()
    }

    /// The process that owns local `port` (a listener first), in the last sample.
    pub fn pid_by_port(&self, proto: Proto, port: u16) -> Option<u32> {
        let on_port = |s: &&crate::snapshot::Socket| {
            s.proto == proto && s.local.port() == port && !s.owners.is_empty()
        };
        let sockets = &self.last.sockets;
        sockets
            .iter()
            .filter(on_port)
            .find(|s| is_listener(s))
            .or_else(|| sockets.iter().find(on_port))
            .and_then(|s| s.owners.first().copied())
    }

    /// Local ports of `pid`'s sockets.
    pub fn ports_by_pid(&self, pid: u32) -> Vec<u16> {
        self.ports_where(|s| s.owners.contains(&pid))
    }

    /// Local ports of the watched processes' sockets of `proto`.
    pub fn ports_by_proto(&self, proto: Proto) -> Vec<u16> {
        self.ports_where(|s| s.proto == proto && s.owners.iter().any(|p| self.pids.contains(p)))
    }

    /// Local ports of the watched processes' sockets.
    pub fn ports(&self) -> Vec<u16> {
        self.ports_where(|s| s.owners.iter().any(|p| self.pids.contains(p)))
    }

    fn ports_where(&self, pred: impl Fn(&crate::snapshot::Socket) -> bool) -> Vec<u16> {
        let ports: BTreeSet<u16> = self
            .last
            .sockets
            .iter()
            .filter(|s| pred(s))
            .map(|s| s.local.port())
            .collect();
        ports.into_iter().collect()
    }
}
