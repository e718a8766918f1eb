//! Alert shaping: the **notify** stream people receive, built from the **siem** stream (every
//! alert) in three steps:
//!
//! 1. **aggregate**: alerts with the same group key within `window` become one. The first
//!    goes out at once (`kind = "alert"`); the rest are counted and one `kind = "update"` goes
//!    out when the window closes. A key that stays busy gets one update per window.
//! 2. **rate limit** (`governor`, keyed by region and principal by default): items over the
//!    budget are suppressed, and counted.
//! 3. **digest**: every `digest_every`, one `kind = "digest"` per key that had suppressions.
//!
//! Nothing disappears: every notify item carries `events`, the number of siem alerts it
//! accounts for, and over a finished run their sum equals the number of siem alerts (a
//! property test checks it). Tables are bounded; an evicted window or digest is flushed
//! (emitted early), never dropped. Time is passed in: replay shapes on event time.

mod limiter;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::event::format_utc_secs;
use limiter::KeyedLimiter;

pub use crate::config::{KeyField, ShapingSettings as Settings};

fn field(a: &Alert, f: KeyField) -> &str {
    fn o(s: &Option<String>) -> &str {
        s.as_deref().unwrap_or("-")
    }
    match f {
        KeyField::Rule => &a.rule,
        KeyField::Account => o(&a.account),
        KeyField::Region => o(&a.region),
        KeyField::Principal => o(&a.principal),
        KeyField::EventSource => o(&a.event_source),
        KeyField::EventName => o(&a.event_name),
        KeyField::Severity => a.severity.as_str(),
        KeyField::Origin => a
            .identity
            .as_deref()
            .and_then(|i| i.origin.as_deref())
            .unwrap_or_else(|| o(&a.principal)),
    }
}

fn key_of(a: &Alert, fields: &[KeyField]) -> String {
    let mut k = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            k.push('|');
        }
        k.push_str(field(a, *f));
    }
    k
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Alert,
    Update,
    Digest,
}

/// One item of the notify stream: the alert's fields plus what shaping adds.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyItem {
    #[serde(flatten)]
    pub alert: Alert,
    pub kind: Kind,
    /// How many siem alerts this item accounts for.
    pub events: u64,
    pub group_key: String,
    pub first_seen: String,
    pub last_seen: String,
    /// Digests: how many were suppressed (equals `events`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    /// Updates and digests: distinct event names (most frequent first, capped).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_names: Vec<String>,
    /// Updates: event ids (capped at `max_ids`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
    /// Digests: accounts (most frequent first, capped).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
}

/// Counts of distinct values, capped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Tally {
    counts: BTreeMap<String, u64>,
}

const TALLY_CAP: usize = 20;

impl Tally {
    fn add(&mut self, v: Option<&str>, n: u64) {
        let v = v.unwrap_or("-");
        if let Some(c) = self.counts.get_mut(v) {
            *c += n;
        } else if self.counts.len() < TALLY_CAP {
            self.counts.insert(v.to_string(), n);
        } else {
            *self.counts.entry("(other)".to_string()).or_insert(0) += n;
        }
    }
    fn top(&self) -> Vec<String> {
        let mut v: Vec<_> = self.counts.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.into_iter().map(|(k, n)| format!("{k} ({n})")).collect()
    }
}

/// An open aggregation window for one group key. Kept small (most keys see one alert and go
/// quiet): the details live in `busy`, only once a second alert arrives.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Window {
    closes_at: i64,
    /// All events of the key since it went quiet last (for escalation).
    total: u64,
    busy: Option<Box<Busy>>,
}

/// What a window aggregated (everything after the alert that went out at once).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Busy {
    /// The first aggregated alert: its fields head the update.
    head: Alert,
    count: u64,
    first_seen: i64,
    last_seen: i64,
    names: Tally,
    ids: Vec<String>,
}

/// A 64-bit key for a table (collisions need ~2^32 keys; one would merge two keys' counts,
/// never lose them).
fn hash_key(rule: &str, shown: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(rule.as_bytes());
    h.update(b"#");
    h.update(shown.as_bytes());
    h.digest()
}

/// Suppressed counts for one rate-limit key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Digest {
    shown: String,
    head: Alert,
    events: u64,
    first_seen: i64,
    last_seen: i64,
    names: Tally,
    accounts: Tally,
}

