//! `feed-gap`: records the stream can no longer give. A reader asks for a position (a
//! checkpoint, or `start = "at_timestamp:…"`); the stream holds records only from its *edge*,
//! the later of its creation and now minus its retention. A position before the edge is a gap:
//! whatever arrived from the position to the edge (or to the first record still held, if
//! Kinesis has not trimmed that far yet) is gone. A stream that was merely quiet is not a gap:
//! a position at or after the edge never is, however long the silence after it.
//!
//! What this rule cannot see: a checkpoint written before trailwatch saved arrival times (no
//! time to compare, counted as `unknown`), and a window in which nothing arrived (Kinesis cannot
//! say whether records were trimmed from a window it no longer holds, so such a window is
//! reported; the archive, read by backfill, settles it).

use crate::alert::{Alert, Severity};
pub use crate::alert::{Gap, GapCause as Cause};
use crate::event::format_utc_secs;

pub use crate::config::health::GAP as RULE;

/// What the stream says of itself (DescribeStreamSummary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFacts {
    pub retention_secs: i64,
    /// `StreamCreationTimestamp`, seconds.
    pub created: Option<i64>,
}

impl StreamFacts {
    /// The oldest arrival time the stream can still give at `now`.
    pub fn edge(&self, now: i64) -> i64 {
        let retained = now.saturating_sub(self.retention_secs);
        self.created.map_or(retained, |c| c.max(retained))
    }
}

/// The gap, if any, before a shard read from `asked` (seconds; `None`: nothing to compare,
/// e.g. `trim_horizon`) whose first record still held arrived at `first` (`None`: none yet).
pub fn detect(
    asked: Option<i64>,
    facts: &StreamFacts,
    now: i64,
    first: Option<i64>,
) -> Option<(i64, i64, Cause)> {
    let from = asked?;
    let edge = facts.edge(now);
    if from >= edge {
        return None;
    }
    // Kinesis trims lazily: records a little older than the edge may still be there.
    let to = match first {
        Some(a) if a < edge => a,
        _ => edge,
    };
    if to <= from {
        return None;
    }
    let cause = match facts.created {
        Some(c) if from < c && c >= now.saturating_sub(facts.retention_secs) => {
            Cause::BeforeCreation
        }
        _ => Cause::PastRetention,
    };
    Some((from, to, cause))
}

/// Records in `window` seconds at the rate of `n` records spread over `span` seconds; `None`
/// when the span is too short to say (under 10 s).
pub fn estimate(n: usize, span: i64, window: i64) -> Option<u64> {
    (n >= 2 && span >= 10).then(|| (n as f64 / span as f64 * window as f64).round() as u64)
}

