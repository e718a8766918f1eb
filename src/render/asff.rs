//! An AWS Security Finding Format finding (the attributes `BatchImportFindings` requires, and
//! a few it recommends): `Id` = the alert id, so a redelivery or an update of the same alert
//! updates the finding; `GeneratorId` = the rule; `Types` from the rule (a Sigma rule's
//! ATT&CK tactic, else an unusual behaviour); the principal and the alert's account as
//! `Resources`, in the alert's region. The destination turns it into the SDK's types.

use serde::Serialize;

use super::{clip, console_url, summary};
use crate::alert::{Alert, Severity};
use crate::item::Item;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Finding {
    pub schema_version: &'static str,
    pub id: String,
    pub product_arn: String,
    pub generator_id: String,
    pub aws_account_id: String,
    pub types: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub severity: SeverityLabel,
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub resources: Vec<Resource>,
    pub product_fields: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeverityLabel {
    pub label: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub id: String,
    pub partition: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

pub fn label(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

/// ATT&CK tactics as ASFF names them under `TTPs/`.
const TACTICS: &[(&str, &str)] = &[
    ("initial-access", "Initial Access"),
    ("execution", "Execution"),
    ("persistence", "Persistence"),
    ("privilege-escalation", "Privilege Escalation"),
    ("defense-evasion", "Defense Evasion"),
    ("credential-access", "Credential Access"),
    ("discovery", "Discovery"),
    ("lateral-movement", "Lateral Movement"),
    ("collection", "Collection"),
    ("command-and-control", "Command and Control"),
    ("exfiltration", "Data Exfiltration"),
    ("impact", "Effects"),
];

/// `namespace/category/classifier`: a Sigma rule's ATT&CK tactics under `TTPs`, the feed's
/// own alerts under `Software and Configuration Checks`, the rest `Unusual Behaviors/User`.
pub fn types(a: &Alert) -> Vec<String> {
    let classifier = clip(&a.title.replace('/', " "), 100);
    let mut out = Vec::new();
    if let Some(s) = a.sigma.as_deref() {
        for t in &s.tags {
            let Some(tactic) = t.strip_prefix("attack.") else {
                continue;
            };
            if let Some((_, name)) = TACTICS.iter().find(|(k, _)| *k == tactic) {
                let ty = match *name {
                    "Effects" => format!("Effects/Data Destruction/{classifier}"),
                    _ => format!("TTPs/{name}/{classifier}"),
                };
                if !out.contains(&ty) {
                    out.push(ty);
                }
            }
        }
    }
    if out.is_empty() {
        out.push(match a.rule.starts_with("feed-") {
            true => format!("Software and Configuration Checks/trailwatch/{classifier}"),
            false => format!("Unusual Behaviors/User/{classifier}"),
        });
    }
    out
}

fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

fn principal_type(arn: &str) -> &'static str {
    if arn.contains(":iam::") && arn.contains(":user/") {
        "AwsIamUser"
    } else if arn.contains(":iam::") && arn.contains(":role/") {
        "AwsIamRole"
    } else {
        "Other"
    }
}

/// The finding for `item`, imported as `caller` (the default product ARN's account, in
/// `hub_region`) and naming `aws_account_id` (the caller, or the alert's account).
pub fn finding(item: &Item, caller: &str, hub_region: &str, aws_account_id: &str) -> Finding {
    let a = item.alert();
    let part = partition(a.region.as_deref());
    let region = a.region.clone();
    let mut resources = Vec::new();
    if let Some(p) = &a.principal {
        resources.push(Resource {
            kind: principal_type(p),
            id: p.clone(),
            partition: part,
            region: region.clone(),
        });
    }
    resources.push(Resource {
        kind: "AwsAccount",
        id: format!(
            "AWS::::Account:{}",
            a.account.as_deref().unwrap_or("unknown")
        ),
        partition: part,
        region: region.clone(),
    });
    let created = a
        .event_time
        .clone()
        .unwrap_or_else(|| crate::event::format_utc_secs(crate::clock::now_secs()));
    let updated = item
        .notify()
        .map(|n| n.last_seen.clone())
        .filter(|t| !t.is_empty() && *t > created)
        .unwrap_or_else(|| created.clone());
    let mut fields = std::collections::BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            fields.insert(format!("trailwatch/{k}"), clip(&v, 1000));
        }
    };
    put("rule", Some(super::rules(a)));
    put("account", a.account.clone());
    put("event_id", a.event_id.clone());
    put("event_name", a.event_name.clone());
    put(
        "origin",
        a.identity.as_deref().and_then(|i| i.origin.clone()),
    );
    put("runbook", a.runbook.clone());
    if let Some(n) = item.notify() {
        put("events", Some(n.events.to_string()));
    }
    let mut description = format!("{}. {}", summary(item), a.reason);
    if let Some(b) = super::behind(a) {
        description.push_str(&format!(" Behind it: {b}."));
    }
    Finding {
        schema_version: "2018-10-08",
        id: a.alert_id.clone(),
        product_arn: format!(
            "arn:{}:securityhub:{hub_region}:{caller}:product/{caller}/default",
            partition(Some(hub_region))
        ),
        generator_id: a.rule.clone(),
        aws_account_id: aws_account_id.to_string(),
        types: types(a),
        created_at: created,
        updated_at: updated,
        severity: SeverityLabel {
            label: label(a.severity),
        },
        title: clip(&a.title, 256),
        description: clip(&description, 1024),
        region,
        source_url: console_url(a),
        resources,
        product_fields: fields,
    }
}
