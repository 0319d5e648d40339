//! Fallback socket source for kernels without netlink sock_diag: pure
//! parsing of `/proc/net/{tcp,tcp6,udp,udp6}` text. Gives no byte counters.

use super::inet_diag::DiagSocket;
use crate::snapshot::{canonical_ip, Proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a `/proc/net/*` line could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcNetError {
    #[error("line {line}: missing field {field}")]
    MissingField { line: usize, field: &'static str },
    #[error("line {line}: bad {field} {value:?}")]
    BadField {
        line: usize,
        field: &'static str,
        value: String,
    },
}

fn hex_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// Decodes `0100007F:1F90` (IPv4) or the 32-hex-digit IPv6 form. The
/// kernel prints each 32-bit word of the network-order address as a host
/// integer, hence `to_ne_bytes`.
fn parse_endpoint(s: &str, v6: bool) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    if port.is_empty() || port.len() > 4 {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if v6 {
        if addr.len() != 32 || !addr.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 16];
        for i in 0..4 {
            let word = hex_u32(addr.get(i * 8..i * 8 + 8)?)?;
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        if addr.len() != 8 {
            return None;
        }
        IpAddr::V4(Ipv4Addr::from(hex_u32(addr)?.to_ne_bytes()))
    };
    Some(SocketAddr::new(canonical_ip(ip), port))
}

/// Parses the whole text of one `/proc/net/{tcp,tcp6,udp,udp6}` file
/// (header line included), appending each socket to `out`. A malformed
/// line is an error; nothing panics.
pub fn parse_proc_net(
    text: &str,
    proto: Proto,
    v6: bool,
    out: &mut Vec<DiagSocket>,
) -> Result<(), ProcNetError> {
    for (i, line) in text.lines().enumerate().skip(1) {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut f = line.split_ascii_whitespace();
        let mut next = |field: &'static str| {
            f.next().ok_or(ProcNetError::MissingField {
                line: line_no,
                field,
            })
        };
        let bad = |field: &'static str, value: &str| ProcNetError::BadField {
            line: line_no,
            field,
            value: value.chars().take(64).collect(),
        };
        let _sl = next("sl")?;
        let local_s = next("local_address")?;
        let remote_s = next("rem_address")?;
        let state_s = next("st")?;
        let _queues = next("tx_queue:rx_queue")?;
        let _timer = next("tr:tm->when")?;
        let _retr = next("retrnsmt")?;
        let uid_s = next("uid")?;
        let _timeout = next("timeout")?;
        let inode_s = next("inode")?;

        let local = parse_endpoint(local_s, v6).ok_or_else(|| bad("local_address", local_s))?;
        let remote = parse_endpoint(remote_s, v6).ok_or_else(|| bad("rem_address", remote_s))?;
        let state = u8::from_str_radix(state_s, 16).map_err(|_| bad("st", state_s))?;
        let uid: u32 = uid_s.parse().map_err(|_| bad("uid", uid_s))?;
        let inode: u64 = inode_s.parse().map_err(|_| bad("inode", inode_s))?;
        let remote = if remote.ip().is_unspecified() && remote.port() == 0 {
            None
        } else {
            Some(remote)
        };
        out.push(DiagSocket {
            proto,
            state,
            local,
            remote,
            uid,
            inode,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 1000 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_tcp4() {
        let mut out = Vec::new();
        parse_proc_net(TCP, Proto::Tcp, false, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(out[0].remote, None);
        assert_eq!(out[0].state, 10);
        assert_eq!(out[0].inode, 12345);
        assert_eq!(out[1].remote, Some("127.0.0.1:50000".parse().unwrap()));
        assert_eq!(out[1].uid, 1000);
    }

    #[test]
    fn parses_tcp6_and_mapped() {
        if cfg!(target_endian = "big") {
            return; // fixture is little-endian kernel output
        }
        let mut out = Vec::new();
        parse_proc_net(TCP6, Proto::Tcp, true, &mut out).unwrap();
        assert_eq!(out[0].local, "[::1]:22".parse().unwrap());
        assert_eq!(out[1].local, "127.0.0.1:80".parse().unwrap());
        assert_eq!(out[1].remote, Some("127.0.0.1:40960".parse().unwrap()));
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        let mut out = Vec::new();
        let text = "header\n 0: zz:1 00000000:0000 0A a b c 0 0 1\n";
        assert!(matches!(
            parse_proc_net(text, Proto::Tcp, false, &mut out),
            Err(ProcNetError::BadField { line: 2, .. })
        ));
        assert!(matches!(
            parse_proc_net("h\n 0: 0100007F:1F90\n", Proto::Udp, false, &mut out),
            Err(ProcNetError::MissingField { line: 2, .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,400}", v6 in any::<bool>()) {
            let mut out = Vec::new();
            let _ = parse_proc_net(&s, Proto::Tcp, v6, &mut out);
        }

        #[test]
        fn mutated_valid_text_never_panics(
            edits in proptest::collection::vec((any::<usize>(), any::<char>()), 1..8),
        ) {
            let mut chars: Vec<char> = TCP6.chars().collect();
            for (at, c) in edits {
                let i = at % chars.len();
                chars[i] = c;
            }
            let s: String = chars.into_iter().collect();
            let mut out = Vec::new();
            let _ = parse_proc_net(&s, Proto::Tcp, true, &mut out);
        }
    }
}
