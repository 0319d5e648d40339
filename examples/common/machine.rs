//! A synthetic machine shaped like `bench/holdconns.py`, shared by the
//! history examples.

use procnet::snapshot::{Process, Proto, Snapshot, Socket, SocketState};
use std::net::SocketAddr;

fn socket(local: SocketAddr, remote: Option<SocketAddr>, inode: u64, pid: u32) -> Socket {
    Socket {
        proto: Proto::Tcp,
        local,
        remote,
        state: if remote.is_some() {
            SocketState::Established
        } else {
            SocketState::Listen
        },
        inode,
        uid: Some(0),
        owners: smallvec::smallvec![pid],
        unowned_reason: None,
        bytes_sent: remote.map(|_| 0),
        bytes_received: remote.map(|_| 0),
        tcp_health: None,
        closed: false,
        io_owner: None,
    }
}

/// The machine at second `t`: connection `i` exists for `t <= i + conns`
/// and `i >= t` (one opens and one closes a second); 1 % of them count
/// bytes each second.
pub fn machine(conns: u32, t: u32) -> Snapshot {
    let server: SocketAddr = "127.0.0.1:9000".parse().unwrap();
    let mut sockets = vec![socket(server, None, 1, 2)];
    for i in t..t + conns {
        let client = SocketAddr::from((
            [127, 0, 0, 2 + (i / 50_000) as u8],
            10_000 + (i % 50_000) as u16,
        ));
        let mut c = socket(client, Some(server), 10 + 2 * i as u64, 1);
        let mut s = socket(server, Some(client), 11 + 2 * i as u64, 2);
        if i % 100 == t % 100 {
            c.bytes_sent = Some(u64::from(t) * 1000);
            s.bytes_received = c.bytes_sent;
        }
        sockets.push(c);
        sockets.push(s);
    }
    let process = |pid: u32, role: &str| Process {
        pid,
        start_time: Some(1),
        name: "python3".into(),
        cmdline: vec!["python3".into(), "bench/holdconns.py".into(), role.into()],
        exe: Some("/usr/bin/python3.11".into()),
        uid: Some(0),
        user: Some("root".into()),
        ppid: Some(1),
        container_id: None,
    };
    Snapshot {
        taken_at_ms: 1_000 * u64::from(t),
        local_addresses: vec!["127.0.0.1".parse().unwrap()],
        processes: vec![process(1, "client"), process(2, "server")],
        sockets: sockets.into(),
        ..Snapshot::default()
    }
}
