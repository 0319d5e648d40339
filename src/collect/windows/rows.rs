//! Pure decoders for the Windows collector: IP Helper table rows from raw
//! bytes, byte orders, TCP states, FILETIMEs, command lines and socket
//! addresses. No OS calls, so these run (and are tested) on every OS.
//!
//! Layouts (all little-endian DWORDs, tables 4-byte aligned, rows right
//! after the leading `dwNumEntries`):
//!
//! | table                      | row                                              | bytes |
//! |----------------------------|--------------------------------------------------|-------|
//! | `MIB_TCPTABLE_OWNER_PID`   | state, laddr, lport, raddr, rport, pid           | 24    |
//! | `MIB_TCP6TABLE_OWNER_PID`  | laddr[16], lscope, lport, raddr[16], rscope, rport, state, pid | 56 |
//! | `MIB_UDPTABLE_OWNER_PID`   | laddr, lport, pid                                | 12    |
//! | `MIB_UDP6TABLE_OWNER_PID`  | laddr[16], lscope, lport, pid                    | 28    |
//!
//! Address DWORDs hold the address in network order (their bytes in memory
//! are `a.b.c.d`); port DWORDs hold a network-order `u16` in their low 16
//! bits.

use crate::snapshot::{canonical_ip, Proto, Socket, SocketState, UnknownReason};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Size of `MIB_TCPROW_OWNER_PID`.
pub const TCP4_ROW_LEN: usize = 24;
/// Size of `MIB_TCP6ROW_OWNER_PID`.
pub const TCP6_ROW_LEN: usize = 56;
/// Size of `MIB_UDPROW_OWNER_PID`.
pub const UDP4_ROW_LEN: usize = 12;
/// Size of `MIB_UDP6ROW_OWNER_PID`.
pub const UDP6_ROW_LEN: usize = 28;
/// Offset of the first row after `dwNumEntries`.
pub const TABLE_HEADER_LEN: usize = 4;

/// Which of the four IP Helper owner-pid tables a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Tcp4,
    Tcp6,
    Udp4,
    Udp6,
}

impl TableKind {
    /// Bytes per row.
    pub fn row_len(self) -> usize {
        match self {
            TableKind::Tcp4 => TCP4_ROW_LEN,
            TableKind::Tcp6 => TCP6_ROW_LEN,
            TableKind::Udp4 => UDP4_ROW_LEN,
            TableKind::Udp6 => UDP6_ROW_LEN,
        }
    }

    /// Transport protocol of the table.
    pub fn proto(self) -> Proto {
        match self {
            TableKind::Tcp4 | TableKind::Tcp6 => Proto::Tcp,
            TableKind::Udp4 | TableKind::Udp6 => Proto::Udp,
        }
    }

    /// Name for messages, e.g. `TCP/IPv6 table`.
    pub fn describe(self) -> &'static str {
        match self {
            TableKind::Tcp4 => "TCP/IPv4 table",
            TableKind::Tcp6 => "TCP/IPv6 table",
            TableKind::Udp4 => "UDP/IPv4 table",
            TableKind::Udp6 => "UDP/IPv6 table",
        }
    }
}

/// One decoded table row, with the raw fields the per-connection
/// statistics calls need to name the connection again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    pub kind: TableKind,
    /// Local address bytes as in the row (first 4 used for IPv4).
    pub local_addr: [u8; 16],
    /// `dwLocalPort` exactly as in the row (network-order low 16 bits).
    pub local_port_dw: u32,
    pub local_scope: u32,
    /// Remote address bytes as in the row (zero for UDP).
    pub remote_addr: [u8; 16],
    /// `dwRemotePort` exactly as in the row.
    pub remote_port_dw: u32,
    pub remote_scope: u32,
    /// `MIB_TCP_STATE` value (0 for UDP).
    pub state_dw: u32,
    /// `dwOwningPid`.
    pub pid: u32,
}

impl RawRow {
    /// Local IP address, IPv4-mapped addresses reported as IPv4.
    pub fn local_ip(&self) -> IpAddr {
        self.ip(&self.local_addr)
    }

    /// Remote IP address (unspecified for UDP).
    pub fn remote_ip(&self) -> IpAddr {
        self.ip(&self.remote_addr)
    }

