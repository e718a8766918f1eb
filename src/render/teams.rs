//! Microsoft Teams through a Workflows webhook: a message with one Adaptive Card (version
//! 1.4): the summary naming the rule, a fact set (what, where, who, who is behind it, when,
//! the rules, the source IP), the reason, what a Sigma rule says of itself, counts for updates
//! and digests, buttons to the console and the runbook, the alert id. Teams takes a message
//! up to about 28 KB: every text is clipped well inside it.

use serde_json::{json, Value};

use super::{clip, console_url, severity_title, summary};
use crate::alert::Severity;
use crate::item::Item;
use crate::shaping::Kind;

/// Adaptive Card text colours by severity.
pub fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "Attention",
        Severity::Medium => "Warning",
        Severity::Low => "Accent",
        Severity::Info => "Default",
    }
}

fn text(s: &str, max: usize) -> Value {
    json!({"type": "TextBlock", "text": clip(s, max), "wrap": true})
}

pub fn message(item: &Item) -> Value {
    let a = item.alert();
    let kind = match item.kind() {
        Kind::Alert => "",
        Kind::Update => " (update)",
        Kind::Digest => " (digest)",
    };
    let mut facts = Vec::new();
    let mut fact = |title: &str, value: String| {
        facts.push(json!({"title": title, "value": clip(&value, 1000)}));
    };
    fact("What", super::call(a, ""));
    fact("Where", super::place(a));
    fact("Who", super::actor(a));
    if let Some(b) = super::behind(a) {
        fact("Behind it", b);
    }
    fact("When", a.event_time.clone().unwrap_or_else(|| "?".into()));
    fact("Rule", super::rules(a));
    if let Some(ip) = &a.source_ip {
        fact("Source IP", ip.clone());
    }
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
               "color": colour(a.severity),
               "text": clip(&format!("{}{kind}: {}", severity_title(a.severity), a.title), 200)}),
        text(&summary(item), 500),
        json!({"type": "FactSet", "facts": facts}),
        text(&a.reason, 3000),
    ];
    for (k, v) in super::sigma_context(a).unwrap_or_default() {
        body.push(text(&format!("**{k}**: {v}"), 2000));
    }
    if let Some(c) = super::counts(item, "**") {
        body.push(text(&c, 2000));
    }
    let mut footer = format!("alert {}", item.id());
    if let Some(r) = a.runbook.as_deref().filter(|r| !r.starts_with("http")) {
        footer.push_str(&format!(" · runbook: {r}"));
    }
    body.push(
        json!({"type": "TextBlock", "text": clip(&footer, 1000), "wrap": true,
                     "isSubtle": true, "size": "Small"}),
    );
    let mut actions = Vec::new();
    if let Some(url) = console_url(a) {
        actions.push(json!({"type": "Action.OpenUrl", "title": "CloudTrail event", "url": url}));
    }
    if let Some(r) = a
        .runbook
        .as_deref()
        .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
    {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Runbook", "url": r}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
                "actions": actions,
            }
        }]
    })
}
