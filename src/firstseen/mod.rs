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
            time: ev.time_secs().unwrap_or(now),
        });
    }
}

/// The fields' values joined by `|`; `None` when one is missing or empty.
fn text(
    fields: &[Field],
    ev: &Event<'_>,
    record: &mut Option<Option<serde_json::Value>>,
) -> Option<String> {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        let one = match f {
            Field::Principal => ev.stable_principal().map(str::to_string),
            Field::Account => ev.account().map(str::to_string),
            Field::Region => ev.region().map(str::to_string),
            Field::EventSource => ev.event_source().map(str::to_string),
            Field::EventName => ev.event_name().map(str::to_string),
            Field::SourceIp => ev.source_ip.as_deref().map(str::to_string),
            Field::Path(p) => {
                let v = crate::rules::sigma::parsed(record, ev)?;
                match crate::rules::sigma::matcher::lookup(v, p)? {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                }
            }
        };
        out.push_str(one.filter(|s| !s.is_empty())?.as_str());
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
