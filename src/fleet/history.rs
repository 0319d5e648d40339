//! Fleet history for the time bar (`GET /api/history` in fleet mode): the
//! range the engine covers, the steps the time bar walks, and the activity
//! strip, in the shape of a single host's history (src/history), so the
//! page's time bar works unchanged. Pure: the engine's answers in, the
//! numbers out; [`super::FleetReader`] asks the queries.
//!
//! - **Range**: the oldest data is found by narrowing: a range query of
//!   [`query::hosts_seen`] over the engine's retention in ~100 steps, then
//!   over the first step with data in ~100 finer steps, and so on down to
//!   the sampling interval ([`narrow`]). The newest is the newest host
//!   address sample ([`query::newest_sample`]).
//! - **Steps** (`seqs`): every interval-aligned instant of the range (a
//!   coarser multiple of the interval past [`MAX_STEPS`]); `?at=` is
//!   aligned the same way, so a step the time bar jumps to is exactly a
//!   cached view.
//! - **Activity**: stretches as a single host cuts them
//!   ([`crate::history::changes::activity`]); `edges` is the most
//!   half-edges with an open connection at a step in the stretch, `bytes`
//!   the growth of the byte counters' sum from the stretch's start to its
//!   end (a series that vanishes lowers the sum: a stretch never counts
//!   less than zero).

use super::query;
use crate::history::changes::Activity;

/// The most steps `/api/history` lists (a single host lists every kept
/// sample; a fleet's retention at a 1 s interval would be millions).
pub const MAX_STEPS: u64 = 2_000;

/// How many points one narrowing query asks for.
const NARROW_POINTS: f64 = 100.0;

/// The range query [`narrow`] asks: `(promql, start, end, step)`.
pub type RangeQuery = (String, f64, f64, f64);

/// Finds the oldest time with fleet data between `start` and `end`
/// (seconds), to within `resolution` seconds and never after it: `ask`
/// answers a range query's points. `None`: no data at all.
///
/// The answer is the start of the finest window that holds the oldest
/// sample, not its end: a moment the live view already showed must be
/// inside the range (its end was up to one interval late, and `?at=` of
/// such a moment got a 416). A moment in the sliver before the first
/// sample gets the graph of that moment: empty.
pub fn narrow<E>(
    mut start: f64,
    mut end: f64,
    resolution: f64,
    mut ask: impl FnMut(RangeQuery) -> Result<Vec<(f64, f64)>, E>,
) -> Result<Option<f64>, E> {
    let resolution = resolution.max(1.0);
    let mut found = None;
    loop {
        let step = ((end - start) / NARROW_POINTS).max(resolution).ceil();
        // A point at t covers (t - step, t]: the first one with data holds
        // the oldest sample. The points run one step past `end`, so that
        // the newest data is covered even when the engine aligns the
        // points to multiples of the step (VictoriaMetrics does) or the
        // span is not a multiple of it.
        let points = ask((
            query::hosts_seen(step as u64),
            start + step,
            end + step,
            step,
        ))?;
        let Some(t) = points.iter().find(|(_, v)| *v > 0.0).map(|(t, _)| *t) else {
            return Ok(found);
        };
        found = Some((t - step).max(0.0));
        if step <= resolution {
            return Ok(found);
        }
        start = (t - step).max(start);
        end = t;
    }
}

/// The step of the time bar over `[oldest, newest]` (ms): the interval,
/// or the smallest multiple of it that keeps the steps within
/// [`MAX_STEPS`].
pub fn step_ms(oldest_ms: u64, newest_ms: u64, interval_ms: u64) -> u64 {
    let interval_ms = interval_ms.max(1);
    let span = newest_ms.saturating_sub(oldest_ms);
    let k = (span / interval_ms).div_ceil(MAX_STEPS).max(1);
    interval_ms * k
}

/// The step-aligned instants (ms) from `oldest` to `newest`.
pub fn steps(oldest_ms: u64, newest_ms: u64, step_ms: u64) -> Vec<u64> {
    let step_ms = step_ms.max(1);
    let first = oldest_ms.div_ceil(step_ms) * step_ms;
    (0..)
        .map(|i| first + i * step_ms)
        .take_while(|t| *t <= newest_ms)
        .collect()
}

/// The stretches of the strip over `[oldest, newest]`: their width (ms)
/// and count, cut as a single host's ([`crate::history::changes::activity`]).
pub fn stretches(oldest_ms: u64, newest_ms: u64, buckets: usize) -> (u64, usize) {
    let span = (newest_ms.saturating_sub(oldest_ms) + 1).max(1);
    let width = span.div_ceil(buckets.max(1) as u64).max(1);
    (width, span.div_ceil(width) as usize)
}

