//! Slack incoming-webhook messages in Block Kit: severity colour (an attachment's bar), a
//! header, what/where/who/when fields, the reason, counts for updates and digests, buttons to
//! the CloudTrail event history and the runbook, the alert id. Within Slack's limits: header
//! 150, section text 3000 (we keep 2900), 10 fields of 2000, 50 blocks, button URLs 3000.

use serde_json::{json, Value};

use super::{clip, console_url, severity_title, summary};
use crate::alert::Severity;
use crate::item::Item;
use crate::shaping::Kind;

pub fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#8B0000",
        Severity::High => "#D00000",
        Severity::Medium => "#F2A900",
        Severity::Low => "#2F80ED",
        Severity::Info => "#9B9B9B",
    }
}

fn field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": clip(&format!("*{label}*\n{value}"), 2000)})
}

pub fn message(item: &Item) -> Value {
    let a = item.alert();
    let kind = match item.kind() {
        Kind::Alert => "",
        Kind::Update => " (update)",
        Kind::Digest => " (digest)",
    };
    let header = clip(
        &format!("{}{kind}: {}", severity_title(a.severity), a.title),
        150,
    );
    let what = super::call(a, "`");
    let where_ = super::place(a);
    let mut who = super::actor(a);
    if let Some(b) = super::behind(a) {
        who.push_str(&format!("\nbehind it: {b}"));
    }
    let mut fields = vec![
        field("What", &what),
        field("Where", &where_),
        field("Who", &who),
        field("When", a.event_time.as_deref().unwrap_or("?")),
        field("Rule", &super::rules(a)),
    ];
    if let Some(ip) = &a.source_ip {
        fields.push(field("Source IP", ip));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({"type": "section", "fields": fields}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&a.reason, 2900)}}),
    ];
    if let Some(lines) = super::sigma_context(a).filter(|l| !l.is_empty()) {
        let text: Vec<String> = lines.iter().map(|(k, v)| format!("*{k}*: {v}")).collect();
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&text.join("\n"), 2900)}}),
        );
    }
    if let Some(c) = super::counts(item, "*") {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&c, 2900)}}));
    }
    let mut buttons = Vec::new();
    if let Some(url) = console_url(a) {
        buttons.push(json!({"type": "button", "text": {"type": "plain_text", "text": "CloudTrail event"}, "url": url}));
    }
    if let Some(r) = a
        .runbook
        .as_deref()
        .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
    {
        buttons.push(json!({"type": "button", "text": {"type": "plain_text", "text": "Runbook"}, "url": clip(r, 3000)}));
    }
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    let mut context = format!("alert `{}`", item.id());
    if let Some(r) = a.runbook.as_deref().filter(|r| !r.starts_with("http")) {
        context.push_str(&format!(" · runbook: {r}"));
    }
    blocks.push(
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(&context, 2000)}]}),
    );
    json!({
        "text": clip(&summary(item), 3000),
        "attachments": [{"color": colour(a.severity), "blocks": blocks}],
    })
}
