//! Pure decoding of netlink `sock_diag` (inet_diag) dump replies, and of the
//! `/proc/net/{tcp,udp}[6]` text used when netlink is unavailable. No I/O:
//! the functions take bytes and return sockets or a typed error, so they
//! are fuzzed with arbitrary input (see the proptests below).

use crate::snapshot::{canonical_addr, Proto, Socket, SocketState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
pub const INET_DIAG_INFO: u16 = 2;
pub const INET_DIAG_PROTOCOL: u16 = 10;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_msg`: 4 bytes of header, a 48-byte sockid, 5 u32s.
const INET_DIAG_MSG_LEN: usize = 72;

/// Offsets in `struct tcp_info` (linux/tcp.h) of the byte counters; a
/// shorter struct (older kernel) simply lacks the later fields.
const TCPI_BYTES_ACKED: usize = 120;
const TCPI_BYTES_RECEIVED: usize = 128;
const TCPI_BYTES_SENT: usize = 200;
const TCPI_BYTES_RETRANS: usize = 208;

/// Why a reply could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("netlink message truncated at byte {offset}: {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error("netlink error reply: errno {0}")]
    Errno(i32),
    #[error("unexpected address family {0}")]
    Family(u8),
    #[error("line {line} of {file}: {problem}")]
    ProcLine {
        file: &'static str,
        line: usize,
        problem: &'static str,
    },
}

/// What one reply buffer contained.
#[derive(Debug, Default)]
pub struct Batch {
    pub sockets: Vec<Socket>,
    /// `NLMSG_DONE` was seen: the dump is complete.
    pub done: bool,
}

fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_ne(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds a `SOCK_DIAG_BY_FAMILY` dump request for every state of one
/// family and protocol; TCP asks for `tcp_info` (byte counters) too.
pub fn dump_request(family: u8, proto: Proto, seq: u32) -> Vec<u8> {
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_DUMP: u16 = 0x300;
    let len = NLMSG_HDRLEN + 56;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    let (protocol, ext) = match proto {
        Proto::Tcp => (libc::IPPROTO_TCP as u8, 1u8 << (INET_DIAG_INFO - 1)),
        Proto::Udp => (libc::IPPROTO_UDP as u8, 0),
    };
    b.extend_from_slice(&[family, protocol, ext, 0]);
    b.extend_from_slice(&u32::MAX.to_ne_bytes()); // all states
    b.resize(len, 0); // zeroed inet_diag_sockid: no filter
    b
}

/// Decodes one buffer of dump replies.
pub fn parse_batch(buf: &[u8], proto: Proto) -> Result<Batch, DecodeError> {
    let mut batch = Batch::default();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= buf.len() {
        let len = u32_ne(buf, off).unwrap_or(0) as usize;
        let kind = u16_ne(buf, off + 4).unwrap_or(0);
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return Err(DecodeError::Truncated {
                offset: off,
                what: "nlmsghdr length",
            });
        }
        let body = &buf[off + NLMSG_HDRLEN..off + len];
        match kind {
            NLMSG_DONE => {
                batch.done = true;
                return Ok(batch);
            }
            NLMSG_ERROR => {
                let errno = u32_ne(body, 0).map(|e| e as i32).unwrap_or(0);
                if errno != 0 {
                    return Err(DecodeError::Errno(-errno));
                }
            }
            SOCK_DIAG_BY_FAMILY => batch.sockets.push(parse_msg(body, proto, off)?),
            _ => {} // other message types carry nothing for us
        }
        off += align4(len);
    }
    Ok(batch)
}

fn addr(family: u8, raw: &[u8], port_be: &[u8]) -> Result<SocketAddr, DecodeError> {
    let port = u16::from_be_bytes([port_be[0], port_be[1]]);
    let ip = match family as i32 {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
        libc::AF_INET6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&raw[..16]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return Err(DecodeError::Family(family)),
    };
    Ok(canonical_addr(SocketAddr::new(ip, port)))
}

/// An unconnected socket reports its remote as the wildcard address, port 0.
fn remote_or_none(a: SocketAddr) -> Option<SocketAddr> {
    (!(a.port() == 0 && a.ip().is_unspecified())).then_some(a)
}

fn parse_msg(body: &[u8], proto: Proto, at: usize) -> Result<Socket, DecodeError> {
    if body.len() < INET_DIAG_MSG_LEN {
        return Err(DecodeError::Truncated {
            offset: at,
            what: "inet_diag_msg",
        });
    }
    let family = body[0];
    let state = body[1];
    let id = &body[4..52];
    let local = addr(family, &id[4..20], &id[0..2])?;
    let remote = addr(family, &id[20..36], &id[2..4])?;
    let uid = u32_ne(body, 64).unwrap_or(0);
    let inode = u32_ne(body, 68).unwrap_or(0);
    let mut socket = Socket {
        proto,
        local,
        remote: remote_or_none(remote),
        state: SocketState::from_linux(state),
        inode: u64::from(inode),
        uid: Some(uid),
        owners: Vec::new(),
        unowned_reason: None,
        bytes_sent: None,
        bytes_received: None,
        closed: false,
    };
    // Attributes (rtattr: u16 len, u16 type, payload, 4-aligned).
    let mut info: Option<&[u8]> = None;
    let mut off = INET_DIAG_MSG_LEN;
    while off + 4 <= body.len() {
        let len = u16_ne(body, off).unwrap_or(0) as usize;
        let kind = u16_ne(body, off + 2).unwrap_or(0);
        if len < 4 || off + len > body.len() {
            break; // a malformed attribute list ends the attributes, not the socket
        }
        let payload = &body[off + 4..off + len];
        match kind {
            INET_DIAG_INFO => info = Some(payload),
            // Destroy notifications name their protocol.
            INET_DIAG_PROTOCOL if payload.first() == Some(&(libc::IPPROTO_UDP as u8)) => {
                socket.proto = Proto::Udp
            }
            INET_DIAG_PROTOCOL => socket.proto = Proto::Tcp,
            _ => {}
        }
        off += align4(len);
    }
    if let (Some(info), Proto::Tcp) = (info, socket.proto) {
        // Payload bytes sent once: `bytes_sent` counts retransmissions too,
        // so they are taken off; `bytes_acked` (kernels < 4.19) also counts
        // the SYN and FIN, a byte or two off.
        socket.bytes_sent = match (
            u64_ne(info, TCPI_BYTES_SENT),
            u64_ne(info, TCPI_BYTES_RETRANS),
        ) {
            (Some(sent), Some(retrans)) => Some(sent.saturating_sub(retrans)),
            _ => u64_ne(info, TCPI_BYTES_ACKED),
        };
        // `bytes_received` counts the peer's FIN as one byte once it came.
        let fin_received = matches!(
            socket.state,
            SocketState::CloseWait
                | SocketState::LastAck
                | SocketState::Closing
                | SocketState::TimeWait
        );
        socket.bytes_received = u64_ne(info, TCPI_BYTES_RECEIVED).map(|b| {
            if fin_received {
                b.saturating_sub(1)
            } else {
                b
            }
        });
    }
    Ok(socket)
}

/// Parses one `/proc/net/{tcp,udp}[6]` table (the fallback when netlink
/// sock_diag is not available). Addresses are hex in host byte order per
/// 32-bit word.
pub fn parse_proc_net(
    text: &str,
    proto: Proto,
    file: &'static str,
) -> Result<Vec<Socket>, DecodeError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let err = |problem| DecodeError::ProcLine {
            file,
            line: n + 1,
            problem,
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 10 {
            return Err(err("too few fields"));
        }
        let local = proc_addr(f[1]).ok_or_else(|| err("bad local address"))?;
        let remote = proc_addr(f[2]).ok_or_else(|| err("bad remote address"))?;
        let state = u8::from_str_radix(f[3], 16).map_err(|_| err("bad state"))?;
        let uid = f[7].parse::<u32>().map_err(|_| err("bad uid"))?;
        let inode = f[9].parse::<u64>().map_err(|_| err("bad inode"))?;
        out.push(Socket {
            proto,
            local,
            remote: remote_or_none(remote),
            state: SocketState::from_linux(state),
            inode,
            uid: Some(uid),
            owners: Vec::new(),
            unowned_reason: None,
            bytes_sent: None,
            bytes_received: None,
            closed: false,
        });
    }
    Ok(out)
}

fn proc_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut o = [0u8; 16];
            for i in 0..4 {
                o[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(canonical_addr(SocketAddr::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A reply message as the kernel would send it.
    fn msg(
        family: u8,
        state: u8,
        local: ([u8; 16], u16),
        remote: ([u8; 16], u16),
        inode: u32,
        info: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut body = vec![family, state, 0, 0];
        body.extend_from_slice(&local.1.to_be_bytes());
        body.extend_from_slice(&remote.1.to_be_bytes());
        body.extend_from_slice(&local.0);
        body.extend_from_slice(&remote.0);
        body.extend_from_slice(&[0u8; 12]); // if + cookie
        body.extend_from_slice(&[0u8; 12]); // expires, rqueue, wqueue
        body.extend_from_slice(&1000u32.to_ne_bytes());
        body.extend_from_slice(&inode.to_ne_bytes());
        if let Some(info) = info {
            body.extend_from_slice(&((info.len() + 4) as u16).to_ne_bytes());
            body.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
            body.extend_from_slice(info);
            body.resize(align4(body.len()), 0);
        }
        let mut m = ((body.len() + 16) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&body);
        m
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut o = [0u8; 16];
        o[..4].copy_from_slice(&a);
        o
    }

    fn done() -> Vec<u8> {
        let mut m = 20u32.to_ne_bytes().to_vec();
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&[0u8; 14]);
        m
    }

    #[test]
    fn decodes_sockets_counters_and_mapped_addresses() {
        let mut info = vec![0u8; 232];
        info[TCPI_BYTES_ACKED..TCPI_BYTES_ACKED + 8].copy_from_slice(&9_990_000u64.to_ne_bytes());
        info[TCPI_BYTES_RECEIVED..TCPI_BYTES_RECEIVED + 8]
            .copy_from_slice(&3_000_000u64.to_ne_bytes());
        info[TCPI_BYTES_SENT..TCPI_BYTES_SENT + 8].copy_from_slice(&10_010_000u64.to_ne_bytes());
        info[TCPI_BYTES_RETRANS..TCPI_BYTES_RETRANS + 8].copy_from_slice(&10_000u64.to_ne_bytes());
        let mut buf = msg(
            libc::AF_INET as u8,
            1,
            (v4([127, 0, 0, 1]), 50122),
            (v4([127, 0, 0, 1]), 5432),
            77,
            Some(&info),
        );
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
        // A short (older-kernel) tcp_info: no bytes_sent field, bytes_acked instead.
        buf.extend(msg(
            libc::AF_INET6 as u8,
            10,
            (mapped, 8080),
            ([0u8; 16], 0),
            78,
            Some(&info[..136]),
        ));
        buf.extend(done());
        let b = parse_batch(&buf, Proto::Tcp).unwrap();
        assert!(b.done);
        assert_eq!(b.sockets.len(), 2);
        let s = &b.sockets[0];
        assert_eq!(s.local, "127.0.0.1:50122".parse().unwrap());
        assert_eq!(s.remote, Some("127.0.0.1:5432".parse().unwrap()));
        assert_eq!(
            (s.state, s.inode, s.uid),
            (SocketState::Established, 77, Some(1000))
        );
        assert_eq!(
            (s.bytes_sent, s.bytes_received),
            (Some(10_000_000), Some(3_000_000))
        );
        let l = &b.sockets[1];
        assert_eq!(
            l.local,
            "127.0.0.1:8080".parse().unwrap(),
            "::ffff:127.0.0.1 becomes 127.0.0.1"
        );
        assert_eq!((l.remote, l.state), (None, SocketState::Listen));
        assert_eq!(
            (l.bytes_sent, l.bytes_received),
            (Some(9_990_000), Some(3_000_000))
        );
    }

    #[test]
    fn error_reply_is_typed() {
        let mut m = 36u32.to_ne_bytes().to_vec();
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&(-13i32).to_ne_bytes());
        m.extend_from_slice(&[0u8; 16]);
        assert_eq!(
            parse_batch(&m, Proto::Tcp).unwrap_err(),
            DecodeError::Errno(13)
        );
    }

    #[test]
    fn proc_net_tables() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0\n   1: 0100007F:C3CA 0100007F:1538 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1\n";
        let s = parse_proc_net(text, Proto::Tcp, "/proc/net/tcp").unwrap();
        assert_eq!(s[0].local, "127.0.0.1:5432".parse().unwrap());
        assert_eq!(
            (s[0].state, s[0].remote, s[0].inode),
            (SocketState::Listen, None, 4242)
        );
        assert_eq!(s[1].remote, Some("127.0.0.1:5432".parse().unwrap()));
        let v6 = "h\n 0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 9 1\n";
        let s = parse_proc_net(v6, Proto::Tcp, "/proc/net/tcp6").unwrap();
        assert_eq!(s[0].local, "[::1]:8080".parse().unwrap());
        assert!(parse_proc_net("h\n 0: zz\n", Proto::Tcp, "/proc/net/tcp").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_batch(&bytes, Proto::Tcp);
            let _ = parse_batch(&bytes, Proto::Udp);
        }

        #[test]
        fn mutated_replies_never_panic(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8), cut in 0usize..400) {
            let info = vec![7u8; 232];
            let mut buf = msg(libc::AF_INET6 as u8, 1, ([1u8; 16], 1), ([2u8; 16], 2), 3, Some(&info));
            buf.extend(done());
            for (at, v) in flips {
                let n = buf.len();
                buf[at % n] = v;
            }
            buf.truncate(cut.max(1).min(buf.len()));
            let _ = parse_batch(&buf, Proto::Tcp);
        }

        #[test]
        fn arbitrary_proc_text_never_panics(text in "\\PC{0,300}") {
            let _ = parse_proc_net(&text, Proto::Udp, "/proc/net/udp");
        }
    }
}
