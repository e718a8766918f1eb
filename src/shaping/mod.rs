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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Severity};
use crate::event::format_utc_secs;
use limiter::KeyedLimiter;

/// A field that can make up a group or rate-limit key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyField {
    Rule,
    Account,
    Region,
    Principal,
    EventSource,
    EventName,
    Severity,
}

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

/// Shaping settings (one set per rule; `[shaping]` is the default).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub group_by: Vec<KeyField>,
    pub window_secs: i64,
    pub limit_per: Vec<KeyField>,
    pub burst: u32,
    pub per_minute: u32,
    pub digest_every_secs: i64,
    pub escalate: Option<(u64, Severity)>,
    /// Most open windows / digest keys / limiter keys held at once.
    pub max_keys: usize,
    /// Most event ids listed in one update.
    pub max_ids: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            group_by: vec![
                KeyField::Rule,
                KeyField::Account,
                KeyField::Region,
                KeyField::Principal,
            ],
            window_secs: 15 * 60,
            limit_per: vec![KeyField::Region, KeyField::Principal],
            burst: 5,
            per_minute: 1,
            digest_every_secs: 10 * 60,
            escalate: Some((100, Severity::Critical)),
            max_keys: 100_000,
            max_ids: 50,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// An open aggregation window for one group key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Window {
    /// The group key as shown (`group_by` fields joined by `|`).
    shown: String,
    closes_at: i64,
    /// The alert that opened the key (its fields head the update).
    head: Alert,
    count: u64,
    /// All events of the key since it went quiet last (for escalation).
    total: u64,
    first_seen: Option<i64>,
    last_seen: i64,
    names: Tally,
    ids: Vec<String>,
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

/// The shaping state in a serializable form ([`Shaper::snapshot`]): open windows, digest
/// counters, and each rate-limit key's budget (its GCRA theoretical arrival time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    now: i64,
    next_digest: Option<i64>,
    windows: Vec<(String, Window)>,
    digests: Vec<(String, Digest)>,
    limiters: Vec<(String, Vec<(String, i64)>)>,
    stats: Stats,
}

