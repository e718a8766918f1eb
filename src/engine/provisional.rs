//! Events judged on the config policy because the organization could not be read at start
//! (`[organization]`, no tree saved, `first_read_timeout` passed): kept, within bounds, and
//! judged again once the first read succeeds, so what the tree raises (an SCP-denied write is
//! `scp-bypass`, an account's SCP regions) is raised then, and nothing twice (the alert-id
//! dedup drops what the config policy raised already).

/// At most this many events are kept to be judged again…
pub const MAX_EVENTS: usize = 200_000;
/// …holding at most this many bytes of record text.
pub const MAX_BYTES: usize = 256 << 20;

#[derive(Debug, Default)]
pub struct Provisional {
    /// The record text and the time it was judged at.
    events: Vec<(String, i64)>,
    bytes: usize,
    /// Events past the bounds (or judged on another thread without their text): not judged
    /// again.
    pub dropped: u64,
}

impl Provisional {
    pub fn keep(&mut self, raw: &str, judged_at: i64) {
        if self.events.len() >= MAX_EVENTS || self.bytes + raw.len() > MAX_BYTES {
            self.drop_one();
            return;
        }
        self.bytes += raw.len();
        self.events.push((raw.to_string(), judged_at));
    }

    pub fn drop_one(&mut self) {
        if self.dropped == 0 {
            tracing::error!(
                max_events = MAX_EVENTS,
                max_bytes = MAX_BYTES,
                "too many events judged on the config policy while the organization cannot be read: later ones will not be judged again when it is"
            );
        }
        self.dropped += 1;
        metrics::counter!(crate::metric::ORG_REJUDGE_DROPPED_TOTAL).increment(1);
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn into_events(self) -> Vec<(String, i64)> {
        self.events
    }
}
