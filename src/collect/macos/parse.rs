//! Pure decoders for the macOS collector: `KERN_PROCARGS2` buffers, XNU TCP
//! states and network-order ports. No OS calls, so these run (and are
//! tested) on every OS.

use crate::snapshot::SocketState;

/// The port in a `insi_lport` / `insi_fport` field: an `int` whose low 16
/// bits hold the port in network byte order.
pub fn port_from_net(v: i32) -> u16 {
    u16::from_be(v as u16)
}

/// Maps XNU's `TSI_S_*` TCP states (`netinet/tcp_fsm.h`, 0 = CLOSED …
/// 10 = TIME_WAIT).
pub fn state_from_tsi(state: i32) -> SocketState {
    match state {
        0 => SocketState::Close,
        1 => SocketState::Listen,
        2 => SocketState::SynSent,
        3 => SocketState::SynRecv,
        4 => SocketState::Established,
        5 => SocketState::CloseWait,
        6 => SocketState::FinWait1,
        7 => SocketState::Closing,
        8 => SocketState::LastAck,
        9 => SocketState::FinWait2,
        10 => SocketState::TimeWait,
        _ => SocketState::Unknown,
    }
}

/// The arguments in a `sysctl(KERN_PROCARGS2)` buffer: a native-endian
/// `int argc`, the exec path (NUL-terminated, then NUL padding), then
/// `argc` NUL-terminated arguments (then the environment, ignored).
/// Never panics; a short or odd buffer gives the arguments it holds.
pub fn parse_procargs2(buf: &[u8]) -> Vec<String> {
    let Some(head) = buf.get(..4) else {
        return Vec::new();
    };
    let argc = i32::from_ne_bytes([head[0], head[1], head[2], head[3]]);
    let argc = argc.clamp(0, 65_536) as usize;
    let rest = &buf[4..];
    // Skip the exec path and the NULs after it.
    let Some(path_end) = rest.iter().position(|&b| b == 0) else {
        return Vec::new();
    };
    let mut i = path_end;
    while i < rest.len() && rest[i] == 0 {
        i += 1;
    }
    let mut args = Vec::with_capacity(argc.min(256));
    while args.len() < argc && i < rest.len() {
        let end = rest[i..]
            .iter()
            .position(|&b| b == 0)
            .map_or(rest.len(), |p| i + p);
        args.push(String::from_utf8_lossy(&rest[i..end]).into_owned());
        i = end + 1;
    }
    args
}

/// A NUL-terminated C char buffer as a `String`.
pub fn c_chars_to_string(buf: &[u8]) -> String {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_network_order() {
        assert_eq!(port_from_net(i32::from(8080u16.to_be())), 8080);
        assert_eq!(port_from_net(0x5000), 80);
        assert_eq!(port_from_net(0), 0);
    }

    #[test]
    fn tsi_states_map() {
        assert_eq!(state_from_tsi(1), SocketState::Listen);
        assert_eq!(state_from_tsi(4), SocketState::Established);
        assert_eq!(state_from_tsi(6), SocketState::FinWait1);
        assert_eq!(state_from_tsi(9), SocketState::FinWait2);
        assert_eq!(state_from_tsi(10), SocketState::TimeWait);
        assert_eq!(state_from_tsi(0), SocketState::Close);
        assert_eq!(state_from_tsi(-1), SocketState::Unknown);
        assert_eq!(state_from_tsi(11), SocketState::Unknown);
    }

    #[test]
    fn procargs2_parses() {
        let mut b = 3i32.to_ne_bytes().to_vec();
        b.extend(b"/usr/bin/python3\0\0\0\0");
        b.extend(b"python3\0-m\0http.server\0PATH=/bin\0HOME=/\0");
        assert_eq!(parse_procargs2(&b), vec!["python3", "-m", "http.server"]);
        // Truncated in the middle of the last argument.
        assert_eq!(
            parse_procargs2(&b[..b.len() - "erver\0PATH=/bin\0HOME=/\0".len()]),
            vec!["python3", "-m", "http.s"]
        );
        assert!(parse_procargs2(&[]).is_empty());
        assert!(parse_procargs2(&[1, 0, 0]).is_empty());
        let mut neg = (-5i32).to_ne_bytes().to_vec();
        neg.extend(b"/x\0a\0");
        assert!(parse_procargs2(&neg).is_empty());
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 53 + 7) as u8).collect();
            let _ = parse_procargs2(&junk);
        }
    }

    #[test]
    fn c_strings() {
        assert_eq!(c_chars_to_string(b"launchd\0\0xx"), "launchd");
        assert_eq!(c_chars_to_string(b"abc"), "abc");
    }
}
