//! The first-seen baseline: for each rule, the values each key has shown and when each was
//! last seen, on event time. A pair not in the baseline is new; it is worth an alert only
//! once its key has `learn_for` of history. A value unseen for `forget_after` is forgotten
//! (new again), and a key all of whose values are forgotten is dropped (it learns again).
//! Bounded by `max_pairs`: the key seen least recently goes first, counted.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// A rule's clock settings, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learning {
    pub learn_for: i64,
    pub forget_after: i64,
}

impl Learning {
    /// `learn_for` and `forget_after` in days.
    pub fn days(learn_for: i64, forget_after: i64) -> Learning {
        Learning {
            learn_for: learn_for * 86_400,
            forget_after: forget_after * 86_400,
        }
    }
}

/// What recording a pair found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not in the baseline (or forgotten): what was usual, and whether the key has learnt.
    New { novelty: Novelty, learnt: bool },
    /// Known. `touch`: with a shared store, time to refresh the pair's expiry there (it has
    /// not been written for a third of `forget_after`).
    Known { touch: bool },
}

/// A new pair of a key: what was usual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Novelty {
    /// The key's first event, seconds.
    pub key_known_since: i64,
    /// The key's other values still remembered (most recently seen first), at most
    /// [`VALUES_SHOWN`].
    pub values_known: Vec<String>,
}

/// How many known values an alert lists.
pub const VALUES_SHOWN: usize = 10;

struct Key {
    since: i64,
    last: i64,
    /// The time it is filed under in `order` (at most [`ORDER_STEP`] behind `last`: the index
    /// moves in steps, not at every event).
    ordered: i64,
    values: Vec<Value>,
}

/// How far a key's last sighting runs ahead of its place in the eviction order before the
/// place is moved: eviction is least-recently-seen to within this.
const ORDER_STEP: i64 = 3600;

struct Value {
    value: Box<str>,
    last: i64,
    /// When the shared store last had it written (its expiry refreshed).
    synced: i64,
}

/// One key as saved with the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedKey {
    pub rule: String,
    pub key: String,
    pub since: i64,
    pub last: i64,
    pub values: Vec<SavedValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedValue {
    pub value: String,
    pub last: i64,
    #[serde(default)]
    pub synced: i64,
}

pub struct Baseline {
    /// The rules' names and settings, by index.
    rules: Vec<(String, Learning)>,
    /// By rule, then key.
    keys: Vec<HashMap<Box<str>, Key>>,
    /// Keys by when last seen (to within [`ORDER_STEP`]): eviction and expiry take the
    /// oldest first.
    order: BTreeSet<(i64, u16, Box<str>)>,
    pairs: usize,
    max_pairs: usize,
    /// Pairs dropped to stay within `max_pairs` (their keys were the least recently seen).
    pub evicted_pairs: u64,
    /// A shared store keeps the pairs too: known pairs are touched to keep them there.
    shared: bool,
}

impl Baseline {
    pub fn new(rules: Vec<(String, Learning)>, max_pairs: usize) -> Baseline {
        Baseline {
            keys: rules.iter().map(|_| HashMap::new()).collect(),
            rules,
            order: BTreeSet::new(),
            pairs: 0,
            max_pairs: max_pairs.max(1),
            evicted_pairs: 0,
            shared: false,
        }
    }

    /// Known pairs are touched (see [`Seen::Known`]) for a shared store.
    pub fn shared(mut self, yes: bool) -> Baseline {
        self.shared = yes;
        self
    }

    pub fn pairs(&self) -> usize {
        self.pairs
    }

    pub fn keys(&self) -> usize {
        self.keys.iter().map(HashMap::len).sum()
    }

    fn key(&self, rule: usize, key: &str) -> Option<&Key> {
        self.keys.get(rule)?.get(key)
    }

    /// Whether `value` is known for `key` of rule `rule` at `time` (not forgotten).
    pub fn knows(&self, rule: usize, key: &str, value: &str, time: i64) -> bool {
        let Some((_, l)) = self.rules.get(rule) else {
            return false;
        };
        self.key(rule, key).is_some_and(|k| {
            k.values
                .iter()
                .any(|v| &*v.value == value && time - v.last <= l.forget_after)
        })
    }

