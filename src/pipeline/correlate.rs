//! Sigma correlation windows, on event time, with bounded state that the checkpoint keeps.
//!
//! The judge (any thread) turns each match of a rule that a correlation references into a
//! [`Hit`]: which correlation, which of its rules, the event's time, its group-by values and
//! the alert it would raise. The pipeline, in input order and after dedup, hands each hit to
//! the [`Correlator`]: the hit joins its group's window, and the window *ending at that event*
//! (`[t − timespan, t]`) is measured, and for an event that arrives after later ones, each
//! window ending at one of those that it falls in: events (event_count), distinct values (value_count),
//! distinct rules (temporal), or the rules in order (temporal_ordered). When the condition
//! holds, the correlation alerts with that event's fields and the group starts over.
//!
//! Bounds: a group keeps at most `count + 1` entries (one per value for value_count, one per
//! rule for temporal, 16 per rule for temporal_ordered), entries older than the group's newest
//! minus the timespan are dropped, and a correlation keeps at most [`MAX_GROUPS`] groups (those
//! quiet for a timespan go first, then the least recently seen).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, CorrelationInfo};
use crate::rules::sigma::correlation::{Correlation, Kind, Op};
use crate::rules::sigma::Rule;

/// Groups kept per correlation rule.
pub const MAX_GROUPS: usize = 10_000;
/// Entries kept per rule in a temporal_ordered group.
const ORDERED_PER_RULE: usize = 16;
/// Event ids an alert lists.
const EVIDENCE: usize = 20;
/// Separates group-by values in a group's key.
const SEP: char = '\u{1f}';

/// A match that feeds a correlation, from the judge.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The correlation rule's index in the Sigma rules.
    pub corr: usize,
    /// Which of its referenced rules matched.
    pub slot: usize,
    /// The event's time (or the judge's `now` without one), in seconds.
    pub time: i64,
    /// The group-by values, as one key; `None` when the event lacks one (it does not count).
    pub group: Option<String>,
    /// value_count's field, as text.
    pub value: Option<String>,
    /// The alert the correlation raises if this event completes it.
    pub alert: Alert,
}

/// A group's key from its values (text lowercased, as Sigma compares; JSON text for the
/// others), or `None` when a value is missing or null.
pub fn group_key(values: &[Option<&serde_json::Value>]) -> Option<String> {
    let mut key = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.push_str(&value_text(v.as_ref()?)?);
    }
    Some(key)
}

/// A value as text (strings lowercased), `None` for null.
pub fn value_text(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.to_lowercase()),
        other => Some(other.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(rename = "t")]
    pub time: i64,
    #[serde(rename = "s")]
    pub slot: u16,
    /// value_count's value, hashed.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    #[serde(rename = "id", default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// A group's entries, in event-time order (the newest is always kept: [`bound`]).
type Group = Vec<Entry>;

/// The newest event time of a group.
fn newest(g: &[Entry]) -> Option<i64> {
    g.last().map(|e| e.time)
}

/// What a correlation's windows measure.
struct Spec {
    /// The correlation rule's name and [`Correlation::fingerprint`]: saved state is kept
    /// only for the same rule meaning the same thing.
    key: String,
    kind: Kind,
    op: Op,
    count: f64,
    span: i64,
    rules: usize,
    group_by: Vec<String>,
}

struct Window {
    spec: Spec,
    groups: HashMap<String, Group>,
}

/// The counters of the correlations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorrelationStats {
    /// Matches that joined a window.
    pub hits: u64,
    /// Matches without a group-by value (they do not count).
    pub no_group: u64,
    /// Matches older than their group's window (events far out of order).
    pub late: u64,
    /// Groups dropped to stay within [`MAX_GROUPS`] while still in a window.
    pub evicted: u64,
    /// Correlation alerts raised.
    pub fired: u64,
}

/// Every correlation's windows.
#[derive(Default)]
pub struct Correlator {
    /// By the correlation rule's index in the Sigma rules.
    windows: HashMap<usize, Window>,
    pub stats: CorrelationStats,
}

/// Saved windows: per correlation (by key), its groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub rules: Vec<SavedRule>,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRule {
    pub key: String,
    pub groups: Vec<(String, Vec<Entry>)>,
}

fn hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

