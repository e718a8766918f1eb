//! PagerDuty Events API v2: a `trigger` event whose `dedup_key` is the aggregation's key, so
//! an update or a later alert of the same group attaches to the incident it opened. Within
//! the API's limits: `summary` 1,024 characters, `dedup_key` 255. The routing key is the
//! destination's to add (it is a secret).

use serde_json::{json, Map, Value};

use super::{clip, console_url, dedup_key, summary};
use crate::alert::Severity;
use crate::item::Item;

/// PagerDuty's four severities.
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "info",
    }
}

/// The event, without `routing_key`.
pub fn event(item: &Item) -> Value {
    let a = item.alert();
    let mut details = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            details.insert(k.to_string(), Value::String(v));
        }
    };
    put("rule", Some(super::rules(a)));
    put("reason", Some(a.reason.clone()));
    put("event", a.event_name.clone());
    put("event_source", a.event_source.clone());
    put("principal", a.principal.clone());
    put("behind_it", super::behind(a));
    put("source_ip", a.source_ip.clone());
    put("event_time", a.event_time.clone());
    put("event_id", a.event_id.clone());
    put("runbook", a.runbook.clone());
    put("alert_id", Some(a.alert_id.clone()));
    put("delivery_id", Some(item.id()).filter(|d| *d != a.alert_id));
    for (k, v) in super::sigma_context(a).unwrap_or_default() {
        put(k, Some(v));
    }
    if let Some(n) = item.notify() {
        put("kind", Some(format!("{:?}", n.kind).to_lowercase()));
        put("events", Some(n.events.to_string()));
        put(
            "window",
            Some(format!("{} to {}", n.first_seen, n.last_seen)),
        );
        put("event_names", Some(n.event_names.join(", ")));
    }
    let mut links = Vec::new();
    if let Some(url) = console_url(a) {
        links.push(json!({"href": url, "text": "CloudTrail event"}));
    }
    if let Some(r) = a.runbook.as_deref().filter(|r| r.starts_with("http")) {
        links.push(json!({"href": r, "text": "Runbook"}));
    }
    let source = format!(
        "{}/{}",
        a.account.as_deref().unwrap_or("unknown"),
        a.region.as_deref().unwrap_or("unknown")
    );
    let mut payload = json!({
        "summary": clip(&summary(item), 1024),
        "source": source,
        "severity": severity(a.severity),
        "component": a.event_source.as_deref().unwrap_or("cloudtrail"),
        "group": a.account.as_deref().unwrap_or("unknown"),
        "class": a.rule,
        "custom_details": details,
    });
    if let Some(t) = &a.event_time {
        payload["timestamp"] = Value::String(t.clone());
    }
    json!({
        "event_action": "trigger",
        "dedup_key": dedup_key(item, 255),
        "payload": payload,
        "client": "trailwatch",
        "links": links,
    })
}
