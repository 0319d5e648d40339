//! Pure decoding of one captured frame into the flow it belongs to and the
//! transport payload it carries. No I/O: bytes in, a [`FlowBytes`] or a
//! typed [`Skip`] out, so it is fuzzed with arbitrary input (proptests
//! below).
//!
//! The frame is what an `AF_PACKET`/`SOCK_DGRAM` socket returns: it starts
//! at the network header (the link header is stripped) and may be cut short
//! by the capture length, so lengths are read from the IP and transport
//! headers, never from the size of the slice.

use crate::snapshot::{canonical_addr, Proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `ETH_P_IP`: `sll_protocol` of an IPv4 frame.
pub const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`: `sll_protocol` of an IPv6 frame.
pub const ETH_P_IPV6: u16 = 0x86DD;
/// `sll_pkttype` values (`linux/if_packet.h`).
pub const PACKET_HOST: u8 = 0;
pub const PACKET_BROADCAST: u8 = 1;
pub const PACKET_MULTICAST: u8 = 2;
pub const PACKET_OTHERHOST: u8 = 3;
pub const PACKET_OUTGOING: u8 = 4;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTH: u8 = 51;
const IPV6_DEST_OPTS: u8 = 60;
/// More extension headers than this in one packet is treated as malformed
/// (real stacks send at most a handful).
const MAX_EXT_HEADERS: usize = 8;

/// Which way a packet went, seen from this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by this host (`PACKET_OUTGOING`).
    Outgoing,
    /// Received by this host (`PACKET_HOST`, `_BROADCAST`, `_MULTICAST`).
    Incoming,
}

/// What the capture socket says about a frame besides its bytes (from
/// `struct sockaddr_ll` and the receive call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// `sll_protocol`, host byte order (e.g. [`ETH_P_IP`]).
    pub ethertype: u16,
    /// `sll_pkttype` (e.g. [`PACKET_OUTGOING`]).
    pub pkttype: u8,
    /// `sll_ifindex`.
    pub ifindex: u32,
    /// Length of the whole packet from the network header on, before the
    /// capture cut it (`MSG_TRUNC` return value). Bounds the IP length
    /// field, and replaces it when it is 0 (IPv4 BIG TCP, IPv6 jumbograms).
    pub wire_len: usize,
}

/// One packet's contribution to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowBytes {
    pub proto: Proto,
    /// This host's end: the source of an outgoing packet, the destination
    /// of an incoming one. IPv4-mapped IPv6 is shown as IPv4.
    pub local: SocketAddr,
    /// The other end.
    pub remote: SocketAddr,
    /// Transport payload bytes: IP length minus IP (with extension headers)
    /// and TCP/UDP headers. For the first fragment of a fragmented UDP
    /// datagram, the whole datagram's payload (from the UDP length).
    pub payload: u64,
    pub direction: Direction,
    /// Interface the packet was seen on.
    pub ifindex: u32,
}

/// Why a frame carries no countable TCP/UDP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("not IPv4/IPv6 (ethertype {0:#06x})")]
    NotIp(u16),
    #[error("packet type {0} is neither to nor from this host")]
    NotOurs(u8),
    #[error("frame truncated before the end of the {0}")]
    Truncated(&'static str),
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("IP protocol {0} is neither TCP nor UDP")]
    NotTcpUdp(u8),
    #[error("a later IP fragment (no ports)")]
    LaterFragment,
}

fn be16(b: &[u8], at: usize, what: &'static str) -> Result<u16, Skip> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(Skip::Truncated(what))
}

fn byte(b: &[u8], at: usize, what: &'static str) -> Result<u8, Skip> {
    b.get(at).copied().ok_or(Skip::Truncated(what))
}

/// The network layer's view: addresses, where the transport header starts,
/// and how many bytes (transport header + payload) follow it.
struct Network {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// Offset of the transport header in the frame.
    transport_at: usize,
    /// Bytes from `transport_at` to the end of the IP packet.
    transport_len: usize,
    /// A first fragment: more of the datagram follows in later fragments.
    fragmented: bool,
}

/// The decoded flow and payload, or `None` for anything else. Never panics.
pub fn decode(frame: &[u8], info: &FrameInfo) -> Option<FlowBytes> {
    try_decode(frame, info).ok()
}

/// Like [`decode`], saying why a frame was skipped.
pub fn try_decode(frame: &[u8], info: &FrameInfo) -> Result<FlowBytes, Skip> {
    let direction = match info.pkttype {
        PACKET_OUTGOING => Direction::Outgoing,
        PACKET_HOST | PACKET_BROADCAST | PACKET_MULTICAST => Direction::Incoming,
        other => return Err(Skip::NotOurs(other)),
    };
    // The capture may cut the frame, never lengthen it.
    let wire_len = info.wire_len.max(frame.len());
    let net = match info.ethertype {
        ETH_P_IP => ipv4(frame, wire_len)?,
        ETH_P_IPV6 => ipv6(frame, wire_len)?,
        other => return Err(Skip::NotIp(other)),
    };
    let t = net.transport_at;
    let src_port = be16(frame, t, "source port")?;
    let dst_port = be16(frame, t + 2, "destination port")?;
    let (proto, payload) = match net.proto {
        IPPROTO_TCP => {
            let doff = usize::from(byte(frame, t + 12, "TCP header")? >> 4) * 4;
            if doff < 20 {
                return Err(Skip::Malformed("TCP data offset below 20"));
            }
            let payload = net
                .transport_len
                .checked_sub(doff)
                .ok_or(Skip::Malformed("TCP header longer than the packet"))?;
            (Proto::Tcp, payload)
        }
        IPPROTO_UDP => {
            let payload = if net.fragmented {
                // The UDP length covers the whole datagram, across fragments.
                usize::from(be16(frame, t + 4, "UDP length")?)
                    .checked_sub(8)
                    .ok_or(Skip::Malformed("UDP length below 8"))?
            } else {
                // From the IP length: right for GSO super-packets too, whose
                // UDP length field does not describe the whole skb.
                net.transport_len
                    .checked_sub(8)
                    .ok_or(Skip::Malformed("UDP header longer than the packet"))?
            };
            (Proto::Udp, payload)
        }
        other => return Err(Skip::NotTcpUdp(other)),
    };
    let src = canonical_addr(SocketAddr::new(net.src, src_port));
    let dst = canonical_addr(SocketAddr::new(net.dst, dst_port));
    let (local, remote) = match direction {
        Direction::Outgoing => (src, dst),
        Direction::Incoming => (dst, src),
    };
    Ok(FlowBytes {
        proto,
        local,
        remote,
        payload: payload as u64,
        direction,
        ifindex: info.ifindex,
    })
}

fn ipv4(b: &[u8], wire_len: usize) -> Result<Network, Skip> {
    let first = byte(b, 0, "IPv4 header")?;
    if first >> 4 != 4 {
        return Err(Skip::Malformed("IP version is not 4"));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed("IPv4 header length below 20"));
    }
    if b.len() < ihl {
        return Err(Skip::Truncated("IPv4 header"));
    }
    let total = match be16(b, 2, "IPv4 header")? {
        // TSO/BIG TCP super-packets may leave the total length 0.
        0 => wire_len,
        n => usize::from(n),
    };
    if total > wire_len {
        return Err(Skip::Malformed("IPv4 total length beyond the packet"));
    }
    let frag = be16(b, 6, "IPv4 header")?;
    if frag & 0x1fff != 0 {
        return Err(Skip::LaterFragment);
    }
    let v4 = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
    Ok(Network {
        src: IpAddr::V4(v4(12)),
        dst: IpAddr::V4(v4(16)),
        proto: b[9],
        transport_at: ihl,
        transport_len: total
            .checked_sub(ihl)
            .ok_or(Skip::Malformed("IPv4 total length below the header length"))?,
        fragmented: frag & 0x2000 != 0,
    })
}

fn ipv6(b: &[u8], wire_len: usize) -> Result<Network, Skip> {
    if b.len() < 40 {
        return Err(Skip::Truncated("IPv6 header"));
    }
    if b[0] >> 4 != 6 {
        return Err(Skip::Malformed("IP version is not 6"));
    }
    let total = match be16(b, 4, "IPv6 header")? {
        // A jumbogram (or a BIG TCP super-packet): the real length is the
        // packet's.
        0 => wire_len,
        n => 40 + usize::from(n),
    };
    if total > wire_len {
        return Err(Skip::Malformed("IPv6 payload length beyond the packet"));
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let mut next = b[6];
    let mut at = 40;
    let mut fragmented = false;
    for _ in 0..MAX_EXT_HEADERS {
        let len = match next {
            IPPROTO_TCP | IPPROTO_UDP => {
                return Ok(Network {
                    src: addr(8),
                    dst: addr(24),
                    proto: next,
                    transport_at: at,
                    transport_len: total
                        .checked_sub(at)
                        .ok_or(Skip::Malformed("IPv6 extension headers beyond the packet"))?,
                    fragmented,
                })
            }
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                (usize::from(byte(b, at + 1, "IPv6 extension header")?) + 1) * 8
            }
            IPV6_AUTH => (usize::from(byte(b, at + 1, "IPv6 authentication header")?) + 2) * 4,
            IPV6_FRAGMENT => {
                let off = be16(b, at + 2, "IPv6 fragment header")?;
                if off >> 3 != 0 {
                    return Err(Skip::LaterFragment);
                }
                fragmented = off & 1 != 0;
                8
            }
            other => return Err(Skip::NotTcpUdp(other)),
        };
        next = byte(b, at, "IPv6 extension header")?;
        at += len;
    }
    Err(Skip::Malformed("too many IPv6 extension headers"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tcp(sport: u16, dport: u16, doff: usize, payload: usize) -> Vec<u8> {
        let mut t = vec![0u8; doff + payload];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = ((doff / 4) as u8) << 4;
        t
    }

    fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
        let mut t = vec![0u8; 8 + payload];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
        t
    }

    fn v4(proto: u8, src: [u8; 4], dst: [u8; 4], options: usize, transport: &[u8]) -> Vec<u8> {
        let ihl = 20 + options;
        let mut p = vec![0u8; ihl];
        p[0] = 0x40 | (ihl / 4) as u8;
        p[2..4].copy_from_slice(&((ihl + transport.len()) as u16).to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p.extend_from_slice(transport);
        p
    }

    /// An IPv6 packet; `ext` is a list of (header type, body) extension
    /// headers in order, each body already padded to its length.
    fn v6(
        proto: u8,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        ext: &[(u8, Vec<u8>)],
        transport: &[u8],
    ) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = ext.first().map_or(proto, |e| e.0);
        p[7] = 64;
        p[8..24].copy_from_slice(&src.octets());
        p[24..40].copy_from_slice(&dst.octets());
        for (i, (_, body)) in ext.iter().enumerate() {
            let mut h = body.clone();
            h[0] = ext.get(i + 1).map_or(proto, |e| e.0);
            p.extend_from_slice(&h);
        }
        p.extend_from_slice(transport);
        let plen = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        p
    }

    fn info(ethertype: u16, pkttype: u8, frame: &[u8]) -> FrameInfo {
        FrameInfo {
            ethertype,
            pkttype,
            ifindex: 7,
            wire_len: frame.len(),
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_tcp_outgoing() {
        let p = v4(
            6,
            [10, 0, 0, 1],
            [93, 184, 216, 34],
            0,
            &tcp(40000, 443, 32, 1000),
        );
        let f = decode(&p, &info(ETH_P_IP, PACKET_OUTGOING, &p)).unwrap();
        assert_eq!(
            f,
            FlowBytes {
                proto: Proto::Tcp,
                local: sa("10.0.0.1:40000"),
                remote: sa("93.184.216.34:443"),
                payload: 1000,
                direction: Direction::Outgoing,
                ifindex: 7,
            }
        );
    }

    #[test]
    fn ipv4_udp_incoming_with_options() {
        let p = v4(17, [8, 8, 8, 8], [10, 0, 0, 1], 8, &udp(53, 5353, 77));
        let f = decode(&p, &info(ETH_P_IP, PACKET_HOST, &p)).unwrap();
        assert_eq!(f.proto, Proto::Udp);
        assert_eq!(f.local, sa("10.0.0.1:5353"));
        assert_eq!(f.remote, sa("8.8.8.8:53"));
        assert_eq!(f.payload, 77);
        assert_eq!(f.direction, Direction::Incoming);
    }

    #[test]
    fn truncated_capture_still_counts_the_whole_payload() {
        let p = v4(6, [127, 0, 0, 1], [127, 0, 0, 1], 0, &tcp(1, 2, 20, 60_000));
        let mut i = info(ETH_P_IP, PACKET_OUTGOING, &p);
        i.wire_len = p.len();
        let f = decode(&p[..64], &i).unwrap();
        assert_eq!(f.payload, 60_000);
    }

    #[test]
    fn ip_length_beyond_the_packet_is_refused() {
        let p = v4(17, [1, 1, 1, 1], [2, 2, 2, 2], 0, &udp(1, 2, 10));
        let mut i = info(ETH_P_IP, PACKET_HOST, &p);
        i.wire_len = p.len() - 1;
        // The slice is longer than wire_len: the slice wins (capture never lengthens).
        assert!(decode(&p, &i).is_some());
        assert_eq!(
            try_decode(&p[..30], &i),
            Err(Skip::Malformed("IPv4 total length beyond the packet"))
        );
    }

    #[test]
    fn ipv4_zero_total_length_uses_the_wire_length() {
        let mut p = v4(
            6,
            [127, 0, 0, 1],
            [127, 0, 0, 2],
            0,
            &tcp(1, 2, 20, 100_000),
        );
        p[2..4].copy_from_slice(&[0, 0]);
        let f = decode(
            &p[..80],
            &FrameInfo {
                wire_len: p.len(),
                ..info(ETH_P_IP, PACKET_OUTGOING, &p)
            },
        )
        .unwrap();
        assert_eq!(f.payload, 100_000);
    }

    #[test]
    fn ipv4_fragments() {
        let mut first = v4(17, [1, 1, 1, 1], [2, 2, 2, 2], 0, &udp(1, 2, 3000));
        first[6] = 0x20; // MF
        first.truncate(1500);
        let n = first.len() as u16;
        first[2..4].copy_from_slice(&n.to_be_bytes());
        let f = decode(&first, &info(ETH_P_IP, PACKET_HOST, &first)).unwrap();
        assert_eq!(
            f.payload, 3000,
            "the first fragment carries the datagram's length"
        );
        let mut later = first.clone();
        later[6..8].copy_from_slice(&185u16.to_be_bytes());
        assert_eq!(
            try_decode(&later, &info(ETH_P_IP, PACKET_HOST, &later)),
            Err(Skip::LaterFragment)
        );
    }

    #[test]
    fn ipv6_tcp_plain() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let p = v6(6, src, dst, &[], &tcp(443, 50000, 20, 1234));
        let f = decode(&p, &info(ETH_P_IPV6, PACKET_HOST, &p)).unwrap();
        assert_eq!(f.local, sa("[2001:db8::2]:50000"));
        assert_eq!(f.remote, sa("[2001:db8::1]:443"));
        assert_eq!(f.payload, 1234);
    }

    #[test]
    fn ipv6_udp_after_extension_headers() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::fb".parse().unwrap();
        let hbh = vec![0u8; 8]; // hdr ext len 0 => 8 bytes
        let mut dest = vec![0u8; 24];
        dest[1] = 2; // (2 + 1) * 8 = 24 bytes
        let mut routing = vec![0u8; 16];
        routing[1] = 1;
        let p = v6(
            17,
            src,
            dst,
            &[
                (IPV6_HOP_BY_HOP, hbh),
                (IPV6_DEST_OPTS, dest),
                (IPV6_ROUTING, routing),
            ],
            &udp(5353, 5353, 300),
        );
        let f = decode(&p, &info(ETH_P_IPV6, PACKET_OUTGOING, &p)).unwrap();
        assert_eq!(f.proto, Proto::Udp);
        assert_eq!(f.local, sa("[fe80::1]:5353"));
        assert_eq!(f.remote, sa("[ff02::fb]:5353"));
        assert_eq!(f.payload, 300);
    }

    #[test]
    fn ipv6_fragment_header() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut frag = vec![0u8; 8];
        frag[3] = 1; // offset 0, M = 1
        let p = v6(
            17,
            src,
            dst,
            &[(IPV6_FRAGMENT, frag.clone())],
            &udp(1, 2, 5000),
        );
        let first = &p[..1280];
        let i = FrameInfo {
            wire_len: 1280,
            ..info(ETH_P_IPV6, PACKET_HOST, first)
        };
        let mut first = first.to_vec();
        first[4..6].copy_from_slice(&1240u16.to_be_bytes());
        assert_eq!(decode(&first, &i).unwrap().payload, 5000);
        frag[2..4].copy_from_slice(&(1232u16 | 1).to_be_bytes());
        let later = v6(17, src, dst, &[(IPV6_FRAGMENT, frag)], &[0u8; 100]);
        assert_eq!(
            try_decode(&later, &info(ETH_P_IPV6, PACKET_HOST, &later)),
            Err(Skip::LaterFragment)
        );
    }

    #[test]
    fn mapped_v4_in_v6_is_canonical() {
        let src: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        let dst: Ipv6Addr = "::ffff:10.0.0.2".parse().unwrap();
        let p = v6(6, src, dst, &[], &tcp(1, 2, 20, 5));
        let f = decode(&p, &info(ETH_P_IPV6, PACKET_OUTGOING, &p)).unwrap();
        assert_eq!(f.local, sa("10.0.0.1:1"));
        assert_eq!(f.remote, sa("10.0.0.2:2"));
    }

    #[test]
    fn skipped_frames_say_why() {
        let p = v4(1, [1, 1, 1, 1], [2, 2, 2, 2], 0, &[0u8; 8]);
        assert_eq!(
            try_decode(&p, &info(ETH_P_IP, PACKET_HOST, &p)),
            Err(Skip::NotTcpUdp(1))
        );
        assert_eq!(
            try_decode(&p, &info(0x0806, PACKET_HOST, &p)),
            Err(Skip::NotIp(0x0806))
        );
        let t = v4(6, [1, 1, 1, 1], [2, 2, 2, 2], 0, &tcp(1, 2, 20, 0));
        assert_eq!(
            try_decode(&t, &info(ETH_P_IP, PACKET_OTHERHOST, &t)),
            Err(Skip::NotOurs(PACKET_OTHERHOST))
        );
        let mut bad = t.clone();
        bad[20 + 12] = 0x40; // data offset 16
        assert!(matches!(
            try_decode(&bad, &info(ETH_P_IP, PACKET_HOST, &bad)),
            Err(Skip::Malformed(_))
        ));
        assert_eq!(
            try_decode(&[], &info(ETH_P_IP, PACKET_HOST, &[])),
            Err(Skip::Truncated("IPv4 header"))
        );
    }

    fn sample_packets() -> Vec<(u16, Vec<u8>)> {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut frag = vec![0u8; 8];
        frag[3] = 1;
        vec![
            (
                ETH_P_IP,
                v4(6, [1, 2, 3, 4], [5, 6, 7, 8], 4, &tcp(1, 2, 24, 40)),
            ),
            (
                ETH_P_IP,
                v4(17, [1, 2, 3, 4], [5, 6, 7, 8], 0, &udp(1, 2, 40)),
            ),
            (
                ETH_P_IPV6,
                v6(
                    6,
                    a,
                    b,
                    &[(IPV6_HOP_BY_HOP, vec![0u8; 8])],
                    &tcp(1, 2, 20, 30),
                ),
            ),
            (
                ETH_P_IPV6,
                v6(17, a, b, &[(IPV6_FRAGMENT, frag)], &udp(1, 2, 30)),
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            v6 in any::<bool>(),
            pkttype in 0u8..8,
            wire_extra in 0usize..100_000,
        ) {
            let ethertype = if v6 { ETH_P_IPV6 } else { ETH_P_IP };
            let i = FrameInfo { ethertype, pkttype, ifindex: 1, wire_len: bytes.len() + wire_extra };
            if let Some(f) = decode(&bytes, &i) {
                prop_assert!(f.payload as usize <= i.wire_len.max(65_535));
            }
            let i = FrameInfo { wire_len: 0, ..i };
            let _ = decode(&bytes, &i);
        }

        #[test]
        fn mutated_packets_never_panic(
            which in 0usize..4,
            flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..8),
            cut in 0usize..200,
            outgoing in any::<bool>(),
        ) {
            let (ethertype, mut p) = sample_packets().swap_remove(which);
            for (at, v) in flips {
                let n = p.len();
                p[at % n] = v;
            }
            let wire_len = p.len();
            p.truncate(cut.min(p.len()));
            let pkttype = if outgoing { PACKET_OUTGOING } else { PACKET_HOST };
            let i = FrameInfo { ethertype, pkttype, ifindex: 1, wire_len };
            if let Some(f) = decode(&p, &i) {
                prop_assert!(f.payload as usize <= wire_len.max(65_535));
            }
        }

        #[test]
        fn valid_packets_decode_their_payload(
            which in 0usize..4,
            cut in 80usize..200,
        ) {
            let (ethertype, p) = sample_packets().swap_remove(which);
            let i = FrameInfo { ethertype, pkttype: PACKET_HOST, ifindex: 1, wire_len: p.len() };
            let f = decode(&p[..cut.min(p.len())], &i).unwrap();
            prop_assert_eq!(f.remote.port(), 1);
            prop_assert_eq!(f.local.port(), 2);
            prop_assert!(f.payload == 40 || f.payload == 30);
        }
    }
}