    /// A key's first event and its values with when each was last seen, most recent first
    /// (`explain`).
    pub fn key_view(&self, rule: usize, key: &str) -> Option<(i64, Vec<(String, i64)>)> {
        let k = self.key(rule, key)?;
        let mut values: Vec<(String, i64)> = k
            .values
            .iter()
            .map(|v| (v.value.to_string(), v.last))
            .collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Some((k.since, values))
    }

    /// An event's pair at `time`: recorded; `Some` when it is new and its key has learnt.
    pub fn observe(&mut self, rule: usize, key: &str, value: &str, time: i64) -> Option<Novelty> {
        match self.record(rule, key, value, time)? {
            Seen::New {
                novelty,
                learnt: true,
            } => Some(novelty),
            _ => None,
        }
    }

    /// An event's pair at `time`, recorded: what was found (`None` for an unknown rule).
    pub fn record(&mut self, rule: usize, key: &str, value: &str, time: i64) -> Option<Seen> {
        let l = self.rules.get(rule)?.1;
        let shared = self.shared;
        let map = self.keys.get_mut(rule)?;
        let k = match map.get_mut(key) {
            Some(k) => k,
            None => {
                let id: Box<str> = key.into();
                self.order.insert((time, rule as u16, id.clone()));
                map.entry(id).or_insert(Key {
                    since: time,
                    last: time,
                    ordered: time,
                    values: Vec::new(),
                })
            }
        };
        let before = k.values.len();
        k.values.retain(|v| time - v.last <= l.forget_after);
        self.pairs -= before - k.values.len();
        k.since = k.since.min(time);
        let found = match k.values.iter_mut().find(|v| &*v.value == value) {
            Some(v) => {
                v.last = v.last.max(time);
                let touch = shared && time - v.synced >= l.forget_after / 3;
                if touch {
                    v.synced = time;
                }
                Seen::Known { touch }
            }
            None => {
                let mut known: Vec<_> = k.values.iter().collect();
                known.sort_by(|a, b| b.last.cmp(&a.last).then_with(|| a.value.cmp(&b.value)));
                let novelty = Novelty {
                    key_known_since: k.since,
                    values_known: known
                        .into_iter()
                        .take(VALUES_SHOWN)
                        .map(|v| v.value.to_string())
                        .collect(),
                };
                k.values.push(Value {
                    value: value.into(),
                    last: time,
                    synced: time,
                });
                self.pairs += 1;
                Seen::New {
                    novelty,
                    learnt: time - k.since >= l.learn_for,
                }
            }
        };
        k.last = k.last.max(time);
        if k.last - k.ordered > ORDER_STEP {
            let id: Box<str> = key.into();
            self.order.remove(&(k.ordered, rule as u16, id.clone()));
            k.ordered = k.last;
            self.order.insert((k.ordered, rule as u16, id));
        }
        self.evict();
        Some(found)
    }

    /// Drops keys whose every value is forgotten at `now` (they learn again if they return),
    /// oldest first, up to the first key still remembered.
    pub fn expire(&mut self, now: i64) {
        while let Some((ordered, rule, _)) = self.order.first() {
            let forget = self
                .rules
                .get(*rule as usize)
                .map_or(0, |r| r.1.forget_after);
            if now - ordered <= forget {
                break;
            }
            let Some((_, rule, key)) = self.order.pop_first() else {
                break;
            };
            let Some(map) = self.keys.get_mut(rule as usize) else {
                continue;
            };
            match map.get_mut(&key) {
                // Seen since it was filed: filed again at its last sighting.
                Some(k) if now - k.last <= forget => {
                    k.ordered = k.last;
                    self.order.insert((k.last, rule, key));
                }
                Some(_) => {
                    if let Some(gone) = map.remove(&key) {
                        self.pairs -= gone.values.len();
                    }
                }
                None => {}
            }
        }
    }

