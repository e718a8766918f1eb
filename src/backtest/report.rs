//! The backtest report: alerts and notify items per rule, account, region and day, the
//! principals, and with a baseline the alerts added and removed. Every map is ordered and
//! nothing in it depends on timing or thread count, so the JSON of two runs over the same
//! archive is byte-identical, and partial reports ([`merge`]) add up to the whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::shortfall::Shortfall;

/// The report's format version.
pub const VERSION: u32 = 1;
/// Unexpected keys listed by name (the first, in key order); all are counted.
pub const MAX_LISTED_KEYS: usize = 100;

/// Counts for one rule, account, region, day or the whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub alerts: u64,
    pub notify: u64,
    pub baseline_alerts: u64,
    pub baseline_notify: u64,
    /// Alerts the config raises and the baseline does not.
    pub added: u64,
    /// Alerts the baseline raises and the config does not.
    pub removed: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.alerts += o.alerts;
        self.notify += o.notify;
        self.baseline_alerts += o.baseline_alerts;
        self.baseline_notify += o.baseline_notify;
        self.added += o.added;
        self.removed += o.removed;
    }
}

/// What was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub objects: u64,
    pub bytes: u64,
    pub events: u64,
    pub duplicates: u64,
    /// Events outside `--since`, `--until`, `--accounts`, `--regions`.
    pub outside: u64,
    pub dead_letters: u64,
    pub digests_skipped: u64,
    pub unexpected_keys: u64,
    /// The first [`MAX_LISTED_KEYS`] of them.
    pub unexpected: Vec<String>,
    /// Objects that could not be read (after retries), by key, with the error.
    pub failed: Vec<Failed>,
    /// Prefixes that could not be listed, with the error.
    pub unlisted: Vec<Failed>,
    /// Event ids forgotten before their TTL (`dedup.max_event_ids` reached).
    #[serde(default)]
    pub dedup_forgotten: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Failed {
    pub key: String,
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub index: u64,
    pub count: u64,
}

/// The command line's scope, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeInfo {
    pub sources: Vec<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub baseline: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub scope: ScopeInfo,
    /// Set in a partial report; a merged or whole report has none.
    pub partition: Option<Partition>,
    pub input: Input,
    pub totals: Tally,
    pub by_rule: BTreeMap<String, Tally>,
    pub by_account: BTreeMap<String, Tally>,
    pub by_region: BTreeMap<String, Tally>,
    pub by_day: BTreeMap<String, Tally>,
    /// Rule → account → counts (where the added and removed alerts are).
    pub by_rule_account: BTreeMap<String, BTreeMap<String, Tally>>,
    /// Alerts (of the config) per principal.
    pub principals: BTreeMap<String, u64>,
    /// What the run could not do (derived from `input`; zero everywhere when complete).
    #[serde(default)]
    pub shortfall: Shortfall,
    /// `shortfall` is zero: every object was listed and read, every record evaluated.
    #[serde(default)]
    pub complete: bool,
}

/// Which side an alert or notify item is from, and how it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Added,
    Removed,
    Same,
}

fn day(a: &Alert) -> String {
    a.event_time
        .as_deref()
        .and_then(|t| t.get(..10))
        .unwrap_or("unknown")
        .to_string()
}

fn or_unknown(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "unknown".into())
}

impl Report {
    /// No object was read, and some could not be listed or read.
    pub fn nothing_read(&self) -> bool {
        self.input.objects == 0
            && (!self.input.failed.is_empty() || !self.input.unlisted.is_empty())
    }

    pub fn new(scope: ScopeInfo, partition: Option<Partition>) -> Self {
        Report {
            version: VERSION,
            scope,
            partition,
            ..Report::default()
        }
    }

    fn each(&mut self, a: &Alert, f: impl Fn(&mut Tally)) {
        f(&mut self.totals);
        f(self.by_rule.entry(a.rule.clone()).or_default());
        f(self.by_account.entry(or_unknown(&a.account)).or_default());
        f(self.by_region.entry(or_unknown(&a.region)).or_default());
        f(self.by_day.entry(day(a)).or_default());
        f(self
            .by_rule_account
            .entry(a.rule.clone())
            .or_default()
            .entry(or_unknown(&a.account))
            .or_default());
    }

    /// An alert of the config (`baseline: false`) or of the baseline, and its mark.
    pub fn alert(&mut self, a: &Alert, baseline: bool, mark: Option<Mark>) {
        self.each(a, |t| {
            match baseline {
                false => t.alerts += 1,
                true => t.baseline_alerts += 1,
            }
            match mark {
                Some(Mark::Added) => t.added += 1,
                Some(Mark::Removed) => t.removed += 1,
                _ => {}
            }
        });
        if !baseline {
            *self.principals.entry(or_unknown(&a.principal)).or_default() += 1;
        }
    }

