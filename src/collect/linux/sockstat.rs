//! Pure reader of `/proc/net/sockstat{,6}`: how many sockets of each kind
//! exist, to size the socket table up front and to skip dumping a table
//! that is known to be empty.

/// Socket counts of one network namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockStat {
    pub tcp4: u64,
    pub tcp6: u64,
    /// TIME_WAIT sockets, IPv4 and IPv6 together.
    pub tcp_tw: u64,
    pub udp4: u64,
    pub udp6: u64,
}

impl SockStat {
    /// Expected number of TCP and UDP sockets.
    pub fn total(&self) -> u64 {
        self.tcp4
            .saturating_add(self.tcp6)
            .saturating_add(self.tcp_tw)
            .saturating_add(self.udp4)
            .saturating_add(self.udp6)
    }
}

/// Value after `key` on the line that starts with `prefix`.
fn field(text: &str, prefix: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    let mut it = line.split_ascii_whitespace();
    while let Some(k) = it.next() {
        if k == key {
            return it.next()?.parse().ok();
        }
    }
    None
}

/// Parses `/proc/net/sockstat` and `/proc/net/sockstat6`; `None` when a
/// count is missing (then nothing may be skipped).
pub fn parse(sockstat: &str, sockstat6: &str) -> Option<SockStat> {
    Some(SockStat {
        tcp4: field(sockstat, "TCP:", "inuse")?,
        tcp_tw: field(sockstat, "TCP:", "tw")?,
        udp4: field(sockstat, "UDP:", "inuse")?,
        tcp6: field(sockstat6, "TCP6:", "inuse")?,
        udp6: field(sockstat6, "UDP6:", "inuse")?,
    })
}

/// Reads both files of this process's network namespace.
pub fn read() -> Option<SockStat> {
    let v4 = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let v6 = std::fs::read_to_string("/proc/net/sockstat6").unwrap_or_default();
    parse(&v4, &v6).or_else(|| {
        // No IPv6 in this kernel: no IPv6 sockets.
        parse(&v4, "TCP6: inuse 0\nUDP6: inuse 0\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_counts() {
        let s = parse(
            "sockets: used 9\nTCP: inuse 5 orphan 0 tw 2 alloc 6 mem 1\nUDP: inuse 3 mem 0\n",
            "TCP6: inuse 1\nUDP6: inuse 4\n",
        )
        .unwrap();
        assert_eq!(
            s,
            SockStat {
                tcp4: 5,
                tcp6: 1,
                tcp_tw: 2,
                udp4: 3,
                udp6: 4
            }
        );
        assert_eq!(s.total(), 15);
        assert_eq!(parse("TCP: inuse x", ""), None);
    }

    proptest! {
        #[test]
        fn never_panics(a in ".{0,200}", b in ".{0,100}") {
            let _ = parse(&a, &b);
        }
    }
}