impl Correlator {
    /// Windows for the correlation rules among `rules`.
    pub fn new(rules: &[Rule]) -> Self {
        let mut windows = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            if let Some(c) = r.correlation.as_deref() {
                windows.insert(i, window(r, c, rules));
            }
        }
        Correlator {
            windows,
            stats: CorrelationStats::default(),
        }
    }

    /// New rules (a reload): windows of the rules that mean the same carry over.
    pub fn replaced(&self, rules: &[Rule]) -> Self {
        let mut next = Correlator::new(rules);
        next.restore(&self.snapshot());
        next.stats = self.stats;
        next
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut rules: Vec<SavedRule> = self
            .windows
            .values()
            .filter(|w| !w.groups.is_empty())
            .map(|w| {
                let mut groups: Vec<(String, Vec<Entry>)> = w
                    .groups
                    .iter()
                    .map(|(k, g)| (k.clone(), g.clone()))
                    .collect();
                groups.sort_by(|a, b| a.0.cmp(&b.0));
                SavedRule {
                    key: w.spec.key.clone(),
                    groups,
                }
            })
            .collect();
        rules.sort_by(|a, b| a.key.cmp(&b.key));
        Snapshot { rules }
    }

    /// Continues from saved windows: those of rules no longer loaded (or changed) are dropped,
    /// and every group is held to the bounds again.
    pub fn restore(&mut self, snap: &Snapshot) {
        for w in self.windows.values_mut() {
            let Some(saved) = snap.rules.iter().find(|s| s.key == w.spec.key) else {
                continue;
            };
            for (k, entries) in saved.groups.iter().take(MAX_GROUPS) {
                let mut g = Group::new();
                for e in entries.iter().filter(|e| (e.slot as usize) < w.spec.rules) {
                    insert(&mut g, e.clone());
                }
                bound(&w.spec, &mut g);
                if !g.is_empty() {
                    w.groups.insert(k.clone(), g);
                }
            }
        }
    }

    /// Takes one hit; returns the correlation's alert when this event completes it.
    pub fn hit(&mut self, hit: Hit) -> Option<Alert> {
        let w = self.windows.get_mut(&hit.corr)?;
        let Some(key) = hit.group else {
            self.stats.no_group += 1;
            return None;
        };
        if !w.groups.contains_key(&key) && w.groups.len() >= MAX_GROUPS {
            self.stats.evicted += make_room(w, hit.time);
        }
        let Window { spec, groups } = w;
        let g = groups.entry(key.clone()).or_default();
        if newest(g).is_some_and(|t| hit.time < t - spec.span) {
            self.stats.late += 1;
            return None;
        }
        self.stats.hits += 1;
        insert(
            g,
            Entry {
                time: hit.time,
                slot: hit.slot as u16,
                value: hit.value.as_deref().map(hash),
                event_id: hit.alert.event_id.clone(),
            },
        );
        // The window ending at this event; and, for an event that arrived after later ones
        // (CloudTrail delivers out of order), each window ending at one of those that it
        // falls in, as they would have been measured had it come in order.
        let ends = std::iter::once(hit.time).chain(
            g.iter()
                .map(|e| e.time)
                .filter(|&t| t > hit.time && t <= hit.time + spec.span),
        );
        let fired = ends
            .map(|end| measure(spec, g, end - spec.span, end))
            .find(|(metric, _)| spec.op.holds(*metric, spec.count));
        let Some((metric, in_window)) = fired else {
            bound(spec, g);
            return None;
        };
        let first = in_window.iter().map(|&i| g[i].time).min();
        let ids: Vec<String> = in_window
            .iter()
            .filter_map(|&i| g[i].event_id.clone())
            .take(EVIDENCE)
            .collect();
        groups.remove(&key);
        self.stats.fired += 1;
        Some(finish(hit.alert, spec, &key, metric, first, ids))
    }
}

fn window(r: &Rule, c: &Correlation, rules: &[Rule]) -> Window {
    let spec = Spec {
        key: format!("{}|{}", r.rule, c.fingerprint(rules)),
        kind: c.kind,
        op: c.op,
        count: c.count,
        span: c.timespan_secs,
        rules: c.slots.len().max(1),
        group_by: c.group_by.clone(),
    };
    Window {
        spec,
        groups: HashMap::new(),
    }
}

fn insert(g: &mut Group, e: Entry) {
    let at = g.partition_point(|x| x.time <= e.time);
    g.insert(at, e);
}

