//! Facts about this host that the fleet series need once at start: its name
//! (the default `host` label) and the kernel's ephemeral port range (which
//! listener ports count as ephemeral and stay out of `procnet_listen_info`).

use std::ops::RangeInclusive;

/// The IANA dynamic port range, which Windows and macOS use by default and
/// which stands in when the Linux range cannot be read.
pub const IANA_EPHEMERAL: RangeInclusive<u16> = 49152..=65535;

/// The machine's hostname, or `None` when the OS gives none (or an empty
/// one), so the caller can say so instead of labelling series `""`.
pub fn hostname() -> Option<String> {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_string();
    (!name.is_empty()).then_some(name)
}

/// The ports the kernel hands out to clients that do not bind one. Linux:
/// `/proc/sys/net/ipv4/ip_local_port_range` (IPv6 uses the same range);
/// elsewhere, or when unreadable, [`IANA_EPHEMERAL`].
pub fn ephemeral_ports() -> RangeInclusive<u16> {
    #[cfg(target_os = "linux")]
    {
        if let Some(r) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| parse_port_range(&t))
        {
            return r;
        }
    }
    IANA_EPHEMERAL
}

/// Parses `ip_local_port_range` (two numbers separated by blanks, e.g.
/// `32768\t60999\n`); `None` for anything else.
pub fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    (it.next().is_none() && lo <= hi).then_some(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_the_kernel_format_only() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_port_range("1024 65535"), Some(1024..=65535));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("32768"), None);
        assert_eq!(parse_port_range("a b"), None);
        assert_eq!(parse_port_range("1 2 3"), None);
    }

    #[test]
    fn this_machine_has_a_name_and_a_range() {
        assert!(hostname().is_some());
        assert!(!ephemeral_ports().is_empty());
    }
}
