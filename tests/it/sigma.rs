//! Sigma rules through the binary: `sigma_rules` loads SigmaHQ's CloudTrail rules (copied
//! with their DRL 1.1 notice into rules/sigma/sigmahq/) beside the built-in and filter rules;
//! alerts carry the rule's id, title, level, references, tags and false positives; a broken
//! rule file is reported with its line and never stops the others.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::*;
use serde_json::Value;

fn sigmahq() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules/sigma/sigmahq")
        .display()
        .to_string()
}

#[test]
fn replay_raises_sigmahq_rules_with_their_metadata() {
    let t = Tmp::new();
    let cfg = t.config(&format!(
        "sigma_rules = [\"{}\"]\n\n[policy]\napproved_regions = [\"us-east-1\", \"eu-west-1\", \"us-west-2\"]\n",
        sigmahq()
    ));
    let input = t.write("stratus.jsonl", stratus().join("\n"));
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 0, "{}", out.show());
    let alerts = out.alerts();
    let trail: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule"] == "sigma:aws_cloudtrail_disable_logging")
        .collect();
    let names: BTreeSet<&str> = trail
        .iter()
        .map(|a| a["event_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["DeleteTrail", "StopLogging"]),
        "{}",
        out.show()
    );
    let a = trail[0];
    assert_eq!(a["title"], "AWS CloudTrail Important Change");
    assert_eq!(a["severity"], "medium");
    assert_eq!(
        a["sigma"]["sigma_id"],
        "4db60cc0-36fb-42b7-9b58-a5b53019fb74"
    );
    assert_eq!(
        a["sigma"]["description"],
        "Detects disabling, deleting and updating of a Trail"
    );
    assert_eq!(
        a["sigma"]["tags"],
        serde_json::json!(["attack.defense-impairment", "attack.t1685.002"])
    );
    assert_eq!(
        a["sigma"]["falsepositives"],
        serde_json::json!(["Valid change in a Trail"])
    );
    assert!(a["sigma"]["references"][0]
        .as_str()
        .unwrap()
        .starts_with("https://docs.aws.amazon.com/"));
    // SigmaHQ's CreateAccessKey rule: its filter compares with the text
    // "responseElements.accessKey.userName" (not a field reference), so it fires, as pySigma's does.
    assert!(alerts
        .iter()
        .any(|a| a["rule"] == "sigma:aws_iam_backdoor_users_keys"
            && a["event_name"] == "CreateAccessKey"));
    // Every Sigma alert names a rule file of the folder.
    for a in alerts
        .iter()
        .filter(|a| a["rule"].as_str().unwrap().starts_with("sigma:"))
    {
        let stem = a["rule"].as_str().unwrap().trim_start_matches("sigma:");
        assert!(
            Path::new(&sigmahq()).join(format!("{stem}.yml")).exists(),
            "{a}"
        );
    }
}

#[test]
fn a_broken_rule_is_reported_with_its_line_and_the_others_still_run() {
    let t = Tmp::new();
    t.write(
        "rules/good.yml",
        "title: Trail stopped\nid: 11111111-2222-3333-4444-555555555555\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    selection:\n        eventName: StopLogging\n    condition: selection\nlevel: critical\n",
    );
    t.write(
        "rules/broken.yml",
        "title: Broken\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    selection:\n        eventName: DeleteTrail\n    condition: selection and filter\n",
    );
    t.write(
        "rules/windows.yml",
        "title: Not ours\nlogsource:\n    product: windows\n    service: security\ndetection:\n    selection:\n        EventID: 4625\n    condition: selection\n",
    );
    let cfg =
        t.config("sigma_rules = [\"rules/\"]\n\n[policy]\napproved_regions = [\"us-east-1\"]\n");
    let v = common::run(["validate", "--config", &s(&cfg)]);
    assert_eq!(v.code, 2, "{}", v.show());
    assert!(
        v.stdout
            .contains("broken.yml:8: the condition names `filter`, which is not a selection"),
        "{}",
        v.show()
    );
    assert!(
        v.stdout.contains(
            "windows.yml:3: not a CloudTrail rule (logsource {product: windows, service: security}"
        ),
        "{}",
        v.show()
    );
    let input = t.write("stratus.jsonl", stratus().join("\n"));
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 0, "{}", out.show());
    let sigma: Vec<(String, String)> = out
        .alerts()
        .iter()
        .filter(|a| a["rule"].as_str().unwrap().starts_with("sigma:"))
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        sigma,
        vec![("sigma:good".to_string(), "critical".to_string())]
    );
    assert!(
        out.stderr.contains("a Sigma rule cannot be loaded"),
        "{}",
        out.show()
    );
}