/// Counters, for the summary and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub alerts_in: u64,
    pub items_out: u64,
    pub suppressed: u64,
    /// Windows or digests emitted early because a table was full.
    pub evicted: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, s: Stats) {
        self.alerts_in += s.alerts_in;
        self.items_out += s.items_out;
        self.suppressed += s.suppressed;
        self.evicted += s.evicted;
    }
}

/// The shaping state in a serializable form ([`Shaper::snapshot`]): open windows, digest
/// counters, and each rate-limit key's budget (its GCRA theoretical arrival time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    now: i64,
    next_digest: Option<i64>,
    windows: Vec<(u64, Window)>,
    digests: Vec<(u64, Digest)>,
    limiters: Vec<(String, Vec<(u64, i64)>)>,
    stats: Stats,
}

/// The shaping stage. Synchronous; `now` (seconds since the epoch) is always passed in.
pub struct Shaper {
    default: Settings,
    per_rule: HashMap<String, Settings>,
    windows: HashMap<u64, Window>,
    /// Open windows by closing time (a heap: 16 bytes a window; stale entries are skipped).
    closing: BinaryHeap<Reverse<(i64, u64)>>,
    limiters: HashMap<String, KeyedLimiter>,
    digests: HashMap<u64, Digest>,
    next_digest: Option<i64>,
    /// Digests fall on multiples of `digest_every` (`backtest`: the same digests whichever
    /// alert came first, so partial runs add up to a whole one).
    aligned_digests: bool,
    /// The latest time seen.
    now: i64,
    pub stats: Stats,
}

fn secs(t: i64) -> String {
    format_utc_secs(t)
}

impl Shaper {
    pub fn new(default: Settings, per_rule: HashMap<String, Settings>) -> Self {
        Shaper {
            default,
            per_rule,
            windows: HashMap::new(),
            closing: BinaryHeap::new(),
            limiters: HashMap::new(),
            digests: HashMap::new(),
            next_digest: None,
            aligned_digests: false,
            now: i64::MIN,
            stats: Stats::default(),
        }
    }

    /// A shaper with `[shaping]` as the default and each custom rule's override.
    pub fn for_rules(default: &Settings, rules: &[crate::config::Rule]) -> Self {
        let per_rule = rules
            .iter()
            .filter_map(|r| Some((r.id.clone(), r.shaping.clone()?)))
            .collect();
        Shaper::new(default.clone(), per_rule)
    }

    /// Digests on multiples of `digest_every` instead of every `digest_every` from the first
    /// alert.
    pub fn aligned_digests(mut self) -> Self {
        self.aligned_digests = true;
        self
    }

    /// The same settings, continuing from a snapshot when there is one.
    pub fn restoring(self, snap: Option<Snapshot>) -> Self {
        match snap {
            Some(snap) => Shaper::restore(self.default, self.per_rule, snap),
            None => self,
        }
    }

    /// An empty shaper with the same settings (the backfill's own, on the archive's time),
    /// continuing from `snap` when given.
    pub fn sibling(&self, snap: Option<Snapshot>) -> Shaper {
        let (default, per_rule) = (self.default.clone(), self.per_rule.clone());
        let mut sh = match snap {
            Some(snap) => Shaper::restore(default, per_rule, snap),
            None => Shaper::new(default, per_rule),
        };
        sh.aligned_digests = self.aligned_digests;
        sh
    }

    fn settings(&self, rule: &str) -> &Settings {
        self.per_rule.get(rule).unwrap_or(&self.default)
    }

