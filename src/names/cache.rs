//! The reverse-DNS cache: which addresses need a lookup now, and the name
//! (or the absence of one) each lookup gave, for as long as DNS says it is
//! valid. Pure: the caller passes the time, so every rule is unit-tested.
//!
//! Rules:
//! - a name is kept for its record's TTL, clamped to
//!   [[`MIN_POSITIVE_TTL`], [`MAX_POSITIVE_TTL`]]; after that it is still
//!   shown while it is looked up again (a label must not flicker to the
//!   bare address every TTL), and dropped only when DNS then says there is
//!   none;
//! - "no such name" is kept for the zone's negative TTL, clamped to
//!   [[`MIN_NEGATIVE_TTL`], [`MAX_NEGATIVE_TTL`]];
//! - a failed lookup (timeout, refused, server failure) is retried after
//!   [`FAILURE_RETRY`], and keeps a name it had;
//! - at most `capacity` addresses are held: addresses nobody asked about
//!   for [`FORGET_AFTER`] are forgotten, and beyond the bound new
//!   addresses stay unnamed rather than growing the cache.

use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Shortest time a found name is trusted (a TTL of 0 would mean a lookup
/// per sample).
pub const MIN_POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Longest time a found name is trusted without asking again.
pub const MAX_POSITIVE_TTL: Duration = Duration::from_secs(6 * 3600);
/// Shortest time "no name" is trusted.
pub const MIN_NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Longest time "no name" is trusted (a PTR record added later shows up
/// within this).
pub const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(3600);
/// "No name" when DNS gave no negative TTL.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(300);
/// When a failed lookup (timeout, server failure) is tried again.
pub const FAILURE_RETRY: Duration = Duration::from_secs(15);
/// An address nobody asked about for this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What one lookup gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A PTR name, valid for `ttl`.
    Name { name: String, ttl: Duration },
    /// No PTR record (NXDOMAIN or no data), for `ttl` when DNS said.
    NoName { ttl: Option<Duration> },
    /// No answer: timeout, refused, server failure, no server reachable.
    Failed,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The name to show, if any (kept while a re-lookup runs or fails).
    name: Option<String>,
    /// When to look up again.
    refresh_at: Instant,
    /// A lookup is running, started at this time.
    pending_since: Option<Instant>,
    /// When an address was last asked about (for forgetting).
    last_wanted: Instant,
}

/// The cache; one per resolver.
#[derive(Debug)]
pub struct NameCache {
    entries: FxHashMap<IpAddr, Entry>,
    capacity: usize,
    /// A lookup that has not answered after this long is considered lost
    /// and may be started again.
    lost_after: Duration,
}

impl NameCache {
    pub fn new(capacity: usize, lost_after: Duration) -> NameCache {
        NameCache {
            entries: FxHashMap::default(),
            capacity,
            lost_after,
        }
    }

    /// Notes that `addr` is on screen now; true when a lookup should be
    /// started for it (never cached, due for refresh, or its last lookup
    /// was lost). A true answer marks the lookup as running: the caller
    /// must start it, or call [`NameCache::abandon`].
    pub fn want(&mut self, addr: IpAddr, now: Instant) -> bool {
        if let Some(e) = self.entries.get_mut(&addr) {
            e.last_wanted = now;
            let running = e
                .pending_since
                .is_some_and(|t| now.saturating_duration_since(t) < self.lost_after);
            if running || now < e.refresh_at {
                return false;
            }
            e.pending_since = Some(now);
            return true;
        }
        if self.entries.len() >= self.capacity {
            return false;
        }
        self.entries.insert(
            addr,
            Entry {
                name: None,
                refresh_at: now,
                pending_since: Some(now),
                last_wanted: now,
            },
        );
        true
    }

    /// The lookup [`NameCache::want`] asked for could not be started (the
    /// queue was full): it is asked for again next time.
    pub fn abandon(&mut self, addr: IpAddr) {
        if let Some(e) = self.entries.get_mut(&addr) {
            e.pending_since = None;
            if e.name.is_none() {
                self.entries.remove(&addr);
            }
        }
    }

    /// Records what a lookup of `addr` gave, at `now`.
    pub fn record(&mut self, addr: IpAddr, answer: Answer, now: Instant) {
        let Some(e) = self.entries.get_mut(&addr) else {
            return; // forgotten meanwhile
        };
        e.pending_since = None;
        match answer {
            Answer::Name { name, ttl } => {
                e.name = Some(name);
                e.refresh_at = now + ttl.clamp(MIN_POSITIVE_TTL, MAX_POSITIVE_TTL);
            }
            Answer::NoName { ttl } => {
                e.name = None;
                let ttl = ttl
                    .unwrap_or(DEFAULT_NEGATIVE_TTL)
                    .clamp(MIN_NEGATIVE_TTL, MAX_NEGATIVE_TTL);
                e.refresh_at = now + ttl;
            }
            Answer::Failed => e.refresh_at = now + FAILURE_RETRY,
        }
    }

    /// The name to show for `addr`, if one is known.
    pub fn name(&self, addr: &IpAddr) -> Option<&str> {
        self.entries.get(addr)?.name.as_deref()
    }

    /// Forgets addresses nobody asked about for [`FORGET_AFTER`] (running
    /// lookups included: their answer is then dropped).
    pub fn forget_stale(&mut self, now: Instant) {
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_wanted) < FORGET_AFTER);
    }

    /// How many lookups are running.
    pub fn running(&self, now: Instant) -> usize {
        self.entries
            .values()
            .filter(|e| {
                e.pending_since
                    .is_some_and(|t| now.saturating_duration_since(t) < self.lost_after)
            })
            .count()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOST: Duration = Duration::from_secs(10);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn found(name: &str, secs: u64) -> Answer {
        Answer::Name {
            name: name.into(),
            ttl: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_new_address_is_looked_up_once_while_running() {
        let mut c = NameCache::new(10, LOST);
        let t = Instant::now();
        assert!(c.want(ip("198.18.0.2"), t));
        assert!(!c.want(ip("198.18.0.2"), t + Duration::from_secs(1)));
        assert_eq!(c.running(t), 1);
        assert_eq!(c.name(&ip("198.18.0.2")), None);
    }

    #[test]
    fn a_name_is_kept_for_its_ttl_clamped_then_refreshed_but_still_shown() {
        let mut c = NameCache::new(10, LOST);
        let a = ip("198.18.0.2");
        let t = Instant::now();
        assert!(c.want(a, t));
        c.record(a, found("peer.test", 1), t);
        assert_eq!(c.name(&a), Some("peer.test"));
        // TTL 1 s is raised to the minimum.
        assert!(!c.want(a, t + MIN_POSITIVE_TTL - Duration::from_secs(1)));
        assert!(c.want(a, t + MIN_POSITIVE_TTL));
        // Shown while the refresh runs.
        assert_eq!(c.name(&a), Some("peer.test"));
        // A huge TTL is capped.
        let t2 = t + MIN_POSITIVE_TTL;
        c.record(a, found("peer.test", 10 * 24 * 3600), t2);
        assert!(!c.want(a, t2 + MAX_POSITIVE_TTL - Duration::from_secs(1)));
        assert!(c.want(a, t2 + MAX_POSITIVE_TTL));
    }

    #[test]
    fn no_name_is_cached_for_the_negative_ttl_and_clears_an_old_name() {
        let mut c = NameCache::new(10, LOST);
        let a = ip("192.168.1.20");
        let t = Instant::now();
        c.want(a, t);
        c.record(a, found("old.lan", 60), t);
        let t = t + Duration::from_secs(60);
        assert!(c.want(a, t));
        c.record(a, Answer::NoName { ttl: None }, t);
        assert_eq!(c.name(&a), None);
        assert!(!c.want(a, t + DEFAULT_NEGATIVE_TTL - Duration::from_secs(1)));
        assert!(c.want(a, t + DEFAULT_NEGATIVE_TTL));
        let t = t + DEFAULT_NEGATIVE_TTL;
        c.record(
            a,
            Answer::NoName {
                ttl: Some(Duration::from_secs(1)),
            },
            t,
        );
        assert!(!c.want(a, t + MIN_NEGATIVE_TTL - Duration::from_secs(1)));
        assert!(c.want(a, t + MIN_NEGATIVE_TTL));
    }

    #[test]
    fn a_failure_is_retried_soon_and_keeps_the_name() {
        let mut c = NameCache::new(10, LOST);
        let a = ip("203.0.113.9");
        let t = Instant::now();
        c.want(a, t);
        c.record(a, found("x.example", 60), t);
        let t = t + Duration::from_secs(60);
        assert!(c.want(a, t));
        c.record(a, Answer::Failed, t);
        assert_eq!(c.name(&a), Some("x.example"));
        assert!(!c.want(a, t + FAILURE_RETRY - Duration::from_secs(1)));
        assert!(c.want(a, t + FAILURE_RETRY));
    }

    #[test]
    fn a_lost_lookup_is_started_again() {
        let mut c = NameCache::new(10, LOST);
        let a = ip("203.0.113.9");
        let t = Instant::now();
        assert!(c.want(a, t));
        assert!(!c.want(a, t + LOST - Duration::from_millis(1)));
        assert!(c.want(a, t + LOST));
        assert_eq!(c.running(t + LOST), 1);
    }

    #[test]
    fn an_abandoned_lookup_is_asked_for_again() {
        let mut c = NameCache::new(10, LOST);
        let a = ip("203.0.113.9");
        let t = Instant::now();
        assert!(c.want(a, t));
        c.abandon(a);
        assert!(c.is_empty());
        assert!(c.want(a, t));
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_what_is_not_on_screen() {
        let mut c = NameCache::new(2, LOST);
        let t = Instant::now();
        assert!(c.want(ip("10.0.0.1"), t));
        assert!(c.want(ip("10.0.0.2"), t));
        assert!(!c.want(ip("10.0.0.3"), t), "over capacity: no lookup");
        assert_eq!(c.len(), 2);
        c.record(ip("10.0.0.1"), found("a.lan", 3600), t);
        // Only 10.0.0.1 stays on screen.
        let later = t + FORGET_AFTER - Duration::from_secs(1);
        c.want(ip("10.0.0.1"), later);
        c.forget_stale(t + FORGET_AFTER);
        assert_eq!(c.len(), 1);
        assert_eq!(c.name(&ip("10.0.0.1")), Some("a.lan"));
        assert!(c.want(ip("10.0.0.3"), t + FORGET_AFTER));
    }

    #[test]
    fn an_answer_for_a_forgotten_address_is_dropped() {
        let mut c = NameCache::new(2, LOST);
        let t = Instant::now();
        c.want(ip("10.0.0.1"), t);
        c.forget_stale(t + FORGET_AFTER);
        c.record(ip("10.0.0.1"), found("a.lan", 60), t + FORGET_AFTER);
        assert!(c.is_empty());
    }
}
