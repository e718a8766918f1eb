//! Archive events read for a gap (backfill) on their own event time. The live shaper and
//! feed-health watch run on arrival time; a window of days read from the archive in minutes
//! would otherwise be aggregated and rate-limited as one burst, and seen by the watch as
//! events arriving now. So the backfill has a shaper and a watch of its own (same settings),
//! whose clock is the latest event time read; they are saved with the snapshot, and when the
//! window is filled the shaper is flushed and both are dropped.

use crate::health::Watch;
use crate::shaping::Shaper;
use crate::state::PastSnapshot;

pub(super) struct Past {
    /// The latest event time read (never goes back: the limiter's clock).
    pub latest: Option<i64>,
    pub shaper: Option<Shaper>,
    pub health: Option<Watch>,
}

impl Past {
    /// A lane like the live one (`shaper`, `health`: their settings), continuing from `snap`.
    pub fn new(
        shaper: Option<&Shaper>,
        health: Option<&Watch>,
        snap: Option<PastSnapshot>,
    ) -> Past {
        let snap = snap.unwrap_or_default();
        Past {
            latest: snap.latest,
            shaper: shaper.map(|s| s.sibling(snap.shaping)),
            health: health.map(|w| Watch::new(w.settings().clone(), snap.health)),
        }
    }

    /// Moves the clock to an event's time; gives the clock (`fallback` before any time).
    pub fn observe(&mut self, time: Option<i64>, fallback: i64) -> i64 {
        if let Some(t) = time {
            self.latest = Some(self.latest.map_or(t, |l| l.max(t)));
        }
        self.latest.unwrap_or(fallback)
    }

    pub fn snapshot(&self) -> PastSnapshot {
        PastSnapshot {
            latest: self.latest,
            shaping: self.shaper.as_ref().map(Shaper::snapshot),
            health: self.health.as_ref().map(Watch::snapshot),
        }
    }
}
