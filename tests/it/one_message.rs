//! Issue 30: one event, one message. When several rules raise on one event (a DeleteTrail in
//! an unapproved region is a region alert and a Sigma alert), the notify stream carries one
//! item, the most severe, naming the other rules in `also`; the SIEM stream keeps one alert per
//! rule.

use std::collections::BTreeMap;

use crate::common::*;
use serde_json::Value;

/// `replay --stream both` of the Stratus sample with `cfg`: every line, each with its stream
/// (and the run's output, for messages).
fn both_streams(cfg: &std::path::Path) -> (Vec<Value>, Out) {
    let out = run([
        "replay",
        "--config",
        &s(cfg),
        "--stream",
        "both",
        &s(&fixture_path("stratus_sample.jsonl")),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    let lines = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, out)
}

#[test]
fn an_event_that_two_rules_raise_on_is_one_notify_item_naming_both() {
    let t = Tmp::new();
    let sigma = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules/sigma/sigmahq/aws_cloudtrail_disable_logging.yml");
    let cfg = t.config(&format!(
        "sigma_rules = [\"{}\"]\n\n[policy]\napproved_regions = [\"us-east-1\"]\n",
        s(&sigma)
    ));
    let (lines, out) = both_streams(&cfg);
    let mut siem: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut notify: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for l in &lines {
        let id = l["event_id"].as_str().unwrap_or_default().to_string();
        let rule = l["rule"].as_str().unwrap().to_string();
        match l["stream"].as_str() {
            Some("siem") => siem.entry(id).or_default().push(rule),
            Some("notify") => {
                let also: Vec<String> = l["also"]
                    .as_array()
                    .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                notify.entry(id).or_default().push((rule, also));
            }
            _ => panic!("{l}"),
        }
    }
    let both: Vec<&String> = siem
        .iter()
        .filter(|(_, rules)| rules.len() > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        !both.is_empty(),
        "no event raised two rules:\n{}",
        out.show()
    );
    for id in both {
        let rules = &siem[id];
        let items = &notify[id];
        assert_eq!(items.len(), 1, "{id}: one message, not {items:?}");
        let (lead, also) = &items[0];
        let mut named: Vec<&String> = std::iter::once(lead).chain(also).collect();
        named.sort();
        let mut want: Vec<&String> = rules.iter().collect();
        want.sort();
        assert_eq!(named, want, "{id}: the message names every rule");
    }
    // The SIEM stream keeps one alert per rule: an event with two rules has two alerts.
    assert!(siem.values().any(|r| r.len() == 2), "{}", out.show());
}

/// The two cases on the real Stratus records: StopLogging (a region alert, CIS 5.5 and
/// SigmaHQ's CloudTrail-logging rule) and LeaveOrganization (a region alert, CIS 5.15 and, the
/// call being refused, CIS 5.1) are
/// each one notify item naming every rule that raised, the most severe leading; the SIEM
/// stream has one alert per rule.
#[test]
fn stoplogging_and_leaveorganization_are_one_message_each() {
    let t = Tmp::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = t.config(&format!(
        "sigma_rules = [\"{}\"]\ninclude_rules = [\"{}\"]\n\n[policy]\napproved_regions = [\"us-east-1\"]\n",
        s(&root.join("rules/sigma/sigmahq/aws_cloudtrail_disable_logging.yml")),
        s(&root.join("examples/rules/cis.toml")),
    ));
    let (lines, _) = both_streams(&cfg);
    for (name, want) in [
        (
            "StopLogging",
            vec![
                "unapproved-region",
                "cis-5.5-cloudtrail-changes",
                "sigma:aws_cloudtrail_disable_logging",
            ],
        ),
        // Refused (AccessDenied) in the record: CIS 5.1 raises too.
        (
            "LeaveOrganization",
            vec![
                "unapproved-region",
                "cis-5.15-organizations-changes",
                "cis-5.1-unauthorized-api-calls",
            ],
        ),
    ] {
        let of = |stream: &str| -> Vec<&Value> {
            lines
                .iter()
                .filter(|l| l["event_name"] == name && l["stream"] == stream)
                .collect()
        };
        let mut siem: Vec<&str> = of("siem")
            .iter()
            .map(|l| l["rule"].as_str().unwrap())
            .collect();
        siem.sort();
        let mut expect = want.clone();
        expect.sort();
        assert_eq!(siem, expect, "{name}: one SIEM alert per rule");
        let notify = of("notify");
        assert_eq!(notify.len(), 1, "{name}: one message: {notify:?}");
        let n = notify[0];
        let mut named: Vec<&str> = vec![n["rule"].as_str().unwrap()];
        named.extend(
            n["also"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap()),
        );
        named.sort();
        assert_eq!(named, expect, "{name}: the message names every rule");
        let top = of("siem").iter().map(|l| severity(&l["severity"])).max();
        assert_eq!(
            Some(severity(&n["severity"])),
            top,
            "{name}: the most severe leads"
        );
    }
}

fn severity(v: &Value) -> u8 {
    match v.as_str().unwrap() {
        "info" => 0,
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        _ => 4,
    }
}
