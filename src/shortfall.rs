//! What a run did not do, said the same way by every command that ends (`replay`,
//! `replay --deliver`, `backtest`, `match`, `explain`): the one rule for limits and partial work.
//!
//! Whatever is cut, skipped or unread (a record over a cap or unreadable, an input or object
//! that could not be read to its end, a prefix that could not be listed, an event id forgotten
//! before its TTL, an item still spooled at exit or not accepted at all) is counted here. The
//! command then prints [`Shortfall::line`] in its summary, puts the shortfall in its JSON report,
//! counts it in `trailwatch_incomplete_total{what}`, logs it at WARN, and exits
//! [`INCOMPLETE_EXIT`] unless the user accepted it with `--allow-incomplete`.

use serde::{Deserialize, Serialize};

/// The exit code of a run that ran but did less than it was asked.
pub const INCOMPLETE_EXIT: u8 = 3;

/// The flag by which a user accepts an incomplete run (exit 0, still reported).
pub const ALLOW_FLAG: &str = "--allow-incomplete";

/// Everything a run could not do. Zero everywhere: the run is complete.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shortfall {
    /// Records read but not evaluated: unreadable, or over a cap (`decode.*`). Each is a
    /// dead letter, with its position and the reason.
    pub dead_letters: u64,
    /// Inputs (files, S3 objects) that could not be opened or read to their end.
    pub unread_inputs: u64,
    /// Folders or S3 prefixes that could not be listed (their objects are unknown).
    pub unlisted: u64,
    /// Event ids forgotten before their TTL because `dedup.max_event_ids` was reached: a
    /// duplicate after that may have alerted again.
    pub dedup_forgotten: u64,
    /// Items still in a spool when the command exited (delivered at the next start).
    pub left_spooled: u64,
    /// Items that could be neither delivered nor spooled.
    pub not_accepted: u64,
    /// Items a destination refused for good (kept in the sink's rejected file).
    #[serde(default)]
    pub rejected: u64,
}

impl std::ops::AddAssign for Shortfall {
    fn add_assign(&mut self, o: Shortfall) {
        self.dead_letters += o.dead_letters;
        self.unread_inputs += o.unread_inputs;
        self.unlisted += o.unlisted;
        self.dedup_forgotten += o.dedup_forgotten;
        self.left_spooled += o.left_spooled;
        self.not_accepted += o.not_accepted;
        self.rejected += o.rejected;
    }
}

impl Shortfall {
    /// Each kind with its count and what it means, in the order the summary says them.
    fn parts(&self) -> [(&'static str, u64, &'static str); 7] {
        [
            (
                "dead_letters",
                self.dead_letters,
                "records not evaluated (dead letters: unreadable or over a cap)",
            ),
            (
                "unread_inputs",
                self.unread_inputs,
                "inputs not read to their end",
            ),
            ("unlisted", self.unlisted, "prefixes not listed"),
            (
                "dedup_forgotten",
                self.dedup_forgotten,
                "event ids forgotten before their TTL (dedup.max_event_ids)",
            ),
            (
                "left_spooled",
                self.left_spooled,
                "items still spooled at exit",
            ),
            (
                "not_accepted",
                self.not_accepted,
                "items neither delivered nor spooled",
            ),
            (
                "rejected",
                self.rejected,
                "items a destination refused (in the sink's rejected file)",
            ),
        ]
    }

    pub fn is_complete(&self) -> bool {
        self.parts().iter().all(|(_, n, _)| *n == 0)
    }

    /// `2 records not evaluated (…), 1 inputs not read to their end`; empty when complete.
    pub fn describe(&self) -> String {
        self.parts()
            .iter()
            .filter(|(_, n, _)| *n > 0)
            .map(|(_, n, what)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The summary's last line: `complete`, or what was not done and what the exit code says.
    pub fn line(&self, command: &str, allowed: bool) -> String {
        if self.is_complete() {
            return format!("trailwatch {command}: complete");
        }
        let verdict = if allowed {
            format!("accepted by {ALLOW_FLAG} (exit 0)")
        } else {
            format!("exit {INCOMPLETE_EXIT} ({ALLOW_FLAG} accepts it)")
        };
        format!(
            "trailwatch {command}: INCOMPLETE: {}; {verdict}",
            self.describe()
        )
    }

    /// Counts the shortfall in `trailwatch_incomplete_total{command,what}` and logs it at WARN.
    /// Counts and logs the shortfall ([`Shortfall::record`]) and gives the exit code of a
    /// run that did otherwise succeed: 0 when complete or accepted, else [`INCOMPLETE_EXIT`].
    /// Alerts lost (neither delivered nor spooled) are never accepted by the flag.
    pub fn settle(&self, command: &'static str, allow_incomplete: bool) -> u8 {
        self.record(command);
        if self.is_complete() || (allow_incomplete && self.not_accepted == 0) {
            0
        } else {
            INCOMPLETE_EXIT
        }
    }

    pub fn record(&self, command: &'static str) {
        for (what, n, _) in self.parts() {
            if n > 0 {
                metrics::counter!(crate::metric::INCOMPLETE_TOTAL, "command" => command, "what" => what)
                    .increment(n);
            }
        }
        if !self.is_complete() {
            tracing::warn!(command, shortfall = %self.describe(), "the run is incomplete");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_only_when_nothing_is_missing() {
        assert!(Shortfall::default().is_complete());
        let s = Shortfall {
            unread_inputs: 2,
            left_spooled: 1,
            ..Default::default()
        };
        assert!(!s.is_complete());
        assert_eq!(
            s.describe(),
            "2 inputs not read to their end, 1 items still spooled at exit"
        );
        assert!(s.line("replay", false).contains("exit 3"));
        assert!(s
            .line("replay", true)
            .contains("accepted by --allow-incomplete"));
        assert_eq!(
            Shortfall::default().line("backtest", false),
            "trailwatch backtest: complete"
        );
    }
}
