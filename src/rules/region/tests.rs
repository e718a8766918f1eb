use super::*;
use crate::config::{load_str, parse_date};
use crate::decode::object;

const CONFIG: &str = r#"
[policy]
approved_regions = ["us-east-1", "us-west-2"]

[policy.ous."ou-root-eu"]
approved_regions = ["eu-west-1"]

[policy.ous."ou-ab12-prodeu"]
parent = "ou-root-eu"
extra_regions = ["eu-central-1"]
accounts = ["222233334444"]

[policy.accounts."111122223333"]
name = "payments-prod"
ou = "ou-ab12-prodeu"
extra_regions = ["eu-north-1"]

[policy.accounts."333344445555"]
name = "replaced"
approved_regions = ["ap-southeast-2"]

[[policy.exempt]]
principal = "arn:aws:iam::*:role/BreakGlass*"
reason = "incident response"
expires = "2027-01-31"

[[policy.exempt]]
event_source = "cloudformation.amazonaws.com"
account = "333344445555"
reason = "stacksets"
"#;

fn policy(text: &str) -> RegionPolicy {
    let loaded = load_str(text, "test.toml", 0).unwrap();
    RegionPolicy::build(&loaded.config.policy)
}

/// A CloudTrail record with the given fields overriding a successful write.
fn event(fields: &str) -> String {
    let base = serde_json::json!({
        "eventVersion": "1.08", "eventID": "e-1", "eventTime": "2026-11-01T00:00:00Z",
        "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
        "awsRegion": "sa-east-1", "readOnly": false, "eventType": "AwsApiCall",
        "recipientAccountId": "444455556666",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::444455556666:user/alice",
                         "accountId": "444455556666"}
    });
    let mut base = base.as_object().unwrap().clone();
    let over: serde_json::Value = serde_json::from_str(&format!("{{{fields}}}")).unwrap();
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            base.remove(k);
        } else {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::Value::Object(base).to_string()
}

const NOW: i64 = 1_793_491_200; // 2026-11-01

fn verdict(p: &RegionPolicy, fields: &str) -> String {
    verdict_at(p, fields, NOW)
}

fn verdict_at(p: &RegionPolicy, fields: &str, now: i64) -> String {
    let text = event(fields);
    let s = object::parse(&text).unwrap();
    match evaluate(p, &s.event, now) {
        Verdict::NotActivity(n) => format!("not-activity:{n:?}"),
        Verdict::NoRegion => "no-region".into(),
        Verdict::Approved(a) => format!("approved:{}", a.level),
        Verdict::GlobalService => "global".into(),
        Verdict::Exempt(_, e) => format!("exempt:{}", e.index),
        Verdict::FailedCallIgnored(_) => "failed-ignored".into(),
        Verdict::Alert(a, sev, _) => format!("alert:{}:{}", sev.as_str(), a.level),
        Verdict::ScpBypass(a) => format!("scp-bypass:{}", a.level),
        Verdict::ScpExemptAction(_) => "scp-exempt-action".into(),
    }
}

