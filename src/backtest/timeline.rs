//! The notify stream a backtest would have produced: alerts are held until the archive has
//! been read past their time (a watermark an hour behind the file being read), then shaped
//! in event-time order, each at its own time. A group's alerts therefore reach the shaper in
//! the same order and at the same times however the archive was split or read.

use std::collections::BTreeMap;

use crate::alert::Alert;
use crate::event::parse_utc_secs;
use crate::shaping::{NotifyItem, Shaper};

/// How far behind the file being read alerts are held (CloudTrail delivers a file within
/// about 5 minutes of its events, and documents no bound).
pub const SLACK_SECS: i64 = 3600;

pub struct Timeline {
    shaper: Shaper,
    held: BTreeMap<(i64, u64), Alert>,
    seq: u64,
    /// Alerts that arrived after alerts later than them were shaped (past the slack).
    pub late: u64,
    released_to: i64,
}

impl Timeline {
    pub fn new(shaper: Shaper) -> Self {
        Timeline {
            shaper: shaper.aligned_digests(),
            held: BTreeMap::new(),
            seq: 0,
            late: 0,
            released_to: i64::MIN,
        }
    }

    /// Holds an alert until the watermark passes its time.
    pub fn push(&mut self, alert: Alert) {
        let t = alert
            .event_time
            .as_deref()
            .and_then(parse_utc_secs)
            .unwrap_or(self.released_to);
        if t < self.released_to {
            self.late += 1;
        }
        self.held.insert((t.max(self.released_to), self.seq), alert);
        self.seq += 1;
    }

    /// The archive has been read up to `stamp` (a file's time stamp): shapes what is older
    /// than `stamp - SLACK_SECS`, appending the notify items to `out`.
    pub fn advance(&mut self, stamp: i64, out: &mut Vec<NotifyItem>) {
        let to = stamp.saturating_sub(SLACK_SECS);
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 >= to {
                break;
            }
            let ((t, _), alert) = entry.remove_entry();
            self.shaper.push(alert, t, out);
        }
        if to > self.released_to {
            self.released_to = to;
            self.shaper.advance(to, out);
        }
    }

    /// End of the archive: shapes everything held, closes every window, emits every digest.
    pub fn finish(mut self, out: &mut Vec<NotifyItem>) -> crate::shaping::Stats {
        for ((t, _), alert) in std::mem::take(&mut self.held) {
            self.shaper.push(alert, t, out);
        }
        self.shaper.flush(out);
        self.shaper.stats
    }
}