/// Drops what no window can need any more, and holds the group to its bound.
fn bound(spec: &Spec, g: &mut Group) {
    let Some(oldest) = newest(g).map(|t| t - spec.span) else {
        return;
    };
    g.retain(|e| e.time >= oldest);
    // Enough to tell every count up to the threshold from one above it.
    let cap = spec.count.floor() as usize + 1;
    match spec.kind {
        Kind::EventCount => {
            let mut n = 0;
            keep_newest(g, |_| {
                n += 1;
                n <= cap
            });
        }
        Kind::ValueCount => {
            // The newest entry of each of the newest `cap` values.
            let mut seen = std::collections::HashSet::new();
            keep_newest(g, |e| seen.len() < cap && seen.insert(e.value));
        }
        Kind::Temporal | Kind::TemporalOrdered => {
            let per = match spec.kind {
                Kind::Temporal => 1,
                _ => ORDERED_PER_RULE,
            };
            let mut n = vec![0usize; spec.rules];
            keep_newest(g, |e| match n.get_mut(e.slot as usize) {
                Some(k) if *k < per => {
                    *k += 1;
                    true
                }
                _ => false,
            });
        }
    }
}

/// Keeps the entries `keep` accepts, asked from the newest to the oldest.
fn keep_newest(g: &mut Group, mut keep: impl FnMut(&Entry) -> bool) {
    let mut kept: Group = g.drain(..).rev().filter(|e| keep(e)).collect();
    kept.reverse();
    *g = kept;
}

/// The metric of the window `[from, to]`, and the entries that made it.
fn measure(spec: &Spec, entries: &[Entry], from: i64, to: i64) -> (u64, Vec<usize>) {
    let rules = spec.rules;
    let inside: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].time >= from && entries[i].time <= to)
        .collect();
    match spec.kind {
        Kind::EventCount => (inside.len() as u64, inside),
        Kind::ValueCount => {
            let mut seen = std::collections::HashSet::new();
            let used: Vec<usize> = inside
                .into_iter()
                .filter(|&i| entries[i].value.is_some_and(|v| seen.insert(v)))
                .collect();
            (used.len() as u64, used)
        }
        Kind::Temporal => {
            let mut seen = vec![false; rules];
            let used: Vec<usize> = inside
                .into_iter()
                .filter(|&i| {
                    let s = entries[i].slot as usize;
                    s < rules && !std::mem::replace(&mut seen[s], true)
                })
                .collect();
            (used.len() as u64, used)
        }
        Kind::TemporalOrdered => {
            // Greedy: the earliest match of each rule after the previous one's.
            let mut next = 0;
            let mut used = Vec::new();
            for i in inside {
                if next < rules && entries[i].slot as usize == next {
                    used.push(i);
                    next += 1;
                }
            }
            (next as u64, used)
        }
    }
}

/// Empties a full correlation: groups whose window has passed (as of `now`) go first, then
/// the least recently seen. Returns how many groups still in a window were dropped.
fn make_room(w: &mut Window, now: i64) -> u64 {
    let span = w.spec.span;
    w.groups
        .retain(|_, g| newest(g).is_some_and(|t| t >= now - span));
    let mut evicted = 0;
    while w.groups.len() >= MAX_GROUPS {
        let Some(k) = w
            .groups
            .iter()
            .min_by_key(|(_, g)| newest(g))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        w.groups.remove(&k);
        evicted += 1;
    }
    evicted
}

fn finish(
    mut alert: Alert,
    w: &Spec,
    key: &str,
    metric: u64,
    first: Option<i64>,
    event_ids: Vec<String>,
) -> Alert {
    let values: Vec<&str> = match key.is_empty() {
        true => Vec::new(),
        false => key.split(SEP).collect(),
    };
    let info = CorrelationInfo {
        kind: w.kind.name().to_string(),
        group: w
            .group_by
            .iter()
            .zip(values.iter().chain(std::iter::repeat(&"")))
            .map(|(f, v)| (f.clone(), v.to_string()))
            .collect(),
        metric,
        condition: format!("{} {}", w.op.name(), w.count),
        timespan_seconds: w.span,
        window_start: first.map(crate::event::format_utc_secs),
        event_ids,
    };
    if let Some(s) = alert.sigma.as_deref_mut() {
        let what = match w.kind {
            Kind::EventCount => format!("{metric} matching events"),
            Kind::ValueCount => format!("{metric} distinct values"),
            Kind::Temporal => format!("{metric} of its {} rules", w.rules),
            Kind::TemporalOrdered => format!("its {} rules in order", w.rules),
        };
        let by: Vec<String> = info.group.iter().map(|(f, v)| format!("{f}={v}")).collect();
        let by = match by.is_empty() {
            true => String::new(),
            false => format!(" for {}", by.join(", ")),
        };
        alert.reason = format!(
            "Sigma correlation {:?}: {what} within {}s{by} (condition {}), the last at {}",
            alert.title,
            w.span,
            info.condition,
            alert.event_time.as_deref().unwrap_or("an unknown time"),
        );
        s.correlation = Some(info);
    }
    alert
}

#[cfg(test)]
mod tests;
