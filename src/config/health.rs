//! `[health]`: watch the feed itself (issue 15). Present: trailwatch raises `feed-silent`,
//! `feed-resumed`, `feed-missing`, `feed-lagging` and `feed-caught-up`; absent: it does not.

use std::time::Duration;

use serde::Deserialize;
use toml::{Table, Value};

use super::collector::Collector;
use super::Severity;

pub const SILENT: &str = "feed-silent";
pub const RESUMED: &str = "feed-resumed";
pub const MISSING: &str = "feed-missing";
pub const LAGGING: &str = "feed-lagging";
pub const CAUGHT_UP: &str = "feed-caught-up";
/// Records the Kinesis stream no longer holds (`crate::health::gap`).
pub const GAP: &str = "feed-gap";
/// The rule ids the feed-health watch raises (routes select them like any rule's).
pub const RULES: [&str; 5] = [SILENT, RESUMED, MISSING, LAGGING, CAUGHT_UP];

/// What the watch expects to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Only accounts that were active.
    Seen,
    /// Also every active account of the organization (`[organization]`).
    Organization,
}

/// The settings, with their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The floor: an account is silent after max(`silent_after`, `silent_factor` × its usual gap).
    pub silent_after: Duration,
    /// k: how many usual gaps of quiet make an account silent.
    pub silent_factor: f64,
    /// Also watch the account+region pairs that were active.
    pub per_region: bool,
    pub expected: Expected,
    /// An expected account that has not appeared this long after the watch began (or after
    /// it joined the organization) is missing.
    pub missing_after: Duration,
    /// p95 of event time → arrival over 10 minutes above this: lagging.
    pub lag_threshold: Duration,
    /// Events an account (or pair) must send before its silence is watched: one or two
    /// events say nothing of a rhythm.
    pub learn_events: u64,
    /// More than this share of the watched accounts silent at once: the stream itself has
    /// stopped (one alert for the whole feed).
    pub feed_fraction: f64,
    /// Accounts and pairs watched at most; beyond, new ones are counted, not watched.
    pub max_keys: usize,
    /// Accounts with their own metrics label (the busiest; the rest are `other`).
    pub metrics_accounts: usize,
    pub severity: Severity,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            silent_after: Duration::from_secs(30 * 60),
            silent_factor: 3.0,
            per_region: false,
            expected: Expected::Seen,
            missing_after: Duration::from_secs(3600),
            lag_threshold: Duration::from_secs(15 * 60),
            learn_events: 10,
            feed_fraction: 0.5,
            max_keys: 10_000,
            metrics_accounts: 20,
            severity: Severity::High,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    silent_after: Option<String>,
    silent_factor: Option<f64>,
    per_region: Option<bool>,
    expected: Option<String>,
    missing_after: Option<String>,
    lag_threshold: Option<String>,
    learn_events: Option<u64>,
    feed_fraction: Option<f64>,
    max_keys: Option<usize>,
    metrics_accounts: Option<usize>,
    severity: Option<Severity>,
}

fn duration(c: &mut Collector, key: &str, text: Option<String>, default: Duration) -> Duration {
    let Some(text) = text else { return default };
    match humantime::parse_duration(&text) {
        Ok(d) if d >= Duration::from_secs(1) => d,
        Ok(_) => {
            c.error(key, "expected at least 1s");
            default
        }
        Err(e) => {
            c.error(
                key,
                format!("{text:?} is not a duration ({e}); expected e.g. \"30m\""),
            );
            default
        }
    }
}

/// Reads `[health]`; `None` when the table is absent (or unreadable, reported).
/// `organization`: whether `[organization]` is configured.
pub(super) fn read(c: &mut Collector, table: Option<Table>, organization: bool) -> Option<Health> {
    let raw: Raw = c.read("health", Value::Table(table?))?;
    let d = Health::default();
    let expected = match raw.expected.as_deref() {
        None | Some("seen") => Expected::Seen,
        Some("organization") if organization => Expected::Organization,
        Some("organization") => {
            c.error(
                "health.expected",
                "\"organization\" needs [organization] (the accounts come from AWS Organizations)",
            );
            Expected::Seen
        }
        Some(other) => {
            c.error(
                "health.expected",
                format!("{other:?}: expected \"seen\" or \"organization\""),
            );
            Expected::Seen
        }
    };
    let silent_factor = match raw.silent_factor {
        Some(k) if !(1.0..=100.0).contains(&k) => {
            c.error("health.silent_factor", "expected a number from 1 to 100");
            d.silent_factor
        }
        Some(k) => k,
        None => d.silent_factor,
    };
    let feed_fraction = match raw.feed_fraction {
        Some(f) if !(f > 0.0 && f <= 1.0) => {
            c.error(
                "health.feed_fraction",
                "expected a share above 0 and at most 1",
            );
            d.feed_fraction
        }
        Some(f) => f,
        None => d.feed_fraction,
    };
    let positive = |c: &mut Collector, key: &str, v: Option<usize>, default: usize| match v {
        Some(0) => {
            c.error(key, "expected at least 1");
            default
        }
        Some(n) => n,
        None => default,
    };
    let max_keys = positive(c, "health.max_keys", raw.max_keys, d.max_keys);
    let metrics_accounts = positive(
        c,
        "health.metrics_accounts",
        raw.metrics_accounts,
        d.metrics_accounts,
    );
    let learn_events = match raw.learn_events {
        Some(n) if n < 2 => {
            c.error(
                "health.learn_events",
                "expected at least 2 (a rhythm needs a gap)",
            );
            d.learn_events
        }
        Some(n) => n,
        None => d.learn_events,
    };
    Some(Health {
        silent_after: duration(c, "health.silent_after", raw.silent_after, d.silent_after),
        silent_factor,
        per_region: raw.per_region.unwrap_or(d.per_region),
        expected,
        missing_after: duration(
            c,
            "health.missing_after",
            raw.missing_after,
            d.missing_after,
        ),
        lag_threshold: duration(
            c,
            "health.lag_threshold",
            raw.lag_threshold,
            d.lag_threshold,
        ),
        learn_events,
        feed_fraction,
        max_keys,
        metrics_accounts,
        severity: raw.severity.unwrap_or(d.severity),
    })
}
