//! A keyed GCRA rate limiter (`governor`) on an injected clock: shaping runs on event time in
//! replay and on arrival time live, so the limiter's clock is advanced to `now` on each call.
//!
//! governor's state cannot be serialized, so each key's theoretical arrival time (TAT) is
//! mirrored here with governor's own arithmetic; a snapshot keeps the TATs, and a restore
//! drives a fresh governor limiter to exactly those TATs.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};

type Limiter = RateLimiter<
    u64,
    governor::state::keyed::HashMapStateStore<u64>,
    FakeRelativeClock,
    governor::middleware::NoOpMiddleware<<FakeRelativeClock as governor::clock::Clock>::Instant>,
>;

const NS: i64 = 1_000_000_000;

pub struct KeyedLimiter {
    limiter: Limiter,
    quota: Quota,
    clock: FakeRelativeClock,
    /// Nanoseconds since the epoch at the clock's zero, and the clock's position.
    origin: Option<i64>,
    pos: i64,
    /// Emission interval in nanoseconds (governor's `t`), and the burst size.
    t: i64,
    burst: i64,
    /// Each key's TAT, in nanoseconds since the epoch (the mirror of governor's state).
    tat: HashMap<u64, i64>,
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
        let t = (60 * NS) / i64::from(per.get());
        let clock = FakeRelativeClock::default();
        KeyedLimiter {
            limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()),
            quota,
            clock,
            origin: None,
            pos: 0,
            t,
            burst: i64::from(burst.get()),
            tat: HashMap::new(),
            max_keys: max_keys.max(1),
            resets: 0,
        }
    }

    /// Moves the clock to `at` (ns since the epoch); never backwards. Returns the clock's time.
    fn set_time(&mut self, at: i64) -> i64 {
        let origin = *self.origin.get_or_insert(at);
        let pos = at.saturating_sub(origin);
        if pos > self.pos {
            self.clock
                .advance(Duration::from_nanos((pos - self.pos) as u64));
            self.pos = pos;
        }
        origin + self.pos
    }

    fn check(&mut self, key: u64, t0: i64) -> bool {
        let ok = self.limiter.check_key(&key).is_ok();
        if ok {
            let tat = self.tat.get(&key).copied().unwrap_or(t0);
            self.tat.insert(key, tat.max(t0) + self.t);
        }
        ok
    }

    /// Is one more item for `key` within its budget at `now` (seconds since the epoch)?
    pub fn allow(&mut self, key: u64, now: i64) -> bool {
        let t0 = self.set_time(now.saturating_mul(NS));
        if self.limiter.len() >= self.max_keys {
            // Forget keys whose budget has fully refilled (they behave as new keys anyway).
            self.limiter.retain_recent();
            self.tat.retain(|_, tat| *tat > t0);
            if self.limiter.len() >= self.max_keys {
                // Still full of busy keys: start over rather than grow. Budgets reset (more
                // may be sent), nothing is lost; counted.
                self.limiter = RateLimiter::hashmap_with_clock(self.quota, self.clock.clone());
                self.tat.clear();
                self.resets += 1;
            }
        }
        self.check(key, t0)
    }

    /// The keys still spending budget and their TATs (ns since the epoch).
    pub fn snapshot(&self) -> Vec<(u64, i64)> {
        let now = self.origin.map_or(i64::MIN, |o| o + self.pos);
        let mut v: Vec<_> = self
            .tat
            .iter()
            .filter(|(_, t)| **t > now)
            .map(|(k, t)| (*k, *t))
            .collect();
        v.sort();
        v
    }

    /// Drives this fresh limiter to the snapshot's TATs at time `now` (seconds).
    pub fn restore(&mut self, snap: &[(u64, i64)], now: i64) {
        let now = now.saturating_mul(NS);
        // From a fresh key at time x, n cells leave TAT = x + n·t (n ≤ burst): pick the
        // fewest cells with x ≤ now.
        let mut plan: Vec<(i64, i64, u64)> = snap
            .iter()
            .filter(|(_, tat)| *tat > now)
            .map(|(k, tat)| {
                let n = ((tat - now + self.t - 1) / self.t).clamp(1, self.burst);
                (tat - n * self.t, n, *k)
            })
            .collect();
        plan.sort();
        if let Some(first) = plan.first() {
            self.origin = Some(first.0.min(now));
        }
        for (x, n, key) in plan {
            let t0 = self.set_time(x);
            for _ in 0..n {
                self.check(key, t0);
            }
        }
        self.set_time(now);
    }

    pub fn len(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut l = KeyedLimiter::new(2, 1, 100);
        let (k, other) = (1, 2);
        assert!(l.allow(k, 0));
        assert!(l.allow(k, 0));
        assert!(!l.allow(k, 1));
        assert!(l.allow(other, 1));
        assert!(!l.allow(k, 59));
        assert!(l.allow(k, 60));
        assert!(!l.allow(k, 61));
        // Time never goes back: a late event is judged at the latest time.
        assert!(!l.allow(k, 0));
    }

    /// Restored from a snapshot, the limiter answers every later question as the original.
    #[test]
    fn restore_gives_the_same_answers() {
        for (burst, per_minute) in [(1, 1), (2, 1), (5, 1), (3, 7), (5, 60)] {
            let mut a = KeyedLimiter::new(burst, per_minute, 100);
            let mut s = 1u64;
            let mut next = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            };
            let mut t = 1_700_000_000;
            for _ in 0..200 {
                t += (next() % 20) as i64;
                a.allow(next() % 4, t);
            }
            let mut b = KeyedLimiter::new(burst, per_minute, 100);
            b.restore(&a.snapshot(), t);
            for _ in 0..400 {
                t += (next() % 20) as i64;
                let k = next() % 5;
                assert_eq!(
                    a.allow(k, t),
                    b.allow(k, t),
                    "burst {burst}, {per_minute}/min, key {k} at {t}"
                );
            }
        }
    }
}