    fn ip(&self, bytes: &[u8; 16]) -> IpAddr {
        match self.kind {
            TableKind::Tcp4 | TableKind::Udp4 => {
                IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
            }
            TableKind::Tcp6 | TableKind::Udp6 => canonical_ip(IpAddr::V6(Ipv6Addr::from(*bytes))),
        }
    }

    /// Socket state; UDP sockets are `Close` (bound, the table has no peer).
    pub fn state(&self) -> SocketState {
        match self.kind.proto() {
            Proto::Tcp => state_from_mib(self.state_dw),
            Proto::Udp => SocketState::Close,
        }
    }

    /// Local address and port.
    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_ip(), port_from_dword(self.local_port_dw))
    }

    /// Remote address and port; `None` for UDP, listeners and rows whose
    /// remote side is `0.0.0.0:0` / `[::]:0`.
    pub fn remote(&self) -> Option<SocketAddr> {
        if self.kind.proto() == Proto::Udp || self.state() == SocketState::Listen {
            return None;
        }
        let ip = self.remote_ip();
        let port = port_from_dword(self.remote_port_dw);
        if ip.is_unspecified() && port == 0 {
            return None;
        }
        Some(SocketAddr::new(ip, port))
    }

    /// Builds the snapshot socket. Owner pids 0 and 4 are not real owners:
    /// see [`unowned_reason`].
    pub fn to_socket(&self) -> Socket {
        let state = self.state();
        let reason = unowned_reason(self.pid, state);
        Socket {
            proto: self.kind.proto(),
            local: self.local(),
            remote: self.remote(),
            state,
            inode: 0,
            uid: None,
            owners: if reason.is_none() {
                smallvec::smallvec![self.pid]
            } else {
                Default::default()
            },
            unowned_reason: reason,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: None,
            closed: false,
            io_owner: None,
        }
    }
}

/// Why a row's owner pid is not a process we can show, or `None` when it
/// is one. Pid 0 is "no owner" (Wine reports it for every socket; Windows
/// for TIME_WAIT, whose owner has closed it); pid 4 is the kernel (`System`:
/// http.sys, SMB), which owns no user-visible process details.
pub fn unowned_reason(pid: u32, state: SocketState) -> Option<UnknownReason> {
    match pid {
        0 if state == SocketState::TimeWait => Some(UnknownReason::Exited),
        0 | 4 => Some(UnknownReason::Unknown),
        _ => None,
    }
}

/// The port held in the low 16 bits of a `dwLocalPort`/`dwRemotePort`
/// DWORD, which are in network byte order.
pub fn port_from_dword(dw: u32) -> u16 {
    u16::from_be(dw as u16)
}

/// The IPv4 address held in a `dwLocalAddr`/`dwRemoteAddr` DWORD (network
/// order: its bytes in memory are the address bytes).
pub fn ipv4_from_dword(dw: u32) -> Ipv4Addr {
    // Table DWORDs are little-endian in memory (every Windows target is).
    Ipv4Addr::from(dw.to_le_bytes())
}

/// Maps `MIB_TCP_STATE` (1 = CLOSED … 12 = DELETE_TCB).
pub fn state_from_mib(state: u32) -> SocketState {
    match state {
        1 | 12 => SocketState::Close,
        2 => SocketState::Listen,
        3 => SocketState::SynSent,
        4 => SocketState::SynRecv,
        5 => SocketState::Established,
        6 => SocketState::FinWait1,
        7 => SocketState::FinWait2,
        8 => SocketState::CloseWait,
        9 => SocketState::Closing,
        10 => SocketState::LastAck,
        11 => SocketState::TimeWait,
        _ => SocketState::Unknown,
    }
}

/// Rows decoded from one table buffer, and whether the buffer was shorter
/// than its `dwNumEntries` said (the rows that fit are still returned).
#[derive(Debug, Default)]
pub struct ParsedTable {
    pub rows: Vec<RawRow>,
    pub truncated: bool,
}

fn dw(b: &[u8], at: usize) -> u32 {
    // Callers slice exact rows; a short slice yields 0 rather than a panic.
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

fn addr16(b: &[u8], at: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    if let Some(s) = b.get(at..at + 16) {
        out.copy_from_slice(s);
    }
    out
}

fn addr4(b: &[u8], at: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&ipv4_from_dword(dw(b, at)).octets());
    out
}