fn spoken(secs: i64) -> String {
    let s = secs.max(0);
    match (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60) {
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// The `feed-gap` alert: one per stream and window (a restart that finds the same window
/// raises the same alert id, which the pipeline remembers).
pub fn alert(g: &Gap, severity: Severity) -> Alert {
    let why = match g.cause {
        Cause::BeforeCreation => "the position asked for is older than the stream",
        Cause::PastRetention => "the position is older than the stream's retention",
        Cause::ShardGone => "the shard left the stream before it was read to its end",
    };
    let estimate = g
        .estimated_records
        .map(|n| format!(" About {n} records were in the window (at the rate of the first records read after it)."))
        .unwrap_or_default();
    let reason = format!(
        "Stream {} (found reading shard {}): records from {} to {} ({}) cannot be read: {why}. Events in that window were not evaluated unless backfill reads them from the archive.{estimate}",
        g.stream,
        g.shard,
        format_utc_secs(g.from),
        format_utc_secs(g.to),
        spoken(g.to - g.from),
    );
    // The shard is not in the key: shards that lost the same window (a start before the
    // stream existed) make one alert, the first shard that found it named.
    let key = format!("{}|{}|{}|{}", g.stream, g.cause.as_str(), g.from, g.to);
    about(
        g,
        &key,
        "Feed gap: records the stream no longer holds",
        severity,
        reason,
    )
}

/// A `feed-gap` alert about `g`, dated at the window's end.
fn about(g: &Gap, key: &str, title: &str, severity: Severity, reason: String) -> Alert {
    Alert {
        event_time: Some(format_utc_secs(g.to)),
        gap: Some(Box::new(g.clone())),
        ..Alert::outside_events(RULE, key, title, severity, "health", reason)
    }
}

/// The second `feed-gap` alert of a window: backfill read it from the archive. `unread`:
/// objects or prefixes that could not be read; `not_read_secs`: the part older than
/// `backfill.max_window`, not read.
pub fn filled_alert(g: &Gap, events: u64, alerts: u64, unread: usize, not_read_secs: i64) -> Alert {
    let mut reason = format!(
        "Stream {}: the window from {} to {} was read from the archive: {events} events, {alerts} alerts.",
        g.stream,
        format_utc_secs(g.from),
        format_utc_secs(g.to),
    );
    let complete = unread == 0 && not_read_secs <= 0;
    if unread > 0 {
        reason.push_str(&format!(
            " {unread} objects or prefixes could not be read (see the log): the window is not whole."
        ));
    }
    if not_read_secs > 0 {
        reason.push_str(&format!(
            " Its first {} were not read (older than backfill.max_window).",
            spoken(not_read_secs)
        ));
    }
    let key = format!(
        "filled|{}|{}|{}|{}",
        g.stream,
        g.cause.as_str(),
        g.from,
        g.to
    );
    let (title, severity) = match complete {
        true => ("Feed gap filled from the archive", Severity::Info),
        false => ("Feed gap partly filled from the archive", Severity::High),
    };
    about(g, &key, title, severity, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn facts(created_days_ago: i64) -> StreamFacts {
        StreamFacts {
            retention_secs: DAY,
            created: Some(NOW - created_days_ago * DAY),
        }
    }

    #[test]
    fn a_position_before_the_edge_is_a_gap_and_one_after_it_never_is() {
        let f = facts(30);
        // A checkpoint two days old: what arrived from it to the edge is gone.
        assert_eq!(
            detect(Some(NOW - 2 * DAY), &f, NOW, Some(NOW - DAY + 5)),
            Some((NOW - 2 * DAY, NOW - DAY, Cause::PastRetention))
        );
        // Kinesis has not trimmed to the edge yet: the gap ends at the first record held.
        assert_eq!(
            detect(Some(NOW - 2 * DAY), &f, NOW, Some(NOW - DAY - 600)),
            Some((NOW - 2 * DAY, NOW - DAY - 600, Cause::PastRetention))
        );
        // A quiet stream: a checkpoint an hour old and nothing since is not a gap, nor one
        // whose next record came 20 hours later.
        assert_eq!(detect(Some(NOW - 3_600), &f, NOW, None), None);
        assert_eq!(
            detect(Some(NOW - 23 * 3_600), &f, NOW, Some(NOW - 3 * 3_600)),
            None
        );
        // Nothing to compare (trim_horizon, latest, an old checkpoint without its time).
        assert_eq!(detect(None, &f, NOW, Some(NOW - DAY)), None);
        // Everything asked is still held: the first record is older than the position.
        assert_eq!(
            detect(Some(NOW - 2 * DAY), &f, NOW, Some(NOW - 3 * DAY)),
            None
        );
    }

    #[test]
    fn a_start_before_the_stream_existed_is_a_gap_to_its_creation() {
        let f = facts(0); // created now-ish: retention is not the limit
        let f = StreamFacts {
            created: Some(NOW - 3_600),
            ..f
        };
        assert_eq!(
            detect(Some(NOW - 7 * DAY), &f, NOW, Some(NOW - 3_000)),
            Some((NOW - 7 * DAY, NOW - 3_600, Cause::BeforeCreation))
        );
        assert_eq!(detect(Some(NOW - 1_800), &f, NOW, Some(NOW - 1_700)), None);
    }

    #[test]
    fn the_alert_names_the_window_and_its_id_is_the_window() {
        let g = Gap {
            stream: "org-trail".into(),
            shard: "shardId-000000000001".into(),
            from: NOW - 2 * DAY,
            to: NOW - DAY,
            cause: Cause::PastRetention,
            estimated_records: estimate(1_000, 100, DAY),
        };
        let a = alert(&g, Severity::High);
        assert_eq!(a.rule, "feed-gap");
        assert!(a.reason.contains("(1d 0h) cannot be read"), "{}", a.reason);
        assert!(a.reason.contains("About 864000 records"), "{}", a.reason);
        assert_eq!(a.alert_id, alert(&g.clone(), Severity::High).alert_id);
        let other = Gap {
            to: NOW - DAY + 1,
            ..g.clone()
        };
        assert_ne!(a.alert_id, alert(&other, Severity::High).alert_id);
        let same_window = Gap {
            shard: "shardId-000000000002".into(),
            ..g
        };
        assert_eq!(
            a.alert_id,
            alert(&same_window, Severity::High).alert_id,
            "one per window"
        );
        assert_eq!(estimate(5, 3, 100), None, "too short a span to say");
    }
}
