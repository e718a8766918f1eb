//! OCSF 1.1.0 Detection Finding (class 2004, category 2): every required attribute (activity,
//! category, class, type, severity, time, metadata with product and version, finding_info
//! with uid and title) plus cloud, actor, api, source endpoint, and the CloudTrail event as
//! evidence.

use serde_json::{json, Value};

use super::{event_history_url, severity_title};
use crate::alert::Severity;
use crate::event::parse_utc_secs;
use crate::item::Item;
use crate::shaping::Kind;

pub const VERSION: &str = "1.1.0";

pub fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

fn millis(t: Option<&str>) -> Option<i64> {
    t.and_then(parse_utc_secs).map(|s| s * 1000)
}

pub fn finding(item: &Item) -> Value {
    let a = item.alert();
    // An update adds to a finding the first alert created; alerts and digests create one.
    let activity_id = match item.kind() {
        Kind::Update => 2,
        Kind::Alert | Kind::Digest => 1,
    };
    let n = item.notify();
    let time = n
        .and_then(|n| millis(Some(&n.last_seen)))
        .or_else(|| millis(a.event_time.as_deref()))
        .unwrap_or(0);
    let evidence = match &a.event {
        Some(raw) => serde_json::from_str::<Value>(raw.get()).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let mut f = json!({
        "activity_id": activity_id,
        "category_uid": 2,
        "class_uid": 2004,
        "type_uid": 2004 * 100 + activity_id,
        "severity_id": severity_id(a.severity),
        "severity": severity_title(a.severity),
        "time": time,
        "message": a.reason,
        "status_id": 1,
        "is_alert": true,
        "metadata": {
            "version": VERSION,
            "uid": item.id(),
            "log_name": "CloudTrail",
            "product": {
                "name": "trailwatch",
                "vendor_name": "trailwatch",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "finding_info": {
            "uid": item.id(),
            "title": a.title,
            "desc": a.reason,
            "analytic": {"name": a.rule, "type_id": 1, "type": "Rule"},
            "related_events": a.event_id.iter().map(|id| json!({"uid": id})).collect::<Vec<_>>(),
        },
        "cloud": {
            "provider": "AWS",
            "region": a.region,
            "account": {"uid": a.account, "name": a.account_name},
        },
        "actor": {"user": {"uid": a.principal, "type": a.principal_type}},
        "api": {
            "operation": a.event_name,
            "service": {"name": a.event_source},
            "response": {"error": a.error_code},
        },
        "src_endpoint": {"ip": a.source_ip},
        "evidences": [{
            "actor": {"user": {"uid": a.principal}},
            "api": {"operation": a.event_name, "service": {"name": a.event_source}},
            "src_endpoint": {"ip": a.source_ip},
            "data": evidence,
        }],
        "unmapped": {
            "approved_regions": a.approved_regions,
            "policy_level": a.policy_level,
            "ou": a.ou,
            "user_agent": a.user_agent,
            "runbook": a.runbook,
            "alert_id": a.alert_id,
        },
    });
    if let Some(url) = event_history_url(a) {
        f["finding_info"]["src_url"] = json!(url);
    }
    if let Some(n) = n {
        f["finding_info"]["first_seen_time"] = json!(millis(Some(&n.first_seen)));
        f["finding_info"]["last_seen_time"] = json!(millis(Some(&n.last_seen)));
        f["count"] = json!(n.events);
        f["unmapped"]["kind"] = json!(n.kind);
        f["unmapped"]["event_names"] = json!(n.event_names);
        if n.kind == Kind::Digest {
            f["unmapped"]["suppressed"] = json!(n.suppressed);
            f["unmapped"]["accounts"] = json!(n.accounts);
        }
    }
    f
}
