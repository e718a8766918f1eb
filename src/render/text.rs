//! SNS: a subject under 100 characters and a readable text body (what email and SMS
//! subscribers see), and the per-protocol JSON for `message_structure = "json"`.

use std::fmt::Write as _;

use super::{clip, console_url, summary};
use crate::item::Item;
use crate::shaping::Kind;

/// At most 99 characters, no line breaks or control characters (SNS rejects them).
pub fn subject(item: &Item) -> String {
    let s: String = summary(item)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip(&s, 99)
}

pub fn body(item: &Item) -> String {
    let a = item.alert();
    let mut t = String::new();
    let _ = writeln!(t, "{} — {}", a.severity.as_str().to_uppercase(), a.title);
    let _ = writeln!(t);
    let _ = writeln!(t, "What:   {}", what(item));
    let mut where_ = format!("account {}", a.account.as_deref().unwrap_or("unknown"));
    if let Some(n) = &a.account_name {
        let _ = write!(where_, " ({n})");
    }
    if let Some(ou) = &a.ou {
        let _ = write!(where_, ", {ou}");
    }
    let _ = write!(
        where_,
        ", region {}",
        a.region.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(t, "Where:  {where_}");
    let mut who = a.principal.clone().unwrap_or_else(|| "unknown".into());
    if let Some(pt) = &a.principal_type {
        let _ = write!(who, " ({pt})");
    }
    if let Some(ip) = &a.source_ip {
        let _ = write!(who, " from {ip}");
    }
    let _ = writeln!(t, "Who:    {who}");
    if let Some(b) = super::behind(a) {
        let _ = writeln!(t, "Behind: {b}");
    }
    let _ = writeln!(
        t,
        "When:   {}",
        a.event_time.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(t, "Why:    {}", a.reason);
    for (k, v) in super::sigma_context(a).unwrap_or_default() {
        let _ = writeln!(t, "{k}: {v}");
    }
    if let Some(n) = item.notify() {
        match n.kind {
            Kind::Alert => {}
            Kind::Update => {
                let _ = writeln!(
                    t,
                    "Update: {} more events from {} to {}: {}",
                    n.events,
                    n.first_seen,
                    n.last_seen,
                    n.event_names.join(", ")
                );
            }
            Kind::Digest => {
                let _ = writeln!(
                    t,
                    "Digest: {} alerts suppressed by the rate limit from {} to {}: {}; accounts {}",
                    n.events,
                    n.first_seen,
                    n.last_seen,
                    n.event_names.join(", "),
                    n.accounts.join(", ")
                );
            }
        }
    }
    let _ = writeln!(t, "Rule:   {}", super::rules(a));
    if let Some(url) = console_url(a) {
        let _ = writeln!(t, "Event:  {url}");
    }
    if let Some(r) = &a.runbook {
        let _ = writeln!(t, "Runbook: {r}");
    }
    let _ = writeln!(t, "Alert id: {}", item.id());
    t
}

fn what(item: &Item) -> String {
    let a = item.alert();
    let mut s = format!(
        "{} {}",
        a.event_source.as_deref().unwrap_or("?"),
        a.event_name.as_deref().unwrap_or("?")
    );
    if let Some(e) = &a.error_code {
        let _ = write!(s, " (failed: {e})");
    }
    s
}

/// `MessageStructure=json`: a body per protocol; `default` is required.
pub fn per_protocol(item: &Item, native: &serde_json::Value) -> String {
    per_protocol_with(item, &body(item), native)
}

/// [`per_protocol`] with the text body given (shortened to fit, for SNS).
pub fn per_protocol_with(item: &Item, text: &str, native: &serde_json::Value) -> String {
    let machine = match native {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    serde_json::json!({
        "default": text,
        "email": text,
        "sms": clip(&summary(item), 140),
        "sqs": machine,
        "lambda": machine,
        "https": machine,
        "http": machine,
    })
    .to_string()
}
