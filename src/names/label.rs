//! Which addresses get a name, and putting the names into the published
//! documents. Pure: the names come in as a map.
//!
//! Every remote address that DNS can name is looked up, private LAN
//! addresses included (a printer or a NAS on 192.168.1.0/24 with a PTR
//! record in the home router is exactly what a user wants to see by
//! name). Not looked up: this host's own addresses and loopback (their
//! ends are processes, never external nodes), the unspecified address,
//! multicast and broadcast, and link-local addresses (no DNS server
//! answers for them).

use crate::graph::model::{ConnectionsDoc, GraphDoc, NodeKind};
use crate::snapshot::{Proto, Snapshot};
use rustc_hash::{FxHashMap, FxHashSet};
use std::net::IpAddr;

/// Names found so far, by address (the address as the documents show it).
pub type HostNameMap = FxHashMap<IpAddr, String>;

/// Longest name shown: a DNS name has at most 253 characters.
const MAX_NAME_LEN: usize = 253;

/// Whether `ip` is worth a reverse lookup (see the module doc).
pub fn wants_name(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_link_local())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

/// The remote addresses of `snapshot`'s connected sockets that may get a
/// name: not this host's own, UDP only with `udp` (what the views show).
pub fn addresses_to_name(snapshot: &Snapshot, udp: bool) -> Vec<IpAddr> {
    let own: FxHashSet<IpAddr> = snapshot.local_addresses.iter().copied().collect();
    let mut seen = FxHashSet::default();
    snapshot
        .sockets
        .iter()
        .filter(|s| udp || s.proto == Proto::Tcp)
        .filter_map(|s| s.remote.map(|r| r.ip()))
        .filter(|ip| wants_name(*ip) && !own.contains(ip) && seen.insert(*ip))
        .collect()
}

/// A PTR name as it may be shown: without the root's trailing dot, and
/// only when it is a plausible host name (a PTR record is written by the
/// address's owner, so anything else — control characters, spaces, a
/// novel's length — is not shown).
pub fn shown_name(ptr: &str) -> Option<String> {
    let name = ptr.strip_suffix('.').unwrap_or(ptr);
    let plausible = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    plausible.then(|| name.to_ascii_lowercase())
}

/// Names the external nodes of `doc`: `hostName` set and shown as the
/// `label`; the address stays in `address` (the tooltip shows it).
pub fn name_graph(doc: &mut GraphDoc, names: &HostNameMap) {
    if names.is_empty() {
        return;
    }
    for node in doc
        .nodes
        .iter_mut()
        .filter(|n| n.kind == NodeKind::External)
    {
        let Some(ip) = node.address.as_deref().and_then(|a| a.parse().ok()) else {
            continue;
        };
        if let Some(name) = names.get(&ip) {
            node.label = name.clone();
            node.host_name = Some(name.clone());
        }
    }
}

