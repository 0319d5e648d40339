//! Pure decoding of netlink `SOCK_DIAG_BY_FAMILY` requests and replies
//! (`inet_diag_req_v2` out, `inet_diag_msg` + attributes in). No I/O here:
//! every function works on byte slices, so arbitrary bytes can be fed to it.
//!
//! Layouts follow `linux/netlink.h`, `linux/inet_diag.h` and
//! `linux/tcp.h`; all multi-byte fields are host-endian except the ports
//! and addresses in `inet_diag_sockid`, which are network byte order.

use crate::snapshot::{canonical_ip, Proto, TcpHealth};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `struct nlmsghdr` size.
pub const NLMSG_HDRLEN: usize = 16;
/// `NLMSG_NOOP`.
const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
const NLMSG_OVERRUN: u16 = 4;
/// `SOCK_DIAG_BY_FAMILY` (`linux/sock_diag.h`).
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_DUMP: u16 = 0x300;
/// `sizeof(struct inet_diag_req_v2)`.
const REQ_V2_LEN: usize = 56;
/// `sizeof(struct inet_diag_msg)`.
pub const DIAG_MSG_LEN: usize = 72;
/// `INET_DIAG_INFO` attribute type (`struct tcp_info` for TCP).
const INET_DIAG_INFO: u16 = 2;
/// Offsets inside `struct tcp_info` (`linux/tcp.h`); a field is present
/// only when the attribute payload reaches its end (older kernels send
/// shorter structs).
const TCPI_RTT: usize = 68;
const TCPI_TOTAL_RETRANS: usize = 100;
const TCPI_BYTES_ACKED: usize = 120;
const TCPI_BYTES_RECEIVED: usize = 128;
const TCPI_BYTES_SENT: usize = 200;
const TCPI_BYTES_RETRANS: usize = 208;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// Why a netlink reply could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiagError {
    /// A header or payload runs past the end of the buffer.
    #[error("truncated {what} at offset {offset} ({len} bytes in buffer)")]
    Truncated {
        what: &'static str,
        offset: usize,
        len: usize,
    },
    /// A length field is impossible (smaller than its own header).
    #[error("bad {what} length {value} at offset {offset}")]
    BadLength {
        what: &'static str,
        value: usize,
        offset: usize,
    },
    /// The kernel answered the request with an error (positive errno).
    #[error("kernel returned error {errno} ({})", std::io::Error::from_raw_os_error(*.errno))]
    Kernel { errno: i32 },
    /// The kernel dropped messages (`NLMSG_OVERRUN`).
    #[error("netlink overrun: messages were lost")]
    Overrun,
    /// A message type that a sock_diag dump never sends.
    #[error("unexpected netlink message type {0}")]
    UnexpectedType(u16),
    /// A socket of an address family other than the one asked for.
    #[error("unexpected address family {0}")]
    UnexpectedFamily(u8),
}

/// One socket as the kernel describes it, before owners are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiagSocket {
    pub proto: Proto,
    /// Kernel state number (`TCP_*`; UDP uses 1 connected, 7 bound).
    pub state: u8,
    /// Local address, IPv4-mapped addresses already canonical.
    pub local: SocketAddr,
    /// Remote address; `None` for `0.0.0.0:0` / `[::]:0`.
    pub remote: Option<SocketAddr>,
    pub uid: u32,
    /// Socket inode; 0 for TIME_WAIT and request sockets.
    pub inode: u64,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    /// Smoothed RTT and retransmissions (TCP connections only).
    pub tcp_health: Option<TcpHealth>,
}

/// Whether a dump continues in a further datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// No `NLMSG_DONE` yet: receive again.
    More,
    /// `NLMSG_DONE` seen: the dump is complete.
    Done,
}

