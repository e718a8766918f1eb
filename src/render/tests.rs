//! Golden files for every rendering of an alert, an update and a digest built from a real
//! Stratus Red Team record (`tests/golden/`; `TRAILWATCH_UPDATE_GOLDEN=1` rewrites them), and
//! the OCSF 2004 required attributes checked on each.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use super::*;
use crate::alert::Alert;
use crate::config::load_str;
use crate::decode::{DeadLetter, Decoder, Position, Visit};
use crate::event::Event;
use crate::pipeline::Pipeline;
use crate::shaping::{KeyField, Settings, Shaper};

struct Collect<'a> {
    pipeline: &'a mut Pipeline,
    out: Vec<Alert>,
}

impl Visit for Collect<'_> {
    fn event(&mut self, ev: Event<'_>, _pos: &Position) {
        self.pipeline.process(&ev, 0, &mut self.out);
    }
    fn dead_letter(&mut self, _dead: DeadLetter) {}
}

/// The first alert of the bundled Stratus sample (with its CloudTrail record), and an update
/// and a digest of the same key built by the shaper.
pub(crate) fn items() -> Vec<(&'static str, Item)> {
    let cfg = load_str(
        "[policy]\napproved_regions = [\"us-east-1\"]\n[policy.accounts.\"111122223333\"]\nname = \"prod\"\n",
        "t.toml",
        0,
    )
    .unwrap()
    .config;
    let mut pipeline = Pipeline::new(
        &cfg.dedup,
        crate::rules::custom::RuleSet::from_rules(&cfg.rules),
        crate::rules::RegionPolicy::build(&cfg.policy),
        true,
    );
    let mut c = Collect {
        pipeline: &mut pipeline,
        out: Vec::new(),
    };
    let text = include_str!("../../tests/fixtures/stratus_sample.jsonl");
    let decoder = Decoder::new((&cfg.decode).into());
    for line in text.lines() {
        decoder.decode(line.as_bytes(), &mut Position::new("fixture"), &mut c);
    }
    let mut alert = c.out.remove(0);
    alert.runbook = Some("https://wiki.example.com/runbooks/unapproved-region".into());
    let shaper = |burst| {
        Shaper::new(
            Settings {
                group_by: vec![
                    KeyField::Rule,
                    KeyField::Account,
                    KeyField::Region,
                    KeyField::Principal,
                    KeyField::EventName,
                ],
                window_secs: 60,
                burst,
                per_minute: 1,
                digest_every_secs: 600,
                escalate: None,
                ..Settings::default()
            },
            HashMap::new(),
        )
    };
    let t0 = 1_767_225_600; // 2026-01-01T00:00:00Z
                            // Three of one key: the alert, then an update of two.
    let (mut generous, mut out) = (shaper(10), Vec::new());
    for (i, t) in [0, 10, 20].into_iter().enumerate() {
        let mut a = alert.clone();
        a.alert_id = format!("{}-{i}", alert.alert_id);
        generous.push(a, t0 + t, &mut out);
    }
    generous.flush(&mut out);
    let update = out
        .iter()
        .find(|i| i.kind == Kind::Update)
        .cloned()
        .unwrap();
    // Four keys of one principal and region at a burst of one: a digest of three.
    let (mut tight, mut out) = (shaper(1), Vec::new());
    for i in 0..4 {
        let mut a = alert.clone();
        a.alert_id = format!("{}-other-{i}", alert.alert_id);
        a.event_name = Some(format!("CreateAccessKey{i}"));
        tight.push(a, t0 + 30 + i, &mut out);
    }
    tight.flush(&mut out);
    let digest = out
        .iter()
        .find(|i| i.kind == Kind::Digest)
        .cloned()
        .unwrap();
    // A role session's alert, with who is behind it, into which a second rule on the same
    // event was folded.
    let mut session = alert.clone();
    session.also = vec!["sigma:aws_iam_backdoor_users_keys".into()];
    session.principal =
        Some("arn:aws:sts::946986569305:assumed-role/deploy/aws-go-sdk-1722375070115152000".into());
    session.principal_type = Some("AssumedRole".into());
    session.identity = Some(Box::new(crate::identity::Identity {
        origin: Some("arn:aws:iam::946986569305:user/christophe".into()),
        chain: vec![session.principal.clone().unwrap_or_default()],
        via: Some(crate::identity::Via::AssumeRole),
        issued_by_event: Some("d769ddfd-2cda-4cfa-b33f-05d3b886921d".into()),
    }));
    // A Sigma rule's alert: what the rule says of itself.
    let mut sigma = alert.clone();
    sigma.rule = "sigma:aws_iam_backdoor_users_keys".into();
    sigma.sigma = Some(Box::new(crate::alert::SigmaInfo {
        sigma_id: Some("0a5177f4-6ca9-44c2-aacf-d3f3d8b6e4d2".into()),
        description: Some("Detects AWS API key creation for a user by another user.".into()),
        references: vec!["https://github.com/RhinoSecurityLabs/pacu".into()],
        tags: vec!["attack.persistence".into(), "attack.t1098".into()],
        falsepositives: vec!["Adding user keys to their own accounts".into()],
        correlation: None,
    }));
    vec![
        ("alert", Item::Siem(alert)),
        ("session", Item::Siem(session)),
        ("sigma", Item::Siem(sigma)),
        ("update", Item::Notify(update)),
        ("digest", Item::Notify(digest)),
    ]
}