    /// A notify item (counted by its alert's rule, account, region and day).
    pub fn notify(&mut self, a: &Alert, baseline: bool) {
        self.each(a, |t| match baseline {
            false => t.notify += 1,
            true => t.baseline_notify += 1,
        });
    }

    /// Principals by alerts, most first.
    pub fn top_principals(&self, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self
            .principals
            .iter()
            .map(|(p, c)| (p.as_str(), *c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    /// Puts the lists in their canonical order (sorted, capped).
    pub fn normalize(&mut self) {
        self.input.unexpected.sort();
        self.input.unexpected.truncate(MAX_LISTED_KEYS);
        self.input.failed.sort();
        self.input.unlisted.sort();
        let i = &self.input;
        self.shortfall = Shortfall {
            dead_letters: i.dead_letters,
            unread_inputs: i.failed.len() as u64,
            unlisted: i.unlisted.len() as u64,
            dedup_forgotten: i.dedup_forgotten,
            ..Shortfall::default()
        };
        self.complete = self.shortfall.is_complete();
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("no reports to merge")]
    Empty,
    #[error("{0}: report version {1}, expected {VERSION}")]
    Version(String, u32),
    #[error("{0}: not a partial report (no \"partition\")")]
    NotPartial(String),
    #[error("{0}: partition {1}/{2} does not belong with partitions of {3}")]
    Mismatch(String, u64, u64, u64),
    #[error("{0}: partition {1}/{2} is there twice")]
    Twice(String, u64, u64),
    #[error("{0}: its scope (sources, dates, accounts, regions, baseline) differs from the first report's")]
    Scope(String),
    #[error("partitions missing: {0:?} of {1}")]
    Missing(Vec<u64>, u64),
}

fn add_map(into: &mut BTreeMap<String, Tally>, from: BTreeMap<String, Tally>) {
    for (k, t) in from {
        *into.entry(k).or_default() += t;
    }
}

/// Combines the partial reports of `--partition I/N` runs (each named, for messages) into
/// the report a single run would have written. Every partition 0..N must be there once.
pub fn merge(reports: Vec<(String, Report)>) -> Result<Report, MergeError> {
    let Some((first_name, first)) = reports.first() else {
        return Err(MergeError::Empty);
    };
    let count = first
        .partition
        .ok_or_else(|| MergeError::NotPartial(first_name.clone()))?
        .count;
    let mut seen = vec![false; count as usize];
    let mut out = Report::new(first.scope.clone(), None);
    for (name, r) in reports {
        if r.version != VERSION {
            return Err(MergeError::Version(name, r.version));
        }
        let p = r
            .partition
            .ok_or_else(|| MergeError::NotPartial(name.clone()))?;
        if p.count != count || p.index >= count {
            return Err(MergeError::Mismatch(name, p.index, p.count, count));
        }
        if std::mem::replace(&mut seen[p.index as usize], true) {
            return Err(MergeError::Twice(name, p.index, p.count));
        }
        if r.scope != out.scope {
            return Err(MergeError::Scope(name));
        }
        let i = r.input;
        let o = &mut out.input;
        o.objects += i.objects;
        o.bytes += i.bytes;
        o.events += i.events;
        o.duplicates += i.duplicates;
        o.outside += i.outside;
        o.dead_letters += i.dead_letters;
        o.dedup_forgotten += i.dedup_forgotten;
        o.unexpected_keys += i.unexpected_keys;
        o.unexpected.extend(i.unexpected);
        o.failed.extend(i.failed);
        // Listing above the partitions (the organization, its accounts) happens in each.
        for u in i.unlisted {
            if !o.unlisted.contains(&u) {
                o.unlisted.push(u);
            }
        }
        // Digests are skipped by every partition that lists their folder: keep the most.
        o.digests_skipped = o.digests_skipped.max(i.digests_skipped);
        out.totals += r.totals;
        add_map(&mut out.by_rule, r.by_rule);
        add_map(&mut out.by_account, r.by_account);
        add_map(&mut out.by_region, r.by_region);
        add_map(&mut out.by_day, r.by_day);
        for (rule, accounts) in r.by_rule_account {
            add_map(out.by_rule_account.entry(rule).or_default(), accounts);
        }
        for (p, c) in r.principals {
            *out.principals.entry(p).or_default() += c;
        }
    }
    let missing: Vec<u64> = (0..count).filter(|i| !seen[*i as usize]).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing(missing, count));
    }
    out.normalize();
    Ok(out)
}