/// Builds a `SOCK_DIAG_BY_FAMILY` dump request for every state of
/// `proto` sockets of `family` (`AF_INET` / `AF_INET6`). For TCP it asks
/// for `INET_DIAG_INFO` (`struct tcp_info`, which carries byte counters).
pub fn build_request(family: u8, proto: Proto, seq: u32) -> [u8; NLMSG_HDRLEN + REQ_V2_LEN] {
    let mut buf = [0u8; NLMSG_HDRLEN + REQ_V2_LEN];
    let len = (NLMSG_HDRLEN + REQ_V2_LEN) as u32;
    buf[0..4].copy_from_slice(&len.to_ne_bytes());
    buf[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    buf[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: addressed to the kernel.
    let req = &mut buf[NLMSG_HDRLEN..];
    req[0] = family;
    let (protocol, ext) = match proto {
        Proto::Tcp => (libc::IPPROTO_TCP as u8, 1u8 << (INET_DIAG_INFO - 1)),
        Proto::Udp => (libc::IPPROTO_UDP as u8, 0),
    };
    req[1] = protocol;
    req[2] = ext;
    // idiag_states: every state but TCP_BOUND_INACTIVE (bound, neither
    // listening nor connected): asking for those makes the kernel walk
    // every bound socket a second time, ~20 % of the dump, for sockets
    // that talk to no one (`/proc/net/tcp` and `ss` leave them out too).
    let states = match proto {
        Proto::Tcp => !(1u32 << TCP_BOUND_INACTIVE),
        Proto::Udp => u32::MAX,
    };
    req[4..8].copy_from_slice(&states.to_ne_bytes());
    buf
}

fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([b[0], b[1]]))
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_ne_bytes(a))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Decodes one datagram of a sock_diag dump, appending each socket to
/// `out`. Messages whose sequence number is not `seq` (left over from an
/// earlier request) are skipped. Returns [`Progress::Done`] at
/// `NLMSG_DONE`. Never panics, whatever the bytes.
pub fn parse_datagram(
    buf: &[u8],
    proto: Proto,
    family: u8,
    seq: u32,
    out: &mut Vec<DiagSocket>,
) -> Result<Progress, DiagError> {
    let mut off = 0usize;
    while off < buf.len() {
        let truncated = |what| DiagError::Truncated {
            what,
            offset: off,
            len: buf.len(),
        };
        if buf.len() - off < NLMSG_HDRLEN {
            return Err(truncated("nlmsghdr"));
        }
        let msg_len = read_u32(buf, off).ok_or_else(|| truncated("nlmsghdr"))? as usize;
        let msg_type = read_u16(buf, off + 4).ok_or_else(|| truncated("nlmsghdr"))?;
        let msg_seq = read_u32(buf, off + 8).ok_or_else(|| truncated("nlmsghdr"))?;
        if msg_len < NLMSG_HDRLEN {
            return Err(DiagError::BadLength {
                what: "nlmsg",
                value: msg_len,
                offset: off,
            });
        }
        let end = off
            .checked_add(msg_len)
            .filter(|&e| e <= buf.len())
            .ok_or_else(|| truncated("netlink message"))?;
        let payload = &buf[off + NLMSG_HDRLEN..end];
        let ours = msg_seq == seq;
        match msg_type {
            NLMSG_DONE if ours => {
                // A dump may end with an error code in NLMSG_DONE.
                if let Some(code) = read_u32(payload, 0) {
                    let code = code as i32;
                    if code < 0 {
                        return Err(DiagError::Kernel {
                            errno: code.saturating_neg(),
                        });
                    }
                }
                return Ok(Progress::Done);
            }
            NLMSG_ERROR if ours => {
                let code = read_u32(payload, 0).ok_or_else(|| truncated("nlmsgerr"))? as i32;
                if code != 0 {
                    return Err(DiagError::Kernel {
                        errno: code.saturating_neg(),
                    });
                }
                // An ACK (error 0) ends nothing in a dump; keep reading.
            }
            NLMSG_OVERRUN if ours => return Err(DiagError::Overrun),
            SOCK_DIAG_BY_FAMILY if ours => {
                out.push(parse_diag_msg(payload, proto, family).map_err(|e| match e {
                    DiagError::Truncated { what, offset, .. } => DiagError::Truncated {
                        what,
                        offset: offset + off + NLMSG_HDRLEN,
                        len: buf.len(),
                    },
                    DiagError::BadLength {
                        what,
                        value,
                        offset,
                    } => DiagError::BadLength {
                        what,
                        value,
                        offset: offset + off + NLMSG_HDRLEN,
                    },
                    other => other,
                })?);
            }
            NLMSG_NOOP => {}
            _ if !ours => {}
            other => return Err(DiagError::UnexpectedType(other)),
        }
        off = align4(end);
    }
    Ok(Progress::More)
}

