use super::*;
use serde_json::json;

fn none(_: &str) -> Option<Vec<String>> {
    None
}

const RULE: &str = r#"title: S3 bucket policy opened to everyone
id: 0c39a7b9-5a41-4bd4-a7c7-66a1a8c0a001
status: test
description: A bucket policy that grants Principal "*".
references:
    - https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-policy-language-overview.html
author: trailwatch
date: 2026-12-03
tags:
    - attack.exfiltration
    - attack.t1537
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: s3.amazonaws.com
        eventName: PutBucketPolicy
        requestParameters|contains: '"Principal":"\*"'
    filter_main_readonly:
        readOnly: true
    condition: selection and not 1 of filter_main_*
falsepositives:
    - Public websites
level: high
"#;

#[test]
fn a_rule_loads_with_its_metadata_and_matches() {
    let l = load_str(RULE, "rules/open.yml", "open", &none);
    assert!(l.errors.is_empty() && l.skipped.is_empty(), "{l:?}");
    let r = &l.rules[0];
    assert_eq!(r.rule, "sigma:open");
    assert_eq!(
        r.id.as_deref(),
        Some("0c39a7b9-5a41-4bd4-a7c7-66a1a8c0a001")
    );
    assert_eq!(r.level.as_deref(), Some("high"));
    assert_eq!(r.tags, ["attack.exfiltration", "attack.t1537"]);
    assert_eq!(r.falsepositives, ["Public websites"]);
    assert_eq!(r.references.len(), 1);
    assert_eq!(r.selection_names(), ["selection", "filter_main_readonly"]);
    let mut ev = json!({
        "eventSource": "s3.amazonaws.com", "eventName": "PutBucketPolicy", "readOnly": false,
        "requestParameters": {"bucketPolicy": {"Statement": [{"Principal": "*"}]}}
    });
    assert!(r.matches(&ev));
    ev["readOnly"] = true.into();
    assert!(!r.matches(&ev), "the filter");
    ev["readOnly"] = false.into();
    ev["requestParameters"] =
        json!({"bucketPolicy": {"Statement": [{"Principal": {"AWS": "arn:aws:iam::1:root"}}]}});
    assert!(!r.matches(&ev));
}

#[test]
fn other_logsources_are_skipped_with_the_reason() {
    let text = RULE.replace("service: cloudtrail", "service: guardduty");
    let l = load_str(&text, "g.yml", "g", &none);
    assert!(l.rules.is_empty());
    assert_eq!(l.skipped.len(), 1);
    assert!(
        l.skipped[0].message.contains("service: guardduty"),
        "{:?}",
        l.skipped
    );
    assert_eq!(l.skipped[0].line, Some(13));
}

#[test]
fn broken_rules_say_file_line_and_what_was_expected() {
    let bad_cond = RULE.replace(
        "selection and not 1 of filter_main_*",
        "selection and nothing",
    );
    let l = load_str(&bad_cond, "r.yml", "r", &none);
    assert_eq!(l.errors.len(), 1);
    let e = l.errors[0].to_string();
    assert!(e.starts_with("r.yml:22: "), "{e}");
    assert!(e.contains("`nothing`, which is not a selection"), "{e}");
    let bad_mod = RULE.replace("requestParameters|contains", "requestParameters|contain");
    let e = load_str(&bad_mod, "r.yml", "r", &none).errors[0].to_string();
    assert!(
        e.starts_with("r.yml:19: ") && e.contains("unknown modifier `contain`"),
        "{e}"
    );
    let e = load_str("title: [unclosed\n", "r.yml", "r", &none).errors[0].to_string();
    assert!(e.contains("not YAML"), "{e}");
    let no_det = "title: t\nlogsource:\n  product: aws\n  service: cloudtrail\n";
    let e = load_str(no_det, "r.yml", "r", &none).errors[0].to_string();
    assert!(e.contains("`detection` is required"), "{e}");
}

#[test]
fn lists_of_maps_keywords_and_multi_document_files() {
    let text = r#"title: one
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        - eventName: StopLogging
        - eventName: DeleteTrail
          errorCode: null
    condition: selection
---
title: two
logsource: {product: aws, service: cloudtrail}
detection:
    keywords:
        - 'AccessDenied'
    condition: keywords
"#;
    let l = load_str(text, "m.yml", "m", &none);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert_eq!(l.rules.len(), 2);
    assert_eq!(l.rules[0].rule, "sigma:m#1");
    assert_eq!(l.rules[1].rule, "sigma:m#2");
    assert!(l.rules[0].matches(&json!({"eventName": "StopLogging", "errorCode": "x"})));
    assert!(l.rules[0].matches(&json!({"eventName": "DeleteTrail"})));
    assert!(!l.rules[0].matches(&json!({"eventName": "DeleteTrail", "errorCode": "AccessDenied"})));
    assert!(l.rules[1].matches(&json!({"errorCode": "AccessDenied"})));
    assert!(!l.rules[1].matches(&json!({"errorCode": "Throttling"})));
}

#[test]
fn every_sigmahq_cloudtrail_rule_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma/sigmahq");
    let mut loaded = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        let l = load_str(&text, &p.display().to_string(), &stem, &none);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert!(l.skipped.is_empty(), "{:?}", l.skipped);
        assert_eq!(l.rules.len(), 1, "{}", p.display());
        assert!(l.rules[0].id.is_some(), "{}", p.display());
        loaded += 1;
    }
    assert_eq!(loaded, 57);
}
