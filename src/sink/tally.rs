//! What delivery did with the items of this process, per sink, so that a summary adds up:
//! every item the router gave a sink was delivered, spooled, rejected or skipped as delivered
//! before (the journal); every item handed to delivery was routed or matched no route; and
//! the spool says what was drained from it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// One sink's counts since the process started.
#[derive(Debug, Default)]
pub struct SinkTally {
    /// Items the router gave this sink.
    pub queued: AtomicU64,
    /// Of those: accepted by the destination at once.
    pub delivered: AtomicU64,
    /// Of those: written to the spool (fsync'd).
    pub spooled: AtomicU64,
    /// Of those: refused for good (kept in the rejected file).
    pub rejected: AtomicU64,
    /// Of those: not sent, because the journal says they were delivered before.
    pub repeats_skipped: AtomicU64,
    /// Of those: neither delivered nor spooled (the spool could not be written): the source
    /// keeps them, or the command says they were lost.
    pub not_accepted: AtomicU64,
    /// Spooled items (of this process or an earlier one) delivered from the spool.
    pub drained: AtomicU64,
    /// Spooled items refused for good when drained.
    pub drain_rejected: AtomicU64,
    /// Spooled items skipped when drained (the journal says they were delivered before).
    pub drain_skipped: AtomicU64,
}

pub fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Relaxed);
}

/// A [`SinkTally`] read at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkCounts {
    pub queued: u64,
    pub delivered: u64,
    pub spooled: u64,
    pub rejected: u64,
    pub repeats_skipped: u64,
    pub not_accepted: u64,
    pub drained: u64,
    pub drain_rejected: u64,
    pub drain_skipped: u64,
}

impl SinkTally {
    pub fn read(&self) -> SinkCounts {
        SinkCounts {
            queued: self.queued.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            repeats_skipped: self.repeats_skipped.load(Relaxed),
            not_accepted: self.not_accepted.load(Relaxed),
            drained: self.drained.load(Relaxed),
            drain_rejected: self.drain_rejected.load(Relaxed),
            drain_skipped: self.drain_skipped.load(Relaxed),
        }
    }
}

impl SinkCounts {
    /// Items given to the sink that are in none of its outcomes (queued, or in a request,
    /// when read; zero once the worker has stopped).
    pub fn in_flight(&self) -> u64 {
        self.queued.saturating_sub(
            self.delivered
                + self.spooled
                + self.rejected
                + self.repeats_skipped
                + self.not_accepted,
        )
    }
}

/// The whole dispatcher's counts.
#[derive(Debug, Default)]
pub struct Tally {
    /// Items handed to delivery.
    pub items: AtomicU64,
    /// Items at least one route took.
    pub routed: AtomicU64,
    /// Items no route took (counted in `trailwatch_unrouted_total` too).
    pub unrouted: AtomicU64,
    /// Per sink, in the config's order.
    pub sinks: Vec<(String, Arc<SinkTally>)>,
}

/// A [`Tally`] read at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub items: u64,
    pub routed: u64,
    pub unrouted: u64,
    pub sinks: Vec<(String, SinkCounts)>,
}

impl Tally {
    pub fn read(&self) -> Counts {
        Counts {
            items: self.items.load(Relaxed),
            routed: self.routed.load(Relaxed),
            unrouted: self.unrouted.load(Relaxed),
            sinks: self
                .sinks
                .iter()
                .map(|(n, t)| (n.clone(), t.read()))
                .collect(),
        }
    }
}

impl std::fmt::Display for Counts {
    /// `7 items: 5 routed, 2 matched no route; hook: 5 = 3 delivered + 2 spooled + 0 rejected
    /// + 0 skipped (delivered before), 2 delivered from the spool`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} items: {} routed, {} matched no route",
            self.items, self.routed, self.unrouted
        )?;
        for (name, c) in &self.sinks {
            write!(
                f,
                "; {name}: {} = {} delivered + {} spooled + {} rejected + {} skipped (delivered before)",
                c.queued, c.delivered, c.spooled, c.rejected, c.repeats_skipped
            )?;
            if c.not_accepted > 0 {
                write!(f, " + {} NOT accepted", c.not_accepted)?;
            }
            if c.in_flight() > 0 {
                write!(f, " + {} in flight", c.in_flight())?;
            }
            if c.drained + c.drain_rejected + c.drain_skipped > 0 {
                write!(
                    f,
                    ", from the spool {} delivered, {} rejected, {} skipped",
                    c.drained, c.drain_rejected, c.drain_skipped
                )?;
            }
        }
        Ok(())
    }
}
