//! Friendly text for people: what a listening address means, which icon a
//! process gets, how procnet names itself, and timestamps.

use std::net::IpAddr;

/// What it means to listen on `ip`, in psys's words wherever psys is
/// right. Two deliberate differences (README, "Differences from the
/// originals"): psys says "Localhost or all IPv6" for both `::` and `::1`,
/// which are opposites; procnet tells them apart.
pub fn address_description(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => "Listening on all IPv4 interfaces",
        // On Linux a `::` socket takes IPv4 too unless it is IPV6_V6ONLY,
        // which the socket tables do not report.
        IpAddr::V6(v6) if v6.is_unspecified() => {
            "Listening on all interfaces, IPv6 and IPv4 (unless the socket is IPv6-only)"
        }
        IpAddr::V4(v4) if v4.octets() == [127, 0, 0, 53] => "systemd-resolved (local DNS)",
        // All of 127.0.0.0/8 is loopback, not only 127.0.0.1.
        IpAddr::V4(v4) if v4.is_loopback() => "Localhost only (IPv4)",
        IpAddr::V6(v6) if v6.is_loopback() => "Localhost only (IPv6)",
        IpAddr::V4(v4) if v4.is_private() || v4.is_link_local() => "Local network (IPv4)",
        IpAddr::V6(_) => "IPv6 address",
        IpAddr::V4(_) => "Other interface",
    }
}

/// psys's icon key for a process (`node`, `next`, `postgres`, … or
/// `generic`), from its name and, for Node.js, its arguments: Next.js
/// runs as `node …/next dev`, so the name alone says only `node`.
/// Values beyond psys's list: `procnet` (procnet itself, where psys says
/// `psys`), `nginx`, `python`, `java`, `docker`.
pub fn icon_type(name: &str, args: &[String]) -> &'static str {
    let icon = icon_type_for_name(name);
    if icon == "node" && args.iter().skip(1).any(|a| is_next_cli(a)) {
        return "next";
    }
    icon
}

/// True for an argument that names the Next.js command line tool:
/// `next`, `…/.bin/next`, `…/next/dist/bin/next`.
fn is_next_cli(arg: &str) -> bool {
    let base = arg.rsplit(['/', '\\']).next().unwrap_or(arg);
    base == "next" || base == "next.js" || base == "next-server"
}

/// psys's icon key for a process name alone.
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

/// The `serviceLabel` of procnet's own listeners, as psys labels its own
/// ("psys"): a process named `procnet` is this tool (the snapshot does not
/// say which pid collected it, and a recorded one may come from another).
pub fn self_label(name: &str) -> Option<&'static str> {
    let n = name.strip_suffix(".exe").unwrap_or(name);
    (n == "procnet").then_some("procnet")
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
    fn descriptions_use_psys_strings_where_psys_is_right() {
        let d = |s: &str| address_description(s.parse().unwrap());
        assert_eq!(d("0.0.0.0"), "Listening on all IPv4 interfaces");
        assert_eq!(d("127.0.0.1"), "Localhost only (IPv4)");
        assert_eq!(d("127.0.0.2"), "Localhost only (IPv4)");
        assert_eq!(d("127.0.0.53"), "systemd-resolved (local DNS)");
        for lan in ["192.168.1.5", "10.1.2.3", "172.20.0.1", "169.254.3.4"] {
            assert_eq!(d(lan), "Local network (IPv4)", "{lan}");
        }
        for v6 in ["fe80::1", "2001:db8::5", "fd00::1"] {
            assert_eq!(d(v6), "IPv6 address", "{v6}");
        }
        assert_eq!(d("8.8.8.8"), "Other interface");
        assert_eq!(d("172.32.0.1"), "Other interface");
        // The deliberate differences.
        assert_eq!(d("::1"), "Localhost only (IPv6)");
        assert!(d("::").contains("IPv6 and IPv4"));
    }

    #[test]
    fn next_js_run_by_node_is_next() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            icon_type(
                "node",
                &args(&["node", "/app/node_modules/.bin/next", "dev"])
            ),
            "next"
        );
        assert_eq!(
            icon_type(
                "node",
                &args(&["node", "node_modules/next/dist/bin/next", "start"])
            ),
            "next"
        );
        assert_eq!(icon_type("next-server", &args(&["next-server"])), "next");
        assert_eq!(icon_type("node", &args(&["node", "server.js"])), "node");
        // `next` as the argument of something else is not Next.js.
        assert_eq!(icon_type("python3", &args(&["python3", "next"])), "python");
        assert_eq!(self_label("procnet"), Some("procnet"));
        assert_eq!(self_label("procnet-x"), None);
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
