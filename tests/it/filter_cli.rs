//! The filter-pattern commands driven through the binary: `match`, `lint`, `test`, custom rules
//! in `replay` and `validate`.

use crate::common::*;
use serde_json::Value;

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn event_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["eventID"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn match_prints_matching_events_and_sets_the_exit_code() {
    let t = Tmp::new();
    let recs = stratus();
    let input = t.write("in.jsonl.gz", gz(jsonl(&recs).as_bytes()));
    let pattern = r#"{ $.readOnly IS FALSE && $.errorCode NOT EXISTS }"#;
    let out = run(["match", "--pattern", pattern, &s(&input)]);
    assert_eq!(out.code, 0, "{}", out.show());
    let want: Vec<String> = recs
        .iter()
        .filter(|r| {
            let v: Value = serde_json::from_str(r).unwrap();
            v["readOnly"] == false && v.get("errorCode").is_none()
        })
        .map(|r| {
            serde_json::from_str::<Value>(r).unwrap()["eventID"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(event_ids(&out.stdout), want);

    let none = run([
        "match",
        "--pattern",
        r#"{ $.eventName = "NoSuchCall" }"#,
        &s(&input),
    ]);
    assert_eq!(
        (none.code, none.stdout.as_str()),
        (1, ""),
        "{}",
        none.show()
    );

    let bad = run([
        "match",
        "--pattern",
        r#"{ $.eventName == "x" }"#,
        &s(&input),
    ]);
    assert_eq!(bad.code, 2, "{}", bad.show());
    assert!(
        bad.stderr.contains("`==` is not an operator"),
        "{}",
        bad.show()
    );
    assert!(
        bad.stderr.contains("\n                ^^"),
        "caret under `==`: {}",
        bad.show()
    );
}

#[test]
fn match_reads_any_envelope_and_stdin() {
    let recs = stratus();
    let envelope = gz(cwl_data(&recs[..5]).as_bytes());
    let out = run_with_stdin(["match", "--pattern", "{ $.eventID = * }"], &envelope);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(out.stdout.lines().count(), 5);
}

#[test]
fn match_raw_takes_lines_verbatim() {
    let t = Tmp::new();
    let log = t.write(
        "access.log",
        "127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] \"GET /index.html HTTP/1.0\" 404 1534\n\
         127.0.0.1 Prod frank [10/Oct/2000:13:25:16 -0700] \"GET /index.html HTTP/1.0\" 200 1534\n\
         ERROR not json at all\n",
    );
    let out = run([
        "match",
        "--raw",
        "--pattern",
        "[..., status_code = 4*, bytes]",
        &s(&log),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(out.stdout.lines().count(), 1);
    assert!(out.stdout.contains(" 404 "));
    let terms = run(["match", "--raw", "--pattern", "ERROR -DEBUG", &s(&log)]);
    assert_eq!(terms.stdout, "ERROR not json at all\n", "{}", terms.show());
    // Without --raw, non-JSON lines are dead letters (the run is incomplete: exit 3) and
    // term patterns see decoded records; accepting that, nothing matched: exit 1.
    let no_raw = run(["match", "--pattern", "ERROR", &s(&log)]);
    assert_eq!(no_raw.code, 3, "{}", no_raw.show());
    let no_raw = run([
        "match",
        "--allow-incomplete",
        "--pattern",
        "ERROR",
        &s(&log),
    ]);
    assert_eq!(no_raw.code, 1, "{}", no_raw.show());
}

#[test]
fn lint_reports_findings_with_codes_and_exit_codes() {
    let seed = r#"{ ($.awsRegion != "us-east-1" || $.region != "us-west-2") && ($.eventName != Describe* && $.eventName != List* && $.eventName != Assume* && $.eventName != Get*) }"#;
    let out = run(["lint", "--pattern", seed]);
    assert_eq!(out.code, 1, "{}", out.show());
    for want in [
        "error[TW001-unknown-field]: `$.region` is not a CloudTrail field",
        "fix: did you mean `$.awsRegion`?",
        "warning[TW009-prefix-list-as-read-only]",
        "warning[TW008-read-prefix-exemption]: excluding `Get*` also excludes GetSecretValue",
        // Lint follows its own advice: the fixed pattern's `||` is always true.
        "error[TW002-always-true]: with the fix applied (`$.awsRegion`): `$.awsRegion != \"us-east-1\" || $.awsRegion != \"us-west-2\"` is true for every event",
        "fix: use `&&`: `$.awsRegion != \"us-east-1\" && $.awsRegion != \"us-west-2\"`",
        "5 findings (2 errors)",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?}:\n{}",
            out.stdout
        );
    }
    let clean = run([
        "lint",
        "--pattern",
        r#"{ ($.awsRegion != "us-east-1") && ($.awsRegion != "us-west-2") && ($.readOnly IS FALSE) }"#,
    ]);
    assert_eq!(clean.code, 0, "{}", clean.show());
    assert!(clean.stdout.contains("0 findings"));
    let warn_only = run(["lint", "--pattern", r#"{ $.errorCode != "AccessDenied" }"#]);
    assert_eq!(warn_only.code, 0, "{}", warn_only.show());
    assert!(warn_only.stdout.contains("TW004-ne-on-optional-field"));
    let invalid = run(["lint", "--pattern", "{ $.a = }"]);
    assert_eq!(invalid.code, 2, "{}", invalid.show());
    assert!(invalid.stdout.contains("TW000-syntax"));
}

#[test]
fn lint_config_covers_rules_and_read_prefixes() {
    let t = Tmp::new();
    let cfg = t.config(
        r#"
[policy]
approved_regions = ["us-east-1"]
read_prefixes = ["Describe", "List", "Assume"]

[[rules]]
id = "typo"
filter = '{ $.eventname = "ConsoleLogin" }'
"#,
    );
    let out = run(["lint", "--config", &s(&cfg)]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stdout.contains("rule typo:1:3"), "{}", out.stdout);
    assert!(
        out.stdout.contains("did you mean `$.eventName`?"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("TW013-read-prefix-policy"),
        "{}",
        out.stdout
    );
    let example = run([
        "lint",
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/trailwatch.toml"),
    ]);
    assert_eq!(
        example.code,
        0,
        "the shipped rules have no error findings: {}",
        example.show()
    );
}

#[test]
fn test_command_runs_rule_tests() {
    let t = Tmp::new();
    let recs = stratus();
    let login = recs
        .iter()
        .find(|r| r.contains("\"ConsoleLogin\""))
        .unwrap();
    let other = recs
        .iter()
        .find(|r| !r.contains("\"ConsoleLogin\""))
        .unwrap();
    t.write("events/login.json", login);
    let cfg = t.config(&format!(
        r#"
[policy]
approved_regions = ["us-east-1"]

[[rules]]
id = "console-login"
title = "Console sign-in"
severity = "high"
filter = '{{ $.eventName = "ConsoleLogin" }}'

[[rules.tests]]
name = "the login"
event_file = "events/login.json"
expect = true

[[rules.tests]]
name = "something else"
event = '''{other}'''
expect = false

[[rules.tests]]
name = "inline table"
event = {{ eventVersion = "1.08", eventName = "ConsoleLogin", eventID = "x" }}
expect = true
"#
    ));
    let out = run(["test", "--config", &s(&cfg)]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("3 passed, 0 failed"), "{}", out.stdout);
    // A wrong expectation fails the run and says which test.
    let failing =
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replacen("expect = false", "expect = true", 1);
    let cfg2 = t.write("failing.toml", failing);
    let out = run(["test", "--config", &s(&cfg2)]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("something else")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("2 passed, 1 failed"), "{}", out.stdout);
}

#[test]
fn the_shipped_cis_rules_pass_their_tests() {
    let out = run([
        "test",
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rules/cis.toml"),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains(" 0 failed, 15 rules, 0 without tests"),
        "{}",
        out.stdout
    );
}

#[test]
fn custom_rules_alert_in_replay_with_the_same_fields() {
    let t = Tmp::new();
    let recs = stratus();
    let cfg = t.config(
        r#"
[policy]
approved_regions = ["us-east-1"]

[[rules]]
id = "errors"
title = "Failed call"
severity = "low"
filter = '{ $.errorCode = * }'
runbook = "https://wiki.example/errors"
"#,
    );
    let input = t.write("in.jsonl", jsonl(&recs));
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 0, "{}", out.show());
    let alerts = out.alerts();
    let errors: Vec<&Value> = alerts.iter().filter(|a| a["rule"] == "errors").collect();
    let want = recs.iter().filter(|r| r.contains("\"errorCode\"")).count();
    assert!(want > 0);
    assert_eq!(errors.len(), want, "{}", out.show());
    for a in &errors {
        assert_eq!(a["severity"], "low");
        assert_eq!(a["title"], "Failed call");
        assert_eq!(a["runbook"], "https://wiki.example/errors");
        assert!(
            a["reason"].as_str().unwrap().starts_with("Failed call: "),
            "{a}"
        );
        assert!(a["error_code"].is_string(), "{a}");
        assert_ne!(a["alert_id"], Value::Null);
    }
    // Region alerts keep their own rule id and are unaffected.
    assert!(alerts
        .iter()
        .all(|a| a["rule"] == "errors" || a["rule"] == "unapproved-region"));
}

#[test]
fn validate_reports_bad_filters_with_a_caret() {
    let t = Tmp::new();
    let cfg = t.config(
        r#"
[policy]
approved_regions = ["us-east-1"]

[[rules]]
id = "broken"
filter = '{ $.eventName = "x" && $eventName = "y" }'

[[rules]]
id = "broken"
filter = '{ $.a = 1 }'
colour = "red"
"#,
    );
    let out = run(["validate", "--config", &s(&cfg)]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stdout.contains(
            "rules[0] (broken).filter: invalid filter pattern: expected `.` or `[` after `$`"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("rules[1].colour: unknown field `colour`"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("rule id \"broken\" is used more than once"),
        "{}",
        out.stdout
    );
}
