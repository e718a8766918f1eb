//! The headline rule, `unapproved-region`: activity, in a region not approved for the
//! event's account, by a principal that is not exempt.
//!
//! [`evaluate`] returns a [`Verdict`] that says why, so `explain` and the alert's `reason`
//! come from the same decision as the alert itself.

use crate::alert::{Alert, Severity};
use crate::event::Event;
use crate::org::effective::Verdict as ScpVerdict;
use crate::rules::policy::{AccountPolicy, Exemption, RegionPolicy};

pub use crate::config::REGION_RULE as RULE;
pub const TITLE: &str = "Activity in a region not approved for the account";
/// A successful change in a region the account's SCPs deny: it should have been impossible.
pub use crate::config::BYPASS_RULE;
pub const BYPASS_TITLE: &str = "A change succeeded in a region the SCPs deny";

/// What the SCPs add to an alert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScpMark {
    /// The caller is exempt from the SCP's region restriction (`aws:PrincipalARN`).
    pub exempt_principal: bool,
    /// A failed call in a region the SCPs deny.
    pub denied: bool,
}

/// Why an event is not activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotActivity {
    /// `readOnly: true`.
    ReadOnly,
    /// `eventType` is `AwsServiceEvent` or `AwsCloudTrailInsight`: AWS acting, not the account.
    EventType(String),
    /// No `readOnly`, and the event name starts with a read prefix.
    ReadPrefix(String),
    /// No `readOnly` and no `eventName`: nothing says it changed anything.
    Unknown,
}

