//! The records the T0 BPF program (`procnet.bpf.c`) writes to its ring
//! buffer, decoded. Pure: unit-tested on bytes built here.

use crate::snapshot::{canonical_ip, Proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `struct record` in `procnet.bpf.c` (natural C alignment).
pub const RECORD_LEN: usize = 120;

const KIND_TCP_CLOSED: u8 = 1;
const KIND_UDP_CLOSED: u8 = 2;
const KIND_TCP_STATE: u8 = 3;
const KIND_TCP_ACTIVITY: u8 = 4;
const KIND_TCP_LISTENER_CLOSED: u8 = 5;

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A connection closed (TCP), or a UDP socket's entry (closed when it
    /// is no longer in the dump).
    Closed,
    /// A TCP socket entered `Record::state` (alive).
    State,
    /// A TCP socket did I/O: its latest counters.
    Activity,
    /// A TCP listener closed: gone from the table, not a connection.
    ListenerClosed,
}
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// The process that held a socket, as the kernel saw it in process
/// context (connect, accept, or the last send/receive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub tgid: u32,
    /// The process's start, in nanoseconds since boot (`start_boottime`).
    pub start_ns: u64,
    /// Its name (the thread group leader's `comm`).
    pub comm: String,
}

/// A closed socket's record (the name the close path uses).
pub type Closed = Record;