/// Decodes one row of `kind` from exactly `kind.row_len()` bytes.
pub fn parse_row(kind: TableKind, r: &[u8]) -> Option<RawRow> {
    if r.len() < kind.row_len() {
        return None;
    }
    Some(match kind {
        TableKind::Tcp4 => RawRow {
            kind,
            state_dw: dw(r, 0),
            local_addr: addr4(r, 4),
            local_port_dw: dw(r, 8),
            local_scope: 0,
            remote_addr: addr4(r, 12),
            remote_port_dw: dw(r, 16),
            remote_scope: 0,
            pid: dw(r, 20),
        },
        TableKind::Tcp6 => RawRow {
            kind,
            local_addr: addr16(r, 0),
            local_scope: dw(r, 16),
            local_port_dw: dw(r, 20),
            remote_addr: addr16(r, 24),
            remote_scope: dw(r, 40),
            remote_port_dw: dw(r, 44),
            state_dw: dw(r, 48),
            pid: dw(r, 52),
        },
        TableKind::Udp4 => RawRow {
            kind,
            local_addr: addr4(r, 0),
            local_port_dw: dw(r, 4),
            pid: dw(r, 8),
            local_scope: 0,
            remote_addr: [0; 16],
            remote_port_dw: 0,
            remote_scope: 0,
            state_dw: 0,
        },
        TableKind::Udp6 => RawRow {
            kind,
            local_addr: addr16(r, 0),
            local_scope: dw(r, 16),
            local_port_dw: dw(r, 20),
            pid: dw(r, 24),
            remote_addr: [0; 16],
            remote_port_dw: 0,
            remote_scope: 0,
            state_dw: 0,
        },
    })
}

/// Decodes a whole `MIB_*TABLE_OWNER_PID` buffer as filled by
/// `GetExtendedTcpTable` / `GetExtendedUdpTable`. Never panics: a count
/// larger than the buffer yields the rows that fit and `truncated`.
pub fn parse_table(kind: TableKind, buf: &[u8]) -> ParsedTable {
    if buf.len() < TABLE_HEADER_LEN {
        return ParsedTable {
            rows: Vec::new(),
            truncated: !buf.is_empty(),
        };
    }
    let claimed = dw(buf, 0) as usize;
    let len = kind.row_len();
    let fit = (buf.len() - TABLE_HEADER_LEN) / len;
    let n = claimed.min(fit);
    let rows = buf[TABLE_HEADER_LEN..]
        .chunks_exact(len)
        .take(n)
        .filter_map(|r| parse_row(kind, r))
        .collect();
    ParsedTable {
        rows,
        truncated: claimed > fit,
    }
}

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// A FILETIME (100 ns ticks since 1601) as whole seconds since the Unix
/// epoch; `None` for 0 or a time before 1970.
pub fn filetime_to_unix_secs(ticks: u64) -> Option<u64> {
    ticks
        .checked_sub(FILETIME_UNIX_EPOCH)
        .filter(|_| ticks != 0)
        .map(|t| t / 10_000_000)
}

/// Splits a Windows command line into arguments the way the Microsoft C
/// runtime (and `CommandLineToArgvW`) does: the program name ends at the
/// first unquoted space and takes no escapes; afterwards `2n` backslashes
/// before a quote become `n` and toggle quoting, `2n+1` become `n` and a
/// literal quote, `""` inside quotes is a literal quote.
pub fn split_command_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;

    // Program name.
    let mut prog = String::new();
    let mut quoted = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && (c == ' ' || c == '\t') {
            break;
        } else {
            prog.push(c);
        }
        i += 1;
    }
    if chars.is_empty() {
        return args;
    }
    args.push(prog);

    loop {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let start = i;
                while i < chars.len() && chars[i] == '\\' {
                    i += 1;
                }
                let n = i - start;
                if i < chars.len() && chars[i] == '"' {
                    arg.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        arg.push('"');
                        i += 1;
                    }
                } else {
                    arg.extend(std::iter::repeat_n('\\', n));
                }
                continue;
            }
            if c == '"' {
                if quoted && chars.get(i + 1) == Some(&'"') {
                    arg.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                i += 1;
                continue;
            }
            if !quoted && (c == ' ' || c == '\t') {
                break;
            }
            arg.push(c);
            i += 1;
        }
        args.push(arg);
    }
    args
}

