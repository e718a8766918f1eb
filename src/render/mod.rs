//! One place renders an item for each format: the native JSON line (issue 2's fields), the
//! readable text of an SNS message (email, SMS), Slack Block Kit, an OCSF Detection Finding,
//! a Teams Adaptive Card, PagerDuty and Opsgenie events, and a Security Hub (ASFF) finding. Pure functions of the item: golden-file tested.

pub mod asff;
pub mod ocsf;
pub mod opsgenie;
pub mod pagerduty;
pub mod report;
pub mod slack;
pub mod teams;
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

/// The link a person follows to the event: the one `[console]` made (through the Identity
/// Center portal), else the event's console URL.
pub fn console_url(a: &Alert) -> Option<String> {
    a.console_url.clone().or_else(|| event_history_url(a))
}

/// The event's console link as `[console]` says: `None` for `link = "direct"` (the
/// renderings then use [`event_history_url`]). Through the IAM Identity Center access portal,
/// `<start_url>/#/console?account_id=…&role_name=…&destination=<the event's URL>` signs in to
/// the alert's account with the permission set and opens the event.
pub fn console_link(con: &crate::config::console::Console, a: &Alert) -> Option<String> {
    use crate::config::console::Link;
    match con.link {
        Link::Direct => None,
        Link::IdentityCenter => {
            let start = con.start_url.as_deref()?.trim_end_matches(['/', '#']);
            let account = a.account.as_deref()?;
            let role = con.role.as_deref()?;
            let destination = event_history_url(a)?;
            Some(format!(
                "{start}/#/console?account_id={}&role_name={}&destination={}",
                percent_encode(account),
                percent_encode(role),
                percent_encode(&destination)
            ))
        }
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The key incident tools fold alerts on (PagerDuty's `dedup_key`, Opsgenie's `alias`): the
/// aggregation's group on the notify stream, so its updates attach to the incident its alert
/// opened; the alert id on the siem stream. A key longer than `max` is hashed.
pub fn dedup_key(item: &Item, max: usize) -> String {
    let key = match item.notify() {
        Some(n) if !n.group_key.is_empty() => format!("trailwatch/{}", n.group_key),
        _ => format!("trailwatch/{}", item.alert().alert_id),
    };
    match key.len() <= max {
        true => key,
        false => format!(
            "trailwatch/{:032x}",
            xxhash_rust::xxh3::xxh3_128(key.as_bytes())
        ),
    }
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

/// What was called, for people: `CreateUser iam.amazonaws.com (failed: AccessDenied)`, the
/// event name between `quote`s (Slack's code span).
pub fn call(a: &Alert, quote: &str) -> String {
    let mut s = format!(
        "{quote}{}{quote} {}",
        a.event_name.as_deref().unwrap_or("?"),
        a.event_source.as_deref().unwrap_or("?")
    );
    if let Some(e) = &a.error_code {
        s.push_str(&format!(" (failed: {e})"));
    }
    s
}

/// Where the event happened, for people: `111122223333 / eu-west-1 (prod)`.
pub fn place(a: &Alert) -> String {
    let mut s = format!(
        "{} / {}",
        a.account.as_deref().unwrap_or("?"),
        a.region.as_deref().unwrap_or("?")
    );
    if let Some(n) = &a.account_name {
        s.push_str(&format!(" ({n})"));
    }
    s
}

/// Who acted, for people: `deploy/1701234567 (AssumedRole)`.
pub fn actor(a: &Alert) -> String {
    match (&a.principal, &a.principal_type) {
        (Some(p), Some(t)) => format!("{} ({t})", short_principal(p)),
        (Some(p), None) => short_principal(p).to_string(),
        _ => "unknown".to_string(),
    }
}

/// What an update or a digest counts, in markdown whose bold is `bold` (`*` for Slack, `**`
/// for Teams); `None` for an alert.
pub fn counts(item: &Item, bold: &str) -> Option<String> {
    let n = item.notify()?;
    match n.kind {
        Kind::Alert => None,
        Kind::Update => Some(format!(
            "{bold}{} more{bold} from {} to {}: {}",
            n.events,
            n.first_seen,
            n.last_seen,
            n.event_names.join(", ")
        )),
        Kind::Digest => Some(format!(
            "{bold}{} suppressed{bold} by the rate limit from {} to {}: {}\nAccounts: {}",
            n.events,
            n.first_seen,
            n.last_seen,
            n.event_names.join(", "),
            n.accounts.join(", ")
        )),
    }
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
mod incident_tests;
#[cfg(test)]
pub(crate) mod tests;
