//! A bounded, TTL'd set of event ids: "have we seen this eventID recently?"
//!
//! Keys are 64-bit xxh3 fingerprints of the id (8 bytes whatever the id's length). With a
//! million ids held, the chance that a new id collides with one of them is about 5e-14: a
//! false "duplicate" once in ~2e13 events. Entries expire `ttl` seconds after they were first
//! seen, and the oldest go first when the set is full, so memory is bounded by `max_ids`
//! whatever the input: about 34 bytes per id (measured: 1M ids, ~35 MB).

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// The keys are already uniform hashes: use their low bits directly.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A 64-bit fingerprint of an id.
pub type Key = u64;

pub struct Dedup {
    ttl_secs: i64,
    max_ids: usize,
    seen: HashSet<Key, BuildHasherDefault<PassThrough>>,
    order: VecDeque<(Key, i64)>,
    /// Keep ids past their TTL while there is room (`replay`, `backtest`): they are forgotten
    /// only to make room, oldest first, so a bounded run's result does not depend on the
    /// order of its input.
    keep_while_room: bool,
    /// Ids added so far (a checkpoint saves those added since the last one: [`Dedup::since`]).
    pushed: u64,
    /// Ids forgotten early because the set was full (a sign `max_event_ids` is too small).
    pub evicted_early: u64,
}

/// The fingerprint of an eventID.
pub fn key(id: &str) -> Key {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

impl Dedup {
    pub fn new(ttl_secs: i64, max_ids: usize) -> Self {
        Dedup {
            ttl_secs,
            max_ids: max_ids.max(1),
            seen: HashSet::default(),
            order: VecDeque::new(),
            keep_while_room: false,
            pushed: 0,
            evicted_early: 0,
        }
    }

    /// Ids are held at least the TTL, and past it for as long as there is room (see
    /// [`Dedup::keep_while_room`]'s field).
    pub fn keeping_while_room(mut self, yes: bool) -> Self {
        self.set_keep_while_room(yes);
        self
    }

    pub fn set_keep_while_room(&mut self, yes: bool) {
        self.keep_while_room = yes;
    }

    /// True the first time `id` is seen within the TTL; false for a duplicate.
    pub fn first_seen(&mut self, id: &str, now: i64) -> bool {
        self.first_seen_key(key(id), now)
    }

    /// [`Self::first_seen`] for an id's fingerprint ([`key`]).
    pub fn first_seen_key(&mut self, k: Key, now: i64) -> bool {
        self.first_seen_key_at(k, now, now)
    }

    /// [`Self::first_seen_key`] with the entry stamped at `stamp` (not before `now`): on
    /// event time, an event ahead of the clock is remembered from its own time, so the clock
    /// catching up to it does not expire it at once.
    pub fn first_seen_key_at(&mut self, k: Key, now: i64, stamp: i64) -> bool {
        let stamp = stamp.max(now);
        if !self.keep_while_room {
            self.expire(now);
        }
        if self.seen.contains(&k) {
            return false;
        }
        if self.seen.len() >= self.max_ids {
            if let Some((old, t)) = self.order.pop_front() {
                self.seen.remove(&old);
                // Held past its TTL while there was room: forgetting it now is on time.
                if t.saturating_add(self.ttl_secs) > now {
                    self.evicted_early += 1;
                }
            }
        }
        self.seen.insert(k);
        self.order.push_back((k, stamp));
        self.pushed += 1;
        true
    }

    /// How many ids were added so far: a mark for [`Dedup::since`].
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// The ids held that were added after `mark` (all of them without one), oldest first.
    pub fn since(&self, mark: Option<u64>) -> Vec<(Key, i64)> {
        let n = match mark {
            Some(m) => (self.pushed.saturating_sub(m) as usize).min(self.order.len()),
            None => self.order.len(),
        };
        self.order
            .iter()
            .skip(self.order.len() - n)
            .copied()
            .collect()
    }

    fn expire(&mut self, now: i64) {
        while let Some(&(k, t)) = self.order.front() {
            if t.saturating_add(self.ttl_secs) > now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&k);
        }
    }

    /// This set (empty) holding a snapshot's ids.
    pub fn restoring(self, snap: &[(Key, i64)]) -> Self {
        let mut d = self;
        let skip = snap.len().saturating_sub(d.max_ids);
        for &(k, t) in &snap[skip..] {
            if d.seen.insert(k) {
                d.order.push_back((k, t));
            }
        }
        d
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_within_ttl_are_caught() {
        let mut d = Dedup::new(60, 100);
        assert!(d.first_seen("a", 0));
        assert!(!d.first_seen("a", 59));
        assert!(d.first_seen("b", 59));
        // 60 s after it was first seen, "a" is forgotten.
        assert!(d.first_seen("a", 60));
        assert!(!d.first_seen("b", 60));
    }

    #[test]
    fn time_going_backwards_does_not_expire() {
        let mut d = Dedup::new(60, 100);
        assert!(d.first_seen("a", 1000));
        assert!(!d.first_seen("a", 10));
    }

    #[test]
    fn size_is_bounded_and_oldest_go_first() {
        let mut d = Dedup::new(3600, 3);
        for id in ["a", "b", "c", "d"] {
            assert!(d.first_seen(id, 0));
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.evicted_early, 1);
        assert!(!d.first_seen("d", 1));
        assert!(d.first_seen("a", 1), "a was evicted to make room");
    }

    #[test]
    fn keeping_while_room_holds_ids_past_the_ttl_until_room_is_needed() {
        let mut d = Dedup::new(60, 3).keeping_while_room(true);
        assert!(d.first_seen("a", 0));
        // Long past its TTL, "a" is still held: there was room.
        assert!(!d.first_seen("a", 10_000));
        assert!(d.first_seen("b", 10_000));
        assert!(d.first_seen("c", 10_000));
        // Full: "a" (past its TTL) makes room, and that is not early.
        assert!(d.first_seen("d", 10_000));
        assert_eq!(d.evicted_early, 0);
        assert!(d.first_seen("a", 10_000), "a was forgotten to make room");
        // "b" goes next, within its TTL: early, and counted.
        assert_eq!(d.evicted_early, 1);
    }

    #[test]
    fn since_gives_the_ids_added_after_a_mark() {
        let mut d = Dedup::new(60, 3);
        d.first_seen("a", 0);
        let mark = d.pushed();
        assert!(d.since(Some(mark)).is_empty());
        d.first_seen("b", 1);
        d.first_seen("b", 2);
        assert_eq!(d.since(Some(mark)), [(key("b"), 1)]);
        // More added than held: what is held.
        for id in ["c", "d", "e"] {
            d.first_seen(id, 3);
        }
        assert_eq!(d.since(Some(mark)).len(), 3);
        assert_eq!(d.since(None).len(), 3);
    }

    #[test]
    fn stays_bounded_over_a_long_run() {
        let mut d = Dedup::new(10, 1000);
        for i in 0..100_000i64 {
            d.first_seen(&i.to_string(), i / 100);
        }
        assert!(d.len() <= 1000);
        assert!(d.order.len() <= 1000);
    }
}