/// The rule's decision on one event.
#[derive(Debug, Clone)]
pub enum Verdict<'p> {
    NotActivity(NotActivity),
    /// The record has no `awsRegion`.
    NoRegion,
    Approved(&'p AccountPolicy),
    /// A global service recording in its partition's global region.
    GlobalService,
    /// The region is not approved but an exemption applies.
    Exempt(&'p AccountPolicy, &'p Exemption),
    /// A failed call, and `alert_on_failed_calls = false`.
    FailedCallIgnored(&'p AccountPolicy),
    /// An action the SCP's `NotAction` exempts: not regional use.
    ScpExemptAction(&'p AccountPolicy),
    /// A successful change in a region the SCPs deny.
    ScpBypass(&'p AccountPolicy),
    Alert(&'p AccountPolicy, Severity, ScpMark),
}

impl Verdict<'_> {
    pub fn is_alert(&self) -> bool {
        matches!(self, Verdict::Alert(..) | Verdict::ScpBypass(..))
    }
}

/// Is the event account activity (a change), per `readOnly` or the name classifier?
pub fn activity(policy: &RegionPolicy, ev: &Event<'_>) -> Result<(), NotActivity> {
    if let Some(t @ ("AwsServiceEvent" | "AwsCloudTrailInsight")) = ev.event_type() {
        return Err(NotActivity::EventType(t.to_string()));
    }
    match ev.read_only {
        Some(true) => Err(NotActivity::ReadOnly),
        Some(false) => Ok(()),
        None => {
            let Some(name) = ev.event_name() else {
                return Err(NotActivity::Unknown);
            };
            if policy.read_prefix_exceptions.contains(name) {
                return Ok(());
            }
            match policy
                .read_prefixes
                .iter()
                .find(|p| name.starts_with(p.as_str()))
            {
                Some(p) => Err(NotActivity::ReadPrefix(p.clone())),
                None => Ok(()),
            }
        }
    }
}

/// Decides one event. `now` (seconds since the epoch) decides which exemptions have expired.
pub fn evaluate<'p>(policy: &'p RegionPolicy, ev: &Event<'_>, now: i64) -> Verdict<'p> {
    if let Err(why) = activity(policy, ev) {
        return Verdict::NotActivity(why);
    }
    let Some(region) = ev.region() else {
        return Verdict::NoRegion;
    };
    let acct = policy.for_account(ev.account());
    // The action string is built only when some SCP does not allow the region.
    let scp = acct.scp.as_ref().filter(|e| !e.allows(region)).map(|e| {
        let action = crate::org::actions::iam_action(
            ev.event_source().unwrap_or_default(),
            ev.event_name().unwrap_or_default(),
        );
        e.verdict(region, &action, ev.principal_arn())
    });
    let failed = ev.error_code().is_some();
    if scp == Some(ScpVerdict::Denied) && !failed {
        return Verdict::ScpBypass(acct);
    }
    if acct.approves(region) {
        return Verdict::Approved(acct);
    }
    if ev
        .event_source()
        .is_some_and(|s| policy.global_sources.contains(s))
        && policy.global_regions.iter().any(|r| r == region)
    {
        return Verdict::GlobalService;
    }
    if scp == Some(ScpVerdict::ExemptAction) {
        return Verdict::ScpExemptAction(acct);
    }
    if let Some(ex) = policy
        .exemptions
        .iter()
        .find(|e| e.origin.is_empty() && e.is_active(now) && e.matches(ev))
    {
        return Verdict::Exempt(acct, ex);
    }
    let mark = ScpMark {
        exempt_principal: scp == Some(ScpVerdict::ExemptPrincipal),
        denied: scp == Some(ScpVerdict::Denied),
    };
    if failed {
        if !policy.alert_on_failed_calls {
            return Verdict::FailedCallIgnored(acct);
        }
        return Verdict::Alert(acct, policy.failed_call_severity, mark);
    }
    Verdict::Alert(acct, policy.severity, mark)
}

/// The exemptions with `origin` whose other keys match `ev` at `now` (by index): the alert
/// the rule raised is dropped if who is behind the event turns out to match one of them
/// (the pipeline decides, once it knows).
pub fn origin_exemptions(policy: &RegionPolicy, ev: &Event<'_>, now: i64) -> Vec<usize> {
    policy
        .exemptions
        .iter()
        .filter(|e| !e.origin.is_empty() && e.is_active(now) && e.matches(ev))
        .map(|e| e.index)
        .collect()
}

/// The alert's one-sentence reason.
pub fn reason(ev: &Event<'_>, acct: &AccountPolicy) -> String {
    let name = ev.event_name().unwrap_or("an unnamed call");
    let source = ev.event_source().unwrap_or("unknown source");
    let who = ev.principal().unwrap_or("an unknown principal");
    let region = ev.region().unwrap_or("?");
    let account = ev.account().unwrap_or("unknown account");
    let label = acct.label(account);
    let failed = ev
        .error_code()
        .map(|c| format!(" (failed: {c})"))
        .unwrap_or_default();
    let approved = if acct.approved.is_empty() {
        "none".to_string()
    } else {
        acct.approved.join(", ")
    };
    format!(
        "{name} ({source}){failed} by {who} in {region}, which is not approved for account \
         {label}; approved regions are {approved}, set by {}.",
        acct.level.describe()
    )
}

/// Builds the alert for an event the rule flagged.
pub fn alert(
    ev: &Event<'_>,
    acct: &AccountPolicy,
    severity: Severity,
    mark: ScpMark,
    include_event: bool,
) -> Alert {
    let what = super::AlertWhat {
        rule: RULE,
        title: TITLE,
        runbook: None,
        severity,
        reason: reason(ev, acct),
    };
    let mut a = super::build_alert(ev, acct, what, include_event);
    a.scp_exempt_principal = mark.exempt_principal.then_some(true);
    a.denied_by_scp = mark.denied.then_some(true);
    a
}

/// The `scp-bypass` alert: critical, with the SCPs that deny the region.
pub fn bypass_alert(ev: &Event<'_>, acct: &AccountPolicy, include_event: bool) -> Alert {
    let region = ev.region().unwrap_or("?");
    let account = ev.account().unwrap_or("unknown account");
    let reason = format!(
        "{} ({}) by {} succeeded in {region}, which the SCPs of account {} deny ({}): the call should have been impossible.",
        ev.event_name().unwrap_or("an unnamed call"),
        ev.event_source().unwrap_or("unknown source"),
        ev.principal().unwrap_or("an unknown principal"),
        acct.label(account),
        acct.scp.as_ref().map(|e| e.source()).unwrap_or_default(),
    );
    let what = super::AlertWhat {
        rule: BYPASS_RULE,
        title: BYPASS_TITLE,
        runbook: None,
        severity: Severity::Critical,
        reason,
    };
    super::build_alert(ev, acct, what, include_event)
}

#[cfg(test)]
mod tests;
