//! Which tier the Linux collector runs at, and when a BPF iterator that
//! failed is tried again.
//!
//! The BPF iterators (tier T1) are several times cheaper than netlink and
//! the `/proc` fd scan (T2), but they can fail for a moment: a full fd
//! table (EMFILE) makes `bpf(BPF_ITER_CREATE)` fail like any `open`. Such a
//! failure must not cost the cheap path for the life of the process, so it
//! turns the iterator off for a while (5 s, then 10, 20, 40, 60 s at most)
//! and it is tried again; a failure that will not pass (verifier refusal,
//! no BTF, not root) turns it off for good. Either is said in
//! `/healthz` (`collector.tierReason`); the fall-back and the recovery are
//! each logged once, not every sample.

use super::bpf_iter::BpfError;
use crate::snapshot::Tier;
use std::ffi::OsStr;
use std::time::{Duration, Instant};

/// First wait after a failure that can pass.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// Longest wait between two tries.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not tried yet, or working.
    On,
    /// Failed for a reason that can pass; next try at `at`.
    Retry {
        at: Instant,
        delay: Duration,
        why: String,
    },
    /// Failed for a reason that will not pass.
    Off { why: String },
    /// Not wanted (options or `PROCNET_TIER`); says nothing itself.
    Disabled,
}

/// Whether one BPF iterator may be used, and why not.
#[derive(Debug, Clone)]
pub struct IterHealth {
    /// What it is, for messages: `BPF TCP iterator`.
    what: &'static str,
    /// What does its job meanwhile: `netlink sock_diag`.
    instead: &'static str,
    state: State,
}

impl IterHealth {
    pub fn new(what: &'static str, instead: &'static str) -> IterHealth {
        IterHealth {
            what,
            instead,
            state: State::On,
        }
    }

    /// Never use it (the options or `PROCNET_TIER` ask for a lower tier).
    pub fn disable(&mut self) {
        self.state = State::Disabled;
    }

    /// Whether to load or use the iterator in a sample taken at `now`.
    pub fn due(&self, now: Instant) -> bool {
        match &self.state {
            State::On => true,
            State::Retry { at, .. } => now >= *at,
            State::Off { .. } | State::Disabled => false,
        }
    }

    /// The iterator loaded or read fine.
    pub fn worked(&mut self) {
        if let State::Retry { .. } = self.state {
            log::info!("{} works again: back to tier T1", self.what);
        }
        self.state = State::On;
    }

    /// The iterator failed at `now`. `quiet`: a permanent failure that is
    /// the common case (not root, no BTF) and only worth a debug line.
    pub fn failed(&mut self, now: Instant, err: &BpfError, quiet: bool) {
        let mut why = err.to_string();
        if let BpfError::Os { source, .. } = err {
            if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                why.push_str(" (BPF iterators need root: CAP_BPF and CAP_PERFMON)");
            }
        }
        if !err.is_transient() {
            if quiet {
                log::debug!("{} unavailable ({why}); using {}", self.what, self.instead);
            } else {
                log::warn!(
                    "{} failed ({why}); using {} from now on",
                    self.what,
                    self.instead
                );
            }
            self.state = State::Off { why };
            return;
        }
        let delay = match &self.state {
            State::Retry { delay, .. } => (*delay * 2).min(MAX_RETRY),
            _ => FIRST_RETRY,
        };
        if matches!(self.state, State::Retry { .. }) {
            log::debug!(
                "{} failed again ({why}); next try in {} s",
                self.what,
                delay.as_secs()
            );
        } else {
            log::warn!(
                "{} failed ({why}); using {} and trying it again in {} s",
                self.what,
                self.instead,
                delay.as_secs()
            );
        }
        self.state = State::Retry {
            at: now + delay,
            delay,
            why,
        };
    }

    /// The failure that turned it off for good, if one did.
    pub fn failed_for_good(&self) -> Option<&str> {
        match &self.state {
            State::Off { why } => Some(why),
            _ => None,
        }
    }

    /// Why the iterator is not in use at `now`, for `tierReason`; `None`
    /// while it is on or was not wanted.
    pub fn reason(&self, now: Instant) -> Option<String> {
        match &self.state {
            State::On | State::Disabled => None,
            State::Retry { at, why, .. } => {
                let left = at.saturating_duration_since(now);
                // Whole seconds, rounded up: "in 0 s" would be wrong.
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                Some(format!(
                    "{} failed: {why}; {} meanwhile, retrying in {secs} s",
                    self.what, self.instead
                ))
            }
            State::Off { why } => Some(format!(
                "{} unavailable: {why}; {} (not retried)",
                self.what, self.instead
            )),
        }
    }
}