/// The string a `UNICODE_STRING` at the start of `buf` points to, when its
/// buffer lies inside `buf` (as `NtQueryInformationProcess` with
/// `ProcessCommandLineInformation` lays it out). `buf_addr` is the address
/// of `buf[0]`. Anything pointing elsewhere or past the end gives `None`.
pub fn unicode_string_in(buf: &[u8], buf_addr: usize) -> Option<String> {
    let ptr_size = std::mem::size_of::<usize>();
    let header = 2 * ptr_size; // Length, MaximumLength, padding, Buffer
    if buf.len() < header {
        return None;
    }
    let len = u16::from_le_bytes([buf[0], buf[1]]) as usize;
    let mut p = [0u8; 8];
    p[..ptr_size].copy_from_slice(&buf[ptr_size..2 * ptr_size]);
    let ptr = u64::from_le_bytes(p) as usize;
    if len == 0 {
        return Some(String::new());
    }
    let off = ptr.checked_sub(buf_addr)?;
    let bytes = buf.get(off..off.checked_add(len)?)?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units))
}

/// Decodes a `SOCKADDR_IN` / `SOCKADDR_IN6` from its bytes (family 2 =
/// `AF_INET`, 23 = `AF_INET6`).
pub fn sockaddr_ip(b: &[u8]) -> Option<IpAddr> {
    let family = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
    match family {
        2 => {
            let a = b.get(4..8)?;
            Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])))
        }
        23 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(canonical_ip(IpAddr::V6(Ipv6Addr::from(a))))
        }
        _ => None,
    }
}

