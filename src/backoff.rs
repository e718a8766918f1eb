//! Exponential backoff with full jitter (half fixed, half random), shared by the Kinesis
//! readers and the delivery workers.

use std::time::Duration;

/// The wait before retry number `attempt` (1-based): `initial * 2^(attempt-1)`, capped at
/// `max`, then between half of that and all of it.
pub fn delay(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let base = initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max);
    let nanos = (crate::clock::now_nanos() % 1_000_000_000) as u32;
    let half = base / 2;
    let jitter_ms = half.as_millis() as u64;
    half + Duration::from_millis(if jitter_ms == 0 {
        0
    } else {
        u64::from(nanos) % (jitter_ms + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubles_and_is_capped() {
        let (i, m) = (Duration::from_millis(200), Duration::from_secs(10));
        for attempt in 1..30 {
            let d = delay(i, m, attempt);
            let base = (i * 2u32.pow((attempt - 1).min(20))).min(m);
            assert!(d >= base / 2 && d <= base, "{attempt}: {d:?} vs {base:?}");
        }
    }
}
