//! `[shaping]` and per-rule `shaping` overrides: [`ShapingSettings`].

use serde::Deserialize;

use super::collector::{parse_duration, Collector};
use super::Severity;

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
    /// Who is behind the event (`identity.origin`), else the principal.
    #[serde(alias = "identity.origin")]
    Origin,
}

/// Shaping settings (one set per rule; `[shaping]` is the default).
#[derive(Debug, Clone, PartialEq)]
pub struct ShapingSettings {
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

impl Default for ShapingSettings {
    fn default() -> Self {
        ShapingSettings {
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShapingRaw {
    group_by: Option<Vec<KeyField>>,
    window: Option<String>,
    rate_limit: Option<RateLimitRaw>,
    digest_every: Option<String>,
    escalate: Option<EscalateRaw>,
    max_keys: Option<usize>,
    max_event_ids: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitRaw {
    per: Option<Vec<KeyField>>,
    burst: Option<u32>,
    per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalateRaw {
    count: u64,
    to: Severity,
}

/// Applies `raw` on top of `base`, recording problems under `key` in `file`.
pub(super) fn apply(
    c: &mut Collector,
    file: &str,
    key: &str,
    base: &ShapingSettings,
    raw: ShapingRaw,
) -> ShapingSettings {
    let mut s = base.clone();
    let err = |c: &mut Collector, k: &str, m: String| c.error_in(file, format!("{key}.{k}"), m);
    if let Some(g) = raw.group_by {
        if g.is_empty() {
            err(c, "group_by", "must name at least one field".into());
        }
        s.group_by = g;
    }
    for (k, v, slot) in [
        ("window", raw.window, &mut s.window_secs),
        ("digest_every", raw.digest_every, &mut s.digest_every_secs),
    ] {
        if let Some(text) = v {
            match parse_duration(&text) {
                Ok(0) => err(c, k, "must be longer than 0s".into()),
                Ok(secs) => *slot = secs,
                Err(why) => err(c, k, why),
            }
        }
    }
    if let Some(r) = raw.rate_limit {
        if let Some(per) = r.per {
            if per.is_empty() {
                err(c, "rate_limit.per", "must name at least one field".into());
            }
            s.limit_per = per;
        }
        for (k, v, slot) in [
            ("rate_limit.burst", r.burst, &mut s.burst),
            ("rate_limit.per_minute", r.per_minute, &mut s.per_minute),
        ] {
            match v {
                Some(0) => err(c, k, "must be at least 1".into()),
                Some(n) => *slot = n,
                None => {}
            }
        }
    }
    if let Some(e) = raw.escalate {
        if e.count == 0 {
            err(c, "escalate.count", "must be at least 1".into());
        }
        s.escalate = Some((e.count, e.to));
    }
    if let Some(n) = raw.max_keys {
        if n == 0 {
            err(c, "max_keys", "must be at least 1".into());
        }
        s.max_keys = n.max(1);
    }
    if let Some(n) = raw.max_event_ids {
        s.max_ids = n;
    }
    s
}
