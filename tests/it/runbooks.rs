//! Issue 30: where to look next. `[runbooks]` gives the built-in rules (and Sigma rules) a
//! runbook; a Sigma rule without one links its first reference; a custom rule keeps its own.

use crate::common::*;

#[test]
fn built_in_and_sigma_alerts_carry_a_runbook() {
    let t = Tmp::new();
    let sigma = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules/sigma/sigmahq/aws_cloudtrail_disable_logging.yml");
    let cfg = t.config(&format!(
        "sigma_rules = [\"{}\"]\n\n\
         [policy]\napproved_regions = [\"us-east-1\"]\n\n\
         [runbooks]\n\"unapproved-region\" = \"https://wiki.example/runbooks/unapproved-region\"\n",
        s(&sigma)
    ));
    let out = replay(&cfg, &[fixture_path("stratus_sample.jsonl")]);
    assert_eq!(out.code, 0, "{}", out.show());
    let alerts = out.alerts();
    let region: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "unapproved-region")
        .collect();
    assert!(!region.is_empty(), "{}", out.show());
    for a in region {
        assert_eq!(
            a["runbook"],
            "https://wiki.example/runbooks/unapproved-region"
        );
    }
    let sigma_alert = alerts
        .iter()
        .find(|a| a["rule"] == "sigma:aws_cloudtrail_disable_logging")
        .unwrap_or_else(|| panic!("{}", out.show()));
    assert_eq!(
        sigma_alert["runbook"],
        "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/best-practices-security.html"
    );
}

#[test]
fn a_runbook_for_a_rule_that_cannot_take_one_here_is_refused_at_start() {
    let t = Tmp::new();
    let cfg = t.config(
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n[runbooks]\n\"my-rule\" = \"x\"\n\"feed-silent\" = 3\n",
    );
    let out = run(["validate", "--config", &s(&cfg)]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stdout
            .contains("runbooks.my-rule: not a rule that takes a runbook here"),
        "{}",
        out.show()
    );
    assert!(
        out.stdout
            .contains("runbooks.feed-silent: expected a non-empty string"),
        "{}",
        out.show()
    );
}
