//! Event time → arrival, per account, over the last 10 minutes of arrival time: per minute,
//! how many events came, how many later than the threshold, and the worst lag. The p95 is
//! over the threshold exactly when more than 5% came later than it, so no quantile sketch
//! is needed for the decision.

use serde::{Deserialize, Serialize};

/// Minutes in the window.
pub const WINDOW_MINUTES: i64 = 10;
/// Fewer events than this in the window decide nothing.
pub const MIN_EVENTS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Minute {
    minute: i64,
    events: u64,
    late: u64,
    max: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lag {
    minutes: Vec<Minute>,
}

/// The window's sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub events: u64,
    pub late: u64,
    pub max: i64,
}

impl Window {
    /// Whether the p95 is over the threshold; `None` with too few events to say.
    pub fn p95_over(&self) -> Option<bool> {
        (self.events >= MIN_EVENTS).then_some(self.late * 20 > self.events)
    }
}

impl Lag {
    /// An event that arrived at `now` (seconds) with this lag.
    pub fn observe(&mut self, now: i64, lag: i64, threshold: i64) {
        let minute = now.div_euclid(60);
        self.minutes
            .retain(|m| m.minute > minute - WINDOW_MINUTES && m.minute <= minute);
        let late = u64::from(lag > threshold);
        match self.minutes.iter_mut().find(|m| m.minute == minute) {
            Some(m) => {
                m.events += 1;
                m.late += late;
                m.max = m.max.max(lag);
            }
            None => self.minutes.push(Minute {
                minute,
                events: 1,
                late,
                max: lag,
            }),
        }
    }

    /// The last [`WINDOW_MINUTES`] minutes up to `now`.
    pub fn window(&self, now: i64) -> Window {
        let minute = now.div_euclid(60);
        let mut w = Window {
            events: 0,
            late: 0,
            max: 0,
        };
        for m in &self.minutes {
            if m.minute > minute - WINDOW_MINUTES && m.minute <= minute {
                w.events += m.events;
                w.late += m.late;
                w.max = w.max.max(m.max);
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_over_when_more_than_one_in_twenty_is_late() {
        let mut l = Lag::default();
        for i in 0..19 {
            l.observe(1000 + i, 10, 900);
        }
        l.observe(1019, 1200, 900);
        // 1 of 20 late: exactly 5%, the p95 is not over.
        assert_eq!(l.window(1020).p95_over(), Some(false));
        l.observe(1020, 1300, 900);
        assert_eq!(l.window(1021).p95_over(), Some(true));
        assert_eq!(l.window(1021).max, 1300);
    }

    #[test]
    fn the_window_is_ten_minutes_and_few_events_decide_nothing() {
        let mut l = Lag::default();
        for i in 0..10 {
            l.observe(i * 30, 2000, 900);
        }
        assert_eq!(l.window(300).p95_over(), Some(true));
        // Eleven minutes on, those events are out of the window.
        assert_eq!(l.window(300 + 11 * 60).events, 0);
        assert_eq!(l.window(300 + 11 * 60).p95_over(), None);
        l.observe(2000, 5, 900);
        assert!(l.minutes.len() <= WINDOW_MINUTES as usize);
    }
}
