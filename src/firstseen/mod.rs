//! First-seen detections (`[[first_seen]]`): a known key (a principal, an account) with a
//! value it has never shown (a region), learned from the stream on event time.
//!
//! The judge (any thread) reads each event's pairs, one per rule ([`sight`]); the pipeline
//! (one thread, in order, after dedup) records them in the [`baseline::Baseline`] and builds
//! an alert for a pair that is new to a key that has learnt ([`alert`]).

pub mod baseline;
pub mod store;

use crate::alert::{Alert, FirstSeenInfo};
use crate::config::first_seen::{Field, FirstSeenRule};
use crate::event::{format_utc_secs, Event};
use crate::rules::policy::AccountPolicy;
use crate::rules::{build_alert, AlertWhat, RegionPolicy};

/// Stands for `identity.origin` in a sighting's key or value until the pipeline, which keeps
/// the sessions, resolves it ([`Sighting::needs_origin`]).
pub const ORIGIN: &str = "\u{1}origin\u{1}";

/// One rule's pair for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The rule's index in `[[first_seen]]`.
    pub rule: usize,
    pub key: String,
    pub value: String,
    /// The event's time (or the judge's `now` without one), seconds.
    pub time: i64,
}

impl Sighting {
    /// Its key or value holds `identity.origin`, still to be resolved.
    pub fn needs_origin(&self) -> bool {
        self.key.contains(ORIGIN) || self.value.contains(ORIGIN)
    }

    /// `identity.origin` put in; `false` when there is none (the rule then gets nothing).
    pub fn resolve_origin(&mut self, origin: Option<&str>) -> bool {
        let Some(o) = origin.filter(|o| !o.is_empty()) else {
            return false;
        };
        self.key = self.key.replace(ORIGIN, o);
        self.value = self.value.replace(ORIGIN, o);
        true
    }
}

/// The rules' settings for the baseline.
pub fn learning(rules: &[FirstSeenRule]) -> Vec<(String, baseline::Learning)> {
    rules
        .iter()
        .map(|r| {
            let l = baseline::Learning {
                learn_for: r.learn_for,
                forget_after: r.forget_after,
            };
            (r.name.clone(), l)
        })
        .collect()
}

/// Appends the event's pairs, one per rule whose fields it has (read-only calls skipped by
/// rules with `activity_only`).
pub fn sight(
    rules: &[FirstSeenRule],
    policy: &RegionPolicy,
    ev: &Event<'_>,
    now: i64,
    out: &mut Vec<Sighting>,
) {
    let mut activity = None;
    let mut record = None;
    let time = ev.time_secs().unwrap_or(now);
    for (i, r) in rules.iter().enumerate() {
        if r.activity_only
            && !*activity.get_or_insert_with(|| crate::rules::region::activity(policy, ev).is_ok())
        {
            continue;
        }
        let Some(key) = text(&r.key, ev, &mut record) else {
            continue;
        };
        let Some(value) = text(&r.value, ev, &mut record) else {
            continue;
        };
        out.push(Sighting {
            rule: i,
            key,
            value,
            time,
        });
    }
}

/// The fields' values joined by `|`; `None` when one is missing or empty.
fn text(
    fields: &[Field],
    ev: &Event<'_>,
    record: &mut Option<Option<serde_json::Value>>,
) -> Option<String> {
    let mut out = String::with_capacity(64);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        let one: std::borrow::Cow<'_, str> = match f {
            Field::Principal => ev.stable_principal()?.into(),
            Field::Account => ev.account()?.into(),
            Field::Region => ev.region()?.into(),
            Field::EventSource => ev.event_source()?.into(),
            Field::EventName => ev.event_name()?.into(),
            Field::SourceIp => ev.source_ip.as_deref()?.into(),
            Field::Origin => ORIGIN.into(),
            Field::Path(p) => {
                let v = crate::rules::sigma::parsed(record, ev)?;
                match crate::rules::sigma::matcher::lookup(v, p)? {
                    serde_json::Value::Null => return None,
                    serde_json::Value::String(s) => s.clone().into(),
                    other => other.to_string().into(),
                }
            }
        };
        if one.is_empty() {
            return None;
        }
        out.push_str(&one);
    }
    Some(out)
}

/// The alert for a new pair: the key, the value, and what was usual.
pub fn alert(
    rule: &FirstSeenRule,
    ev: &Event<'_>,
    acct: &AccountPolicy,
    s: &Sighting,
    n: baseline::Novelty,
    include_event: bool,
) -> Alert {
    let names = |fs: &[Field]| fs.iter().map(Field::name).collect::<Vec<_>>().join("+");
    let (key_names, value_names) = (names(&rule.key), names(&rule.value));
    let since = format_utc_secs(n.key_known_since);
    let usual = match n.values_known.is_empty() {
        true => "none still remembered".to_string(),
        false => n.values_known.join(", "),
    };
    let title = format!("First {value_names} for this {key_names}");
    let reason = format!(
        "{key_names} {} used {value_names} {} for the first time: {} ({}) in {}, account {}. Known since {since}; usual {value_names}: {usual}.",
        s.key,
        s.value,
        ev.event_name().unwrap_or("an unnamed event"),
        ev.event_source().unwrap_or("unknown source"),
        ev.region().unwrap_or("an unknown region"),
        acct.label(ev.account().unwrap_or("unknown")),
    );
    let what = AlertWhat {
        rule: &rule.rule,
        title: &title,
        runbook: None,
        severity: rule.severity,
        reason,
    };
    let mut a = build_alert(ev, acct, what, include_event);
    a.first_seen = Some(Box::new(FirstSeenInfo {
        rule: rule.name.clone(),
        key: s.key.clone(),
        value: s.value.clone(),
        key_known_since: since,
        values_known: n.values_known,
    }));
    a
}

/// The key's history as the fleet knows it (an earlier first event than this worker saw):
/// the alert says so.
pub fn restate_since(a: &mut Alert, since: i64) {
    let Some(f) = a.first_seen.as_mut() else {
        return;
    };
    let new = format_utc_secs(since);
    if new == f.key_known_since {
        return;
    }
    a.reason = a.reason.replace(
        &format!("Known since {};", f.key_known_since),
        &format!("Known since {new};"),
    );
    f.key_known_since = new;
}
