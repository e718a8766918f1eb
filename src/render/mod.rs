//! One place renders an item for each format: the native JSON line (issue 2's fields), the
//! readable text of an SNS message (email, SMS), Slack Block Kit, and an OCSF Detection
//! Finding. Pure functions of the item: golden-file tested.

pub mod ocsf;
pub mod report;
pub mod slack;
pub mod text;

use crate::alert::{Alert, Severity};
use crate::item::Item;
use crate::shaping::Kind;

/// The CloudTrail console's event history for this event, in the right partition.
pub fn event_history_url(a: &Alert) -> Option<String> {
    let region = a.region.as_deref()?;
    let id = a.event_id.as_deref()?;
    let domain = if region.starts_with("cn-") {
        "console.amazonaws.cn"
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com"
    } else {
        "console.aws.amazon.com"
    };
    Some(format!(
        "https://{region}.{domain}/cloudtrailv2/home?region={region}#/events/{id}"
    ))
}

/// The alert's rule, and the other rules of its event folded into it: `unapproved-region
/// (+ sigma:aws_cloudtrail_disable_logging)`.
pub fn rules(a: &crate::alert::Alert) -> String {
    match a.also.is_empty() {
        true => a.rule.clone(),
        false => format!("{} (+ {})", a.rule, a.also.join(", ")),
    }
}

/// What a Sigma rule says of itself, for people: its description, its false positives and
/// its ATT&CK tags, each a line; `None` for other rules.
pub fn sigma_context(a: &crate::alert::Alert) -> Option<Vec<(&'static str, String)>> {
    let s = a.sigma.as_deref()?;
    let mut out = Vec::new();
    if let Some(d) = s.description.as_deref().filter(|d| !d.trim().is_empty()) {
        out.push(("Sigma", d.trim().to_string()));
    }
    if !s.falsepositives.is_empty() {
        out.push(("False positives", s.falsepositives.join("; ")));
    }
    let attack: Vec<&str> = s
        .tags
        .iter()
        .filter(|t| t.starts_with("attack."))
        .map(String::as_str)
        .collect();
    if !attack.is_empty() {
        out.push(("ATT&CK", attack.join(", ")));
    }
    Some(out)
}

/// Who is behind an alert's session, for people: `user/christophe (via assume-role)`; `None`
/// when the principal acted as itself or nobody is known.
pub fn behind(a: &crate::alert::Alert) -> Option<String> {
    let id = a.identity.as_deref()?;
    let origin = id.origin.as_deref()?;
    if id.via == Some(crate::identity::Via::Itself) {
        return None;
    }
    let how = id.via.map_or("", crate::identity::Via::as_str);
    Some(format!("{} (via {how})", short_principal(origin)))
}

/// `unapproved-region: CreateUser` by `alice` in `111122223333/ap-south-1`: the one-line
/// summary, naming the rule (a phone's preview shows only this).
pub fn summary(item: &Item) -> String {
    let a = item.alert();
    let who = a
        .principal
        .as_deref()
        .map(short_principal)
        .unwrap_or("unknown principal");
    let prefix = match item.kind() {
        Kind::Alert => String::new(),
        Kind::Update => format!("update, {} more: ", item.notify().map_or(0, |n| n.events)),
        Kind::Digest => format!(
            "digest, {} suppressed: ",
            item.notify().map_or(0, |n| n.events)
        ),
    };
    format!(
        "[{}] {}: {prefix}{} by {} in {}/{}",
        a.severity.as_str().to_uppercase(),
        rules(a),
        a.event_name.as_deref().unwrap_or("?"),
        who,
        a.account.as_deref().unwrap_or("?"),
        a.region.as_deref().unwrap_or("?"),
    )
}

/// The last part of an ARN (`user/alice` → `alice`; an assumed role keeps its session).
pub fn short_principal(arn: &str) -> &str {
    let resource = arn.rsplit(':').next().unwrap_or(arn);
    match resource.split_once('/') {
        Some((_, rest)) => rest,
        None => resource,
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn severity_title(s: Severity) -> &'static str {
    match s {
        Severity::Info => "Informational",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

#[cfg(test)]
pub(crate) mod tests;
