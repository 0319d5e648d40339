//! The times, durations and sizes history's API and flags accept.

use std::time::Duration;

/// A time the user gave that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "`{0}` is not a time: give RFC 3339 (2026-12-03T10:00:00Z) or Unix seconds (1764756000)"
    )]
    Time(String),
    #[error("`{0}` is not a duration: give e.g. 90s, 15m, 1h or 7d")]
    Duration(String),
    #[error("`{0}` is not a size: give e.g. 64MiB, 512KiB or 1GiB")]
    Size(String),
}

/// A time as milliseconds since the Unix epoch, from RFC 3339 or Unix
/// seconds (fractions allowed).
pub fn parse_time_ms(s: &str) -> Result<u64, TimeError> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if (0.0..1e13).contains(&secs) {
            return Ok((secs * 1000.0).round() as u64);
        }
        return Err(TimeError::Time(s.to_string()));
    }
    let at = humantime::parse_rfc3339_weak(t).map_err(|_| TimeError::Time(s.to_string()))?;
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .map_err(|_| TimeError::Time(s.to_string()))
}

/// A time, or a duration back from `now_ms` (`1h` means an hour ago).
pub fn parse_time_or_ago_ms(s: &str, now_ms: u64) -> Result<u64, TimeError> {
    parse_time_ms(s).or_else(|_| {
        parse_duration(s)
            .map(|d| now_ms.saturating_sub(d.as_millis() as u64))
            .map_err(|_| TimeError::Time(s.to_string()))
    })
}

/// A duration such as `90s`, `1h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, TimeError> {
    humantime::parse_duration(s.trim()).map_err(|_| TimeError::Duration(s.to_string()))
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A byte size such as `64MiB`, `4 MiB`, `1g`.
pub fn parse_size(s: &str) -> Result<usize, TimeError> {
    parse_size::parse_size(s.trim())
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| TimeError::Size(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time_ms("1764756000").unwrap(), 1_764_756_000_000);
        assert_eq!(parse_time_ms("1764756000.25").unwrap(), 1_764_756_000_250);
        assert_eq!(
            parse_time_ms("2025-12-03T10:00:00Z").unwrap(),
            1_764_756_000_000
        );
        assert_eq!(
            parse_time_ms("2025-12-03T10:00:00.5Z").unwrap(),
            1_764_756_000_500
        );
        assert!(parse_time_ms("yesterday").is_err());
        assert!(parse_time_ms("-5").is_err());
        assert_eq!(parse_time_or_ago_ms("1h", 7_200_000).unwrap(), 3_600_000);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("4 MiB").unwrap(), 4 << 20);
        assert!(parse_size("lots").is_err());
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert!(parse_duration("soon").is_err());
    }
}