#[test]
fn match_greps_with_a_sigma_rule() {
    let t = Tmp::new();
    let input = t.write("stratus.jsonl", stratus().join("\n"));
    let rule = format!("{}/aws_cloudtrail_disable_logging.yml", sigmahq());
    let out = common::run(["match", "--sigma", &rule, &s(&input)]);
    assert_eq!(out.code, 0, "{}", out.show());
    let names: BTreeSet<String> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["eventName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["DeleteTrail".to_string(), "StopLogging".to_string()])
    );
    // Nothing matches: 1; a broken rule: 2, with its line.
    let none = t.write(
        "none.yml",
        "title: n\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n    sel:\n        eventName: NoSuchCall\n    condition: sel\n",
    );
    assert_eq!(
        common::run(["match", "--sigma", &s(&none), &s(&input)]).code,
        1
    );
    let broken = t.write(
        "broken.yml",
        "title: b\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n    sel:\n        eventName|startswit: Stop\n    condition: sel\n",
    );
    let out = common::run(["match", "--sigma", &s(&broken), &s(&input)]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stderr
            .contains("broken.yml:5: `eventName|startswit`: unknown modifier `startswit`"),
        "{}",
        out.show()
    );
}

/// `lint` printed a finding `code` at `place` (`FILE:LINE (RULE)`) saying `text`.
fn expect_finding(stdout: &str, code: &str, place: &str, text: &str) {
    let at = format!("  --> {place}");
    let finding = stdout
        .split("\n\n")
        .find(|f| f.contains(&format!("[{code}]")) && f.contains(&at))
        .unwrap_or_else(|| panic!("no {code} at {at}:\n{stdout}"));
    assert!(finding.contains(text), "{text:?} not in\n{finding}");
}

#[test]
fn lint_reports_each_finding_by_rule_and_line() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigma-lint/lint.yml");
    let out = common::run(["lint", "--sigma", &s(&fixture)]);
    // Two rules do not load (a condition naming no selection, an unsupported modifier): 2.
    assert_eq!(out.code, 2, "{}", out.show());
    let file = s(&fixture);
    for (code, line, rule, text) in [
        (
            "SG001-unknown-field",
            8,
            "#1",
            "fix: did you mean `eventName`?",
        ),
        (
            "SG001-unknown-field",
            15,
            "#2",
            "fix: did you mean `userIdentity.sessionContext.sessionIssuer.type`?",
        ),
        ("SG002-modifier-type", 22, "#3", "`readOnly` is a boolean"),
        (
            "SG002-modifier-type",
            24,
            "#3",
            "`eventName` is text, not a number",
        ),
        ("SG002-modifier-type", 26, "#3", "never an IP address"),
        (
            "SG002-modifier-type",
            28,
            "#3",
            "compared with its whole JSON text",
        ),
        (
            "SG006-unused-selection",
            36,
            "#4",
            "`filter_main_automation` is not used",
        ),
        (
            "SG003-no-selection",
            45,
            "#5",
            "`filter`, which is not a selection",
        ),
        (
            "SG004-unsupported",
            51,
            "#6",
            "modifier `wide` is not supported",
        ),
        ("SG005-not-cloudtrail", 55, "#7", "service: guardduty"),
    ] {
        expect_finding(
            &out.stdout,
            code,
            &format!("{file}:{line} (sigma:lint{rule})"),
            text,
        );
    }
    assert!(
        !out.stdout.contains("(sigma:lint#8)"),
        "the clean rule: {}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("10 findings (7 errors) in 5 rules of 1 files; 2 rules not loaded"),
        "{}",
        out.stdout
    );
    // SigmaHQ's 57: one real finding (`status` is no CloudTrail field); they all load: 1.
    let hq = common::run(["lint", "--sigma", &sigmahq()]);
    assert_eq!(hq.code, 1, "{}", hq.show());
    assert!(hq.stdout.contains(
        "error[SG001-unknown-field]: `status` is not a CloudTrail field, so `status` is never true"
    ));
    assert!(hq
        .stdout
        .contains("1 findings (1 errors) in 57 rules of 57 files; 0 rules not loaded"));
    // Correlations: group-by fields against the schema, references over every file, and the
    // Sigma 1 forms that are not evaluated.
    let corr =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigma-lint/correlation.yml");
    let out = common::run(["lint", "--sigma", &s(&corr)]);
    assert_eq!(out.code, 2, "{}", out.show());
    let file = s(&corr);
    for (code, line, rule, text) in [
        (
            "SG001-unknown-field",
            14,
            "#2",
            "did you mean `userIdentity.userName`?",
        ),
        (
            "SG000-broken",
            21,
            "#3",
            "`lisitng` is the `name` or `id` of no CloudTrail rule",
        ),
        ("SG004-unsupported", 31, "#4", "`| near …` is not evaluated"),
    ] {
        expect_finding(
            &out.stdout,
            code,
            &format!("{file}:{line} (sigma:correlation{rule})"),
            text,
        );
    }
    assert!(
        out.stdout
            .contains("3 findings (3 errors) in 2 rules of 1 files; 2 rules not loaded"),
        "{}",
        out.stdout
    );
    // SigmaHQ's unsupported/ rules, six as written and two rewritten: they all load, clean.
    let unsupported = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma/sigmahq-unsupported");
    let u = common::run(["lint", "--sigma", &s(&unsupported)]);
    assert_eq!(u.code, 0, "{}", u.show());
    assert!(
        u.stdout
            .contains("0 findings (0 errors) in 12 rules of 8 files"),
        "{}",
        u.stdout
    );
    // The clean rule alone: 0.
    let t = Tmp::new();
    let text = std::fs::read_to_string(&fixture).unwrap();
    let clean = t.write("clean.yml", text.rsplit("---\n").next().unwrap());
    let c = common::run(["lint", "--sigma", &s(&clean)]);
    assert_eq!(c.code, 0, "{}", c.show());
    assert!(c.stdout.contains("0 findings"), "{}", c.stdout);
}