    /// The baseline as saved with the snapshot (keys by rule name).
    pub fn snapshot(&self) -> Vec<SavedKey> {
        let mut out = Vec::new();
        for ((name, _), map) in self.rules.iter().zip(&self.keys) {
            for (key, k) in map {
                out.push(SavedKey {
                    rule: name.clone(),
                    key: key.to_string(),
                    since: k.since,
                    last: k.last,
                    values: k
                        .values
                        .iter()
                        .map(|v| SavedValue {
                            value: v.value.to_string(),
                            last: v.last,
                            synced: v.synced,
                        })
                        .collect(),
                });
            }
        }
        out.sort_by(|a, b| (&a.rule, &a.key).cmp(&(&b.rule, &b.key)));
        out
    }

    /// Continues from a snapshot, or adds a seeded baseline to what is held: a key held
    /// already keeps the earlier first event and the later sightings of each value. Keys of
    /// rules no longer configured are dropped; `max_pairs` holds.
    pub fn restore(&mut self, saved: Vec<SavedKey>) {
        for s in saved {
            let Some(rule) = self.rules.iter().position(|(n, _)| *n == s.rule) else {
                continue;
            };
            let id: Box<str> = s.key.as_str().into();
            let map = &mut self.keys[rule];
            let k = map.entry(id.clone()).or_insert_with(|| Key {
                since: s.since,
                last: s.last,
                ordered: s.last,
                values: Vec::new(),
            });
            self.order.remove(&(k.ordered, rule as u16, id.clone()));
            k.since = k.since.min(s.since);
            k.last = k.last.max(s.last);
            k.ordered = k.last;
            self.order.insert((k.ordered, rule as u16, id));
            for v in s.values {
                match k.values.iter_mut().find(|x| *x.value == *v.value) {
                    Some(x) => {
                        x.last = x.last.max(v.last);
                        x.synced = x.synced.max(v.synced);
                    }
                    None => {
                        self.pairs += 1;
                        k.values.push(Value {
                            value: v.value.into(),
                            last: v.last,
                            synced: v.synced,
                        });
                    }
                }
            }
        }
        self.evict();
    }

