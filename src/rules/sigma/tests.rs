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

/// Every rule of a file, loaded with no placeholders.
fn rules_of(path: &std::path::Path) -> Vec<Rule> {
    let text = std::fs::read_to_string(path).unwrap();
    let stem = path.file_stem().unwrap().to_string_lossy().to_string();
    let l = load_str(&text, &path.display().to_string(), &stem, &none);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l.rules
}

/// The real fixture records, each also with its hot fields varied: to names and sources the
/// SigmaHQ rules look for, to null, absent, a string `readOnly`, a null `userIdentity`.
fn varied_records() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let names = [
        "StopLogging",
        "DeleteTrail",
        "UpdateTrail",
        "CreateAccessKey",
        "ConsoleLogin",
        "PutBucketPolicy",
        "PutBucketLogging",
        "GetCallerIdentity",
        "ListBuckets",
        "SendCommand",
        "ModifySnapshotAttribute",
        "GetSigninToken",
        "PutUserPolicy",
        "EnableRegion",
        "RunTask",
        "ModifyInstanceAttribute",
        "DeleteSAMLProvider",
        "ImportKeyPair",
        "CreateLoginProfile",
    ];
    let sources = [
        "ec2.amazonaws.com",
        "iam.amazonaws.com",
        "s3.amazonaws.com",
        "sts.amazonaws.com",
        "cloudtrail.amazonaws.com",
        "ssm.amazonaws.com",
        "signin.amazonaws.com",
    ];
    let mut out = Vec::new();
    for f in ["stratus_sample.jsonl", "otrf_sample.jsonl"] {
        for line in std::fs::read_to_string(root.join(f)).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let mut push = |f: &dyn Fn(&mut Value)| {
                let mut w = v.clone();
                f(&mut w);
                out.push(w.to_string());
            };
            push(&|_| {});
            for (i, n) in names.iter().enumerate() {
                let s = sources[i % sources.len()];
                push(&|w| {
                    w["eventName"] = (*n).into();
                    w["eventSource"] = s.into();
                });
                push(&|w| {
                    w["eventName"] = (*n).into();
                    w["errorCode"] = "AccessDenied".into();
                    w["readOnly"] = "false".into();
                });
            }
            push(&|w| w["eventName"] = Value::Null);
            push(&|w| drop(w.as_object_mut().map(|o| o.remove("eventSource"))));
            // What the rules' `eventSource` gates must not decide wrongly: case, null, a
            // value of another type, text whose folding is not ASCII's.
            push(&|w| w["eventSource"] = "CloudTrail.AmazonAWS.com".into());
            push(&|w| w["eventSource"] = Value::Null);
            push(&|w| w["eventSource"] = serde_json::json!(["cloudtrail.amazonaws.com"]));
            push(&|w| w["eventSource"] = 7.into());
            push(&|w| w["eventSource"] = "\u{212a}ms.amazonaws.com".into());
            push(&|w| w["eventName"] = "stoplogging".into());
            push(&|w| w["readOnly"] = "true".into());
            push(&|w| w["userIdentity"] = Value::Null);
            push(&|w| w["userIdentity"]["type"] = "Root".into());
            push(&|w| drop(w["userIdentity"].as_object_mut().map(|o| o.remove("arn"))));
            push(&|w| w["userIdentity"]["arn"] = Value::Null);
            push(&|w| w["errorCode"] = Value::Null);
            push(&|w| w["userAgent"] = "S3 Browser 9.1".into());
        }
    }
    out
}

#[test]
fn the_prefilter_answers_as_the_full_match_does() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rules = rules_of(&root.join("tests/fixtures/sigma/modifiers.yml"));
    for e in std::fs::read_dir(root.join("rules/sigma/sigmahq")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml") {
            rules.extend(rules_of(&p));
        }
    }
    let records = varied_records();
    let set = RuleSet::new(rules.clone());
    let (mut decided, mut undecided, mut matched) = (0usize, 0usize, 0usize);
    let mut hits = Vec::new();
    for raw in &records {
        let ev = crate::decode::object::parse(raw).unwrap().event;
        let full: Value = serde_json::from_str(raw).unwrap();
        hits.clear();
        let mut stats = crate::rules::custom::EvalStats::default();
        evaluate(&rules, &ev, &mut hits, &mut stats);
        let mut indexed = Vec::new();
        set.evaluate_sharing(&ev, &mut indexed, &mut stats, &mut None);
        assert_eq!(
            indexed, hits,
            "the index gives evaluate's answers, in order, on {raw}"
        );
        for (i, r) in rules.iter().enumerate() {
            let truth = r.matches(&full);
            match r.decide(&ev) {
                Some(d) => {
                    assert_eq!(d, truth, "{} decided {d} on {raw}", r.rule);
                    decided += 1;
                }
                None => undecided += 1,
            }
            assert_eq!(hits.contains(&i), truth, "evaluate, {} on {raw}", r.rule);
            matched += usize::from(truth);
        }
        // One full parse at most for each of the two evaluations.
        assert!(stats.full_parses <= 2, "{stats:?}");
    }
    eprintln!(
        "{} rules × {} records: {decided} of {} decided on the hot fields",
        rules.len(),
        records.len(),
        decided + undecided
    );
    // The comparison means something only if rules match and both paths are taken.
    assert!(matched > 100, "{matched} matches");
    assert!(undecided > 0);
    assert!(
        decided * 10 > (decided + undecided) * 8,
        "the hot fields decide {decided} of {}",
        decided + undecided
    );
}

