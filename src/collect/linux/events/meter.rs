//! Tier T0's self-metering: what the BPF event programs cost the kernel,
//! and the back-off that keeps it within a budget. Pure: the collector
//! feeds it the programs' summed `run_time_ns` and the clock each sample,
//! and writes the interval it returns into the program's `activity_gap`
//! map.
//!
//! Why a back-off and what it trades: every send or receive call on a TCP
//! socket writes that socket's activity record into `tcp_active` (a hash
//! map update with the socket's counters), which is most of the programs'
//! time on a busy machine. User space reads one record per socket per
//! sample however many calls there were, so a least time between two
//! records of one socket costs little: over budget the interval doubles
//! (at most [`MAX_SAMPLES`] sample intervals), under a quarter of the
//! budget it halves back (to none). While backed off, a socket's live
//! counters can lag by what it moved within one interval, until its next
//! record; its state changes and close are never skipped, so its counters
//! are exact when it closes.

/// The programs' budget: 1 % of one CPU (10,000 millionths), over a
/// sample interval. Chosen so that procnet's kernel side is never a
/// noticeable part of a machine's load; at about 0.4 µs a run it is 25,000
/// runs a second, which a quiet server never reaches.
pub const BUDGET_PPM: u32 = 10_000;

/// The first step of a back-off: 1 ms between two activity records of one
/// socket (a socket doing a call every few µs then writes 1,000 a second).
pub const FIRST_STEP_NS: u64 = 1_000_000;

/// The interval goes at most this many sample intervals: a socket's
/// counters then move at least every few samples while it does I/O.
pub const MAX_SAMPLES: u64 = 4;

/// Names a budget other than [`BUDGET_PPM`] (millionths of one CPU), for
/// tests of the back-off and for machines where 1 % is too much or too
/// little.
pub const BUDGET_ENV: &str = "PROCNET_BPF_BUDGET_PPM";

/// The meter's state between samples.
#[derive(Debug, Clone)]
pub struct SelfMeter {
    /// The share kept within, millionths of one CPU.
    budget_ppm: u32,
    /// The programs' run time (ns) and the clock (ns) at the last sample.
    last: Option<(u64, u64)>,
    /// The least time between two activity records of one socket now, ns
    /// (0: one per call).
    interval_ns: u64,
    /// The programs' CPU share over the last sample interval, in millionths
    /// of one CPU; `None` before two samples.
    share_ppm: Option<u32>,
}

impl Default for SelfMeter {
    fn default() -> SelfMeter {
        SelfMeter::with_budget(BUDGET_PPM)
    }
}

impl SelfMeter {
    /// A meter keeping the programs within `budget_ppm` millionths of one
    /// CPU.
    pub fn with_budget(budget_ppm: u32) -> SelfMeter {
        SelfMeter {
            budget_ppm,
            last: None,
            interval_ns: 0,
            share_ppm: None,
        }
    }

    /// The budget from [`BUDGET_ENV`] when set to a number, else
    /// [`BUDGET_PPM`]. `text`: the variable's value.
    pub fn budget_from(text: Option<&str>) -> u32 {
        text.and_then(|t| t.trim().parse().ok())
            .unwrap_or(BUDGET_PPM)
    }

    /// The share kept within, millionths of one CPU.
    pub fn budget_ppm(&self) -> u32 {
        self.budget_ppm
    }

    /// One sample: the programs' total run time so far (`run_ns`) at clock
    /// `now_ns` (CLOCK_MONOTONIC). Returns the interval to use from now on.
    pub fn observe(&mut self, run_ns: u64, now_ns: u64) -> u64 {
        if let Some((run0, t0)) = self.last {
            let wall = now_ns.saturating_sub(t0);
            if wall > 0 {
                let share = share_ppm(run_ns.saturating_sub(run0), wall);
                self.share_ppm = Some(share);
                self.interval_ns =
                    next_interval(self.interval_ns, share, self.budget_ppm, wall * MAX_SAMPLES);
            }
        }
        self.last = Some((run_ns, now_ns));
        self.interval_ns
    }

    /// The least time between two activity records of one socket, ns.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// The programs' share of one CPU over the last sample interval, in
    /// millionths; `None` before the second sample.
    pub fn share_ppm(&self) -> Option<u32> {
        self.share_ppm
    }
}

