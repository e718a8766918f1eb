//! Shaping through the binary: `replay --stream`, and sequence tests in `trailwatch test`.

use crate::common::*;
use serde_json::Value;

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// 40 writes by one principal in an unapproved region over 20 minutes, then 3 in another.
fn flood() -> String {
    let rec = |i: usize, region: &str, t: usize| {
        serde_json::json!({
            "eventVersion": "1.08", "eventID": format!("flood-{i}"),
            "eventTime": format!("2026-11-01T00:{:02}:{:02}Z", t / 60, t % 60),
            "eventName": "RunInstances", "eventSource": "ec2.amazonaws.com", "awsRegion": region,
            "readOnly": false, "recipientAccountId": "444455556666",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::444455556666:user/mallory"}
        })
        .to_string()
    };
    let mut lines: Vec<String> = (0..40).map(|i| rec(i, "sa-east-1", i * 30)).collect();
    lines.extend((40..43).map(|i| rec(i, "ap-east-1", 1300 + i)));
    lines.join("\n")
}

#[test]
fn notify_stream_aggregates_and_accounts_for_every_alert() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let input = t.write("flood.jsonl", flood());
    let siem = replay(&cfg, &[&input]).alerts();
    assert_eq!(siem.len(), 43);
    let out = run([
        "replay",
        "--config",
        &s(&cfg),
        "--stream",
        "notify",
        &s(&input),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    let items = out.alerts();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    // sa-east-1: one alert at once, then one update per 15-minute window (29, then 10 at the
    // end of input); ap-east-1 (20 minutes in): its own alert, and an update of 2.
    assert_eq!(
        kinds,
        ["alert", "update", "alert", "update", "update"],
        "{}",
        out.stdout
    );
    let events: Vec<u64> = items
        .iter()
        .map(|i| i["events"].as_u64().unwrap())
        .collect();
    assert_eq!(events, [1, 29, 1, 10, 2]);
    let total: u64 = items.iter().map(|i| i["events"].as_u64().unwrap()).sum();
    assert_eq!(total, 43, "every siem alert is accounted for");
    for i in &items {
        for f in [
            "alert_id",
            "rule",
            "severity",
            "account",
            "region",
            "principal",
            "reason",
            "group_key",
            "first_seen",
            "last_seen",
        ] {
            assert!(!i[f].is_null(), "notify item lacks {f}: {i}");
        }
    }
    let update = items.iter().find(|i| i["kind"] == "update").unwrap();
    assert!(update["event_ids"].as_array().unwrap().len() > 1);
    assert_eq!(
        update["event_names"][0].as_str().unwrap().split(' ').next(),
        Some("RunInstances")
    );
}

#[test]
fn both_streams_are_tagged() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let input = t.write("flood.jsonl", flood());
    let out = run([
        "replay",
        "--config",
        &s(&cfg),
        "--stream",
        "both",
        &s(&input),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    let lines: Vec<Value> = out.alerts();
    let siem = lines.iter().filter(|l| l["stream"] == "siem").count();
    let notify: u64 = lines
        .iter()
        .filter(|l| l["stream"] == "notify")
        .map(|l| l["events"].as_u64().unwrap())
        .sum();
    assert_eq!(siem, 43);
    assert_eq!(notify, 43);
    assert!(lines
        .iter()
        .all(|l| l["stream"] == "siem" || l["stream"] == "notify"));
}

#[test]
fn sequence_tests_pass_and_fail() {
    let t = Tmp::new();
    let ev = r#"{"eventVersion":"1.08","eventID":"q","eventName":"RunInstances","awsRegion":"sa-east-1","readOnly":false,"recipientAccountId":"444455556666","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::444455556666:user/a"}}"#;
    let cfg = |expect: &str| {
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n[shaping]\nwindow = \"1m\"\n\n[[sequences]]\nname = \"burst\"\nrule = \"unapproved-region\"\nsteps = [{{ at = \"0s\", repeat = 6, every = \"20s\", event = '{ev}' }}]\nexpect = {expect}\n"
        )
    };
    // 0, 20, 40 in the first window (alert + update of 2); 60, 80, 100 in the next (update of 3).
    let good = t.write("good.toml", cfg(r#"[{ kind = "alert", events = 1 }, { kind = "update", events = 2 }, { kind = "update", events = 3 }]"#));
    let out = run(["test", "--config", &s(&good)]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("1 passed, 0 failed"), "{}", out.stdout);
    let bad = t.write(
        "bad.toml",
        cfg(r#"[{ kind = "alert", events = 1 }, { kind = "update", events = 5 }]"#),
    );
    let out = run(["test", "--config", &s(&bad)]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(
        out.stdout.contains("FAIL") && out.stdout.contains("got [alert×1, update×2, update×3]"),
        "{}",
        out.stdout
    );
}