#[test]
fn wildcard_shapes_match_as_the_general_matcher_does() {
    use matcher::Wild;
    let cases: &[(&str, bool, &str, bool)] = &[
        ("StopLogging", false, "stoplogging", true),
        ("StopLogging", true, "stoplogging", false),
        ("StopLogging", true, "StopLogging", true),
        ("Stop*", false, "STOPLOGGING", true),
        ("*Logging", false, "stoplogginG", true),
        ("*Logging", false, "Logging", true),
        ("*Log*", false, "xxLOGxx", true),
        ("*Log*", true, "xxLOGxx", false),
        ("*Log*", false, "xxLoxx", false),
        ("Stop*", false, "Sto", false),
        ("**", false, "", true),
        ("*", false, "anything", true),
        ("a\\*b", false, "A*B", true),
        ("a\\*b", false, "axb", false),
        ("a?c", false, "ABC", true),
        // Folding a non-ASCII character can give an ASCII one: the Kelvin sign is `k`.
        ("*k*", false, "\u{212A}ey", true),
        ("\u{212A}ey", false, "KEY", true),
        ("*é*", false, "CAFÉ", true),
        ("*é*", true, "CAFÉ", false),
        ("café", false, "CAFE", false),
    ];
    for &(pat, cased, text, want) in cases {
        assert_eq!(
            Wild::new(pat, cased).matches(text),
            want,
            "{pat:?} cased={cased} on {text:?}"
        );
    }
}

#[test]
fn a_user_identity_field_missing_or_null_is_decided_where_both_answer_alike() {
    let rule = |sel: &str| {
        let text = format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  sel:\n    {sel}\n  condition: sel\n"
        );
        load_str(&text, "t.yml", "t", &none).rules.remove(0)
    };
    let missing = r#"{"eventName":"X","userIdentity":{"type":"AWSService"}}"#;
    let null = r#"{"eventName":"X","userIdentity":{"type":"AWSService","arn":null}}"#;
    for (sel, decided) in [
        ("userIdentity.arn|re: '.+:assumed-role/.+'", Some(false)),
        ("userIdentity.arn|contains: role", Some(false)),
        ("userIdentity.arn: null", Some(true)),
        // Missing is `false`, null is `true`: only the full record tells.
        ("userIdentity.arn|exists: true", None),
    ] {
        let r = rule(sel);
        for rec in [missing, null] {
            let ev = crate::decode::object::parse(rec).unwrap().event;
            assert_eq!(r.decide(&ev), decided, "{sel} on {rec}");
            let full = r.matches(&serde_json::from_str(rec).unwrap());
            if let Some(d) = decided {
                assert_eq!(d, full, "{sel} on {rec}: the prefilter must agree");
            }
        }
    }
}

/// Issue 27, case 5: a quoted `''` is the empty string and `null` (or `~`, or nothing) is null
/// (`''` was read as null: it matched a missing field and not `""`).
#[test]
fn a_quoted_empty_string_is_text_and_null_is_null() {
    let rule = |value: &str| {
        let text = format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n    s:\n        errorCode: {value}\n    condition: s\n"
        );
        let l = load_str(&text, "r.yml", "r", &none);
        assert!(l.errors.is_empty(), "{l:?}");
        l.rules.into_iter().next().unwrap()
    };
    let (empty, missing, null) = (
        json!({"eventID": "1", "errorCode": ""}),
        json!({"eventID": "2"}),
        json!({"eventID": "3", "errorCode": null}),
    );
    for quoted in ["''", "\"\""] {
        let r = rule(quoted);
        assert!(r.matches(&empty), "{quoted}");
        assert!(!r.matches(&missing) && !r.matches(&null), "{quoted}");
    }
    for n in ["null", "~", "", "'null'"] {
        let r = rule(n);
        let word = n == "'null'";
        assert_eq!(r.matches(&missing), !word, "{n:?}");
        assert_eq!(r.matches(&null), !word, "{n:?}");
        assert!(!r.matches(&empty), "{n:?}");
    }
}

