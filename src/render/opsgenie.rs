//! Opsgenie's Alert API: `alias` is the aggregation's key (Opsgenie folds an alert with an open
//! alias into the open alert), priority P1 to P5 by severity. Within the API's limits:
//! `message` 130 characters, `alias` 512, `description` 15,000, 20 tags of 50, `details`
//! values as strings, `entity` 512, `source` 100.

use serde_json::{json, Map, Value};

use super::{clip, dedup_key, summary};
use crate::alert::Severity;
use crate::item::Item;

pub fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "P1",
        Severity::High => "P2",
        Severity::Medium => "P3",
        Severity::Low => "P4",
        Severity::Info => "P5",
    }
}

pub fn alert(item: &Item) -> Value {
    let a = item.alert();
    let mut details = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            details.insert(k.to_string(), Value::String(clip(&v, 1000)));
        }
    };
    put("rule", Some(super::rules(a)));
    put("account", a.account.clone());
    put("region", a.region.clone());
    put("principal", a.principal.clone());
    put(
        "origin",
        a.identity.as_deref().and_then(|i| i.origin.clone()),
    );
    put("event", a.event_name.clone());
    put("event_id", a.event_id.clone());
    put("console", super::console_url(a));
    put("runbook", a.runbook.clone());
    put("alert_id", Some(a.alert_id.clone()));
    put("delivery_id", Some(item.id()).filter(|d| *d != a.alert_id));
    let mut tags: Vec<String> = vec![
        "trailwatch".into(),
        a.rule.clone(),
        a.severity.as_str().into(),
    ];
    tags.extend(a.also.iter().cloned());
    tags.extend(a.account.iter().cloned());
    tags.extend(a.region.iter().cloned());
    let tags: Vec<String> = tags.iter().take(20).map(|t| clip(t, 50)).collect();
    let entity = format!(
        "{}/{}",
        a.account.as_deref().unwrap_or("unknown"),
        a.region.as_deref().unwrap_or("unknown")
    );
    json!({
        "message": clip(&summary(item), 130),
        "alias": dedup_key(item, 512),
        "description": clip(&super::text::body(item), 15_000),
        "tags": tags,
        "details": details,
        "entity": clip(&entity, 512),
        "source": "trailwatch",
        "priority": priority(a.severity),
    })
}
