//! The synchronous core: dedup by eventID, then the rules. No tokio, no I/O, no clock of its
//! own: `now` is passed in, so replay can run on event time and tests control time.

pub mod dedup;

use crate::alert::Alert;
use crate::config::Config;
use crate::event::Event;
use crate::rules::{region, RegionPolicy};

pub use dedup::Dedup;

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Its eventID was seen within the dedup TTL: nothing evaluated.
    Duplicate,
    /// Evaluated; `alerts` were appended to the output.
    Evaluated { alerts: usize },
}

pub struct Pipeline {
    dedup: Dedup,
    policy: RegionPolicy,
    include_event: bool,
}

impl Pipeline {
    pub fn new(config: &Config, include_event: bool) -> Self {
        Pipeline {
            dedup: Dedup::new(config.dedup.event_ttl_secs, config.dedup.max_event_ids),
            policy: RegionPolicy::build(&config.policy),
            include_event,
        }
    }

    pub fn policy(&self) -> &RegionPolicy {
        &self.policy
    }

    pub fn dedup(&self) -> &Dedup {
        &self.dedup
    }

    /// Runs one event through dedup and the rules at time `now` (seconds since the epoch),
    /// appending its alerts to `out`. Events without an eventID are never duplicates.
    pub fn process(&mut self, ev: &Event<'_>, now: i64, out: &mut Vec<Alert>) -> Disposition {
        if let Some(id) = ev.event_id() {
            if !self.dedup.first_seen(id, now) {
                return Disposition::Duplicate;
            }
        }
        let before = out.len();
        if let region::Verdict::Alert(acct, severity) = region::evaluate(&self.policy, ev, now) {
            out.push(region::alert(ev, acct, severity, self.include_event));
        }
        Disposition::Evaluated {
            alerts: out.len() - before,
        }
    }
}
