//! An alert: what a rule found in one event, with everything a person or a SIEM needs.
//! Its JSON form is the SIEM feed (one object per line); field names are an interface.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use crate::config::Severity;

/// One alert. `None` fields are written as JSON `null` so the feed's shape never changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic from rule and event id: downstream can dedupe on it.
    pub alert_id: String,
    pub rule: String,
    /// The rule's title, for people.
    pub title: String,
    pub severity: Severity,
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    pub account: Option<String>,
    pub account_name: Option<String>,
    pub ou: Option<String>,
    pub region: Option<String>,
    pub principal: Option<String>,
    pub principal_type: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub event_type: Option<String>,
    pub read_only: Option<bool>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    /// One sentence: what, where, who, and which policy level made it unapproved.
    pub reason: String,
    /// Where to look next (custom rules' `runbook`).
    pub runbook: Option<String>,
    pub approved_regions: Vec<String>,
    /// Where the approved list came from (`organization`, `ou:…`, `account`, or the SCPs).
    pub policy_level: String,
    /// The OU names from AWS Organizations, `/prod/eu` (with `[organization]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ou_path: Option<String>,
    /// The caller is exempt from the SCP's region restriction (`aws:PrincipalARN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp_exempt_principal: Option<bool>,
    /// A failed call in a region the SCPs deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by_scp: Option<bool>,
    /// `org-policy-drift`: the allowed regions before and after, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftInfo>,
    /// Feed health (`feed-silent`, `feed-resumed`, `feed-missing`): the last event seen
    /// from the account (or region), as an event time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_time: Option<String>,
    /// How long it has been quiet (`feed-silent`) or was quiet (`feed-resumed`): `2h 5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent_for_seconds: Option<u64>,
    /// `feed-lagging` and `feed-caught-up`: the delivery lag over the last 10 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<LagInfo>,
    /// `feed-gap`: the stream, shard and window that cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<Box<Gap>>,
    /// `first-seen:<name>`: the key, its new value, and what was usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Box<FirstSeenInfo>>,
    /// Sigma rules (`rule` = `sigma:<file stem>`): the rule's `id`, and what it says of itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<Box<SigmaInfo>>,
    /// Who is behind the event: the principal at the start of its chain of role sessions
    /// ([`crate::identity`]). On every alert raised for an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Box<crate::identity::Identity>>,
    /// The event in the console, as `[console]` makes it reachable from the security account
    /// (unset without `[console]`: renderings link the event's own console URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
    /// `unapproved-region`: the `[[policy.exempt]]` entries (by index) with `origin` whose
    /// other keys match; the pipeline drops the alert if the origin matches one. Internal.
    #[serde(skip)]
    pub origin_exemptions: Vec<usize>,
    /// The notify stream: the other rules that raised on the same event, folded into this
    /// one message (the most severe); the SIEM stream has one alert per rule and none here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    /// The original CloudTrail record (`--include-event`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<RawValue>>,
}

impl Alert {
    /// An alert raised outside any one event (the organization's drift, the feed's health):
    /// every event field empty; the caller fills in what it knows.
    pub fn outside_events(
        rule: &str,
        key: &str,
        title: &str,
        severity: Severity,
        policy_level: &str,
        reason: String,
    ) -> Alert {
        Alert {
            alert_id: alert_id(rule, key),
            rule: rule.to_string(),
            title: title.to_string(),
            severity,
            event_id: None,
            event_time: None,
            account: None,
            account_name: None,
            ou: None,
            region: None,
            principal: None,
            principal_type: None,
            event_source: None,
            event_name: None,
            event_type: None,
            read_only: None,
            source_ip: None,
            user_agent: None,
            error_code: None,
            reason,
            runbook: None,
            approved_regions: Vec::new(),
            policy_level: policy_level.to_string(),
            ou_path: None,
            scp_exempt_principal: None,
            denied_by_scp: None,
            drift: None,
            last_event_time: None,
            silent_for: None,
            silent_for_seconds: None,
            lag: None,
            gap: None,
            first_seen: None,
            sigma: None,
            identity: None,
            console_url: None,
            origin_exemptions: Vec::new(),
            also: Vec::new(),
            event: None,
        }
    }
}