/// One socket event: a state change, an activity snapshot or a close,
/// with the socket's endpoints, owner and own counters at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub proto: Proto,
    pub local: SocketAddr,
    /// `None` for an unconnected UDP socket.
    pub remote: Option<SocketAddr>,
    pub owner: Option<Owner>,
    /// Payload bytes sent (TCP: `bytes_sent - bytes_retrans`, as the
    /// iterator counts them; UDP: what the send calls returned).
    pub sent: u64,
    /// Payload bytes received (TCP: `bytes_received` without the peer's
    /// FIN).
    pub received: u64,
    /// TCP only: retransmitted segments and the smoothed RTT in µs.
    pub retransmits: Option<u32>,
    pub rtt_us: Option<u32>,
    /// The kernel TCP state after the event (`include/net/tcp_states.h`).
    pub state: u8,
    /// The socket's inode; 0 before accept() gave it a file.
    pub inode: u64,
    pub uid: u32,
    /// When it happened, ns of CLOCK_MONOTONIC: records are applied in
    /// this order.
    pub ts_ns: u64,
    /// Raw kernel counters for a live socket (state and activity records),
    /// decoded like the iterator's so both paths agree byte for byte:
    /// `bytes_received` with the FIN, and the FIN flag.
    pub raw_received: u64,
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("BPF event record of {0} bytes, expected {RECORD_LEN}")]
    Length(usize),
    #[error("BPF event record of unknown kind {0}")]
    Kind(u8),
    #[error("BPF event record with unknown address family {0}")]
    Family(u8),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn address(family: u8, raw: &[u8]) -> IpAddr {
    if family == AF_INET6 {
        let v6: [u8; 16] = raw[..16].try_into().expect("16 bytes");
        canonical_ip(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    }
}

/// Decodes one ring-buffer record.
pub fn parse(b: &[u8]) -> Result<Closed, RecordError> {
    if b.len() < RECORD_LEN {
        return Err(RecordError::Length(b.len()));
    }
    let (kind, proto) = match b[0] {
        KIND_TCP_CLOSED => (Kind::Closed, Proto::Tcp),
        KIND_UDP_CLOSED => (Kind::Closed, Proto::Udp),
        KIND_TCP_STATE => (Kind::State, Proto::Tcp),
        KIND_TCP_ACTIVITY => (Kind::Activity, Proto::Tcp),
        KIND_TCP_LISTENER_CLOSED => (Kind::ListenerClosed, Proto::Tcp),
        k => return Err(RecordError::Kind(k)),
    };
    let family = b[1];
    if family != AF_INET && family != AF_INET6 {
        return Err(RecordError::Family(family));
    }
    let owner = (b[3] != 0).then(|| {
        let comm = &b[16..32];
        let end = comm.iter().position(|&c| c == 0).unwrap_or(comm.len());
        Owner {
            tgid: u32_at(b, 4),
            start_ns: u64_at(b, 8),
            comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
        }
    });
    let (sport, dport) = (u16_at(b, 64), u16_at(b, 66));
    let local = SocketAddr::new(address(family, &b[32..48]), sport);
    let peer = SocketAddr::new(address(family, &b[48..64]), dport);
    let remote = (dport != 0).then_some(peer);
    let tcp = proto == Proto::Tcp;
    let fin_received = u32_at(b, 92) != 0;
    let received = u64_at(b, 80);
    Ok(Record {
        kind,
        proto,
        local,
        remote,
        owner,
        sent: u64_at(b, 72),
        // The kernel counts the peer's FIN as one received byte.
        received: if tcp && fin_received {
            received.saturating_sub(1)
        } else {
            received
        },
        retransmits: tcp.then(|| u32_at(b, 68)),
        // srtt_us is 8 × the smoothed RTT.
        rtt_us: tcp.then(|| u32_at(b, 88) >> 3),
        inode: u64_at(b, 96),
        uid: u32_at(b, 104),
        state: b[108],
        ts_ns: u64_at(b, 112),
        raw_received: received,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record as the BPF program lays it out.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        kind: u8,
        family: u8,
        owner: Option<(u32, u64, &str)>,
        saddr: &[u8],
        daddr: &[u8],
        ports: (u16, u16),
        counters: (u64, u64),
        fin: bool,
    ) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_LEN];
        b[0] = kind;
        b[1] = family;
        if let Some((tgid, start, comm)) = owner {
            b[3] = 1;
            b[4..8].copy_from_slice(&tgid.to_ne_bytes());
            b[8..16].copy_from_slice(&start.to_ne_bytes());
            b[16..16 + comm.len()].copy_from_slice(comm.as_bytes());
        }
        b[32..32 + saddr.len()].copy_from_slice(saddr);
        b[48..48 + daddr.len()].copy_from_slice(daddr);
        b[64..66].copy_from_slice(&ports.0.to_ne_bytes());
        b[66..68].copy_from_slice(&ports.1.to_ne_bytes());
        b[68..72].copy_from_slice(&3u32.to_ne_bytes());
        b[72..80].copy_from_slice(&counters.0.to_ne_bytes());
        b[80..88].copy_from_slice(&counters.1.to_ne_bytes());
        b[88..92].copy_from_slice(&(250u32 * 8).to_ne_bytes());
        b[92..96].copy_from_slice(&u32::from(fin).to_ne_bytes());
        b
    }

    #[test]
    fn tcp_v4_record_with_owner() {
        let b = record(
            1,
            2,
            Some((42, 7_000, "nginx")),
            &[127, 0, 0, 1],
            &[127, 0, 0, 2],
            (40000, 80),
            (1000, 501),
            true,
        );
        let c = parse(&b).unwrap();
        assert_eq!(c.proto, Proto::Tcp);
        assert_eq!(c.local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(c.remote, Some("127.0.0.2:80".parse().unwrap()));
        let o = c.owner.unwrap();
        assert_eq!((o.tgid, o.start_ns, o.comm.as_str()), (42, 7_000, "nginx"));
        assert_eq!((c.sent, c.received), (1000, 500), "the FIN is not a byte");
        assert_eq!((c.retransmits, c.rtt_us), (Some(3), Some(250)));
    }

    #[test]
    fn udp_v6_record_unconnected_without_owner() {
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        let b = record(2, 10, None, &v6, &[0; 16], (5353, 0), (10, 20), true);
        let c = parse(&b).unwrap();
        assert_eq!(c.proto, Proto::Udp);
        assert_eq!(c.local, "[::1]:5353".parse().unwrap());
        assert_eq!((c.remote, c.owner), (None, None));
        assert_eq!((c.sent, c.received), (10, 20), "UDP has no FIN");
        assert_eq!(c.retransmits, None);
        // IPv4-mapped addresses are shown as IPv4.
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
        let c = parse(&record(
            2,
            10,
            None,
            &mapped,
            &mapped,
            (1, 2),
            (0, 0),
            false,
        ))
        .unwrap();
        assert_eq!(c.local, "127.0.0.1:1".parse().unwrap());
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        assert_eq!(parse(&[1, 2, 3]), Err(RecordError::Length(3)));
        let b = record(9, 2, None, &[0; 4], &[0; 4], (1, 2), (0, 0), false);
        assert_eq!(parse(&b), Err(RecordError::Kind(9)));
        let b = record(1, 7, None, &[0; 4], &[0; 4], (1, 2), (0, 0), false);
        assert_eq!(parse(&b), Err(RecordError::Family(7)));
    }
}