/// Names the remote ends of `doc`'s connections: `toHostName`.
pub fn name_connections(doc: &mut ConnectionsDoc, names: &HostNameMap) {
    if names.is_empty() {
        return;
    }
    for c in &mut doc.connections {
        if let Some(name) = c.to_address.parse().ok().and_then(|ip| names.get(&ip)) {
            c.to_host_name = Some(name.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::{Connection, Node, Role};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lan_and_public_addresses_get_names_loopback_and_link_local_do_not() {
        for yes in [
            "192.168.1.20",
            "10.1.2.3",
            "93.184.216.34",
            "198.18.0.2",
            "2001:db8::1",
            "fd00::5",
        ] {
            assert!(wants_name(ip(yes)), "{yes}");
        }
        for no in [
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "0.0.0.0",
            "::",
            "169.254.1.1",
            "fe80::1",
            "224.0.0.251",
            "255.255.255.255",
            "::ffff:127.0.0.1",
        ] {
            assert!(!wants_name(ip(no)), "{no}");
        }
    }

    #[test]
    fn shown_names_drop_the_root_dot_and_refuse_junk() {
        assert_eq!(shown_name("Peer.Example.").as_deref(), Some("peer.example"));
        assert_eq!(shown_name("nas_1.lan").as_deref(), Some("nas_1.lan"));
        assert_eq!(shown_name("."), None);
        assert_eq!(shown_name("evil\u{1b}[31m.example"), None);
        assert_eq!(shown_name("a b.example"), None);
        assert_eq!(shown_name(&"a".repeat(254)), None);
    }

    #[test]
    fn external_nodes_take_the_name_as_label_and_keep_the_address() {
        let mut ext = Node::bare(
            "ext:198.18.0.2".into(),
            NodeKind::External,
            "external",
            "198.18.0.2".into(),
        );
        ext.address = Some("198.18.0.2".into());
        let mut other = ext.clone();
        other.id = "ext:198.18.0.3".into();
        other.address = Some("198.18.0.3".into());
        other.label = "198.18.0.3".into();
        let process = Node::bare("pid:1".into(), NodeKind::Process, "app", "x".into());
        let mut doc = GraphDoc {
            nodes: vec![ext, other, process.clone()],
            ..GraphDoc::default()
        };
        let mut names = HostNameMap::default();
        names.insert(ip("198.18.0.2"), "peer.procnet.test".into());
        name_graph(&mut doc, &names);
        assert_eq!(doc.nodes[0].label, "peer.procnet.test");
        assert_eq!(doc.nodes[0].host_name.as_deref(), Some("peer.procnet.test"));
        assert_eq!(doc.nodes[0].address.as_deref(), Some("198.18.0.2"));
        assert_eq!(doc.nodes[1].label, "198.18.0.3");
        assert_eq!(doc.nodes[1].host_name, None);
        assert_eq!(doc.nodes[2], process);
    }

    #[test]
    fn remote_addresses_of_shown_sockets_once_not_this_hosts_own() {
        let snapshot: Snapshot = serde_json::from_value(serde_json::json!({
            "takenAtMs": 0,
            "localAddresses": ["127.0.0.1", "192.168.1.5"],
            "sockets": [
                {"proto": "tcp", "local": "192.168.1.5:40000", "remote": "192.168.1.20:5432", "state": "ESTABLISHED"},
                {"proto": "tcp", "local": "192.168.1.5:40001", "remote": "192.168.1.20:5432", "state": "ESTABLISHED"},
                {"proto": "tcp", "local": "192.168.1.5:40002", "remote": "192.168.1.5:22", "state": "ESTABLISHED"},
                {"proto": "tcp", "local": "127.0.0.1:40003", "remote": "127.0.0.1:8080", "state": "ESTABLISHED"},
                {"proto": "tcp", "local": "0.0.0.0:22", "state": "LISTEN"},
                {"proto": "udp", "local": "192.168.1.5:5000", "remote": "93.184.216.34:53", "state": "ESTABLISHED"}
            ]
        }))
        .unwrap();
        assert_eq!(
            addresses_to_name(&snapshot, false),
            vec![ip("192.168.1.20")]
        );
        assert_eq!(
            addresses_to_name(&snapshot, true),
            vec![ip("192.168.1.20"), ip("93.184.216.34")]
        );
    }

    #[test]
    fn connections_to_a_named_address_carry_to_host_name() {
        let row = |to: &str| Connection {
            from_pid: 1,
            from_process_name: "psql".into(),
            from_address: "192.168.1.5".into(),
            from_port: 40000,
            to_address: to.into(),
            to_port: 5432,
            to_label: None,
            to_host_name: None,
            proto: Proto::Tcp,
            state: "ESTABLISHED".into(),
            role: Role::Client,
            to_pid: None,
            to_process_label: None,
            tx_bytes: None,
            rx_bytes: None,
            rtt_ms: None,
            retransmits: None,
        };
        let mut doc = ConnectionsDoc {
            listeners: vec![],
            connections: vec![row("192.168.1.20"), row("192.168.1.21")],
        };
        let mut names = HostNameMap::default();
        names.insert(ip("192.168.1.20"), "db.lan".into());
        name_connections(&mut doc, &names);
        assert_eq!(doc.connections[0].to_host_name.as_deref(), Some("db.lan"));
        assert_eq!(doc.connections[1].to_host_name, None);
    }
}
