//! Which end of a connection is the server. The rules, in order, each one
//! deciding only when the previous could not:
//!
//! 1. the end whose address:port matches a listening socket on this host;
//! 2. the end on a service port (well-known, built-in table, `--svc-ports`);
//! 3. the end with the lower port;
//! 4. the end with the lower address (ports equal) — always deterministic.

use crate::graph::ports::ServicePorts;
use std::net::SocketAddr;

/// Which end of a socket is the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSide {
    /// This socket's local end serves; the remote is the client.
    Local,
    /// The remote end serves; this socket is the client.
    Remote,
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectionRule {
    Listener,
    ServicePort,
    LowerPort,
    LowerAddress,
}

/// The decision for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Direction {
    pub server: ServerSide,
    pub rule: DirectionRule,
}

/// Decides the server end of a connection seen from one socket.
/// `local_listens` / `remote_listens`: whether that end matches a listening
/// socket on this host.
pub fn decide(
    local: SocketAddr,
    remote: SocketAddr,
    local_listens: bool,
    remote_listens: bool,
    ports: &ServicePorts,
) -> Direction {
    let pick = |server_is_local: bool, rule| Direction {
        server: if server_is_local {
            ServerSide::Local
        } else {
            ServerSide::Remote
        },
        rule,
    };
    if local_listens != remote_listens {
        return pick(local_listens, DirectionRule::Listener);
    }
    let (local_svc, remote_svc) = (ports.contains(local.port()), ports.contains(remote.port()));
    if local_svc != remote_svc {
        return pick(local_svc, DirectionRule::ServicePort);
    }
    if local.port() != remote.port() {
        return pick(local.port() < remote.port(), DirectionRule::LowerPort);
    }
    pick(local.ip() <= remote.ip(), DirectionRule::LowerAddress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_rule_in_order() {
        let p = ServicePorts::new([3000]);
        // A listener beats the service-port and lower-port rules.
        let d = decide(a("127.0.0.1:40000"), a("127.0.0.1:22"), true, false, &p);
        assert_eq!(
            (d.server, d.rule),
            (ServerSide::Local, DirectionRule::Listener)
        );
        let d = decide(a("127.0.0.1:22"), a("127.0.0.1:40000"), false, true, &p);
        assert_eq!(
            (d.server, d.rule),
            (ServerSide::Remote, DirectionRule::Listener)
        );
        // Service port (built-in and --svc-ports) beats lower port.
        let d = decide(a("10.0.0.1:1200"), a("10.0.0.2:5432"), false, false, &p);
        assert_eq!(
            (d.server, d.rule),
            (ServerSide::Remote, DirectionRule::ServicePort)
        );
        let d = decide(a("10.0.0.1:3000"), a("10.0.0.2:2000"), false, false, &p);
        assert_eq!(
            (d.server, d.rule),
            (ServerSide::Local, DirectionRule::ServicePort)
        );
        // Both listen: falls through to the next rule.
        let d = decide(a("10.0.0.1:40000"), a("10.0.0.2:6379"), true, true, &p);
        assert_eq!(
            (d.server, d.rule),
            (ServerSide::Remote, DirectionRule::ServicePort)
        );
        // Lower port.
        let d = decide(a("10.0.0.1:45000"), a("10.0.0.2:41000"), false, false, &p);
        assert_eq!(
            (d.server, d.rule),
            (ServerSide::Remote, DirectionRule::LowerPort)
        );
        // Equal ports: lower address, seen the same from both ends.
        let d1 = decide(a("10.0.0.1:7000"), a("10.0.0.2:7000"), false, false, &p);
        let d2 = decide(a("10.0.0.2:7000"), a("10.0.0.1:7000"), false, false, &p);
        assert_eq!(
            (d1.server, d1.rule),
            (ServerSide::Local, DirectionRule::LowerAddress)
        );
        assert_eq!(d2.server, ServerSide::Remote);
    }
}
