//! Friendly text for people: what a listening address means, which icon a
//! process gets, and timestamps.

use crate::snapshot::Interface;
use std::net::IpAddr;

/// What it means to listen on `ip`. Unlike psys, `::` is described as what
/// it is on Linux by default: every interface, IPv6 and (dual-stack) IPv4.
pub fn address_description(ip: IpAddr, interfaces: &[Interface]) -> String {
    let on_interface = || {
        interfaces
            .iter()
            .find(|i| i.addresses.contains(&ip))
            .map(|i| i.name.as_str())
    };
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => "Listening on all IPv4 interfaces".into(),
        IpAddr::V6(v6) if v6.is_unspecified() => {
            "Listening on all interfaces, IPv6 and IPv4 (unless the socket is IPv6-only)".into()
        }
        IpAddr::V4(v4) if v4.is_loopback() => {
            if v4.octets() == [127, 0, 0, 1] {
                "Localhost only (IPv4)".into()
            } else if v4.octets() == [127, 0, 0, 53] {
                "Localhost only (IPv4; systemd-resolved's DNS stub)".into()
            } else {
                format!("Localhost only (IPv4, loopback alias {v4})")
            }
        }
        IpAddr::V6(v6) if v6.is_loopback() => "Localhost only (IPv6)".into(),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => match on_interface() {
            Some(name) => format!("IPv6 link-local address of {name}"),
            None => "IPv6 link-local address".into(),
        },
        IpAddr::V4(v4) if v4.is_private() || v4.is_link_local() => match on_interface() {
            Some(name) => format!("Local network address of {name} (IPv4)"),
            None => "Local network address (IPv4)".into(),
        },
        _ => match on_interface() {
            Some(name) => format!("Only on interface {name}"),
            None => "A specific address (not bound to a known interface)".into(),
        },
    }
}

/// psys's icon key for a process name (`node`, `postgres`, … or `generic`).
pub fn icon_type_for_name(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    let n = n.strip_suffix(".exe").unwrap_or(&n);
    const KNOWN: &[(&str, &str)] = &[
        ("next-server", "next"),
        ("node", "node"),
        ("nodejs", "node"),
        ("redis", "redis"),
        ("mongo", "mongo"),
        ("postgres", "postgres"),
        ("postmaster", "postgres"),
        ("mysqld", "mysql"),
        ("mariadb", "mysql"),
        ("httpd", "apache"),
        ("apache2", "apache"),
        ("sshd", "ssh"),
        ("procnet", "procnet"),
        ("nginx", "nginx"),
        ("python", "python"),
        ("java", "java"),
        ("docker-proxy", "docker"),
        ("dockerd", "docker"),
    ];
    KNOWN
        .iter()
        .find(|(prefix, _)| n.starts_with(prefix))
        .map(|&(_, icon)| icon)
        .unwrap_or("generic")
}

/// `ms` since the Unix epoch as RFC 3339 UTC with seconds, e.g.
/// `2026-11-24T15:00:00Z`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some(_) => {
            let keep: String = s.chars().take(max.saturating_sub(1)).collect();
            format!("{keep}…")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions() {
        let ifs = vec![Interface {
            name: "eth0".into(),
            addresses: vec!["192.168.1.5".parse().unwrap()],
        }];
        let d = |s: &str| address_description(s.parse().unwrap(), &ifs);
        assert_eq!(d("0.0.0.0"), "Listening on all IPv4 interfaces");
        assert!(d("::").contains("IPv6 and IPv4"));
        assert_eq!(d("127.0.0.1"), "Localhost only (IPv4)");
        assert_eq!(d("::1"), "Localhost only (IPv6)");
        assert!(d("127.0.0.53").contains("systemd-resolved"));
        assert!(d("192.168.1.5").contains("eth0"));
        assert!(d("fe80::1").contains("link-local"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_532_400_000), "2026-11-24T15:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn icons_and_truncation() {
        assert_eq!(icon_type_for_name("postgres"), "postgres");
        assert_eq!(icon_type_for_name("redis-server.exe"), "redis");
        assert_eq!(icon_type_for_name("weird"), "generic");
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abc", 4), "abc");
    }
}