/// The shaping stage. Synchronous; `now` (seconds since the epoch) is always passed in.
pub struct Shaper {
    default: Settings,
    per_rule: HashMap<String, Settings>,
    windows: HashMap<String, Window>,
    /// Open windows by closing time.
    closing: BTreeSet<(i64, String)>,
    limiters: HashMap<String, KeyedLimiter>,
    digests: HashMap<String, Digest>,
    next_digest: Option<i64>,
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
            closing: BTreeSet::new(),
            limiters: HashMap::new(),
            digests: HashMap::new(),
            next_digest: None,
            now: i64::MIN,
            stats: Stats::default(),
        }
    }

    fn settings(&self, rule: &str) -> &Settings {
        self.per_rule.get(rule).unwrap_or(&self.default)
    }

    /// Takes one siem alert at time `now`; appends what is due to `out`.
    pub fn push(&mut self, alert: Alert, now: i64, out: &mut Vec<NotifyItem>) {
        self.advance(now, out);
        self.stats.alerts_in += 1;
        let s = self.settings(&alert.rule).clone();
        let shown = key_of(&alert, &s.group_by);
        // Windows are per rule (rules may shape differently), whatever `group_by` says.
        let gkey = format!("{}#{shown}", alert.rule);
        if let Some(w) = self.windows.get_mut(&gkey) {
            w.count += 1;
            w.total += 1;
            w.first_seen.get_or_insert(now);
            w.last_seen = now;
            w.names.add(alert.event_name.as_deref(), 1);
            if w.ids.len() < s.max_ids {
                if let Some(id) = &alert.event_id {
                    w.ids.push(id.clone());
                }
            }
            return;
        }
        if self.windows.len() >= s.max_keys {
            self.evict_window(out);
        }
        let item = NotifyItem {
            kind: Kind::Alert,
            events: 1,
            group_key: shown.clone(),
            first_seen: secs(now),
            last_seen: secs(now),
            suppressed: None,
            event_names: vec![],
            event_ids: vec![],
            accounts: vec![],
            alert: alert.clone(),
        };
        let now = self.now;
        let closes_at = now.saturating_add(s.window_secs);
        self.windows.insert(
            gkey.clone(),
            Window {
                shown,
                closes_at,
                head: alert,
                count: 0,
                total: 1,
                first_seen: None,
                last_seen: now,
                names: Tally::default(),
                ids: Vec::new(),
            },
        );
        self.closing.insert((closes_at, gkey));
        self.limit(item, now, out);
    }

    /// Lets time pass: closes due windows and emits due digests.
    pub fn advance(&mut self, now: i64, out: &mut Vec<NotifyItem>) {
        self.now = self.now.max(now);
        while let Some((at, key)) = self.closing.first().cloned() {
            if at > self.now {
                break;
            }
            self.closing.pop_first();
            if let Some(w) = self.take_window(&key, at) {
                self.finish(&key, w, true, out);
            }
        }
        let every = self.default.digest_every_secs;
        match self.next_digest {
            None => self.next_digest = Some(self.now.saturating_add(every)),
            Some(at) if self.now >= at => {
                self.emit_digests(out);
                self.next_digest = Some(self.now.saturating_add(every));
            }
            _ => {}
        }
    }

    /// End of input: closes every window and emits every digest.
    pub fn flush(&mut self, out: &mut Vec<NotifyItem>) {
        self.closing.clear();
        let mut all: Vec<(String, Window)> = self.windows.drain().collect();
        all.sort_by(|a, b| (a.1.closes_at, &a.0).cmp(&(b.1.closes_at, &b.0)));
        for (key, w) in all {
            self.finish(&key, w, false, out);
        }
        self.emit_digests(out);
    }

    /// Removes the window of `key` if `at` is its current closing time (else the queue
    /// entry is stale: the window was renewed or evicted).
    fn take_window(&mut self, key: &str, at: i64) -> Option<Window> {
        if self.windows.get(key)?.closes_at == at {
            self.windows.remove(key)
        } else {
            None
        }
    }

    /// Emits a closing window's update (if it aggregated anything); `renew` keeps a busy key
    /// aggregating into the next window.
    fn finish(&mut self, key: &str, mut w: Window, renew: bool, out: &mut Vec<NotifyItem>) {
        if w.count == 0 {
            return; // quiet: the key resets, the next alert goes out at once
        }
        let s = self.settings(&w.head.rule).clone();
        let mut alert = w.head.clone();
        if let Some((n, to)) = s.escalate {
            if w.total >= n && to > alert.severity {
                alert.severity = to;
            }
        }
        let item = NotifyItem {
            kind: Kind::Update,
            events: w.count,
            group_key: w.shown.clone(),
            first_seen: secs(w.first_seen.unwrap_or(w.last_seen)),
            last_seen: secs(w.last_seen),
            suppressed: None,
            event_names: w.names.top(),
            event_ids: std::mem::take(&mut w.ids),
            accounts: vec![],
            alert,
        };
        if renew {
            let closes_at = w.closes_at.saturating_add(s.window_secs);
            let next = Window {
                closes_at,
                count: 0,
                first_seen: None,
                names: Tally::default(),
                ids: Vec::new(),
                ..w
            };
            self.windows.insert(key.to_string(), next);
            self.closing.insert((closes_at, key.to_string()));
        }
        self.limit(item, self.now, out);
    }

    /// The table is full: the window closing soonest is flushed now.
    fn evict_window(&mut self, out: &mut Vec<NotifyItem>) {
        while let Some((at, key)) = self.closing.pop_first() {
            if let Some(w) = self.take_window(&key, at) {
                self.stats.evicted += 1;
                self.finish(&key, w, false, out);
                return;
            }
        }
    }

    fn limit(&mut self, item: NotifyItem, now: i64, out: &mut Vec<NotifyItem>) {
        let s = self.settings(&item.alert.rule).clone();
        let lkey = key_of(&item.alert, &s.limit_per);
        let limiter = self
            .limiters
            .entry(item.alert.rule.clone())
            .or_insert_with(|| KeyedLimiter::new(s.burst, s.per_minute, s.max_keys));
        if limiter.allow(&lkey, now) {
            self.stats.items_out += 1;
            out.push(item);
            return;
        }
        self.stats.suppressed += item.events;
        let dkey = format!("{}#{}", item.alert.rule, lkey);
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
        let mut all: Vec<(String, Digest)> = self.digests.drain().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
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
        let mut windows: Vec<_> = self
            .windows
            .iter()
            .map(|(k, w)| (k.clone(), w.clone()))
            .collect();
        windows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut digests: Vec<_> = self
            .digests
            .iter()
            .map(|(k, d)| (k.clone(), d.clone()))
            .collect();
        digests.sort_by(|a, b| a.0.cmp(&b.0));
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
            sh.closing.insert((w.closes_at, k.clone()));
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