    /// Takes one siem alert at time `now`; appends what is due to `out`.
    pub fn push(&mut self, alert: Alert, now: i64, out: &mut Vec<NotifyItem>) {
        self.advance(now, out);
        self.stats.alerts_in += 1;
        let s = self.settings(&alert.rule);
        let (max_ids, window_secs, max_keys) = (s.max_ids, s.window_secs, s.max_keys);
        let shown = key_of(&alert, &s.group_by);
        // Windows are per rule (rules may shape differently), whatever `group_by` says.
        let gkey = hash_key(&alert.rule, &shown);
        if let Some(w) = self.windows.get_mut(&gkey) {
            w.total += 1;
            match &mut w.busy {
                Some(b) => {
                    b.count += 1;
                    b.last_seen = now;
                    b.names.add(alert.event_name.as_deref(), 1);
                    if b.ids.len() < max_ids {
                        b.ids.extend(alert.event_id.clone());
                    }
                }
                None => {
                    let mut names = Tally::default();
                    names.add(alert.event_name.as_deref(), 1);
                    let ids = alert.event_id.iter().take(max_ids).cloned().collect();
                    w.busy = Some(Box::new(Busy {
                        head: alert,
                        count: 1,
                        first_seen: now,
                        last_seen: now,
                        names,
                        ids,
                    }));
                }
            }
            return;
        }
        if self.windows.len() >= max_keys {
            self.evict_window(out);
        }
        let item = NotifyItem {
            kind: Kind::Alert,
            events: 1,
            group_key: shown,
            first_seen: secs(now),
            last_seen: secs(now),
            suppressed: None,
            event_names: vec![],
            event_ids: vec![],
            accounts: vec![],
            alert,
        };
        let closes_at = self.now.saturating_add(window_secs);
        self.windows.insert(
            gkey,
            Window {
                closes_at,
                total: 1,
                busy: None,
            },
        );
        self.closing.push(Reverse((closes_at, gkey)));
        self.limit(item, now, out);
    }

    /// Lets time pass: closes due windows and emits due digests.
    pub fn advance(&mut self, now: i64, out: &mut Vec<NotifyItem>) {
        self.now = self.now.max(now);
        while let Some(&Reverse((at, key))) = self.closing.peek() {
            if at > self.now {
                break;
            }
            self.closing.pop();
            if let Some(w) = self.take_window(key, at) {
                self.finish(key, w, true, out);
            }
        }
        let every = self.default.digest_every_secs;
        let next = match self.aligned_digests {
            true => (self.now.div_euclid(every.max(1)) + 1).saturating_mul(every.max(1)),
            false => self.now.saturating_add(every),
        };
        match self.next_digest {
            None => self.next_digest = Some(next),
            Some(at) if self.now >= at => {
                self.emit_digests(out);
                self.next_digest = Some(next);
            }
            _ => {}
        }
    }

    /// End of input: closes every window and emits every digest.
    pub fn flush(&mut self, out: &mut Vec<NotifyItem>) {
        self.closing.clear();
        let mut all: Vec<(u64, Window)> = self.windows.drain().collect();
        all.sort_by_key(|(k, w)| (w.closes_at, *k));
        for (key, w) in all {
            self.finish(key, w, false, out);
        }
        self.emit_digests(out);
    }

    /// Removes the window of `key` if `at` is its current closing time (else the queue
    /// entry is stale: the window was renewed or evicted).
    fn take_window(&mut self, key: u64, at: i64) -> Option<Window> {
        if self.windows.get(&key)?.closes_at == at {
            self.windows.remove(&key)
        } else {
            None
        }
    }

    /// Emits a closing window's update (if it aggregated anything); `renew` keeps a busy key
    /// aggregating into the next window.
    fn finish(&mut self, key: u64, w: Window, renew: bool, out: &mut Vec<NotifyItem>) {
        let Some(b) = w.busy else {
            return; // quiet: the key resets, the next alert goes out at once
        };
        let s = self.settings(&b.head.rule);
        let (escalate, window_secs) = (s.escalate, s.window_secs);
        let shown = key_of(&b.head, &s.group_by);
        let mut alert = b.head;
        if let Some((n, to)) = escalate {
            if w.total >= n && to > alert.severity {
                alert.severity = to;
            }
        }
        let item = NotifyItem {
            kind: Kind::Update,
            events: b.count,
            group_key: shown,
            first_seen: secs(b.first_seen),
            last_seen: secs(b.last_seen),
            suppressed: None,
            event_names: b.names.top(),
            event_ids: b.ids,
            accounts: vec![],
            alert,
        };
        if renew {
            let closes_at = w.closes_at.saturating_add(window_secs);
            self.windows.insert(
                key,
                Window {
                    closes_at,
                    total: w.total,
                    busy: None,
                },
            );
            self.closing.push(Reverse((closes_at, key)));
        }
        self.limit(item, self.now, out);
    }