/// How an account's SCP region allow-list moved (`None`: no restriction, every region).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftInfo {
    pub before: Option<Vec<String>>,
    pub after: Option<Vec<String>>,
    /// Regions in `after` and not in `before`.
    pub added: Vec<String>,
    pub cause: String,
}

/// What a Sigma rule says of itself, carried by its alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigmaInfo {
    pub sigma_id: Option<String>,
    pub description: Option<String>,
    pub references: Vec<String>,
    /// ATT&CK and other tags (`attack.t1562.008`).
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    /// A correlation rule's alert: what its window held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<CorrelationInfo>,
}

/// What a Sigma correlation saw when it alerted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrelationInfo {
    /// `event_count`, `value_count`, `temporal`, `temporal_ordered`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Each group-by field and this group's value (text lowercased).
    pub group: std::collections::BTreeMap<String, String>,
    /// The count the condition was met with.
    pub metric: u64,
    /// `gt 5`.
    pub condition: String,
    pub timespan_seconds: i64,
    /// The earliest event of the window that met it.
    pub window_start: Option<String>,
    /// The window's events (up to 20).
    pub event_ids: Vec<String>,
}

/// Event time to arrival, per account, over the last 10 minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagInfo {
    pub threshold_seconds: u64,
    /// Events in the window.
    pub events: u64,
    /// Of those, the share that arrived later than the threshold (above 0.05: p95 is over it).
    pub share_late: f64,
    pub max_seconds: u64,
}

/// Why the records are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GapCause {
    /// The position is older than the stream itself (`at_timestamp` before its creation).
    BeforeCreation,
    /// The position is older than the stream's retention (trailwatch was down, or started
    /// from a time the stream no longer holds).
    PastRetention,
    /// A shard in the checkpoint, not finished, is no longer in the stream (trimmed with
    /// records trailwatch never read).
    ShardGone,
}

impl GapCause {
    pub fn as_str(self) -> &'static str {
        match self {
            GapCause::BeforeCreation => "before-creation",
            GapCause::PastRetention => "past-retention",
            GapCause::ShardGone => "shard-gone",
        }
    }
}

/// `first-seen:<name>` ([`crate::firstseen`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstSeenInfo {
    /// The rule's name (without `first-seen:`).
    pub rule: String,
    /// The key's fields joined by `|` (a principal's ARN).
    pub key: String,
    /// The value never seen for the key before (or forgotten).
    pub value: String,
    /// The key's first event (RFC 3339).
    pub key_known_since: String,
    /// The key's other values still remembered, most recently seen first (at most 10).
    pub values_known: Vec<String>,
}

/// `feed-gap`: a window of the stream that cannot be read ([`crate::health::gap`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub stream: String,
    pub shard: String,
    /// From (the position asked for) to (where the stream's records begin), seconds.
    pub from: i64,
    pub to: i64,
    pub cause: GapCause,
    /// Records the window likely held, from the rate of the first records read after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_records: Option<u64>,
}

/// `alert_id` for a rule and an event: the 128-bit xxh3 of both, as 32 hex digits.
pub fn alert_id(rule: &str, event_key: &str) -> String {
    let mut buf = Vec::with_capacity(rule.len() + 1 + event_key.len());
    buf.extend_from_slice(rule.as_bytes());
    buf.push(0);
    buf.extend_from_slice(event_key.as_bytes());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_id_is_deterministic_and_rule_specific() {
        let a = alert_id("unapproved-region", "e1");
        assert_eq!(a, alert_id("unapproved-region", "e1"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, alert_id("unapproved-region", "e2"));
        assert_ne!(a, alert_id("other-rule", "e1"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(alert_id("ab", "c"), alert_id("a", "bc"));
    }

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
        let s: Severity = serde_json::from_str("\"medium\"").unwrap();
        assert_eq!(s, Severity::Medium);
        assert!(serde_json::from_str::<Severity>("\"severe\"").is_err());
    }
}
