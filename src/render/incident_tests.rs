//! Golden files for the incident tools' renderings (Teams, PagerDuty, Opsgenie, Security Hub)
//! of the same items as the other renderings, each checked against its API's limits, and the
//! console link through the Identity Center portal.

use serde_json::Value;

use super::tests::{golden, items, pretty};
use super::*;

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

#[test]
fn teams_cards_match_the_golden_files_and_the_adaptive_card_schema() {
    for (name, item) in items() {
        let m = teams::message(&item);
        golden(&format!("teams-{name}.json"), &pretty(&m));
        assert!(
            serde_json::to_vec(&m).unwrap().len() < 28_000,
            "Teams' limit"
        );
        assert_eq!(m["type"], "message");
        let att = &m["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &att["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let body = card["body"].as_array().unwrap();
        assert!(chars(&body[1]["text"]) > 0);
        assert_eq!(
            body[1]["text"],
            summary(&item),
            "the preview names the rule"
        );
        let facts = body.iter().find(|b| b["type"] == "FactSet").unwrap()["facts"]
            .as_array()
            .unwrap();
        let fact = |t: &str| {
            facts
                .iter()
                .find(|f| f["title"] == t)
                .map(|f| f["value"].as_str().unwrap().to_string())
        };
        assert_eq!(fact("Rule").unwrap(), super::rules(item.alert()));
        assert_eq!(
            fact("Behind it").is_some(),
            name == "session",
            "{name}: who is behind a session"
        );
        for b in body {
            assert!(["TextBlock", "FactSet"].contains(&b["type"].as_str().unwrap()));
        }
        let actions = card["actions"].as_array().unwrap();
        assert_eq!(actions[0]["type"], "Action.OpenUrl");
        assert_eq!(
            actions[0]["url"].as_str(),
            console_url(item.alert()).as_deref()
        );
        assert_eq!(actions[1]["title"], "Runbook");
    }
}

#[test]
fn pagerduty_events_match_the_golden_files_and_the_events_api() {
    for (name, item) in items() {
        let e = pagerduty::event(&item);
        golden(&format!("pagerduty-{name}.json"), &pretty(&e));
        assert_eq!(e["event_action"], "trigger");
        assert!((1..=255).contains(&chars(&e["dedup_key"])));
        let p = &e["payload"];
        assert!((1..=1024).contains(&chars(&p["summary"])));
        assert!(chars(&p["source"]) > 0);
        assert!(["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap()));
        assert!(p["custom_details"].is_object());
        assert!(
            e.get("routing_key").is_none(),
            "the secret is the sink's to add"
        );
        // Updates and digests fold into the incident of their group.
        match item.notify() {
            Some(n) => assert_eq!(e["dedup_key"], format!("trailwatch/{}", n.group_key)),
            None => assert_eq!(
                e["dedup_key"],
                format!("trailwatch/{}", item.alert().alert_id)
            ),
        }
    }
    let long = "x".repeat(400);
    let (_, mut item) = items().remove(3);
    if let Item::Notify(n) = &mut item {
        n.group_key = long;
    }
    let key = dedup_key(&item, 255);
    assert!(key.len() <= 255 && key.starts_with("trailwatch/"), "{key}");
}

#[test]
fn opsgenie_alerts_match_the_golden_files_and_the_alert_api_limits() {
    for (name, item) in items() {
        let a = opsgenie::alert(&item);
        golden(&format!("opsgenie-{name}.json"), &pretty(&a));
        assert!((1..=130).contains(&chars(&a["message"])));
        assert!(chars(&a["alias"]) <= 512);
        assert!(chars(&a["description"]) <= 15_000);
        let tags = a["tags"].as_array().unwrap();
        assert!(tags.len() <= 20 && tags.iter().all(|t| chars(t) <= 50));
        assert!(a["details"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string));
        assert!(chars(&a["source"]) <= 100 && chars(&a["entity"]) <= 512);
        assert!(["P1", "P2", "P3", "P4", "P5"].contains(&a["priority"].as_str().unwrap()));
    }
}

#[test]
fn security_hub_findings_match_the_golden_files_and_the_asff_required_attributes() {
    const NAMESPACES: &[&str] = &[
        "Software and Configuration Checks",
        "TTPs",
        "Effects",
        "Unusual Behaviors",
        "Sensitive Data Identifications",
    ];
    for (name, item) in items() {
        let f = asff::finding(&item, "999988887777", "us-east-1", "999988887777");
        let v = serde_json::to_value(&f).unwrap();
        golden(&format!("securityhub-{name}.json"), &pretty(&v));
        for key in [
            "SchemaVersion",
            "Id",
            "ProductArn",
            "GeneratorId",
            "AwsAccountId",
            "Types",
            "CreatedAt",
            "UpdatedAt",
            "Severity",
            "Title",
            "Description",
            "Resources",
        ] {
            assert!(!v[key].is_null(), "{name}: {key} missing");
        }
        assert_eq!(
            v["Id"],
            item.alert().alert_id.as_str(),
            "a redelivery updates it"
        );
        assert_eq!(v["GeneratorId"], item.alert().rule.as_str());
        assert_eq!(
            v["ProductArn"],
            "arn:aws:securityhub:us-east-1:999988887777:product/999988887777/default"
        );
        for t in v["Types"].as_array().unwrap() {
            let parts: Vec<&str> = t.as_str().unwrap().split('/').collect();
            assert_eq!(parts.len(), 3, "{t}: namespace/category/classifier");
            assert!(NAMESPACES.contains(&parts[0]), "{t}");
        }
        let res = v["Resources"].as_array().unwrap();
        assert_eq!(res[0]["Id"], item.alert().principal.as_deref().unwrap());
        assert_eq!(
            res.last().unwrap()["Id"],
            format!(
                "AWS::::Account:{}",
                item.alert().account.as_deref().unwrap()
            )
        );
        assert!(res
            .iter()
            .all(|r| r["Region"] == item.alert().region.as_deref().unwrap()));
        assert!(chars(&v["Description"]) <= 1024 && chars(&v["Title"]) <= 256);
        assert!(time::OffsetDateTime::parse(
            v["UpdatedAt"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok());
    }
    let sigma = items().remove(2).1;
    let f = asff::finding(&sigma, "999988887777", "us-east-1", "111122223333");
    assert_eq!(
        f.types,
        ["TTPs/Persistence/Activity in a region not approved for the account"]
    );
    assert_eq!(f.aws_account_id, "111122223333");
}

#[test]
fn the_console_link_goes_through_the_identity_center_portal_when_configured() {
    use crate::config::console::{Console, Link};
    let (_, item) = items().remove(0);
    let a = item.alert();
    assert_eq!(
        console_link(&Console::default(), a),
        None,
        "direct: the event's URL"
    );
    let con = Console {
        link: Link::IdentityCenter,
        start_url: Some("https://d-1234567890.awsapps.com/start/".into()),
        role: Some("SecurityAudit".into()),
    };
    let url = console_link(&con, a).unwrap();
    let direct = event_history_url(a).unwrap();
    assert_eq!(
        url,
        format!(
            "https://d-1234567890.awsapps.com/start/#/console?account_id={}&role_name=SecurityAudit&destination={}",
            a.account.as_deref().unwrap(),
            percent_encode(&direct)
        )
    );
    assert!(!percent_encode(&direct).contains(['/', ':', '?', '#', '=']));
    assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
}