/// Issue 28, item 5: a condition nested deeper than 64 (parentheses and `not`) is refused with
/// its line, before anything can overflow the stack (10,000 levels killed `serve` on reload,
/// 30,000 aborted `validate`); one at the limit loads. A regular expression over 10,000 bytes
/// is refused before compiling, and no message quotes more than 200 characters of it.
#[test]
fn deep_conditions_and_huge_regexes_are_refused_with_their_line() {
    let rule = |condition: &str, extra: &str| {
        format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n    sel:\n        eventName: X\n{extra}    condition: {condition}\n"
        )
    };
    for depth in [65, 10_000, 100_000] {
        let text = rule(
            &format!("{}sel{}", "(".repeat(depth), ")".repeat(depth)),
            "",
        );
        let l = load_str(&text, "deep.yml", "deep", &none);
        assert!(l.rules.is_empty(), "{depth}");
        let e = &l.errors[0];
        assert!(e.message.contains("deeper than 64"), "{e:?}");
        assert_eq!(e.line, Some(6), "{e:?}");
        assert!(e.message.len() < 400, "{}", e.message.len());
        let nots = rule(&format!("{}sel", "not ".repeat(depth)), "");
        let l = load_str(&nots, "deep.yml", "deep", &none);
        assert!(
            l.errors[0].message.contains("deeper than 64"),
            "{:?}",
            l.errors
        );
    }
    let ok = rule(&format!("{}sel{}", "(".repeat(64), ")".repeat(64)), "");
    let l = load_str(&ok, "ok.yml", "ok", &none);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert!(l.rules[0].matches(&json!({"eventName": "X"})));
    // A 2 MB regex: refused by size, quoted in 40 characters.
    let big = "a".repeat(2 << 20);
    let text = rule(
        "sel and re",
        &format!("    re:\n        eventName|re: '{big}'\n"),
    );
    let l = load_str(&text, "re.yml", "re", &none);
    assert!(l.rules.is_empty());
    assert!(
        l.errors[0].message.contains("at most 10000"),
        "{}",
        &l.errors[0].message[..200.min(l.errors[0].message.len())]
    );
    assert!(
        l.errors[0].message.len() < 400,
        "{}",
        l.errors[0].message.len()
    );
    // A bad one is quoted in at most 200 characters, with the crate's reason.
    let bad = format!("({}", "b".repeat(5000));
    let text = rule(
        "sel and re",
        &format!("    re:\n        eventName|re: '{bad}'\n"),
    );
    let l = load_str(&text, "re.yml", "re", &none);
    assert!(
        l.errors[0].message.contains("unclosed group"),
        "{}",
        l.errors[0].message
    );
    assert!(
        l.errors[0].message.len() < 400,
        "{}",
        l.errors[0].message.len()
    );
}

#[test]
fn most_sigmahq_rules_are_gated_on_their_service_and_a_negation_or_a_wildcard_is_not() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rules = Vec::new();
    for e in std::fs::read_dir(root.join("rules/sigma/sigmahq")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml") {
            rules.extend(rules_of(&p));
        }
    }
    let gated = rules.iter().filter(|r| !r.gates.is_empty()).count();
    assert!(
        gated * 10 >= rules.len() * 8,
        "{gated} of {} gated",
        rules.len()
    );
    let one = |yaml: &str| {
        let l = load_str(yaml, "t.yml", "t", &none);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        let r = l.rules.into_iter().next().unwrap();
        let text = |r: &Rule| format!("{:?}", r.gates);
        text(&r)
    };
    let head = "title: t\nlogsource: {product: aws, service: cloudtrail}\n";
    let gates = one(&format!("{head}detection:\n  a: {{eventSource: iam.amazonaws.com, eventName: [CreateUser, DeleteUser]}}\n  f: {{userAgent|contains: terraform}}\n  condition: a and not f\n"));
    assert!(
        gates.contains("\"iam.amazonaws.com\"")
            && gates.contains("\"createuser\"")
            && gates.contains("\"deleteuser\""),
        "{gates}"
    );
    // Or of two services: either.
    let gates = one(&format!("{head}detection:\n  a: {{eventSource: iam.amazonaws.com}}\n  b: {{eventSource: sts.amazonaws.com}}\n  condition: 1 of a or b\n"));
    assert!(gates.contains("iam") && gates.contains("sts"), "{gates}");
    for open in [
        "a: {eventSource|contains: iam}\n  condition: a",
        "a: {eventSource: 'iam.*'}\n  condition: a",
        "a: {eventSource: iam.amazonaws.com}\n  condition: not a",
        "a: {eventSource: iam.amazonaws.com}\n  b: {eventName: X}\n  condition: a or b",
        "a: {eventSource|cased: iam.amazonaws.com}\n  condition: a",
    ] {
        let gates = one(&format!("{head}detection:\n  {open}\n"));
        assert!(!gates.contains("eventSource"), "{open}: {gates}");
    }
}
