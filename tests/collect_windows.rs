//! Windows collector tests.
//!
//! * `live` (Windows only, also under Wine via `ci/wine/test.sh`): this test
//!   opens a TCP listener, a client connection to it and a UDP socket, takes
//!   a sample and finds all of them with the right ports and states.
//! * `rows` / `procargs` (every OS): the pure decoders of the Windows and
//!   macOS collectors, compiled here from their source files so that
//!   `cargo test` on Linux exercises them (their own `#[cfg(test)]` modules
//!   run as part of this test binary).

/// The decoders refer to `crate::snapshot`; in this test crate that is the
/// library's module.
mod snapshot {
    pub use procnet::snapshot::*;
}

#[allow(dead_code)]
#[path = "../src/collect/windows/rows.rs"]
mod rows;

/// The macOS collector's pure decoders (KERN_PROCARGS2, TCP states, ports):
/// no macOS machine runs tests here, so they are exercised with these.
#[allow(dead_code)]
#[path = "../src/collect/macos/parse.rs"]
mod procargs;

#[cfg(windows)]
mod live {
    use procnet::collect::Collector;
    use procnet::snapshot::{Proto, Snapshot, Socket, SocketState, UnknownReason};
    use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

    /// Whether ntdll exports `wine_get_version`.
    fn under_wine() -> bool {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: NUL-terminated names; the module handle needs no release.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr() as *const u8);
            !ntdll.is_null()
                && GetProcAddress(ntdll, c"wine_get_version".as_ptr() as *const u8).is_some()
        }
    }

    fn find(
        snap: &Snapshot,
        proto: Proto,
        local: SocketAddr,
        remote: Option<SocketAddr>,
    ) -> Option<&Socket> {
        snap.sockets
            .iter()
            .find(|s| s.proto == proto && s.local == local && s.remote == remote)
    }

    /// Owned by this process, or (Wine only) unowned with pid 0 → `unknown`.
    fn assert_mine(snap: &Snapshot, s: &Socket, wine: bool) {
        let me = std::process::id();
        if s.owners.is_empty() {
            assert!(wine, "socket has no owner outside Wine: {s:?}");
            assert_eq!(s.unowned_reason, Some(UnknownReason::Unknown), "{s:?}");
        } else {
            assert_eq!(s.owners.as_slice(), [me], "{s:?}");
            assert_eq!(s.unowned_reason, None);
            let p = snap.process(me).expect("own process in snapshot");
            assert!(
                p.name.to_lowercase().starts_with("collect_windows"),
                "{p:?}"
            );
            assert!(p.start_time.is_some(), "{p:?}");
        }
    }

    #[test]
    fn sees_own_listener_both_connection_ends_and_udp() {
        let wine = under_wine();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = TcpStream::connect(server).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let client_local = client.local_addr().unwrap();
        assert_eq!(peer, client_local);
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_local = udp.local_addr().unwrap();

        let mut collector = Collector::new().unwrap();
        let snap = collector.sample().unwrap();
        assert_eq!(snap.diagnostics.backend, "iphlpapi");
        assert!(snap.local_addresses.contains(&"127.0.0.1".parse().unwrap()));
        let dump = || serde_json::to_string_pretty(&snap.sockets).unwrap();

        let l = find(&snap, Proto::Tcp, server, None)
            .unwrap_or_else(|| panic!("listener {server} not found in {}", dump()));
        assert_eq!(l.state, SocketState::Listen);
        assert_mine(&snap, l, wine);

        // Client end: its local port is the server end's remote port.
        let c = find(&snap, Proto::Tcp, client_local, Some(server)).unwrap_or_else(|| {
            panic!(
                "client end {client_local}->{server} not found in {}",
                dump()
            )
        });
        assert_eq!(c.state, SocketState::Established);
        assert_mine(&snap, c, wine);

        // Server end: same local port as the listener, remote = client.
        let s = find(
            &snap,
            Proto::Tcp,
            accepted.local_addr().unwrap(),
            Some(client_local),
        )
        .unwrap_or_else(|| {
            panic!(
                "server end {server}<-{client_local} not found in {}",
                dump()
            )
        });
        assert_eq!(s.state, SocketState::Established);
        assert_eq!(s.local.port(), c.remote.unwrap().port());
        assert_eq!(c.local.port(), s.remote.unwrap().port());
        assert_mine(&snap, s, wine);

        let u = find(&snap, Proto::Udp, udp_local, None)
            .unwrap_or_else(|| panic!("udp {udp_local} not found in {}", dump()));
        assert_eq!(u.state, SocketState::Close);
        assert_mine(&snap, u, wine);

        // No byte counter is ever a made-up zero on a connection we cannot
        // measure: either both are known or neither.
        assert_eq!(c.bytes_sent.is_some(), c.bytes_received.is_some());

        // A second sample (cache path) sees the same.
        let again = collector.sample().unwrap();
        assert!(find(&again, Proto::Tcp, server, None).is_some());
        drop((client, accepted, udp));
    }

    #[test]
    fn sees_ipv6_loopback_when_available() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        let server = listener.local_addr().unwrap();
        let Ok(client) = TcpStream::connect(server) else {
            eprintln!("cannot connect over IPv6 loopback; skipped");
            return;
        };
        let _accepted = listener.accept().unwrap();
        let snap = Collector::new().unwrap().sample().unwrap();
        let l = find(&snap, Proto::Tcp, server, None).expect("v6 listener");
        assert_eq!(l.state, SocketState::Listen);
        let c = find(
            &snap,
            Proto::Tcp,
            client.local_addr().unwrap(),
            Some(server),
        )
        .expect("v6 client end");
        assert_eq!(c.state, SocketState::Established);
    }
}
