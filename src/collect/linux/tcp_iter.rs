//! TCP sockets from a BPF `tcp` iterator: one walk of the kernel's TCP
//! hash tables for both address families, writing a 104-byte record per
//! socket (addresses, state, uid, inode, the `tcp_sock` byte counters,
//! smoothed RTT and retransmission count).
//!
//! Why: the netlink dump with `INET_DIAG_INFO` fills a whole `struct
//! tcp_info` (~250 bytes, dozens of computed fields) per socket, walks the
//! hash tables once per address family, and at 20k sockets costs ~40 ms of
//! kernel time per sample; the always-on `serve` pays that every second.
//! This iterator reads only the fields procnet uses. It needs what the
//! owner iterator needs (root, kernel BTF); without it the collector uses
//! netlink, which gives the same sockets and counters.
//!
//! The record layout below is this program's own; nothing outside this
//! file depends on it.

use super::bpf_iter::{attach, insn, offset, read_records, read_vmlinux_btf, BpfError};
use super::btf;
use super::inet_diag::{tcp_byte_counters, tcp_health, DiagSocket};
use crate::snapshot::{canonical_ip, Proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

const BPF_FUNC_PROBE_READ_KERNEL: i32 = 113;
const BPF_FUNC_SEQ_WRITE: i32 = 127;
const BPF_FUNC_SKC_TO_TCP_SOCK: i32 = 137;

/// One record, as the program writes it (host byte order unless noted).
pub const REC_LEN: usize = 104;
const F_FAMILY: i16 = 0; // u16
const F_STATE: i16 = 2; // u8, TIME_WAIT replaced by its substate
const F_DPORT: i16 = 4; // u16, network order
const F_SPORT: i16 = 6; // u16
const F_DADDR: i16 = 8; // [u8; 4]
const F_SADDR: i16 = 12; // [u8; 4]
const F_DADDR6: i16 = 16; // [u8; 16]
const F_SADDR6: i16 = 32; // [u8; 16]
const F_UID: i16 = 48; // u32
const F_FULL: i16 = 52; // u32: 1 when the counters below were read
const F_INODE: i16 = 56; // u64
const F_RECEIVED: i16 = 64; // u64 tcp_sock.bytes_received
const F_SENT: i16 = 72; // u64 tcp_sock.bytes_sent
const F_RETRANS: i16 = 80; // u64 tcp_sock.bytes_retrans
const F_ACKED: i16 = 88; // u64 tcp_sock.bytes_acked
const F_SRTT: i16 = 96; // u32 tcp_sock.srtt_us: 8 × the smoothed RTT in µs
const F_TOTAL_RETRANS: i16 = 100; // u32 tcp_sock.total_retrans

/// Stack layout: the record at fp-104, an 8-byte scratch slot below it.
const REC: i16 = -(REC_LEN as i16);
const SCRATCH: i16 = REC - 8;

/// Kernel struct members the program reads, in this order; the inode
/// comes from [`INODE_DIRECT`] or else [`INODE_CHAIN`].
const MEMBERS: [btf::MemberQuery; 15] = [
    ("sock_common", "skc_family"),
    ("sock_common", "skc_state"),
    ("sock_common", "skc_dport"),
    ("sock_common", "skc_num"),
    ("sock_common", "skc_daddr"),
    ("sock_common", "skc_rcv_saddr"),
    ("sock_common", "skc_v6_daddr"),
    ("sock_common", "skc_v6_rcv_saddr"),
    ("inet_timewait_sock", "tw_substate"),
    ("tcp_sock", "bytes_received"),
    ("tcp_sock", "bytes_sent"),
    ("tcp_sock", "bytes_retrans"),
    ("tcp_sock", "bytes_acked"),
    ("tcp_sock", "srtt_us"),
    ("tcp_sock", "total_retrans"),
];

/// Linux 6.18+ keeps the socket's inode number in `struct sock` itself.
const INODE_DIRECT: [btf::MemberQuery; 1] = [("sock", "sk_ino")];
/// Before that: `sk->sk_socket->file->f_inode->i_ino`, three more cache
/// misses per socket.
const INODE_CHAIN: [btf::MemberQuery; 4] = [
    ("sock", "sk_socket"),
    ("socket", "file"),
    ("file", "f_inode"),
    ("inode", "i_ino"),
];

/// Where the program finds a socket's inode number.
#[derive(Debug, Clone, Copy)]
enum InodeAt {
    /// `sock.sk_ino`.
    Direct(i16),
    /// Offsets of `sk_socket`, `file`, `f_inode`, `i_ino`.
    Chain([i16; 4]),
}

/// Kernel TCP state numbers the program and decoder look at.
const TCP_TIME_WAIT: u8 = 6;
const TCP_SYN_RECV: u8 = 3;
const TCP_NEW_SYN_RECV: u8 = 12;

/// A tiny assembler: instructions plus forward jumps patched by label.
struct Asm {
    code: Vec<[u8; 8]>,
    /// (instruction index, label) of jumps to patch.
    jumps: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
}

const MOV_X: u8 = 0xbf;
const MOV_K: u8 = 0xb7;
const ADD_K: u8 = 0x07;
const LDX_DW: u8 = 0x79;
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const STX_DW: u8 = 0x7b;
const STX_H: u8 = 0x6b;
const STX_B: u8 = 0x73;
const STX_W: u8 = 0x63;
const ST_DW: u8 = 0x7a;
const ST_W: u8 = 0x62;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JA: u8 = 0x05;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const FP: u8 = 10;

impl Asm {
    fn new() -> Asm {
        Asm {
            code: Vec::new(),
            jumps: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.code.push(insn(code, dst, src, off, imm));
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }
    fn jump(&mut self, code: u8, dst: u8, imm: i32, label: usize) {
        self.jumps.push((self.code.len(), label));
        self.op(code, dst, 0, 0, imm);
    }
    /// `bpf_probe_read_kernel(fp + dst, size, base + off)`.
    fn probe(&mut self, dst: i16, size: i32, base: u8, off: i32) {
        self.op(MOV_X, 1, FP, 0, 0);
        self.op(ADD_K, 1, 0, 0, i32::from(dst));
        self.op(MOV_K, 2, 0, 0, size);
        self.op(MOV_X, 3, base, 0, 0);
        self.op(ADD_K, 3, 0, 0, off);
        self.op(CALL, 0, 0, 0, BPF_FUNC_PROBE_READ_KERNEL);
    }
    fn finish(mut self) -> Vec<u8> {
        for (at, label) in std::mem::take(&mut self.jumps) {
            let target = self.labels[label].expect("every label is bound");
            let rel = (target as i64 - at as i64 - 1) as i16;
            self.code[at][2..4].copy_from_slice(&rel.to_ne_bytes());
        }
        self.code.concat()
    }
}

/// The program, given the byte offsets of [`MEMBERS`].
///
/// Fields are read with plain loads through the kernel's typed pointers
/// (the verifier checks each offset against BTF and the JIT makes them
/// fault-safe), which costs a few nanoseconds where a
/// `bpf_probe_read_kernel` call costs ~50. Only a TIME_WAIT socket's
/// substate, which lies beyond `sock_common`, is read with the helper.
fn program(o: &[i16; 15], inode: InodeAt) -> Vec<u8> {
    let [family, state, dport, num, daddr, saddr, daddr6, saddr6, tw_substate, received, sent, retrans, acked, srtt, total_retrans] =
        *o;
    let mut a = Asm::new();
    let out = a.label();
    let full = a.label();
    let write = a.label();
    // Copies a `size`-byte field at `src_off` from the pointer in `src` to
    // the record at `dst`, through r1.
    let copy = |a: &mut Asm, ldx: u8, stx: u8, dst: i16, src: u8, src_off: i16| {
        a.op(ldx, 1, src, src_off, 0);
        a.op(stx, FP, 1, REC + dst, 0);
    };
    a.op(MOV_X, 6, 1, 0, 0); // r6 = ctx
    a.op(LDX_DW, 7, 6, 8, 0); // r7 = ctx->sk_common
    a.jump(JEQ_K, 7, 0, out);
    for k in 0..(REC_LEN as i16 + 8) / 8 {
        a.op(ST_DW, FP, 0, SCRATCH + 8 * k, 0); // zero record and scratch
    }
    copy(&mut a, LDX_H, STX_H, F_FAMILY, 7, family);
    copy(&mut a, LDX_B, STX_B, F_STATE, 7, state);
    copy(&mut a, LDX_H, STX_H, F_DPORT, 7, dport);
    copy(&mut a, LDX_H, STX_H, F_SPORT, 7, num);
    copy(&mut a, LDX_W, STX_W, F_DADDR, 7, daddr);
    copy(&mut a, LDX_W, STX_W, F_SADDR, 7, saddr);
    for half in [0, 8] {
        copy(&mut a, LDX_DW, STX_DW, F_DADDR6 + half, 7, daddr6 + half);
        copy(&mut a, LDX_DW, STX_DW, F_SADDR6 + half, 7, saddr6 + half);
    }
    a.op(LDX_DW, 1, 6, 16, 0); // r1 = ctx->uid
    a.op(STX_W, FP, 1, REC + F_UID, 0);
    a.op(LDX_B, 1, 7, state, 0);
    a.jump(JNE_K, 1, i32::from(TCP_TIME_WAIT), full);
    // A TIME_WAIT socket: what netlink reports is its substate.
    a.probe(REC + F_STATE, 1, 7, tw_substate.into());
    a.jump(JA, 0, 0, write);
    a.bind(full);
    a.op(MOV_X, 1, 7, 0, 0);
    a.op(CALL, 0, 0, 0, BPF_FUNC_SKC_TO_TCP_SOCK);
    a.jump(JEQ_K, 0, 0, write); // a request socket: no counters
    a.op(MOV_X, 8, 0, 0, 0); // r8 = tcp_sock
    a.op(ST_W, FP, 0, REC + F_FULL, 1);
    copy(&mut a, LDX_DW, STX_DW, F_RECEIVED, 8, received);
    copy(&mut a, LDX_DW, STX_DW, F_SENT, 8, sent);
    copy(&mut a, LDX_DW, STX_DW, F_RETRANS, 8, retrans);
    copy(&mut a, LDX_DW, STX_DW, F_ACKED, 8, acked);
    copy(&mut a, LDX_W, STX_W, F_SRTT, 8, srtt);
    copy(&mut a, LDX_W, STX_W, F_TOTAL_RETRANS, 8, total_retrans);
    match inode {
        InodeAt::Direct(sk_ino) => copy(&mut a, LDX_DW, STX_DW, F_INODE, 8, sk_ino),
        InodeAt::Chain([sk_socket, file, f_inode, i_ino]) => {
            // A kernel socket has no file: inode 0, as netlink says.
            a.op(LDX_DW, 3, 8, sk_socket, 0);
            a.jump(JEQ_K, 3, 0, write);
            a.op(LDX_DW, 3, 3, file, 0);
            a.jump(JEQ_K, 3, 0, write);
            a.op(LDX_DW, 3, 3, f_inode, 0);
            a.jump(JEQ_K, 3, 0, write);
            a.op(LDX_DW, 3, 3, i_ino, 0);
            a.op(STX_DW, FP, 3, REC + F_INODE, 0);
        }
    }
    a.bind(write);
    a.op(LDX_DW, 1, 6, 0, 0); // r1 = ctx->meta
    a.op(LDX_DW, 1, 1, 0, 0); // r1 = meta->seq
    a.op(MOV_X, 2, FP, 0, 0);
    a.op(ADD_K, 2, 0, 0, i32::from(REC));
    a.op(MOV_K, 3, 0, 0, REC_LEN as i32);
    a.op(CALL, 0, 0, 0, BPF_FUNC_SEQ_WRITE);
    a.bind(out);
    a.op(MOV_K, 0, 0, 0, 0);
    a.op(EXIT, 0, 0, 0, 0);
    a.finish()
}

/// A loaded and attached TCP socket iterator.
pub struct TcpIter {
    link: OwnedFd,
    buf: Vec<u8>,
}

impl TcpIter {
    /// Loads and attaches the program (root and kernel BTF needed).
    pub fn load() -> Result<TcpIter, BpfError> {
        let vmlinux = read_vmlinux_btf()?;
        TcpIter::load_from(&btf::Btf::parse(&vmlinux)?)
    }

    /// Like [`TcpIter::load`], with kernel BTF already parsed.
    pub fn load_from(btf: &btf::Btf<'_>) -> Result<TcpIter, BpfError> {
        TcpIter::load_with(btf, false)
    }

    /// Like [`TcpIter::load`], but finds inodes the way kernels before
    /// 6.18 need, whatever this kernel has (so tests cover both paths).
    #[doc(hidden)]
    pub fn load_with_inode_chain() -> Result<TcpIter, BpfError> {
        let vmlinux = read_vmlinux_btf()?;
        TcpIter::load_with(&btf::Btf::parse(&vmlinux)?, true)
    }

    fn load_with(btf: &btf::Btf<'_>, force_chain: bool) -> Result<TcpIter, BpfError> {
        let func_id = btf.func_id("bpf_iter_tcp")?;
        let found = btf.member_offsets(&MEMBERS)?;
        let direct = match force_chain {
            true => Err(btf::BtfError::Missing("forced")),
            false => btf.member_offsets(&INODE_DIRECT),
        };
        let inode = match direct {
            Ok(d) => InodeAt::Direct(offset(d[0])?),
            Err(_) => {
                let c = btf.member_offsets(&INODE_CHAIN)?;
                InodeAt::Chain([offset(c[0])?, offset(c[1])?, offset(c[2])?, offset(c[3])?])
            }
        };
        let mut o = [0i16; 15];
        for (slot, &v) in o.iter_mut().zip(&found) {
            *slot = offset(v)?;
        }
        let link = attach(&program(&o, inode), func_id)?;
        Ok(TcpIter {
            link,
            buf: vec![0u8; 1 << 20],
        })
    }

    /// Walks every TCP socket of this network namespace once.
    pub fn read(&mut self, each: &mut impl FnMut(DiagSocket)) -> Result<(), BpfError> {
        read_records(&self.link, &mut self.buf, REC_LEN, |recs| {
            decode_records(recs, each)
        })
    }
}

fn u16_at(r: &[u8], at: i16) -> u16 {
    let at = at as usize;
    u16::from_ne_bytes([r[at], r[at + 1]])
}

fn u32_at(r: &[u8], at: i16) -> u32 {
    let at = at as usize;
    u32::from_ne_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]])
}