    /// The table is full: the window closing soonest is flushed now.
    fn evict_window(&mut self, out: &mut Vec<NotifyItem>) {
        while let Some(Reverse((at, key))) = self.closing.pop() {
            if let Some(w) = self.take_window(key, at) {
                self.stats.evicted += 1;
                self.finish(key, w, false, out);
                return;
            }
        }
    }

    fn limit(&mut self, item: NotifyItem, now: i64, out: &mut Vec<NotifyItem>) {
        let s = self.settings(&item.alert.rule).clone();
        let lkey = key_of(&item.alert, &s.limit_per);
        let lhash = hash_key(&item.alert.rule, &lkey);
        let limiter = self
            .limiters
            .entry(item.alert.rule.clone())
            .or_insert_with(|| KeyedLimiter::new(s.burst, s.per_minute, s.max_keys));
        if limiter.allow(lhash, now) {
            self.stats.items_out += 1;
            out.push(item);
            return;
        }
        self.stats.suppressed += item.events;
        let dkey = lhash;
        if !self.digests.contains_key(&dkey) && self.digests.len() >= s.max_keys {
            // Full: emit the digests now rather than drop counts.
            self.stats.evicted += self.digests.len() as u64;
            self.emit_digests(out);
        }
        let d = self.digests.entry(dkey).or_insert_with(|| Digest {
            shown: lkey,
            head: item.alert.clone(),
            events: 0,
            first_seen: now,
            last_seen: now,
            names: Tally::default(),
            accounts: Tally::default(),
        });
        d.events += item.events;
        d.last_seen = d.last_seen.max(now);
        d.first_seen = d.first_seen.min(now);
        d.names.add(item.alert.event_name.as_deref(), item.events);
        d.accounts.add(item.alert.account.as_deref(), item.events);
    }

    fn emit_digests(&mut self, out: &mut Vec<NotifyItem>) {
        let mut all: Vec<(u64, Digest)> = self.digests.drain().collect();
        all.sort_by(|a, b| a.1.shown.cmp(&b.1.shown));
        for (_, d) in all {
            self.stats.items_out += 1;
            out.push(NotifyItem {
                kind: Kind::Digest,
                events: d.events,
                group_key: d.shown,
                first_seen: secs(d.first_seen),
                last_seen: secs(d.last_seen),
                suppressed: Some(d.events),
                event_names: d.names.top(),
                event_ids: vec![],
                accounts: d.accounts.top(),
                alert: d.head,
            });
        }
    }

    /// The shaping state, to survive a restart without re-alerting or losing counts.
    pub fn snapshot(&self) -> Snapshot {
        let mut windows: Vec<_> = self.windows.iter().map(|(k, w)| (*k, w.clone())).collect();
        windows.sort_by_key(|a| a.0);
        let mut digests: Vec<_> = self.digests.iter().map(|(k, d)| (*k, d.clone())).collect();
        digests.sort_by_key(|a| a.0);
        let mut limiters: Vec<_> = self
            .limiters
            .iter()
            .map(|(r, l)| (r.clone(), l.snapshot()))
            .collect();
        limiters.sort();
        Snapshot {
            now: self.now,
            next_digest: self.next_digest,
            windows,
            digests,
            limiters,
            stats: self.stats,
        }
    }

    /// A shaper that continues from `snap` (settings come from the config, not the snapshot).
    pub fn restore(default: Settings, per_rule: HashMap<String, Settings>, snap: Snapshot) -> Self {
        let mut sh = Shaper::new(default, per_rule);
        sh.now = snap.now;
        sh.next_digest = snap.next_digest;
        sh.stats = snap.stats;
        for (k, w) in snap.windows {
            sh.closing.push(Reverse((w.closes_at, k)));
            sh.windows.insert(k, w);
        }
        sh.digests = snap.digests.into_iter().collect();
        for (rule, keys) in snap.limiters {
            let s = sh.settings(&rule).clone();
            let mut l = KeyedLimiter::new(s.burst, s.per_minute, s.max_keys);
            l.restore(&keys, sh.now);
            sh.limiters.insert(rule, l);
        }
        sh
    }

    /// Keys held (windows, digests, limiter keys), for memory figures.
    pub fn keys_held(&self) -> usize {
        self.windows.len()
            + self.digests.len()
            + self.limiters.values().map(KeyedLimiter::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests;