#[test]
fn activity_branches() {
    let p = policy(CONFIG);
    assert_eq!(verdict(&p, ""), "alert:high:organization");
    assert_eq!(verdict(&p, r#""readOnly": true"#), "not-activity:ReadOnly");
    // readOnly absent: the name decides.
    assert_eq!(
        verdict(&p, r#""readOnly": null, "eventName": "DescribeInstances""#),
        r#"not-activity:ReadPrefix("Describe")"#
    );
    assert_eq!(
        verdict(&p, r#""readOnly": null, "eventName": "CreateUser""#),
        "alert:high:organization"
    );
    assert_eq!(
        verdict(&p, r#""readOnly": null, "eventName": "GetSessionToken""#),
        "alert:high:organization"
    );
    assert_eq!(
        verdict(&p, r#""readOnly": null, "eventName": null"#),
        "not-activity:Unknown"
    );
    // readOnly false beats a read-looking name.
    assert_eq!(
        verdict(&p, r#""eventName": "GetObject""#),
        "alert:high:organization"
    );
    for t in ["AwsServiceEvent", "AwsCloudTrailInsight"] {
        assert_eq!(
            verdict(&p, &format!(r#""eventType": "{t}""#)),
            format!(r#"not-activity:EventType("{t}")"#)
        );
    }
}

#[test]
fn custom_read_prefixes() {
    let p = policy(&CONFIG.replace(
        "approved_regions = [\"us-east-1\", \"us-west-2\"]\n",
        "approved_regions = [\"us-east-1\"]\nread_prefixes = [\"Describe\"]\nread_prefix_exceptions = []\n",
    ));
    assert_eq!(
        verdict(&p, r#""readOnly": null, "eventName": "GetObject""#),
        "alert:high:organization"
    );
    assert_eq!(
        verdict(&p, r#""readOnly": null, "eventName": "DescribeVpcs""#),
        r#"not-activity:ReadPrefix("Describe")"#
    );
}

#[test]
fn policy_levels_organization_ou_account() {
    let p = policy(CONFIG);
    assert_eq!(
        verdict(&p, r#""awsRegion": "us-west-2""#),
        "approved:organization"
    );
    // Account in an OU nested under another: parent replaces, child extends, account extends.
    let acct = r#""recipientAccountId": "111122223333""#;
    for (region, want) in [
        (
            "eu-west-1",
            "approved:ou:ou-root-eu + ou:ou-ab12-prodeu extra_regions + account extra_regions",
        ),
        (
            "eu-central-1",
            "approved:ou:ou-root-eu + ou:ou-ab12-prodeu extra_regions + account extra_regions",
        ),
        (
            "eu-north-1",
            "approved:ou:ou-root-eu + ou:ou-ab12-prodeu extra_regions + account extra_regions",
        ),
        (
            "us-east-1",
            "alert:high:ou:ou-root-eu + ou:ou-ab12-prodeu extra_regions + account extra_regions",
        ),
    ] {
        assert_eq!(
            verdict(&p, &format!(r#"{acct}, "awsRegion": "{region}""#)),
            want,
            "{region}"
        );
    }
    // Member listed on the OU, without an account entry.
    let member = r#""recipientAccountId": "222233334444", "awsRegion": "eu-central-1""#;
    assert_eq!(
        verdict(&p, member),
        "approved:ou:ou-root-eu + ou:ou-ab12-prodeu extra_regions"
    );
    let member = r#""recipientAccountId": "222233334444", "awsRegion": "eu-north-1""#;
    assert!(verdict(&p, member).starts_with("alert"));
    // Account-level approved_regions replaces everything inherited.
    let replaced = r#""recipientAccountId": "333344445555", "awsRegion": "us-east-1""#;
    assert_eq!(verdict(&p, replaced), "alert:high:account");
    let replaced = r#""recipientAccountId": "333344445555", "awsRegion": "ap-southeast-2""#;
    assert_eq!(verdict(&p, replaced), "approved:account");
}

#[test]
fn account_falls_back_to_user_identity() {
    let p = policy(CONFIG);
    let f = r#""recipientAccountId": null, "userIdentity": {"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a","accountId":"111122223333"}, "awsRegion": "eu-north-1""#;
    assert!(verdict(&p, f).starts_with("approved:"));
}

#[test]
fn global_services_do_not_count_as_us_east_1() {
    let p = policy(CONFIG);
    let eu = r#""recipientAccountId": "111122223333""#;
    for src in [
        "iam.amazonaws.com",
        "sts.amazonaws.com",
        "organizations.amazonaws.com",
        "cloudfront.amazonaws.com",
        "route53.amazonaws.com",
    ] {
        let f = format!(r#"{eu}, "awsRegion": "us-east-1", "eventSource": "{src}""#);
        assert_eq!(verdict(&p, &f), "global", "{src}");
    }
    // Only in the global region: STS used in an unapproved region still alerts.
    let f = format!(r#"{eu}, "awsRegion": "ap-east-1", "eventSource": "sts.amazonaws.com""#);
    assert!(verdict(&p, &f).starts_with("alert"));
    // Configurable: an empty list turns the carve-out off.
    let off = policy(&format!(
        "{CONFIG}\n[policy.global_services]\nevent_sources = []\n"
    ));
    let f = format!(r#"{eu}, "awsRegion": "us-east-1", "eventSource": "iam.amazonaws.com""#);
    assert!(verdict(&off, &f).starts_with("alert"));
}

#[test]
fn exemptions_apply_until_they_expire() {
    let p = policy(CONFIG);
    let bg = r#""userIdentity": {"type":"AssumedRole","arn":"arn:aws:iam::444455556666:role/BreakGlassAdmin"}"#;
    assert_eq!(verdict(&p, bg), "exempt:0");
    let expiry = parse_date("2027-01-31").unwrap();
    assert_eq!(
        verdict_at(&p, bg, expiry),
        "exempt:0",
        "the whole expiry day counts"
    );
    assert_eq!(verdict_at(&p, bg, expiry + 1), "alert:high:organization");
    // All keys of an exemption must match.
    let cfn =
        r#""eventSource": "cloudformation.amazonaws.com", "recipientAccountId": "333344445555""#;
    assert_eq!(verdict(&p, cfn), "exempt:1");
    let cfn_other = r#""eventSource": "cloudformation.amazonaws.com""#;
    assert!(verdict(&p, cfn_other).starts_with("alert"));
    // An exemption never hides activity in an approved region's verdict.
    assert_eq!(
        verdict(&p, &format!(r#"{bg}, "awsRegion": "us-east-1""#)),
        "approved:organization"
    );
}

#[test]
fn failed_calls_alert_with_lower_severity() {
    let p = policy(CONFIG);
    assert_eq!(
        verdict(&p, r#""errorCode": "AccessDenied""#),
        "alert:medium:organization"
    );
    assert_eq!(verdict(&p, r#""errorCode": """#), "alert:high:organization");
    let quiet = policy(&CONFIG.replace(
        "approved_regions = [\"us-east-1\", \"us-west-2\"]\n",
        "approved_regions = [\"us-east-1\", \"us-west-2\"]\nalert_on_failed_calls = false\nseverity = \"critical\"\n",
    ));
    assert_eq!(
        verdict(&quiet, r#""errorCode": "AccessDenied""#),
        "failed-ignored"
    );
    assert_eq!(verdict(&quiet, ""), "alert:critical:organization");
}

#[test]
fn missing_region_and_unknown_regions() {
    let p = policy(CONFIG);
    assert_eq!(verdict(&p, r#""awsRegion": null"#), "no-region");
    // Fake or unknown region strings are simply not approved.
    assert!(verdict(&p, r#""awsRegion": "apiso-centralnorth-2r""#).starts_with("alert"));
}

#[test]
fn alert_fields_and_reason() {
    let p = policy(CONFIG);
    let text = event(
        r#""recipientAccountId": "111122223333", "awsRegion": "ap-east-1", "sourceIPAddress": "198.51.100.7", "errorCode": "AccessDenied""#,
    );
    let s = object::parse(&text).unwrap();
    let Verdict::Alert(acct, sev, _) = evaluate(&p, &s.event, NOW) else {
        panic!("expected an alert")
    };
    let a = alert(&s.event, acct, sev, ScpMark::default(), true);
    assert_eq!(a.rule, "unapproved-region");
    assert_eq!(a.severity, Severity::Medium);
    assert_eq!(a.account.as_deref(), Some("111122223333"));
    assert_eq!(a.account_name.as_deref(), Some("payments-prod"));
    assert_eq!(a.ou.as_deref(), Some("ou-ab12-prodeu"));
    assert_eq!(
        a.approved_regions,
        ["eu-central-1", "eu-north-1", "eu-west-1"]
    );
    assert_eq!(a.source_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(a.error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(a.alert_id, crate::alert::alert_id(RULE, "e-1"));
    assert_eq!(a.event.as_ref().map(|e| e.get()), Some(text.as_str()));
    assert_eq!(
        a.reason,
        "RunInstances (ec2.amazonaws.com) (failed: AccessDenied) by arn:aws:iam::444455556666:user/alice \
         in ap-east-1, which is not approved for account 111122223333 (payments-prod); approved regions \
         are eu-central-1, eu-north-1, eu-west-1, set by ou:ou-root-eu + ou:ou-ab12-prodeu extra_regions \
         + account extra_regions."
            .replace("ou:ou-root-eu", "OU ou-root-eu")
            .replace("+ ou:ou-ab12", "+ OU ou-ab12")
    );
}
