//! Linux collector: sockets from netlink `NETLINK_SOCK_DIAG`, owners from a
//! `/proc/<pid>/fd` scan.

use crate::collect::{now_ms, CollectError};
use crate::snapshot::{Diagnostics, Snapshot};

/// Linux implementation behind [`crate::collect::Collector`].
pub struct PlatformCollector {}

impl PlatformCollector {
    pub fn new() -> Result<PlatformCollector, CollectError> {
        Ok(PlatformCollector {})
    }

    pub fn sample(&mut self) -> Result<Snapshot, CollectError> {
        Ok(Snapshot {
            taken_at_ms: now_ms(),
            diagnostics: Diagnostics {
                backend: "netlink".into(),
                ..Diagnostics::default()
            },
            ..Snapshot::default()
        })
    }
}