#[test]
fn validate_loads_correlations_and_match_refuses_them() {
    let t = Tmp::new();
    let unsupported = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma/sigmahq-unsupported");
    let cfg = t.config(&format!(
        "sigma_rules = [\"{}\"]\n\n[policy]\napproved_regions = [\"us-east-1\"]\n",
        s(&unsupported)
    ));
    let v = common::run(["validate", "--config", &s(&cfg)]);
    assert_eq!(v.code, 0, "{}", v.show());
    assert!(
        v.stdout
            .contains("12 Sigma rules (8 of them correlations, 0 skipped)"),
        "{}",
        v.show()
    );
    // A correlation naming a rule that is not there: validate exits 2 and says where.
    let broken =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigma-lint/correlation.yml");
    let bad = t.write("bad.toml", format!("sigma_rules = [\"{}\"]\n", s(&broken)));
    let v = common::run(["validate", "--config", &s(&bad)]);
    assert_eq!(v.code, 2, "{}", v.show());
    assert!(
        v.stdout.contains(&format!(
            "error: {}:21: `correlation.rules`: `lisitng`",
            s(&broken)
        )),
        "{}",
        v.show()
    );
    let m = common::run([
        "match",
        "--sigma",
        &s(&unsupported.join("aws_enum_listing.yml")),
        &s(&t.write("in.jsonl", stratus().join("\n"))),
    ]);
    assert_ne!(m.code, 0, "{}", m.show());
    assert!(m.stderr.contains("is a correlation rule"), "{}", m.show());
}

#[test]
fn test_runs_the_tests_written_beside_a_sigma_rule() {
    let t = Tmp::new();
    std::fs::create_dir_all(t.path("rules")).unwrap();
    t.write(
        "rules/trail.yml",
        "title: trail stopped\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n    selection:\n        eventSource: cloudtrail.amazonaws.com\n        eventName: [StopLogging, DeleteTrail]\n        readOnly: false\n    condition: selection\n",
    );
    t.write("rules/samples.jsonl", stratus().join("\n"));
    let tests = r#"tests:
    - name: StopLogging is caught
      expect: true
      event: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging, readOnly: false,
              eventID: e1, eventTime: '2026-12-01T00:00:00Z', awsRegion: us-east-1}
    - name: a read is not
      expect: false
      event: {eventSource: cloudtrail.amazonaws.com, eventName: DescribeTrails, readOnly: true}
    - name: not every Stratus record stops a trail
      expect: true
      file: samples.jsonl
    - name: no expect
      event: {eventName: StopLogging}