    /// Drops the keys seen least recently until `max_pairs` holds.
    fn evict(&mut self) {
        while self.pairs > self.max_pairs {
            let Some((_, rule, key)) = self.order.pop_first() else {
                break;
            };
            if let Some(gone) = self
                .keys
                .get_mut(rule as usize)
                .and_then(|m| m.remove(&key))
            {
                self.pairs -= gone.values.len();
                self.evicted_pairs += gone.values.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn baseline(max_pairs: usize) -> Baseline {
        let rules = vec![("region-for-principal".into(), Learning::days(14, 90))];
        Baseline::new(rules, max_pairs)
    }

    #[test]
    fn a_new_value_alerts_only_after_learning_and_once() {
        let mut b = baseline(100);
        assert_eq!(b.observe(0, "alice", "us-east-1", 0), None, "first sight");
        assert_eq!(
            b.observe(0, "alice", "eu-west-1", DAY),
            None,
            "still learning"
        );
        let n = b.observe(0, "alice", "ap-southeast-2", 20 * DAY).unwrap();
        assert_eq!(n.key_known_since, 0);
        assert_eq!(n.values_known, vec!["eu-west-1", "us-east-1"]);
        assert_eq!(
            b.observe(0, "alice", "ap-southeast-2", 21 * DAY),
            None,
            "once"
        );
        assert_eq!(b.pairs(), 3);
    }

    #[test]
    fn a_value_unseen_for_forget_after_is_new_again() {
        let mut b = baseline(100);
        b.observe(0, "alice", "us-east-1", 0);
        b.observe(0, "alice", "sa-east-1", 20 * DAY);
        b.observe(0, "alice", "us-east-1", 100 * DAY);
        assert!(b.knows(0, "alice", "sa-east-1", 100 * DAY));
        assert!(!b.knows(0, "alice", "sa-east-1", 111 * DAY));
        let again = b.observe(0, "alice", "sa-east-1", 111 * DAY).unwrap();
        assert_eq!(again.values_known, vec!["us-east-1"]);
    }

    #[test]
    fn the_least_recently_seen_key_is_evicted_first_and_counted() {
        let mut b = baseline(3);
        b.observe(0, "old", "a", 0);
        b.observe(0, "old", "b", 1);
        b.observe(0, "new", "a", 5);
        b.observe(0, "old", "c", 2); // out of order: "old" is still last seen at 2
        assert_eq!(b.pairs(), 1, "old's three pairs went for the fourth");
        assert_eq!(b.evicted_pairs, 3);
        assert!(b.knows(0, "new", "a", 5));
        assert!(!b.knows(0, "old", "a", 5));
        for i in 0..1000 {
            b.observe(0, &format!("k{i}"), "v", 10 + i);
        }
        assert_eq!(b.pairs(), 3, "flat at max_pairs");
        assert_eq!(b.keys(), 3);
    }

    #[test]
    fn a_seeded_baseline_merges_into_what_is_held() {
        let mut live = baseline(100);
        live.observe(0, "alice", "us-east-1", 30 * DAY);
        let mut seed = baseline(100);
        seed.observe(0, "alice", "us-east-1", 0);
        seed.observe(0, "alice", "eu-west-1", 10 * DAY);
        seed.observe(0, "bob", "us-east-1", 5 * DAY);
        live.restore(seed.snapshot());
        assert_eq!((live.keys(), live.pairs()), (2, 3));
        let n = live.observe(0, "alice", "sa-east-1", 31 * DAY).unwrap();
        assert_eq!(n.key_known_since, 0, "the earlier first event");
        assert_eq!(
            n.values_known,
            vec!["us-east-1", "eu-west-1"],
            "the later sighting first"
        );
        let mut small = baseline(3);
        small.restore(live.snapshot());
        assert_eq!(small.pairs(), 3, "max_pairs holds");
        assert!(
            !small.knows(0, "bob", "us-east-1", 31 * DAY),
            "the key seen least recently went"
        );
        assert_eq!(small.evicted_pairs, 1);
    }

    #[test]
    fn with_a_shared_store_known_pairs_are_touched_every_third_of_forget_after() {
        let mut b = baseline(100).shared(true);
        let touch = |b: &mut Baseline, day: i64| match b.record(0, "alice", "us-east-1", day * DAY)
        {
            Some(Seen::Known { touch }) => touch,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            b.record(0, "alice", "us-east-1", 0),
            Some(Seen::New { learnt: false, .. })
        ));
        assert!(!touch(&mut b, 10));
        assert!(touch(&mut b, 31), "30 days since it was written");
        assert!(!touch(&mut b, 40));
        assert!(touch(&mut b, 62));
        let mut local = baseline(100);
        local.record(0, "alice", "us-east-1", 0);
        assert_eq!(
            local.record(0, "alice", "us-east-1", 80 * DAY),
            Some(Seen::Known { touch: false }),
            "no store, no touch"
        );
    }

    #[test]
    fn forgotten_keys_expire_and_a_snapshot_restores_the_rest() {
        let mut b = baseline(100);
        b.observe(0, "gone", "us-east-1", 0);
        b.observe(0, "kept", "us-east-1", 50 * DAY);
        b.expire(95 * DAY);
        assert_eq!(b.keys(), 1);
        let saved = b.snapshot();
        let mut again = baseline(100);
        again.restore(saved.clone());
        assert_eq!(again.snapshot(), saved);
        assert!(again.knows(0, "kept", "us-east-1", 60 * DAY));
        let n = again.observe(0, "kept", "eu-west-1", 70 * DAY).unwrap();
        assert_eq!(n.key_known_since, 50 * DAY);
        let mut other = Baseline::new(Vec::new(), 100);
        other.restore(saved);
        assert_eq!(other.keys(), 0, "a rule no longer configured is dropped");
    }
}
