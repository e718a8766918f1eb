//! An account's usual gap between events, in event time: bounded (four numbers) and
//! decaying (older gaps weigh less, over about a week).
//!
//! The estimate is the time-weighted mean gap, Σgap² / Σgap: the length of the quiet spell a
//! random moment falls in. A burst of events within one second adds nothing; an account that
//! sends a burst every hour has a usual gap of about an hour, not of the seconds inside the
//! burst; an account that is quiet every night keeps that in its estimate, so a normal night
//! is not called silence.

use serde::{Deserialize, Serialize};

/// Gaps this much older (in event time) than the newest weigh 1/e.
pub const HORIZON_SECS: f64 = 7.0 * 86_400.0;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rhythm {
    /// Event times (seconds) of the first and latest events seen.
    pub first: i64,
    pub last: i64,
    pub events: u64,
    /// Decayed Σgap and Σgap².
    s1: f64,
    s2: f64,
}

impl Rhythm {
    /// An event at event time `t`. An event older than the latest (late delivery) counts, but
    /// makes no gap.
    pub fn observe(&mut self, t: i64) {
        self.events += 1;
        if self.events == 1 {
            (self.first, self.last) = (t, t);
            return;
        }
        if t <= self.last {
            self.first = self.first.min(t);
            return;
        }
        let gap = (t - self.last) as f64;
        let keep = (-gap / HORIZON_SECS).exp();
        self.s1 = self.s1 * keep + gap;
        self.s2 = self.s2 * keep + gap * gap;
        self.last = t;
    }

    /// The usual gap in seconds; 0 until a gap was seen.
    pub fn usual_gap(&self) -> f64 {
        match self.s1 > 0.0 {
            true => self.s2 / self.s1,
            false => 0.0,
        }
    }

    /// Seconds of event time between the first and latest events.
    pub fn span(&self) -> i64 {
        self.last - self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rhythm(times: impl IntoIterator<Item = i64>) -> Rhythm {
        let mut r = Rhythm::default();
        for t in times {
            r.observe(t);
        }
        r
    }

    #[test]
    fn a_steady_rhythm_is_its_period() {
        let r = rhythm((0..100).map(|i| i * 1200));
        assert!((r.usual_gap() - 1200.0).abs() < 1.0, "{}", r.usual_gap());
        assert_eq!(r.span(), 99 * 1200);
    }

    #[test]
    fn bursts_weigh_by_the_quiet_between_them() {
        // 50 events in the same minute, every hour: the usual gap is close to an hour.
        let r = rhythm((0..24).flat_map(|h| (0..50).map(move |i| h * 3600 + i)));
        let g = r.usual_gap();
        assert!((3400.0..3700.0).contains(&g), "{g}");
    }

    #[test]
    fn old_gaps_fade() {
        // A year of hourly events, then two months of one-minute events.
        let mut r = rhythm((0..24 * 365).map(|h| h * 3600));
        let start = r.last;
        for m in 1..=(60 * 24 * 60) {
            r.observe(start + m * 60);
        }
        assert!(r.usual_gap() < 120.0, "{}", r.usual_gap());
    }

    #[test]
    fn late_events_make_no_gap() {
        let mut r = rhythm([100, 200]);
        r.observe(150);
        assert_eq!((r.first, r.last, r.events), (100, 200, 3));
        assert!((r.usual_gap() - 100.0).abs() < 1e-9);
        r.observe(50);
        assert_eq!(r.first, 50);
    }
}
