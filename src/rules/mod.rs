//! Alert rules. Today: the region policy ([`region`]); custom filter-pattern rules plug in
//! beside it. Rules are plain functions of an [`crate::event::Event`] and a time.

pub mod custom;
pub mod hot;
pub mod policy;
pub mod region;
pub mod sigma;

pub use policy::RegionPolicy;

use serde_json::value::RawValue;

use crate::alert::{alert_id, Alert, Severity};
use crate::event::Event;
use policy::AccountPolicy;

/// What a rule says about an event; [`build_alert`] adds the event's fields.
pub struct AlertWhat<'r> {
    pub rule: &'r str,
    pub title: &'r str,
    pub runbook: Option<&'r str>,
    pub severity: Severity,
    pub reason: String,
}

/// One place that turns a rule's finding on an event into an [`Alert`].
pub fn build_alert(
    ev: &Event<'_>,
    acct: &AccountPolicy,
    what: AlertWhat<'_>,
    include_event: bool,
) -> Alert {
    let own = |s: Option<&str>| s.map(str::to_string);
    let key = ev.event_id().map(str::to_string).unwrap_or_else(|| {
        format!(
            "raw:{:032x}",
            xxhash_rust::xxh3::xxh3_128(ev.raw.as_bytes())
        )
    });
    Alert {
        alert_id: alert_id(what.rule, &key),
        rule: what.rule.to_string(),
        title: what.title.to_string(),
        severity: what.severity,
        event_id: own(ev.event_id()),
        event_time: own(ev.event_time.as_deref()),
        account: own(ev.account()),
        account_name: acct.name.clone(),
        ou: acct.ou.clone(),
        region: own(ev.region()),
        principal: own(ev.principal()),
        principal_type: own(ev.principal_type()),
        event_source: own(ev.event_source()),
        event_name: own(ev.event_name()),
        event_type: own(ev.event_type()),
        read_only: ev.read_only,
        source_ip: own(ev.source_ip.as_deref()),
        user_agent: own(ev.user_agent.as_deref()),
        error_code: own(ev.error_code()),
        reason: what.reason,
        runbook: own(what.runbook),
        approved_regions: acct.approved.clone(),
        policy_level: acct.level.to_string(),
        ou_path: acct.ou_path.clone(),
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
        event: if include_event {
            RawValue::from_string(ev.raw.to_string()).ok()
        } else {
            None
        },
    }
}

/// The one-sentence reason of a custom rule's alert.
pub fn custom_reason(ev: &Event<'_>, title: &str, acct: &AccountPolicy) -> String {
    let account = ev.account().unwrap_or("unknown account");
    let label = acct.label(account);
    format!(
        "{title}: {} ({}) by {} in {}, account {label}.",
        ev.event_name().unwrap_or("an unnamed event"),
        ev.event_source().unwrap_or("unknown source"),
        ev.principal().unwrap_or("an unknown principal"),
        ev.region().unwrap_or("an unknown region"),
    )
}