/// A NUL-terminated (or full) UTF-16 buffer as a `String`.
pub fn wide_to_string(w: &[u16]) -> String {
    let end = w.iter().position(|&c| c == 0).unwrap_or(w.len());
    String::from_utf16_lossy(&w[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4_row(state: u32, l: [u8; 4], lp: u16, r: [u8; 4], rp: u16, pid: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(state.to_le_bytes());
        v.extend(l);
        v.extend((lp.to_be() as u32).to_le_bytes());
        v.extend(r);
        v.extend((rp.to_be() as u32).to_le_bytes());
        v.extend(pid.to_le_bytes());
        v
    }

    #[test]
    fn port_is_network_order_low_word() {
        // Port 8080 = 0x1F90; in memory 1F 90 00 00, read as LE DWORD 0x0000901F.
        assert_eq!(port_from_dword(0x0000_901F), 8080);
        assert_eq!(
            port_from_dword(u32::from_le_bytes([0x1F, 0x90, 0, 0])),
            8080
        );
        // High garbage is ignored.
        assert_eq!(port_from_dword(0xABCD_0050), 0x5000);
        assert_eq!(port_from_dword(u32::from_le_bytes([0, 80, 0xFF, 0xFF])), 80);
    }

    #[test]
    fn ipv4_dword_is_network_order() {
        let dw = u32::from_le_bytes([127, 0, 0, 1]);
        assert_eq!(ipv4_from_dword(dw), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(ipv4_from_dword(0x0100_007F), Ipv4Addr::new(127, 0, 0, 1));
        let dw = u32::from_le_bytes([192, 168, 1, 20]);
        assert_eq!(ipv4_from_dword(dw), Ipv4Addr::new(192, 168, 1, 20));
    }

    #[test]
    fn tcp_states_map() {
        assert_eq!(state_from_mib(1), SocketState::Close);
        assert_eq!(state_from_mib(2), SocketState::Listen);
        assert_eq!(state_from_mib(3), SocketState::SynSent);
        assert_eq!(state_from_mib(4), SocketState::SynRecv);
        assert_eq!(state_from_mib(5), SocketState::Established);
        assert_eq!(state_from_mib(6), SocketState::FinWait1);
        assert_eq!(state_from_mib(7), SocketState::FinWait2);
        assert_eq!(state_from_mib(8), SocketState::CloseWait);
        assert_eq!(state_from_mib(9), SocketState::Closing);
        assert_eq!(state_from_mib(10), SocketState::LastAck);
        assert_eq!(state_from_mib(11), SocketState::TimeWait);
        assert_eq!(state_from_mib(12), SocketState::Close);
        assert_eq!(state_from_mib(0), SocketState::Unknown);
        assert_eq!(state_from_mib(99), SocketState::Unknown);
    }

    #[test]
    fn tcp4_table_parses() {
        let mut buf = 3u32.to_le_bytes().to_vec();
        buf.extend(tcp4_row(2, [0, 0, 0, 0], 445, [0, 0, 0, 0], 0, 4));
        buf.extend(tcp4_row(
            5,
            [127, 0, 0, 1],
            50122,
            [127, 0, 0, 1],
            5432,
            777,
        ));
        buf.extend(tcp4_row(
            11,
            [10, 0, 0, 2],
            50000,
            [93, 184, 216, 34],
            443,
            0,
        ));
        let t = parse_table(TableKind::Tcp4, &buf);
        assert!(!t.truncated);
        assert_eq!(t.rows.len(), 3);

        let l = t.rows[0].to_socket();
        assert_eq!(l.state, SocketState::Listen);
        assert_eq!(l.local, "0.0.0.0:445".parse().unwrap());
        assert_eq!(l.remote, None);
        assert!(l.owners.is_empty());
        assert_eq!(l.unowned_reason, Some(UnknownReason::Unknown));

        let c = t.rows[1].to_socket();
        assert_eq!(c.proto, Proto::Tcp);
        assert_eq!(c.state, SocketState::Established);
        assert_eq!(c.local, "127.0.0.1:50122".parse().unwrap());
        assert_eq!(c.remote, Some("127.0.0.1:5432".parse().unwrap()));
        assert_eq!(c.owners.as_slice(), [777]);
        assert_eq!(c.unowned_reason, None);
        assert_eq!(c.bytes_sent, None);

        let tw = t.rows[2].to_socket();
        assert_eq!(tw.state, SocketState::TimeWait);
        assert_eq!(tw.unowned_reason, Some(UnknownReason::Exited));
        assert_eq!(tw.remote, Some("93.184.216.34:443".parse().unwrap()));
    }

    #[test]
    fn tcp6_table_parses_and_unmaps_v4() {
        let mut buf = 1u32.to_le_bytes().to_vec();
        let mapped: Ipv6Addr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: Ipv6Addr = "2001:db8::7".parse().unwrap();
        buf.extend(mapped.octets());
        buf.extend(0u32.to_le_bytes());
        buf.extend((8080u16.to_be() as u32).to_le_bytes());
        buf.extend(remote.octets());
        buf.extend(3u32.to_le_bytes());
        buf.extend((61000u16.to_be() as u32).to_le_bytes());
        buf.extend(5u32.to_le_bytes());
        buf.extend(1234u32.to_le_bytes());
        assert_eq!(buf.len(), 4 + TCP6_ROW_LEN);
        let t = parse_table(TableKind::Tcp6, &buf);
        let s = t.rows[0].to_socket();
        assert_eq!(s.local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.remote, Some("[2001:db8::7]:61000".parse().unwrap()));
        assert_eq!(s.state, SocketState::Established);
        assert_eq!(s.owners.as_slice(), [1234]);
        assert_eq!(t.rows[0].remote_scope, 3);
    }

    #[test]
    fn udp_tables_parse() {
        let mut buf = 1u32.to_le_bytes().to_vec();
        buf.extend([127, 0, 0, 1]);
        buf.extend((53u16.to_be() as u32).to_le_bytes());
        buf.extend(900u32.to_le_bytes());
        let s = parse_table(TableKind::Udp4, &buf).rows[0].to_socket();
        assert_eq!(s.proto, Proto::Udp);
        assert_eq!(s.local, "127.0.0.1:53".parse().unwrap());
        assert_eq!(s.remote, None);
        assert_eq!(s.state, SocketState::Close);
        assert_eq!(s.owners.as_slice(), [900]);

        let mut buf = 1u32.to_le_bytes().to_vec();
        buf.extend(Ipv6Addr::LOCALHOST.octets());
        buf.extend(0u32.to_le_bytes());
        buf.extend((5353u16.to_be() as u32).to_le_bytes());
        buf.extend(0u32.to_le_bytes());
        let s = parse_table(TableKind::Udp6, &buf).rows[0].to_socket();
        assert_eq!(s.local, "[::1]:5353".parse().unwrap());
        assert_eq!(s.unowned_reason, Some(UnknownReason::Unknown));
    }

    #[test]
    fn bad_buffers_never_panic() {
        assert!(parse_table(TableKind::Tcp4, &[]).rows.is_empty());
        assert!(parse_table(TableKind::Tcp4, &[1, 0]).truncated);
        // Claims 1000 rows, holds one.
        let mut buf = 1000u32.to_le_bytes().to_vec();
        buf.extend(tcp4_row(5, [1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 9));
        buf.extend([0xFF; 7]);
        let t = parse_table(TableKind::Tcp4, &buf);
        assert!(t.truncated);
        assert_eq!(t.rows.len(), 1);
        for kind in [
            TableKind::Tcp4,
            TableKind::Tcp6,
            TableKind::Udp4,
            TableKind::Udp6,
        ] {
            for n in 0..80 {
                let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
                let t = parse_table(kind, &junk);
                for r in t.rows {
                    let _ = r.to_socket();
                }
            }
        }
        assert!(parse_row(TableKind::Tcp6, &[0; 10]).is_none());
    }

    #[test]
    fn filetime_converts() {
        assert_eq!(filetime_to_unix_secs(0), None);
        assert_eq!(filetime_to_unix_secs(FILETIME_UNIX_EPOCH - 1), None);
        assert_eq!(filetime_to_unix_secs(FILETIME_UNIX_EPOCH), Some(0));
        // 2024-01-01T00:00:00Z = 1704067200.
        assert_eq!(
            filetime_to_unix_secs(FILETIME_UNIX_EPOCH + 1_704_067_200 * 10_000_000 + 9_999_999),
            Some(1_704_067_200)
        );
    }

    #[test]
    fn command_lines_split_like_the_crt() {
        assert!(split_command_line("").is_empty());
        assert_eq!(split_command_line("a.exe"), vec!["a.exe"]);
        assert_eq!(
            split_command_line(r#""C:\Program Files\x\y.exe" -p 5 "two words""#),
            vec![r"C:\Program Files\x\y.exe", "-p", "5", "two words"]
        );
        assert_eq!(
            split_command_line(r#"C:\a\b.exe a\\\"b c\\"d e" f\\\\g"#),
            vec![r"C:\a\b.exe", r#"a\"b"#, r"c\d e", r"f\\\\g"]
        );
        assert_eq!(split_command_line("x  \t y   "), vec!["x", "y"]);
        assert_eq!(split_command_line(r#"x "a""b""#), vec!["x", r#"a"b"#]);
        assert_eq!(split_command_line(r#"x """#), vec!["x", ""]);
    }

    #[test]
    fn unicode_string_bounds_are_checked() {
        let ps = std::mem::size_of::<usize>();
        let text: Vec<u8> = "ab c"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let base = 0x1000usize;
        let mut buf = vec![0u8; 2 * ps];
        buf[0..2].copy_from_slice(&(text.len() as u16).to_le_bytes());
        buf[2..4].copy_from_slice(&(text.len() as u16).to_le_bytes());
        let ptr = (base + 2 * ps) as u64;
        buf[ps..2 * ps].copy_from_slice(&ptr.to_le_bytes()[..ps]);
        buf.extend(&text);
        assert_eq!(unicode_string_in(&buf, base).as_deref(), Some("ab c"));
        // Pointer outside the buffer.
        assert_eq!(unicode_string_in(&buf, base + 1_000_000), None);
        assert_eq!(unicode_string_in(&buf[..buf.len() - 1], base), None);
        assert_eq!(unicode_string_in(&[1, 2, 3], base), None);
    }

    #[test]
    fn sockaddrs_decode() {
        let mut v4 = vec![2, 0, 0x1F, 0x90, 10, 1, 2, 3];
        v4.extend([0; 8]);
        assert_eq!(sockaddr_ip(&v4), Some("10.1.2.3".parse().unwrap()));
        let mut v6 = vec![23, 0, 0, 0, 0, 0, 0, 0];
        v6.extend(Ipv6Addr::LOCALHOST.octets());
        v6.extend([0; 4]);
        assert_eq!(sockaddr_ip(&v6), Some("::1".parse().unwrap()));
        assert_eq!(sockaddr_ip(&v6[..20]), None);
        assert_eq!(sockaddr_ip(&[9, 0, 0]), None);
        assert_eq!(sockaddr_ip(&[]), None);
    }

    #[test]
    fn wide_strings() {
        let w: Vec<u16> = "svchost.exe\0junk".encode_utf16().collect();
        assert_eq!(wide_to_string(&w), "svchost.exe");
        let w: Vec<u16> = "x".encode_utf16().collect();
        assert_eq!(wide_to_string(&w), "x");
    }
}
