//! Why a socket has no owner process: the one place the Linux collector
//! decides between `pending`, `exited`, `permission`, `orphan` and
//! `unknown`, from what the sample saw (no OS calls here).
//!
//! The kernel reports inode 0 for a socket no file refers to: a TCP
//! connection still in a listener's accept queue (`pending`: the
//! listener's), or one whose process closed it (TIME_WAIT, FIN_WAIT...:
//! `exited`). A socket with an inode that no process holds is `orphan`
//! when every process's fds were seen (the BPF iterator, or a `/proc` scan
//! of the whole pid namespace with nothing denied); `permission` only when
//! a process of the socket's user could not be read (EACCES).

use crate::snapshot::{Proto, Socket, SocketState, UnknownReason};
use rustc_hash::FxHashMap;
use std::net::{IpAddr, SocketAddr};

/// What the owner scan of one sample could and could not see.
#[derive(Debug, Clone, Default)]
pub struct OwnerView {
    /// Owners were looked up at all (`/proc` could be read).
    pub scanned: bool,
    /// Every process's fds were seen: a socket none holds is an orphan.
    pub complete: bool,
    /// Users with a process whose fds could not be read, sorted.
    pub denied_uids: Vec<u32>,
    /// A process could not be read and its user is unknown.
    pub denied_unknown_uid: bool,
}

/// The addresses TCP listeners are bound to, by port: a connection in an
/// accept queue has the listener's port and its address (or, for a
/// wildcard listener, any local address).
#[derive(Debug, Default)]
pub struct Listeners(FxHashMap<u16, Vec<IpAddr>>);

impl Listeners {
    pub fn of<'a>(sockets: impl IntoIterator<Item = &'a Socket>) -> Listeners {
        let mut by_port: FxHashMap<u16, Vec<IpAddr>> = FxHashMap::default();
        for s in sockets {
            if s.proto == Proto::Tcp && s.state == SocketState::Listen {
                by_port
                    .entry(s.local.port())
                    .or_default()
                    .push(s.local.ip());
            }
        }
        Listeners(by_port)
    }

    /// Whether a listener accepts connections to `local`. An IPv6 wildcard
    /// listener also takes IPv4 ones (dual stack: `local` is already
    /// written as IPv4).
    pub fn accepts(&self, local: SocketAddr) -> bool {
        self.0.get(&local.port()).is_some_and(|ips| {
            ips.iter().any(|&ip| {
                ip == local.ip() || (ip.is_unspecified() && (ip.is_ipv6() || local.ip().is_ipv4()))
            })
        })
    }
}

/// Why `s` has no owner; `None` when it has one.
pub fn reason(s: &Socket, view: &OwnerView, listeners: &Listeners) -> Option<UnknownReason> {
    if !s.owners.is_empty() {
        return None;
    }
    if s.inode == 0 {
        let queued = matches!(
            s.state,
            SocketState::Established | SocketState::SynRecv | SocketState::CloseWait
        );
        return Some(
            if s.proto == Proto::Tcp && queued && listeners.accepts(s.local) {
                UnknownReason::Pending
            } else {
                UnknownReason::Exited
            },
        );
    }
    Some(if !view.scanned {
        UnknownReason::Unknown
    } else if view.complete {
        UnknownReason::Orphan
    } else if view.denied_unknown_uid
        || s.uid
            .is_some_and(|u| view.denied_uids.binary_search(&u).is_ok())
    {
        UnknownReason::Permission
    } else {
        // Held by no process we can see, with some we could not: one in
        // another pid namespace, or one that closed it during the scan.
        UnknownReason::Unknown
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(local: &str, remote: Option<&str>, state: SocketState, inode: u64) -> Socket {
        Socket {
            proto: Proto::Tcp,
            local: local.parse().unwrap(),
            remote: remote.map(|r| r.parse().unwrap()),
            state,
            inode,
            uid: (inode != 0).then_some(1000),
            owners: Default::default(),
            unowned_reason: None,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: None,
            closed: false,
            io_owner: None,
        }
    }

    #[test]
    fn inode_zero_is_pending_in_a_listeners_queue_else_exited() {
        let all = vec![
            sock("127.0.0.1:80", None, SocketState::Listen, 1),
            sock("[::]:443", None, SocketState::Listen, 2),
            sock("0.0.0.0:22", None, SocketState::Listen, 3),
        ];
        let l = Listeners::of(&all);
        let view = OwnerView {
            scanned: true,
            complete: true,
            ..OwnerView::default()
        };
        let r = |local, state| reason(&sock(local, Some("127.0.0.1:5000"), state, 0), &view, &l);
        use SocketState::*;
        use UnknownReason::*;
        assert_eq!(r("127.0.0.1:80", Established), Some(Pending));
        assert_eq!(r("127.0.0.1:80", SynRecv), Some(Pending));
        assert_eq!(r("127.0.0.1:80", CloseWait), Some(Pending));
        assert_eq!(r("127.0.0.2:80", Established), Some(Exited));
        assert_eq!(r("127.0.0.1:80", TimeWait), Some(Exited));
        assert_eq!(r("127.0.0.1:80", FinWait1), Some(Exited));
        assert_eq!(r("10.1.2.3:443", Established), Some(Pending));
        assert_eq!(r("[::1]:443", Established), Some(Pending));
        assert_eq!(r("10.1.2.3:22", Established), Some(Pending));
        assert_eq!(r("[::1]:22", Established), Some(Exited));
        assert_eq!(r("127.0.0.1:81", Established), Some(Exited));
    }

    #[test]
    fn inode_without_holder_is_orphan_only_when_everything_was_seen() {
        let l = Listeners::default();
        let s = sock("127.0.0.1:80", None, SocketState::Listen, 7);
        let mut view = OwnerView::default();
        assert_eq!(reason(&s, &view, &l), Some(UnknownReason::Unknown));
        view.scanned = true;
        assert_eq!(reason(&s, &view, &l), Some(UnknownReason::Unknown));
        view.denied_uids = vec![0, 1000];
        assert_eq!(reason(&s, &view, &l), Some(UnknownReason::Permission));
        view.denied_uids = vec![0];
        assert_eq!(reason(&s, &view, &l), Some(UnknownReason::Unknown));
        view.denied_unknown_uid = true;
        assert_eq!(reason(&s, &view, &l), Some(UnknownReason::Permission));
        view.complete = true;
        assert_eq!(reason(&s, &view, &l), Some(UnknownReason::Orphan));
        let mut owned = s.clone();
        owned.owners.push(42);
        assert_eq!(reason(&owned, &view, &l), None);
    }
}