fn sock_addr(family: u8, addr: &[u8], port_be: [u8; 2]) -> SocketAddr {
    let port = u16::from_be_bytes(port_be);
    let ip = if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&addr[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    SocketAddr::new(canonical_ip(ip), port)
}

/// Decodes one `inet_diag_msg` and its attributes (the payload of one
/// `SOCK_DIAG_BY_FAMILY` message). Offsets in errors are relative to
/// `payload`.
pub fn parse_diag_msg(payload: &[u8], proto: Proto, family: u8) -> Result<DiagSocket, DiagError> {
    if payload.len() < DIAG_MSG_LEN {
        return Err(DiagError::Truncated {
            what: "inet_diag_msg",
            offset: 0,
            len: payload.len(),
        });
    }
    let msg_family = payload[0];
    if msg_family != family || (msg_family != AF_INET && msg_family != AF_INET6) {
        return Err(DiagError::UnexpectedFamily(msg_family));
    }
    let state = payload[1];
    let local = sock_addr(msg_family, &payload[8..24], [payload[4], payload[5]]);
    let remote = sock_addr(msg_family, &payload[24..40], [payload[6], payload[7]]);
    let remote = if remote.ip().is_unspecified() && remote.port() == 0 {
        None
    } else {
        Some(remote)
    };
    let uid = read_u32(payload, 64).unwrap_or(0);
    let inode = u64::from(read_u32(payload, 68).unwrap_or(0));

    let mut sock = DiagSocket {
        proto,
        state,
        local,
        remote,
        uid,
        inode,
        bytes_sent: None,
        bytes_received: None,
        tcp_health: None,
    };

    let mut info: Option<&[u8]> = None;
    let mut off = DIAG_MSG_LEN;
    while payload.len().saturating_sub(off) >= 4 {
        let rta_len = read_u16(payload, off).unwrap_or(0) as usize;
        let rta_type = read_u16(payload, off + 2).unwrap_or(0);
        if rta_len < 4 {
            return Err(DiagError::BadLength {
                what: "rtattr",
                value: rta_len,
                offset: off,
            });
        }
        let end = off
            .checked_add(rta_len)
            .filter(|&e| e <= payload.len())
            .ok_or(DiagError::Truncated {
                what: "rtattr",
                offset: off,
                len: payload.len(),
            })?;
        let value = &payload[off + 4..end];
        // Strip NLA_F_NESTED / NLA_F_NET_BYTEORDER flag bits.
        match rta_type & 0x3fff {
            INET_DIAG_INFO => info = Some(value),
            // Destroy notifications say which protocol they are about.
            INET_DIAG_PROTOCOL => match value.first().copied() {
                Some(IPPROTO_UDP) => sock.proto = Proto::Udp,
                Some(IPPROTO_TCP) => sock.proto = Proto::Tcp,
                _ => {}
            },
            _ => {}
        }
        off = align4(end);
    }
    if let (Some(info), Proto::Tcp) = (info, sock.proto) {
        (sock.bytes_sent, sock.bytes_received) = tcp_byte_counters(
            state,
            read_u64(info, TCPI_BYTES_ACKED),
            read_u64(info, TCPI_BYTES_RECEIVED),
            read_u64(info, TCPI_BYTES_SENT),
            read_u64(info, TCPI_BYTES_RETRANS),
        );
        sock.tcp_health = tcp_health(
            state,
            read_u32(info, TCPI_RTT),
            read_u32(info, TCPI_TOTAL_RETRANS),
        );
    }
    Ok(sock)
}

/// A TCP socket's health from the kernel's smoothed RTT (µs, `tcpi_rtt`)
/// and lifetime retransmission count; `None` for a listener (it has no
/// peer to measure) and where the kernel did not give both fields. An RTT
/// of 0 means no sample yet, not an instant round trip.
pub fn tcp_health(state: u8, rtt_us: Option<u32>, retransmits: Option<u32>) -> Option<TcpHealth> {
    if state == TCP_LISTEN {
        return None;
    }
    let (rtt_us, retransmits) = (rtt_us?, retransmits?);
    Some(TcpHealth {
        rtt_us: (rtt_us > 0).then_some(rtt_us),
        retransmits,
    })
}

/// Payload bytes `(sent, received)` of a TCP socket in kernel `state`,
/// from the kernel's counters (`tcp_info` or `tcp_sock`; `None` where the
/// kernel is too old to have one).
pub fn tcp_byte_counters(
    state: u8,
    acked: Option<u64>,
    received: Option<u64>,
    sent: Option<u64>,
    retrans: Option<u64>,
) -> (Option<u64>, Option<u64>) {
    // `bytes_received` counts the peer's FIN as one byte once it came.
    let fin_received = matches!(state, TCP_CLOSE_WAIT | TCP_LAST_ACK | TCP_CLOSING);
    let received = received.map(|b| if fin_received { b.saturating_sub(1) } else { b });
    // `bytes_sent` counts retransmitted bytes again (a spurious tail-loss
    // probe on a busy loopback adds a whole segment); `bytes_retrans`,
    // added with it in Linux 4.19, takes them out, so the counter is the
    // payload the peer was sent.
    let sent = match (sent, retrans) {
        (Some(sent), Some(retrans)) => Some(sent.saturating_sub(retrans)),
        (sent, _) => sent,
    };
    (sent.or(acked), received)
}

/// Kernel TCP states after the peer's FIN arrived (`include/net/tcp_states.h`).
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_CLOSING: u8 = 11;
const TCP_BOUND_INACTIVE: u32 = 13;
const TCP_LISTEN: u8 = 10;
/// `INET_DIAG_PROTOCOL`: the socket's IP protocol, in destroy notifications.
pub const INET_DIAG_PROTOCOL: u16 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds one SOCK_DIAG_BY_FAMILY message as the kernel would.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn diag_message(
        seq: u32,
        family: u8,
        state: u8,
        local: ([u8; 16], u16),
        remote: ([u8; 16], u16),
        uid: u32,
        inode: u32,
        info: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut p = vec![0u8; DIAG_MSG_LEN];
        p[0] = family;
        p[1] = state;
        p[4..6].copy_from_slice(&local.1.to_be_bytes());
        p[6..8].copy_from_slice(&remote.1.to_be_bytes());
        p[8..24].copy_from_slice(&local.0);
        p[24..40].copy_from_slice(&remote.0);
        p[64..68].copy_from_slice(&uid.to_ne_bytes());
        p[68..72].copy_from_slice(&inode.to_ne_bytes());
        if let Some(info) = info {
            let rta_len = (4 + info.len()) as u16;
            p.extend_from_slice(&rta_len.to_ne_bytes());
            p.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
            p.extend_from_slice(info);
            while !p.len().is_multiple_of(4) {
                p.push(0);
            }
        }
        nl_message(SOCK_DIAG_BY_FAMILY, seq, &p)
    }

    fn nl_message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0x2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut x = [0u8; 16];
        x[..4].copy_from_slice(&a);
        x
    }

    fn tcp_info(len: usize, acked: u64, received: u64, sent: u64) -> Vec<u8> {
        let mut info = vec![0u8; len];
        for (at, v) in [
            (TCPI_BYTES_ACKED, acked),
            (TCPI_BYTES_RECEIVED, received),
            (TCPI_BYTES_SENT, sent + 4),
            (TCPI_BYTES_RETRANS, 4),
        ] {
            if at + 8 <= len {
                info[at..at + 8].copy_from_slice(&v.to_ne_bytes());
            }
        }
        info
    }

    fn sample_dump(seq: u32) -> Vec<u8> {
        let mut buf = diag_message(
            seq,
            AF_INET,
            1,
            (v4([127, 0, 0, 1]), 5432),
            (v4([127, 0, 0, 1]), 50000),
            1000,
            4242,
            Some(&tcp_info(232, 10, 20, 30)),
        );
        buf.extend(diag_message(
            seq,
            AF_INET,
            10,
            (v4([0, 0, 0, 0]), 80),
            (v4([0, 0, 0, 0]), 0),
            0,
            77,
            Some(&tcp_info(160, 5, 6, 0)),
        ));
        buf.extend(nl_message(NLMSG_DONE, seq, &0u32.to_ne_bytes()));
        buf
    }

    #[test]
    fn decodes_sockets_and_counters() {
        let mut out = Vec::new();
        let p = parse_datagram(&sample_dump(9), Proto::Tcp, AF_INET, 9, &mut out).unwrap();
        assert_eq!(p, Progress::Done);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].local, "127.0.0.1:5432".parse().unwrap());
        assert_eq!(out[0].remote, Some("127.0.0.1:50000".parse().unwrap()));
        assert_eq!(out[0].uid, 1000);
        assert_eq!(out[0].inode, 4242);
        assert_eq!(out[0].bytes_sent, Some(30));
        assert_eq!(out[0].bytes_received, Some(20));
        // tcpi_bytes_sent less tcpi_bytes_retrans above; a short tcp_info
        // without tcpi_bytes_sent falls back to bytes_acked.
        assert_eq!(out[1].remote, None);
        assert_eq!(out[1].state, 10);
        assert_eq!(out[1].bytes_sent, Some(5));
        assert_eq!(out[1].bytes_received, Some(6));
    }

    #[test]
    fn decodes_rtt_and_retransmits() {
        let mut info = tcp_info(232, 1, 2, 3);
        info[TCPI_RTT..TCPI_RTT + 4].copy_from_slice(&12_345u32.to_ne_bytes());
        info[TCPI_TOTAL_RETRANS..TCPI_TOTAL_RETRANS + 4].copy_from_slice(&7u32.to_ne_bytes());
        let local = (v4([127, 0, 0, 1]), 1);
        let remote = (v4([127, 0, 0, 1]), 2);
        let mut buf = diag_message(1, AF_INET, 1, local, remote, 0, 1, Some(&info));
        // A listener's tcp_info carries no connection health.
        buf.extend(diag_message(
            1,
            AF_INET,
            10,
            local,
            ([0; 16], 0),
            0,
            2,
            Some(&info),
        ));
        // No RTT sample yet (0): unknown RTT, retransmits still known.
        let mut fresh = tcp_info(232, 0, 0, 0);
        fresh[TCPI_TOTAL_RETRANS..TCPI_TOTAL_RETRANS + 4].copy_from_slice(&2u32.to_ne_bytes());
        buf.extend(diag_message(
            1,
            AF_INET,
            2,
            local,
            remote,
            0,
            3,
            Some(&fresh),
        ));
        // A tcp_info too short to reach tcpi_total_retrans: nothing.
        buf.extend(diag_message(
            1,
            AF_INET,
            1,
            local,
            remote,
            0,
            4,
            Some(&info[..100]),
        ));
        let mut out = Vec::new();
        parse_datagram(&buf, Proto::Tcp, AF_INET, 1, &mut out).unwrap();
        assert_eq!(
            out[0].tcp_health,
            Some(TcpHealth {
                rtt_us: Some(12_345),
                retransmits: 7
            })
        );
        assert_eq!(out[1].tcp_health, None);
        assert_eq!(
            out[2].tcp_health,
            Some(TcpHealth {
                rtt_us: None,
                retransmits: 2
            })
        );
        assert_eq!(out[3].tcp_health, None);
    }

    #[test]
    fn very_short_tcp_info_has_no_counters() {
        let buf = diag_message(
            1,
            AF_INET,
            1,
            (v4([127, 0, 0, 1]), 1),
            (v4([127, 0, 0, 1]), 2),
            0,
            1,
            Some(&tcp_info(104, 1, 2, 3)),
        );
        let mut out = Vec::new();
        assert_eq!(
            parse_datagram(&buf, Proto::Tcp, AF_INET, 1, &mut out),
            Ok(Progress::More)
        );
        assert_eq!(out[0].bytes_sent, None);
        assert_eq!(out[0].bytes_received, None);
    }

    #[test]
    fn mapped_v6_is_canonical() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
        let buf = diag_message(3, AF_INET6, 1, (mapped, 80), (mapped, 4000), 0, 5, None);
        let mut out = Vec::new();
        parse_datagram(&buf, Proto::Tcp, AF_INET6, 3, &mut out).unwrap();
        assert_eq!(out[0].local, "127.0.0.1:80".parse().unwrap());
        assert_eq!(out[0].remote, Some("127.0.0.1:4000".parse().unwrap()));
        let any6 = diag_message(3, AF_INET6, 10, ([0; 16], 80), ([0; 16], 0), 0, 5, None);
        out.clear();
        parse_datagram(&any6, Proto::Tcp, AF_INET6, 3, &mut out).unwrap();
        assert_eq!(out[0].local, "[::]:80".parse().unwrap());
        assert_eq!(out[0].remote, None);
    }

    #[test]
    fn kernel_error_and_stale_messages() {
        let mut err = (-(libc::EPROTONOSUPPORT)).to_ne_bytes().to_vec();
        err.extend_from_slice(&[0u8; 16]);
        let buf = nl_message(NLMSG_ERROR, 4, &err);
        let mut out = Vec::new();
        assert_eq!(
            parse_datagram(&buf, Proto::Udp, AF_INET, 4, &mut out),
            Err(DiagError::Kernel {
                errno: libc::EPROTONOSUPPORT
            })
        );
        // The same error with another sequence number is someone else's.
        assert_eq!(
            parse_datagram(&buf, Proto::Udp, AF_INET, 5, &mut out),
            Ok(Progress::More)
        );
        let done_err = nl_message(NLMSG_DONE, 6, &(-libc::EINTR).to_ne_bytes());
        assert_eq!(
            parse_datagram(&done_err, Proto::Udp, AF_INET, 6, &mut out),
            Err(DiagError::Kernel { errno: libc::EINTR })
        );
    }

    #[test]
    fn truncations_are_errors() {
        let buf = sample_dump(1);
        for cut in 1..buf.len() {
            let mut out = Vec::new();
            // Every prefix either decodes what is complete or fails typed.
            let _ = parse_datagram(&buf[..cut], Proto::Tcp, AF_INET, 1, &mut out);
        }
        let mut out = Vec::new();
        assert!(matches!(
            parse_datagram(&buf[..20], Proto::Tcp, AF_INET, 1, &mut out),
            Err(DiagError::Truncated { .. })
        ));
    }

    #[test]
    fn request_layout() {
        let r = build_request(AF_INET6, Proto::Tcp, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(read_u32(&r, 0), Some(72));
        assert_eq!(read_u16(&r, 4), Some(SOCK_DIAG_BY_FAMILY));
        assert_eq!(read_u32(&r, 8), Some(7));
        assert_eq!(r[16], AF_INET6);
        assert_eq!(r[17], libc::IPPROTO_TCP as u8);
        assert_eq!(r[18], 2);
        assert_eq!(read_u32(&r, 20), Some(!(1u32 << 13)));
        let u = build_request(AF_INET, Proto::Udp, 8);
        assert_eq!(read_u32(&u, 20), Some(u32::MAX));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                       tcp in any::<bool>(), v6 in any::<bool>()) {
            let mut out = Vec::new();
            let proto = if tcp { Proto::Tcp } else { Proto::Udp };
            let fam = if v6 { AF_INET6 } else { AF_INET };
            let _ = parse_datagram(&bytes, proto, fam, 0, &mut out);
            let _ = parse_diag_msg(&bytes, proto, fam);
        }

        #[test]
        fn mutated_valid_dump_never_panics(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16),
            cut in any::<usize>(),
        ) {
            let mut buf = sample_dump(1);
            for (at, v) in edits {
                let i = at % buf.len();
                buf[i] = v;
            }
            let keep = cut % (buf.len() + 1);
            let mut out = Vec::new();
            let _ = parse_datagram(&buf[..keep], Proto::Tcp, AF_INET, 1, &mut out);
        }
    }
}
