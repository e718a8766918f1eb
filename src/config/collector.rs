//! The problem collector every section reads with: each value is deserialised with its full
//! key path, and every problem (error or warning) is kept, so one pass reports them all. The
//! driver (`validate.rs`) and the sections (`delivery.rs`, `health.rs`, …) import it; it
//! imports none of them.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use toml::Value;

use super::key_path::{full_key, neutral, table_at, value_at, Segment};
use super::value_de::{ReadError, ValueDe};
use super::{Level, Problem};
use crate::regions::{check_region, RegionCheck};

pub(super) struct Collector<'f> {
    pub(super) file: &'f str,
    pub(super) problems: Vec<Problem>,
    /// Custom rule ids seen so far (they must be unique across files).
    pub(super) rule_ids: std::collections::BTreeSet<String>,
    /// `[shaping]` as read, the base of rules' overrides.
    pub(super) shaping: super::ShapingSettings,
    /// Keys whose value had the wrong type: later problems of those keys are follow-ons of
    /// the one reported, and are not reported again.
    pub(super) typed: BTreeSet<String>,
}

impl Collector<'_> {
    fn push(&mut self, level: Level, key: impl Into<String>, message: impl Into<String>) {
        let file = self.file.to_string();
        self.push_in(&file, level, key, message);
    }
    fn push_in(
        &mut self,
        file: &str,
        level: Level,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let key = key.into();
        if self.typed.contains(&key) {
            return;
        }
        self.problems.push(Problem {
            level,
            file: file.to_string(),
            key,
            message: message.into(),
        });
    }
    /// An error in another file (an included rules file).
    pub(super) fn error_in(
        &mut self,
        file: &str,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push_in(file, Level::Error, key, message);
    }
    /// [`Self::read`] for a value from another file.
    pub(super) fn read_in<T: DeserializeOwned>(
        &mut self,
        file: &str,
        key: &str,
        value: Value,
    ) -> Option<T> {
        let before = self.problems.len();
        let out = self.read(key, value);
        for p in &mut self.problems[before..] {
            p.file = file.to_string();
        }
        out
    }
    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Level::Error, key, message);
    }
    /// A value of the wrong type; later problems of the same key are not reported.
    pub(super) fn type_error(&mut self, key: &str, expected: &str, found: &Value) {
        self.error(
            key,
            format!("expected {expected}, found {} {found}", found.type_str()),
        );
        self.typed.insert(key.to_string());
    }
    pub(super) fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Level::Warning, key, message);
    }

    /// Deserializes one table entry on its own; a failure is recorded, not fatal. Every
    /// problem is reported with its full key path: an unknown key is dropped, a value of the
    /// wrong type is replaced by a neutral one of the expected type (and later checks of that
    /// key stay quiet), then reading goes on, so the rest is still checked.
    pub(super) fn read<T: DeserializeOwned>(&mut self, key: &str, mut value: Value) -> Option<T> {
        let mut removed: BTreeSet<String> = BTreeSet::new();
        for _ in 0..256 {
            let e = match serde_path_to_error::deserialize::<_, T>(ValueDe(&value)) {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            let segments: Vec<Segment> = e.path().iter().map(Segment::from).collect();
            let here = full_key(key, &segments);
            let (expected, msg) = match e.into_inner() {
                ReadError::UnknownField {
                    field,
                    message,
                    expected,
                } => {
                    #[cfg(test)]
                    probe::seen(&here, &field, Ok(expected));
                    #[cfg(not(test))]
                    let _ = expected;
                    let mut msg = message;
                    if TOP_LEVEL.contains(&field.as_str()) {
                        msg.push_str(&format!(
                            "; `{field}` is a top-level key: in TOML every key after a [table] header belongs to that table, so write `{field}` above the first table"
                        ));
                    }
                    self.error(&here, &msg);
                    let mut at = segments.as_slice();
                    if let Some((Segment::Key(last), parent)) = at.split_last() {
                        if *last == field {
                            at = parent;
                        }
                    }
                    if table_at(&mut value, at).is_some_and(|t| t.remove(&field).is_some()) {
                        continue;
                    }
                    return None;
                }
                ReadError::MissingField { field, message } => {
                    let child = full_key(&here, &[Segment::Key(field.to_string())]);
                    if !removed.contains(&child) {
                        self.error(&here, &message);
                    }
                    return None;
                }
                ReadError::Invalid { expected, message } => {
                    #[cfg(test)]
                    probe::seen(&here, "", Err(expected.clone()));
                    (expected, message)
                }
                ReadError::Other(message) => (String::new(), message),
            };
            let shown = match value_at(&value, &segments) {
                Some(v) if !expected.is_empty() => {
                    format!("expected {expected}, found {} {v}", v.type_str())
                }
                _ => msg.clone(),
            };
            self.error(&here, shown);
            self.typed.insert(here.clone());
            let (last, parent) = segments.split_last()?;
            let fixed = match (neutral(&expected), last, table_at(&mut value, parent)) {
                (Some(v), Segment::Key(f), Some(t)) => t.insert(f.clone(), v).is_some(),
                (None, Segment::Key(f), Some(t)) => {
                    removed.insert(here.clone());
                    t.remove(f).is_some()
                }
                // An element of an array: drop the whole array (its first bad element is named).
                (_, Segment::Index(_), _) => match parent.split_last() {
                    Some((Segment::Key(f), grand)) => {
                        removed.insert(full_key(key, parent));
                        self.typed.insert(full_key(key, parent));
                        table_at(&mut value, grand).is_some_and(|t| t.remove(f).is_some())
                    }
                    _ => false,
                },
                _ => false,
            };
            if !fixed {
                return None;
            }
        }
        None
    }
}

