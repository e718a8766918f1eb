//! A keyed GCRA rate limiter (`governor`) on an injected clock: shaping runs on event time in
//! replay and on arrival time live, so the limiter's clock is advanced to `now` on each call.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};

type Limiter = RateLimiter<
    String,
    governor::state::keyed::DefaultKeyedStateStore<String>,
    FakeRelativeClock,
    governor::middleware::NoOpMiddleware<<FakeRelativeClock as governor::clock::Clock>::Instant>,
>;

pub struct KeyedLimiter {
    limiter: Limiter,
    quota: Quota,
    clock: FakeRelativeClock,
    /// Seconds since the epoch at the clock's zero; and the clock's position in seconds.
    origin: Option<i64>,
    at: i64,
    max_keys: usize,
    /// Times the key table was cleared because it was full of keys still in their window.
    pub resets: u64,
}

impl KeyedLimiter {
    /// `burst` items at once, refilled at `per_minute` per minute (both at least 1).
    pub fn new(burst: u32, per_minute: u32, max_keys: usize) -> Self {
        let per = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per).allow_burst(burst);
        let clock = FakeRelativeClock::default();
        KeyedLimiter {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            quota,
            clock,
            origin: None,
            at: 0,
            max_keys: max_keys.max(1),
            resets: 0,
        }
    }

    /// Moves the clock to `now` (never backwards: late events are judged at the latest time).
    fn set_time(&mut self, now: i64) {
        let origin = *self.origin.get_or_insert(now);
        let pos = now.saturating_sub(origin);
        if pos > self.at {
            self.clock
                .advance(Duration::from_secs((pos - self.at) as u64));
            self.at = pos;
        }
    }

    /// Is one more item for `key` within its budget at `now`?
    pub fn allow(&mut self, key: &str, now: i64) -> bool {
        self.set_time(now);
        if self.limiter.len() >= self.max_keys {
            // Forget keys whose budget has fully refilled (they behave as new keys anyway).
            self.limiter.retain_recent();
            if self.limiter.len() >= self.max_keys {
                // Still full of busy keys: start over rather than grow. Budgets reset (more
                // may be sent), nothing is lost; counted.
                self.limiter = RateLimiter::dashmap_with_clock(self.quota, self.clock.clone());
                self.resets += 1;
            }
        }
        self.limiter.check_key(&key.to_string()).is_ok()
    }

    pub fn len(&self) -> usize {
        self.limiter.len()
    }
}
