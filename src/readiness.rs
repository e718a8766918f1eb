//! What makes a running process not ready besides its source: a sink the destination refuses
//! (credentials, a revoked webhook: 401, 403, 404, 410), or a spool that cannot be written.
//! Sinks set and clear their conditions here; `/readyz` answers 503 naming them, and each
//! shows as a gauge (`trailwatch_sink_broken`, `trailwatch_sink_spool_unwritable`).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A condition of one sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// Its requests fail as never retryable: its items wait in the spool.
    Broken,
    /// Its spool cannot be written: new items are not acknowledged.
    SpoolUnwritable,
}

impl Condition {
    fn gauge(self) -> &'static str {
        match self {
            Condition::Broken => crate::metric::SINK_BROKEN,
            Condition::SpoolUnwritable => crate::metric::SINK_SPOOL_UNWRITABLE,
        }
    }

    fn says(self) -> &'static str {
        match self {
            Condition::Broken => "the destination refuses its requests",
            Condition::SpoolUnwritable => "its spool cannot be written",
        }
    }
}

static CONDITIONS: Mutex<BTreeMap<(String, Condition), String>> = Mutex::new(BTreeMap::new());

/// Sets (with why) or clears a sink's condition. Clearing one that is not set (every
/// successful request) costs a lock and a look, nothing else.
pub fn set(sink: &str, c: Condition, why: Option<String>) {
    let Ok(mut m) = CONDITIONS.lock() else {
        return;
    };
    let bad = why.is_some();
    match why {
        Some(w) => {
            m.insert((sink.to_string(), c), w);
        }
        None if m.keys().any(|(s, k)| s == sink && *k == c) => {
            m.remove(&(sink.to_string(), c));
        }
        None => return,
    }
    metrics::gauge!(c.gauge(), "sink" => sink.to_string()).set(f64::from(u8::from(bad)));
}

/// Every condition now, one line each (`sink hook: the destination refuses its requests
/// (http 401: …)`); empty when all is well.
pub fn problems() -> Vec<String> {
    CONDITIONS
        .lock()
        .map(|m| {
            m.iter()
                .map(|((sink, c), why)| format!("sink {sink}: {} ({why})", c.says()))
                .collect()
        })
        .unwrap_or_default()
}
