//! The one wall clock. Everything that decides by time (dedup, shaping, exemptions) takes
//! `now` as an argument; the adapters and the delivery side read it here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Wall-clock seconds since the epoch.
pub fn now_secs() -> i64 {
    since_epoch().as_secs() as i64
}

/// Wall-clock milliseconds since the epoch.
pub fn now_millis() -> u64 {
    since_epoch().as_millis() as u64
}

/// Nanoseconds since the epoch: a cheap varying seed (backoff jitter, generated ids).
pub fn now_nanos() -> u128 {
    since_epoch().as_nanos()
}