"#;
    t.write("rules/trail.tests.yml", tests);
    // A second rule file without tests.
    t.write(
        "rules/other.yml",
        "title: o\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n    s:\n        eventName: X\n    condition: s\n",
    );
    let cfg = t.config("sigma_rules = [\"rules/\"]\n");
    let out = common::run(["test", "--config", &s(&cfg)]);
    assert_eq!(out.code, 1, "{}", out.show());
    let row = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{}", out.stdout))
            .to_string()
    };
    assert!(
        row("StopLogging is caught").starts_with("ok "),
        "{}",
        out.stdout
    );
    assert!(row("StopLogging is caught").contains("sigma:trail"));
    assert!(row("a read is not").starts_with("ok "));
    let file_row = row("not every Stratus record");
    assert!(file_row.starts_with("FAIL"), "{file_row}");
    assert!(
        file_row.contains(&format!("matched 2 of {} events", stratus().len())),
        "{file_row}"
    );
    let broken = row("no expect");
    assert!(
        broken.starts_with("FAIL") && broken.contains("trail.tests.yml:12: "),
        "{broken}"
    );
    assert!(
        out.stdout
            .contains("2 passed, 2 failed, 2 rules, 1 without tests: sigma:other"),
        "{}",
        out.stdout
    );
    // Without the two failing tests, every test passes: 0.
    let cut = tests.find("    - name: not every").unwrap();
    t.write("rules/trail.tests.yml", &tests[..cut]);
    let out = common::run(["test", "--config", &s(&cfg)]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("2 passed, 0 failed"), "{}", out.stdout);
    // A rule file with tests that does not load fails, with its line.
    t.write(
        "rules/broken.yml",
        "title: b\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n    s:\n        eventName: X\n    condition: s and t\n",
    );
    t.write(
        "rules/broken.tests.yml",
        "tests:\n    - expect: false\n      event: {eventName: Y}\n",
    );
    let out = common::run(["test", "--config", &s(&cfg)]);
    assert_eq!(out.code, 1, "{}", out.show());
    let row = out
        .stdout
        .lines()
        .find(|l| l.contains("broken.yml:6: "))
        .unwrap_or_default();
    assert!(
        row.starts_with("FAIL") && row.contains("`t`, which is not a selection"),
        "{}",
        out.stdout
    );
}

/// Issue 27, case 7: a side test's `file:` takes any form `replay` reads: gzip'd JSON lines,
/// an S3 log file, `lookup-events` output. Failed before: "stream did not contain valid UTF-8".
#[test]
fn side_test_files_take_any_form_replay_reads() {
    let t = Tmp::new();
    std::fs::create_dir_all(t.path("rules")).unwrap();
    t.write(
        "rules/trail.yml",
        "title: trail stopped\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n    selection:\n        eventName: [StopLogging, DeleteTrail, LeaveOrganization]\n    condition: selection\n",
    );
    let hits: Vec<String> = stratus()
        .into_iter()
        .filter(|r| {
            ["StopLogging", "DeleteTrail", "LeaveOrganization"]
                .iter()
                .any(|n| r.contains(&format!("\"eventName\":\"{n}\"")))
        })
        .collect();
    assert!(hits.len() >= 2, "{}", hits.len());
    t.write("rules/hits.jsonl.gz", gz(jsonl(&hits).as_bytes()));
    t.write("rules/hits.json", s3_logfile(&hits));
    let lookup = serde_json::json!({"Events": hits.iter().map(|h| serde_json::json!({
        "EventId": id_of(h), "EventName": "x", "CloudTrailEvent": h})).collect::<Vec<_>>()});
    t.write(
        "rules/lookup.json",
        serde_json::to_string_pretty(&lookup).unwrap(),
    );
    t.write(
        "rules/trail.tests.yml",
        "tests:\n    - name: gzip'd lines\n      expect: true\n      file: hits.jsonl.gz\n    - name: a log file\n      expect: true\n      file: hits.json\n    - name: lookup-events output\n      expect: true\n      file: lookup.json\n",
    );
    let cfg = t.config("sigma_rules = [\"rules/\"]\n");
    let out = common::run(["test", "--config", &s(&cfg)]);
    assert_eq!(out.code, 0, "{}", out.show());
    let n = hits.len();
    for name in ["gzip'd lines", "a log file", "lookup-events output"] {
        let row = out
            .stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_default();
        assert!(
            row.starts_with("ok ") && row.contains(&format!("matched {n} of {n} events")),
            "{name}: {}",
            out.stdout
        );
    }
}