pub(crate) fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("TRAILWATCH_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (TRAILWATCH_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert_eq!(actual, want, "{} differs", path.display());
}

pub(crate) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
fn slack_blocks_match_the_golden_files_and_slack_limits() {
    for (name, item) in items() {
        let m = slack::message(&item);
        golden(&format!("slack-{name}.json"), &pretty(&m));
        let blocks = m["attachments"][0]["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert!(m["text"].as_str().unwrap().chars().count() <= 3000);
        for b in blocks {
            match b["type"].as_str().unwrap() {
                "header" => assert!(b["text"]["text"].as_str().unwrap().chars().count() <= 150),
                "section" => {
                    if let Some(t) = b["text"]["text"].as_str() {
                        assert!(t.chars().count() <= 3000);
                    }
                    if let Some(f) = b["fields"].as_array() {
                        assert!(f.len() <= 10);
                        assert!(f
                            .iter()
                            .all(|f| f["text"].as_str().unwrap().chars().count() <= 2000));
                    }
                }
                _ => {}
            }
        }
    }
}

#[test]
fn sns_text_matches_the_golden_files_and_the_subject_is_valid() {
    for (name, item) in items() {
        let subject = text::subject(&item);
        let body = text::body(&item);
        golden(
            &format!("sns-{name}.txt"),
            &format!("Subject: {subject}\n\n{body}"),
        );
        assert!(subject.chars().count() < 100);
        assert!(!subject.chars().any(char::is_control));
        let per = text::per_protocol(&item, &item.native());
        let v: Value = serde_json::from_str(&per).unwrap();
        assert_eq!(v["default"], body, "MessageStructure=json needs `default`");
    }
}

#[test]
fn ocsf_findings_match_the_golden_files_and_have_every_required_attribute() {
    for (name, item) in items() {
        let f = ocsf::finding(&item);
        golden(&format!("ocsf-{name}.json"), &pretty(&f));
        // OCSF 1.1.0 Detection Finding: base event + finding required attributes.
        for key in [
            "activity_id",
            "category_uid",
            "class_uid",
            "type_uid",
            "severity_id",
            "time",
            "metadata",
            "finding_info",
        ] {
            assert!(!f[key].is_null(), "{name}: {key} missing");
        }
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["category_uid"], 2);
        assert_eq!(
            f["type_uid"].as_i64().unwrap(),
            2004 * 100 + f["activity_id"].as_i64().unwrap()
        );
        assert!((1..=6).contains(&f["severity_id"].as_i64().unwrap()));
        assert!(
            f["time"].as_i64().unwrap() > 1_500_000_000_000,
            "epoch milliseconds"
        );
        assert_eq!(f["metadata"]["version"], "1.1.0");
        assert!(f["metadata"]["product"]["vendor_name"].is_string());
        assert!(f["finding_info"]["uid"].is_string());
        assert!(f["finding_info"]["title"].is_string());
        assert_eq!(
            f["evidences"][0]["data"]["eventID"],
            item.alert().event_id.as_deref().unwrap(),
            "the CloudTrail event is the evidence"
        );
    }
}

#[test]
fn delivery_ids_are_stable_and_distinct_and_the_spool_form_round_trips() {
    let a = items();
    let b = items();
    let ids: Vec<String> = a.iter().map(|(_, i)| i.id()).collect();
    assert_eq!(ids, b.iter().map(|(_, i)| i.id()).collect::<Vec<_>>());
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    for (_, item) in a {
        let back = Item::from_spool(&item.to_spool()).unwrap();
        assert_eq!(back.native(), item.native());
        assert_eq!(back.id(), item.id());
        assert_eq!(back.stream(), item.stream());
    }
}

#[test]
fn partition_aware_console_links_and_clipping() {
    let (_, item) = items().remove(0);
    let mut a = item.alert().clone();
    a.region = Some("cn-north-1".into());
    assert!(event_history_url(&a)
        .unwrap()
        .starts_with("https://cn-north-1.console.amazonaws.cn/"));
    a.region = Some("us-gov-west-1".into());
    assert!(event_history_url(&a)
        .unwrap()
        .contains("amazonaws-us-gov.com"));
    assert_eq!(clip("abcdef", 4), "abc…");
    assert_eq!(clip("abc", 4), "abc");
    assert_eq!(
        short_principal("arn:aws:sts::1:assumed-role/R/session"),
        "R/session"
    );
}