fn u64_at(r: &[u8], at: i16) -> u64 {
    let at = at as usize;
    let mut b = [0u8; 8];
    b.copy_from_slice(&r[at..at + 8]);
    u64::from_ne_bytes(b)
}

fn ip_at(r: &[u8], at: i16, v6: bool) -> IpAddr {
    let at = at as usize;
    if v6 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&r[at..at + 16]);
        canonical_ip(IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        IpAddr::V4(Ipv4Addr::new(r[at], r[at + 1], r[at + 2], r[at + 3]))
    }
}

/// Decodes whole records (a partial tail is ignored); records of an
/// address family other than IPv4/IPv6 are skipped.
pub fn decode_records(buf: &[u8], each: &mut impl FnMut(DiagSocket)) {
    for r in buf.chunks_exact(REC_LEN) {
        let v6 = match u16_at(r, F_FAMILY) {
            f if f == libc::AF_INET as u16 => false,
            f if f == libc::AF_INET6 as u16 => true,
            _ => continue,
        };
        let mut state = r[F_STATE as usize];
        if state == TCP_NEW_SYN_RECV {
            state = TCP_SYN_RECV; // as inet_diag reports request sockets
        }
        let local = SocketAddr::new(
            ip_at(r, if v6 { F_SADDR6 } else { F_SADDR }, v6),
            u16_at(r, F_SPORT),
        );
        let remote = SocketAddr::new(
            ip_at(r, if v6 { F_DADDR6 } else { F_DADDR }, v6),
            u16::from_be(u16_at(r, F_DPORT)),
        );
        let remote = (!(remote.ip().is_unspecified() && remote.port() == 0)).then_some(remote);
        let full = u32_at(r, F_FULL) == 1;
        let (bytes_sent, bytes_received) = if full {
            tcp_byte_counters(
                state,
                Some(u64_at(r, F_ACKED)),
                Some(u64_at(r, F_RECEIVED)),
                Some(u64_at(r, F_SENT)),
                Some(u64_at(r, F_RETRANS)),
            )
        } else {
            (None, None)
        };
        // `tcp_info` reports `srtt_us >> 3`; the same here, so both
        // sources agree to the microsecond.
        let health = full
            .then(|| {
                tcp_health(
                    state,
                    Some(u32_at(r, F_SRTT) >> 3),
                    Some(u32_at(r, F_TOTAL_RETRANS)),
                )
            })
            .flatten();
        each(DiagSocket {
            proto: Proto::Tcp,
            state,
            local,
            remote,
            uid: u32_at(r, F_UID),
            inode: u64_at(r, F_INODE),
            bytes_sent,
            bytes_received,
            tcp_health: health,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn record(
        family: u16,
        state: u8,
        local: (&[u8], u16),
        remote: (&[u8], u16),
        uid: u32,
        inode: u64,
        counters: Option<[u64; 4]>,
    ) -> Vec<u8> {
        let mut r = vec![0u8; REC_LEN];
        let put = |r: &mut Vec<u8>, at: i16, b: &[u8]| {
            r[at as usize..at as usize + b.len()].copy_from_slice(b)
        };
        put(&mut r, F_FAMILY, &family.to_ne_bytes());
        r[F_STATE as usize] = state;
        put(&mut r, F_SPORT, &local.1.to_ne_bytes());
        put(&mut r, F_DPORT, &remote.1.to_be_bytes());
        let v6 = local.0.len() == 16;
        put(&mut r, if v6 { F_SADDR6 } else { F_SADDR }, local.0);
        put(&mut r, if v6 { F_DADDR6 } else { F_DADDR }, remote.0);
        put(&mut r, F_UID, &uid.to_ne_bytes());
        put(&mut r, F_INODE, &inode.to_ne_bytes());
        if let Some([recv, sent, retrans, acked]) = counters {
            put(&mut r, F_FULL, &1u32.to_ne_bytes());
            put(&mut r, F_RECEIVED, &recv.to_ne_bytes());
            put(&mut r, F_SENT, &sent.to_ne_bytes());
            put(&mut r, F_RETRANS, &retrans.to_ne_bytes());
            put(&mut r, F_ACKED, &acked.to_ne_bytes());
        }
        r
    }

    fn decode(buf: &[u8]) -> Vec<DiagSocket> {
        let mut out = Vec::new();
        decode_records(buf, &mut |d| out.push(d));
        out
    }

    #[test]
    fn decodes_v4_v6_and_mapped_records() {
        let mut buf = record(
            2,
            1,
            (&[127, 0, 0, 1], 40000),
            (&[127, 0, 0, 2], 8080),
            1000,
            4242,
            Some([300, 1100, 100, 1000]),
        );
        // The kernel keeps 8 × the smoothed RTT: 1.5 ms here.
        buf[F_SRTT as usize..F_SRTT as usize + 4].copy_from_slice(&(8 * 1500u32).to_ne_bytes());
        buf[F_TOTAL_RETRANS as usize..F_TOTAL_RETRANS as usize + 4]
            .copy_from_slice(&3u32.to_ne_bytes());
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[10, 0, 0, 1]);
        buf.extend(record(
            10,
            10,
            (&mapped, 22),
            (&[0; 16], 0),
            0,
            7,
            Some([0; 4]),
        ));
        // CLOSE_WAIT: the peer's FIN is not a payload byte.
        buf.extend(record(
            10,
            8,
            (&Ipv6Addr::LOCALHOST.octets(), 5000),
            (&Ipv6Addr::LOCALHOST.octets(), 6000),
            0,
            8,
            Some([11, 5, 0, 5]),
        ));
        buf.extend(record(
            2,
            6,
            (&[127, 0, 0, 1], 1),
            (&[127, 0, 0, 1], 2),
            0,
            0,
            None,
        ));
        buf.extend(record(
            2,
            12,
            (&[127, 0, 0, 1], 3),
            (&[127, 0, 0, 1], 4),
            0,
            0,
            None,
        ));
        buf.extend(record(1, 1, (&[0; 4], 0), (&[0; 4], 0), 0, 0, None)); // AF_UNIX: skipped
        buf.extend([0u8; 40]); // partial tail: ignored
        let got = decode(&buf);
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(got[0].remote, Some("127.0.0.2:8080".parse().unwrap()));
        assert_eq!((got[0].uid, got[0].inode, got[0].state), (1000, 4242, 1));
        assert_eq!(got[0].bytes_sent, Some(1000)); // sent - retrans
        assert_eq!(got[0].bytes_received, Some(300));
        assert_eq!(got[1].local, "10.0.0.1:22".parse().unwrap());
        assert_eq!(got[1].remote, None);
        assert_eq!(got[2].bytes_received, Some(10));
        assert_eq!(got[2].remote, Some("[::1]:6000".parse().unwrap()));
        assert_eq!((got[3].state, got[3].bytes_sent), (6, None));
        assert_eq!(got[4].state, TCP_SYN_RECV);
        use crate::snapshot::TcpHealth;
        let health = |rtt_us, retransmits| {
            Some(TcpHealth {
                rtt_us,
                retransmits,
            })
        };
        assert_eq!(got[0].tcp_health, health(Some(1500), 3));
        assert_eq!(got[1].tcp_health, None); // a listener
        assert_eq!(got[2].tcp_health, health(None, 0)); // no RTT sample
        assert_eq!((got[3].tcp_health, got[4].tcp_health), (None, None));
    }

    #[test]
    fn program_jumps_stay_inside() {
        let o = [16, 18, 12, 14, 0, 4, 56, 72, 80, 1, 2, 3, 4, 5, 6];
        for inode in [InodeAt::Direct(5), InodeAt::Chain([5, 6, 7, 8])] {
            jumps_stay_inside(&program(&o, inode));
        }
    }

    fn jumps_stay_inside(p: &[u8]) {
        assert_eq!(p.len() % 8, 0);
        let n = p.len() / 8;
        assert_eq!(p[(n - 1) * 8], EXIT);
        for (i, ins) in p.chunks(8).enumerate() {
            if matches!(ins[0], JEQ_K | JNE_K | JA) {
                let off = i16::from_ne_bytes([ins[2], ins[3]]);
                let target = i as i64 + 1 + i64::from(off);
                assert!(off >= 0 && (target as usize) < n, "jump at {i}");
            }
        }
    }
}