/// The tier asked for in the environment (read once, when the collector
/// starts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    /// The highest tier to use; `None`: the best that works.
    pub cap: Option<Tier>,
    /// Said in `tierReason` when the tier is lower than T1 because of it,
    /// or when it asked for something not built.
    pub note: Option<String>,
    /// A value that could not be understood, said in every sample.
    pub warning: Option<String>,
}

/// Reads `PROCNET_TIER` (`T0`..`T3`) and its older alias `PROCNET_NO_BPF`
/// (any non-empty value: `T2`); `PROCNET_TIER` wins when both are set.
/// `T0` is the best tier, so asking for it is the same as asking for
/// nothing (the best that works, and why not T0 when it does not);
/// `T1` and below are caps that turn the kernel events off.
pub fn requested(tier: Option<&OsStr>, no_bpf: Option<&OsStr>) -> Requested {
    fn set(v: Option<&OsStr>) -> Option<&OsStr> {
        v.filter(|v| !v.is_empty())
    }
    let mut warning = None;
    if let Some(v) = set(tier) {
        let text = v.to_string_lossy();
        match Tier::parse(&text) {
            Some(Tier::T0) => return Requested::default(),
            Some(t) => {
                return Requested {
                    cap: Some(t),
                    note: Some(format!("forced by PROCNET_TIER={}", t.as_str())),
                    warning: None,
                }
            }
            None => {
                warning = Some(format!(
                    "PROCNET_TIER={text} is not one of T0, T1, T2, T3; ignored (the tier is chosen automatically)"
                ))
            }
        }
    }
    match set(no_bpf) {
        Some(v) => Requested {
            cap: Some(Tier::T2),
            note: Some(format!(
                "forced by PROCNET_NO_BPF={} (same as PROCNET_TIER=T2)",
                v.to_string_lossy()
            )),
            warning,
        },
        None => Requested {
            warning,
            ..Requested::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(errno: i32) -> BpfError {
        BpfError::Os {
            call: "bpf(BPF_ITER_CREATE)",
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn transient_failure_backs_off_and_recovers() {
        let mut h = IterHealth::new("BPF TCP iterator", "netlink sock_diag");
        let t0 = Instant::now();
        assert!(h.due(t0));
        assert_eq!(h.reason(t0), None);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            h.failed(now, &os_error(libc::EMFILE), false);
            assert!(!h.due(now));
            let why = h.reason(now).expect("a reason while off");
            assert!(why.contains("Too many open files"), "{why}");
            let secs: u64 = why
                .rsplit("retrying in ")
                .next()
                .and_then(|r| r.trim_end_matches(" s").parse().ok())
                .expect("seconds");
            waits.push(secs);
            now += Duration::from_secs(secs);
            assert!(h.due(now));
        }
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        h.worked();
        assert!(h.due(now));
        assert_eq!(h.reason(now), None);
        // After a recovery the next failure starts from 5 s again.
        h.failed(now, &os_error(libc::ENFILE), false);
        assert!(h.reason(now).unwrap().ends_with("retrying in 5 s"));
    }

    #[test]
    fn permanent_failure_is_never_retried() {
        let mut h = IterHealth::new("BPF owner iterator", "the /proc fd scan");
        let now = Instant::now();
        h.failed(now, &os_error(libc::EPERM), true);
        assert!(!h.due(now + Duration::from_secs(3600)));
        let why = h.reason(now).unwrap();
        assert!(why.contains("not retried"), "{why}");
        let mut v = IterHealth::new("x", "y");
        v.failed(now, &BpfError::PidNamespace, true);
        assert!(!v.due(now + MAX_RETRY));
        let mut d = IterHealth::new("x", "y");
        d.disable();
        assert!(!d.due(now));
        assert_eq!(d.reason(now), None);
    }

    #[test]
    fn environment_asks_for_a_tier() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(requested(None, None), Requested::default());
        assert_eq!(requested(os(""), os("")), Requested::default());
        assert_eq!(requested(os("T3"), None).cap, Some(Tier::T3));
        assert_eq!(requested(os(" t2 "), None).cap, Some(Tier::T2));
        assert_eq!(requested(os("T0"), os("1")), Requested::default());
        let t1 = requested(os("T1"), None);
        assert_eq!(t1.cap, Some(Tier::T1));
        assert!(t1.note.unwrap().contains("PROCNET_TIER=T1"));
        let alias = requested(None, os("1"));
        assert_eq!(alias.cap, Some(Tier::T2));
        assert!(alias.note.unwrap().contains("PROCNET_NO_BPF=1"));
        let bad = requested(os("fast"), None);
        assert_eq!(bad.cap, None);
        assert!(bad.warning.unwrap().contains("PROCNET_TIER=fast"));
        // A bad PROCNET_TIER leaves the older switch in force.
        let both = requested(os("fast"), os("1"));
        assert_eq!(both.cap, Some(Tier::T2));
        assert!(both.warning.is_some());
    }
}