/// The activity strip from the engine's answers: `edges` and `totals` are
/// the points (seconds, value) of [`query::open_halves_count`] and
/// [`query::bytes_total`] asked every `width` ms from `oldest`; `steps`
/// are the time bar's steps.
pub fn activity(
    oldest_ms: u64,
    (width, n): (u64, usize),
    edges: &[(f64, f64)],
    totals: &[(f64, f64)],
    steps: &[u64],
) -> Vec<Activity> {
    if n == 0 {
        return Vec::new();
    }
    let mut out: Vec<Activity> = (0..n as u64)
        .map(|i| Activity {
            start_ms: oldest_ms + i * width,
            end_ms: oldest_ms + (i + 1) * width,
            edges: 0,
            bytes: 0,
            samples: 0,
        })
        .collect();
    // The stretch holding `ms` (a point on a boundary ends the stretch
    // before it: `bytes` grew up to it).
    let index = |ms: u64, ending: bool| -> usize {
        let off = ms.saturating_sub(oldest_ms);
        let off = if ending { off.saturating_sub(1) } else { off };
        ((off / width) as usize).min(n - 1)
    };
    let ms = |t: f64| (t.max(0.0) * 1000.0).round() as u64;
    for &(t, v) in edges {
        let a = &mut out[index(ms(t), false)];
        a.edges = a.edges.max(v.max(0.0).min(u32::MAX as f64) as u32);
    }
    for w in totals.windows(2) {
        let grown = w[1].1 - w[0].1;
        if grown > 0.0 {
            out[index(ms(w[1].0), true)].bytes += grown.round() as u64;
        }
    }
    for &t in steps {
        out[index(t, false)].samples += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_finds_the_oldest_data_to_the_resolution() {
        // Data from t = 1_000_123.4 on; the engine answers max_over_time
        // over each step.
        let oldest = 1_000_123.4;
        let mut asked = Vec::new();
        let found = narrow::<()>(0.0, 1_100_000.0, 1.0, |(q, start, end, step)| {
            asked.push(step);
            assert!(q.contains(&format!("[{}s]", step as u64)), "{q}");
            let mut t = start;
            let mut pts = Vec::new();
            while t <= end {
                pts.push((t, if t >= oldest { 3.0 } else { 0.0 }));
                t += step;
            }
            Ok(pts)
        })
        .unwrap()
        .unwrap();
        assert!(found <= oldest && found >= oldest - 1.0, "{found}");
        assert!(asked.len() <= 4, "{asked:?}");
        assert_eq!(*asked.last().unwrap(), 1.0);
        let none = narrow::<()>(0.0, 1000.0, 1.0, |_| Ok(vec![(5.0, 0.0)])).unwrap();
        assert_eq!(none, None);
        // Data only in the last seconds before `end`, and an engine that
        // aligns its points down to multiples of the step.
        let (start, end, oldest) = (0.0, 1_296_000.0 + 1_234.5, 1_296_000.0 + 1_200.0);
        let found = narrow::<()>(start, end, 1.0, |(_, s, e, step)| {
            let mut t = (s / step).floor() * step;
            let mut pts = Vec::new();
            while t <= (e / step).floor() * step {
                let seen = t >= oldest && t - step < end;
                pts.push((t, if seen { 1.0 } else { 0.0 }));
                t += step;
            }
            Ok(pts)
        })
        .unwrap()
        .expect("the newest data is found");
        assert!(found <= oldest && found >= oldest - 1.0, "{found}");
    }

    #[test]
    fn steps_are_interval_aligned_and_bounded() {
        assert_eq!(steps(1_250, 4_000, 1_000), vec![2_000, 3_000, 4_000]);
        assert_eq!(step_ms(0, 10_000, 500), 500);
        let day = 86_400_000;
        let s = step_ms(0, day, 1_000);
        assert_eq!(s % 1_000, 0);
        assert!(steps(0, day, s).len() as u64 <= MAX_STEPS + 1);
    }

    #[test]
    fn the_strip_counts_edges_bytes_and_steps_per_stretch() {
        // 10 s of fleet, 5 stretches of 2 s (the single host's cut).
        let (width, n) = stretches(0, 9_999, 5);
        assert_eq!((width, n), (2_000, 5));
        let edges = [(0.0, 1.0), (2.0, 4.0), (4.0, 2.0), (6.0, 2.0), (8.0, 0.0)];
        // Totals at the stretch boundaries; a vanished series drops the
        // sum at 8 s.
        let totals = [
            (0.0, 0.0),
            (2.0, 100.0),
            (4.0, 100.0),
            (6.0, 350.0),
            (8.0, 50.0),
            (10.0, 60.0),
        ];
        let steps: Vec<u64> = (0..10).map(|i| i * 1_000).collect();
        let a = activity(0, (width, n), &edges, &totals, &steps);
        assert_eq!(
            a.iter().map(|x| x.edges).collect::<Vec<_>>(),
            [1, 4, 2, 2, 0]
        );
        assert_eq!(
            a.iter().map(|x| x.bytes).collect::<Vec<_>>(),
            [100, 0, 250, 0, 10]
        );
        assert_eq!(
            a.iter().map(|x| x.samples).collect::<Vec<_>>(),
            [2, 2, 2, 2, 2]
        );
        assert_eq!((a[0].start_ms, a[4].end_ms), (0, 10_000));
        assert!(activity(0, (1, 0), &edges, &totals, &steps).is_empty());
    }
}