/// A correlation may name a rule of another file: `test` loads the files together, so the
/// correlation's file is not broken, and its side tests judge its own detections.
#[test]
fn test_links_correlations_across_files() {
    let t = Tmp::new();
    std::fs::create_dir_all(t.path("rules")).unwrap();
    t.write(
        "rules/a_listing.yml",
        "title: Listing\nname: listing\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName|startswith: List\n  condition: sel\n",
    );
    t.write(
        "rules/burst.yml",
        "title: A burst of listing\ncorrelation:\n  type: event_count\n  rules: [listing]\n  timespan: 10m\n  condition: {gte: 3}\n",
    );
    t.write(
        "rules/burst.tests.yml",
        "tests:\n    - name: one listing is no burst\n      expect: false\n      event: {eventName: ListUsers, eventSource: iam.amazonaws.com}\n",
    );
    let cfg = t.config("sigma_rules = [\"rules/\"]\n");
    let out = common::run(["test", "--config", &s(&cfg)]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 passed, 0 failed, 2 rules"),
        "{}",
        out.stdout
    );
}

/// Issue 27: `replay`, `backtest` (over a local archive layout) and `explain` decide the same
/// for every fixture record, rule by rule (the region rule, the CIS filter rules, SigmaHQ's
/// rules); and `match --sigma RULE` prints exactly the events `replay` raises RULE for.
/// `explain` showed no Sigma verdict before (issue 27, case 6).
#[test]
fn replay_backtest_explain_and_match_decide_the_same() {
    use std::collections::BTreeMap;
    let t = Tmp::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = t.config(&format!(
        "include_rules = [\"{}\"]\nsigma_rules = [\"{}\"]\n\n[policy]\napproved_regions = [\"us-east-1\"]\n\n[[policy.exempt]]\nevent_name = \"DeleteTrail\"\nreason = \"migration\"\n",
        root.join("examples/rules/cis.toml").display(),
        sigmahq()
    ));
    let recs = all_records();
    let input = t.write("all.jsonl", jsonl(&recs));
    type Decisions = BTreeMap<String, BTreeSet<String>>;
    let mut want: Decisions = recs.iter().map(|r| (id_of(r), BTreeSet::new())).collect();
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 0, "{}", out.show());
    for a in out.alerts() {
        if a["sigma"]["correlation"].is_null() {
            want.entry(a["event_id"].as_str().unwrap().to_string())
                .or_default()
                .insert(a["rule"].as_str().unwrap().to_string());
        }
    }
    let rules: BTreeSet<&String> = want.values().flatten().collect();
    assert!(rules.iter().any(|r| r.starts_with("sigma:")), "{rules:?}");
    assert!(
        rules.contains(&"unapproved-region".to_string()),
        "{rules:?}"
    );
    // explain, at each event's own time (as replay judges exemptions).
    let out = common::run([
        "explain",
        "--config",
        &s(&cfg),
        "--event",
        &s(&input),
        "--at",
        "event",
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    let mut explained: Decisions = BTreeMap::new();
    let mut current = String::new();
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix("event ") {
            current = rest.split(' ').next().unwrap().to_string();
            explained.entry(current.clone()).or_default();
        } else if let Some(rest) = line.strip_prefix("  raises:         ") {
            if rest != "nothing" {
                let set = explained.entry(current.clone()).or_default();
                for r in rest.split(", ") {
                    set.insert(r.rsplit_once(" (").unwrap().0.to_string());
                }
            }
        }
    }
    assert_eq!(explained, want, "explain and replay differ");
    // backtest over the same records in an archive's layout.
    let key = "archive/AWSLogs/111111111111/CloudTrail/us-east-1/2024/07/31/111111111111_CloudTrail_us-east-1_20240731T2359Z_all.json.gz";
    t.write(key, gz(s3_logfile(&recs).as_bytes()));
    let lines = t.path("alerts.jsonl");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["backtest", "--config", &s(&cfg), "--alerts", &s(&lines)])
        .arg(t.path("archive"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut backtested: Decisions = recs.iter().map(|r| (id_of(r), BTreeSet::new())).collect();
    for l in std::fs::read_to_string(&lines).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let a = &v["alert"];
        if a["sigma"]["correlation"].is_null() {
            backtested
                .entry(a["event_id"].as_str().unwrap().to_string())
                .or_default()
                .insert(a["rule"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(backtested, want, "backtest and replay differ");
    // match --sigma RULE.yml prints exactly the events replay raises RULE for.
    for rule in rules.iter().filter(|r| r.starts_with("sigma:")) {
        let file = Path::new(&sigmahq()).join(format!("{}.yml", &rule["sigma:".len()..]));
        let out = common::run(["match", "--sigma", &s(&file), &s(&input)]);
        assert_eq!(out.code, 0, "{rule}: {}", out.show());
        let matched: BTreeSet<String> = out.stdout.lines().map(id_of).collect();
        let raised: BTreeSet<String> = want
            .iter()
            .filter(|(_, r)| r.contains(*rule))
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(matched, raised, "{rule}");
    }
}

/// Issue 27, case 5: `lint --sigma RULES --sample FILE…` checks the rules against real
/// records: a field that never occurs (SG007), a field that is only an array where a plain
/// value is compared (SG008), a JSON-string field a quoted value cannot match (SG009, as in
/// SigmaHQ's S3 Browser rule on a real PutUserPolicy record), a rule that matches nothing
/// (SG010); each by rule and line. A sample that cannot be read whole is exit 3.
#[test]
fn lint_with_a_sample_reports_what_real_records_hold() {
    let t = Tmp::new();
    let mut recs = stratus();
    recs.extend(lines_of("sigma-arrays.jsonl"));
    let sample = t.write("sample.jsonl.gz", gz(jsonl(&recs).as_bytes()));
    let rules = t.write(
        "rules.yml",
        r#"title: an unseen field
logsource: {product: aws, service: cloudtrail}
detection:
    sel:
        eventName: RunInstances
        requestParameters.instanceTypo: t3.micro
    condition: sel
---
title: an array compared with a plain value
logsource: {product: aws, service: cloudtrail}
detection:
    sel:
        requestParameters.containerDefinitions: nginx
    condition: sel
---
title: a quoted value in a JSON string
logsource: {product: aws, service: cloudtrail}
detection:
    sel:
        requestParameters|contains: '"Effect":"Deny"'
    condition: sel
---
title: through the arrays
logsource: {product: aws, service: cloudtrail}
detection:
    sel:
        requestParameters.ipPermissions.items.ipRanges.items.cidrIp: 0.0.0.0/0
    condition: sel
"#,
    );
    let out = common::run(["lint", "--sigma", &s(&rules), "--sample", &s(&sample)]);
    assert_eq!(out.code, 0, "{}", out.show());
    let n = recs.len();
    assert!(
        out.stdout.contains(&format!("sample: {n} records")),
        "{}",
        out.stdout
    );
    expect_finding(
        &out.stdout,
        "SG007-not-in-sample",
        &format!("{}:6 (sigma:rules#1)", s(&rules)),
        &format!("`requestParameters.instanceTypo` occurs in none of the {n} sample records"),
    );
    expect_finding(
        &out.stdout,
        "SG008-shape-in-sample",
        &format!("{}:13 (sigma:rules#2)", s(&rules)),
        "`requestParameters.containerDefinitions` is always an array in the sample",
    );
    expect_finding(
        &out.stdout,
        "SG009-json-string",
        &format!("{}:20 (sigma:rules#3)", s(&rules)),
        "`requestParameters.policyDocument` holds JSON documents as strings",
    );
    for rule in ["sigma:rules#1", "sigma:rules#2", "sigma:rules#3"] {
        assert!(
            out.stdout.contains(&format!("({rule})\n"))
                && out
                    .stdout
                    .split("\n\n")
                    .any(|f| f.contains("SG010") && f.contains(rule)),
            "{rule} matches nothing: {}",
            out.stdout
        );
    }
    assert!(
        !out.stdout
            .split("\n\n")
            .any(|f| f.contains("sigma:rules#4") && f.contains("SG0")),
        "the rule through the arrays matches the Panther records: {}",
        out.stdout
    );
    // A sample that cannot be read whole: exit 3, no findings as if it had been.
    let out = common::run([
        "lint",
        "--sigma",
        &s(&rules),
        "--sample",
        &s(&sample),
        &s(&t.path("missing.jsonl")),
    ]);
    assert_eq!(out.code, 3, "{}", out.show());
    assert!(out.stderr.contains("INCOMPLETE"), "{}", out.show());
}