/// Region codes in a list (routes' `regions`), as the policy's are checked.
pub(super) fn check_region_list(c: &mut Collector, key: &str, regions: &[String]) {
    check_regions(c, key, regions);
}

pub(super) fn check_regions(c: &mut Collector, key: &str, regions: &[String]) {
    let mut seen = BTreeSet::new();
    for (i, r) in regions.iter().enumerate() {
        let key = format!("{key}[{i}]");
        if !seen.insert(r.as_str()) {
            c.warn(&key, format!("region {r:?} is listed twice"));
        }
        match check_region(r) {
            RegionCheck::Known { .. } => {}
            RegionCheck::UnknownWellFormed { partition, .. } => c.warn(
                key,
                format!(
                    "region {r:?} is well-formed for partition {partition} but not a region \
                     trailwatch knows; accepted (new regions appear often), check the spelling"
                ),
            ),
            RegionCheck::Invalid { why, hint } => {
                let hint = hint
                    .map(|h| format!(" (did you mean {h:?}?)"))
                    .unwrap_or_default();
                c.error(
                    key,
                    format!("region {r:?} {why}{hint}; expected a region code like \"us-east-1\""),
                );
            }
        }
    }
}

/// `"90s"`, `"15m"`, `"2h"`, `"1d"` (humantime syntax) → whole seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    humantime::parse_duration(s)
        .map_err(|e| {
            format!("{s:?} is not a duration ({e}); expected e.g. \"90s\", \"15m\", \"2h\"")
        })
        .and_then(|d| i64::try_from(d.as_secs()).map_err(|_| format!("{s:?} is too long")))
}

/// `YYYY-MM-DD` (the end of that day, UTC) or an RFC 3339 time → seconds since the epoch.
pub fn parse_date(s: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &fmt) {
        return Ok(d.midnight().assume_utc().unix_timestamp() + 86_400 - 1);
    }
    time::OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("{s:?} is not a date; expected \"YYYY-MM-DD\" or an RFC 3339 time"))
}

/// The file's top-level keys and sections: one of them found inside a table was most likely
/// written below a `[table]` header by mistake.
pub(super) const TOP_LEVEL: &[&str] = &[
    "policy",
    "organization",
    "health",
    "runbooks",
    "console",
    "backfill",
    "dedup",
    "identity",
    "decode",
    "shaping",
    "source",
    "checkpoint",
    "rules",
    "sequences",
    "include_rules",
    "sigma_rules",
    "sigma_placeholders",
    "delivery",
    "sinks",
    "routes",
];

/// For the reference test: what the config's types answered to a probe key, by key path.
#[cfg(test)]
pub(super) mod probe {
    use std::cell::RefCell;

    /// The key a probe puts into a table: no type has it.
    pub const KEY: &str = "__probe__";

    /// An answer: the keys of a table that refused [`KEY`], or what a value was expected to be.
    pub type Answer = Result<&'static [&'static str], String>;

    thread_local! {
        static SEEN: RefCell<Vec<(String, Answer)>> = const { RefCell::new(Vec::new()) };
    }

    pub(in crate::config) fn seen(at: &str, field: &str, answer: Answer) {
        if answer.is_err() || field == KEY {
            SEEN.with(|s| s.borrow_mut().push((at.to_string(), answer)));
        }
    }

    /// What was answered since the last call.
    pub fn take() -> Vec<(String, Answer)> {
        SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }
}