/// `run` ns of CPU over `wall` ns of clock, in millionths of one CPU
/// (saturating: several CPUs busy at once can exceed one CPU).
pub fn share_ppm(run: u64, wall: u64) -> u32 {
    if wall == 0 {
        return 0;
    }
    let ppm = (u128::from(run) * 1_000_000) / u128::from(wall);
    u32::try_from(ppm).unwrap_or(u32::MAX)
}

/// The interval after one sample whose share was `share` (ppm) against a
/// budget of `budget` (ppm): doubled (from [`FIRST_STEP_NS`]) when over
/// it, halved (to 0 below the first step) when under a quarter of it, kept
/// otherwise; never above `max_ns`.
pub fn next_interval(current_ns: u64, share: u32, budget: u32, max_ns: u64) -> u64 {
    let next = if share > budget {
        current_ns.saturating_mul(2).max(FIRST_STEP_NS)
    } else if u64::from(share) * 4 < u64::from(budget) {
        match current_ns / 2 {
            half if half < FIRST_STEP_NS => 0,
            half => half,
        }
    } else {
        current_ns
    };
    next.min(max_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn over_budget_doubles_under_a_quarter_halves_between_holds() {
        let max = 4 * SECOND;
        assert_eq!(next_interval(0, 20_000, 10_000, max), FIRST_STEP_NS);
        assert_eq!(
            next_interval(FIRST_STEP_NS, 20_000, 10_000, max),
            2 * FIRST_STEP_NS
        );
        // Between a quarter of the budget and the budget: kept.
        assert_eq!(next_interval(8_000_000, 10_000, 10_000, max), 8_000_000);
        assert_eq!(next_interval(8_000_000, 2_500, 10_000, max), 8_000_000);
        // Well under: halved, then off.
        assert_eq!(next_interval(8_000_000, 2_499, 10_000, max), 4_000_000);
        assert_eq!(next_interval(FIRST_STEP_NS, 0, 10_000, max), 0);
        assert_eq!(next_interval(0, 0, 10_000, max), 0);
        // Bounded by the sample interval times MAX_SAMPLES.
        assert_eq!(next_interval(3 * SECOND, u32::MAX, 10_000, max), max);
    }

    #[test]
    fn the_budget_is_one_percent_unless_named() {
        assert_eq!(SelfMeter::budget_from(None), 10_000);
        assert_eq!(SelfMeter::budget_from(Some(" 5 ")), 5);
        assert_eq!(SelfMeter::budget_from(Some("lots")), 10_000);
        let mut m = SelfMeter::with_budget(1);
        m.observe(0, 0);
        assert_eq!(m.observe(2_000, SECOND), FIRST_STEP_NS, "2 ppm > 1");
    }

    #[test]
    fn the_share_is_run_time_over_clock_time() {
        assert_eq!(share_ppm(10_000_000, SECOND), 10_000, "1 %");
        assert_eq!(share_ppm(0, SECOND), 0);
        assert_eq!(share_ppm(3 * SECOND, SECOND), 3_000_000, "3 CPUs");
        assert_eq!(share_ppm(1, 0), 0);
    }

    #[test]
    fn a_busy_then_quiet_machine_backs_off_and_comes_back() {
        let mut m = SelfMeter::default();
        let (mut run, mut now) = (0, 0);
        assert_eq!(m.observe(run, now), 0, "the first sample only sets a base");
        assert_eq!(m.share_ppm(), None);
        // 5 % of a CPU each 1 s sample: doubling up to 4 s.
        let mut seen = Vec::new();
        for _ in 0..15 {
            run += 50_000_000;
            now += SECOND;
            seen.push(m.observe(run, now));
        }
        assert_eq!(m.share_ppm(), Some(50_000));
        assert_eq!(seen[0], FIRST_STEP_NS);
        assert_eq!(seen[1], 2 * FIRST_STEP_NS);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(*seen.last().unwrap(), MAX_SAMPLES * SECOND);
        // Quiet: halving back to none.
        for _ in 0..15 {
            now += SECOND;
            m.observe(run, now);
        }
        assert_eq!(m.share_ppm(), Some(0));
        assert_eq!(m.interval_ns(), 0);
        // A counter that went back (the programs reloaded) is no negative
        // share.
        now += SECOND;
        m.observe(0, now);
        assert_eq!(m.share_ppm(), Some(0));
    }
}
