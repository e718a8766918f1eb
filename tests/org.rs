//! Issue 13: the organization read from AWS Organizations, through the real
//! aws-sdk-organizations client against moto's Organizations (started here, as the other moto
//! tests are): OUs nested three deep, accounts moved between them, SCPs at the root, an OU and
//! an account (the documented region-deny shape with `NotAction` and a principal exemption,
//! besides the `FullAWSAccess` moto attaches everywhere), and what `trailwatch org` prints.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_organizations::types::PolicyType;
use aws_sdk_organizations::Client;
use common::emu::*;
use common::*;
use serde_json::{json, Value};

fn orgs(port: u16) -> Client {
    let conf = aws_sdk_organizations::Config::builder()
        .behavior_version(aws_sdk_organizations::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_sdk_organizations::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_organizations::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    Client::from_conf(conf)
}

fn region_deny(sid: &str, allowed: &[&str], exempt_role: Option<&str>) -> String {
    let mut cond = json!({"StringNotEquals": {"aws:RequestedRegion": allowed}});
    if let Some(role) = exempt_role {
        cond["ArnNotLike"] = json!({"aws:PrincipalARN": [format!("arn:aws:iam::*:role/{role}")]});
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": sid,
            "Effect": "Deny",
            "NotAction": ["iam:*", "organizations:*", "route53:*", "sts:*", "support:*", "cloudfront:*"],
            "Resource": "*",
            "Condition": cond,
        }]
    })
    .to_string()
}

struct Org {
    root: String,
    ous: BTreeMap<&'static str, String>,
    accounts: BTreeMap<&'static str, String>,
    policies: BTreeMap<&'static str, String>,
}

async fn build(c: &Client) -> Org {
    c.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let root = c.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let mut ous: BTreeMap<&'static str, String> = BTreeMap::new();
    for (name, parent) in [
        ("prod", None),
        ("eu", Some("prod")),
        ("payments", Some("eu")),
        ("sandbox", None),
    ] {
        let parent_id = parent.map_or(root.clone(), |p: &str| ous[p].clone());
        let ou = c
            .create_organizational_unit()
            .parent_id(parent_id)
            .name(name)
            .send()
            .await
            .unwrap();
        ous.insert(
            name,
            ou.organizational_unit().unwrap().id().unwrap().to_string(),
        );
    }
    let mut accounts = BTreeMap::new();
    for (name, ou) in [
        ("pay-prod", Some("payments")),
        ("web-prod", Some("prod")),
        ("sec", None),
        ("play", Some("sandbox")),
    ] {
        let created = c
            .create_account()
            .email(format!("{name}@example.com"))
            .account_name(name)
            .send()
            .await
            .unwrap();
        let id = created
            .create_account_status()
            .unwrap()
            .account_id()
            .unwrap()
            .to_string();
        if let Some(ou) = ou {
            c.move_account()
                .account_id(&id)
                .source_parent_id(&root)
                .destination_parent_id(&ous[ou])
                .send()
                .await
                .unwrap();
        }
        accounts.insert(name, id);
    }
    let mut policies = BTreeMap::new();
    for (key, name, doc, target) in [
        (
            "root",
            "org-regions",
            region_deny("OrgRegions", &["us-east-1", "eu-west-1", "eu-central-1"], None),
            root.clone(),
        ),
        (
            "eu",
            "eu-only",
            region_deny("DenyAllOutsideEU", &["eu-central-1", "eu-west-1"], Some("BreakGlass")),
            ous["eu"].clone(),
        ),
        (
            "odd",
            "ec2-only-eu-west-1",
            json!({"Version":"2012-10-17","Statement":[{"Sid":"Ec2Only","Effect":"Deny","Action":["ec2:*"],"Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}).to_string(),
            accounts["pay-prod"].clone(),
        ),
    ] {
        let p = c
            .create_policy()
            .name(name)
            .description(name)
            .r#type(PolicyType::ServiceControlPolicy)
            .content(doc)
            .send()
            .await
            .unwrap();
        let id = p.policy().unwrap().policy_summary().unwrap().id().unwrap().to_string();
        c.attach_policy().policy_id(&id).target_id(target).send().await.unwrap();
        policies.insert(key, id);
    }
    Org {
        root,
        ous,
        accounts,
        policies,
    }
}

/// `trailwatch` with AWS pointed at `port` (one attempt per call).
fn trailwatch(port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    c.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1");
    c
}

fn org_json(cfg: &std::path::Path, port: u16) -> (BTreeMap<String, Value>, String) {
    let out = trailwatch(port)
        .args(["org", "--format", "json", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["account"].as_str().unwrap().to_string(), v)
        })
        .collect();
    (rows, stderr)
}

fn regions(v: &Value) -> Vec<&str> {
    v["approved_regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

#[test]
fn org_prints_each_accounts_effective_scp_regions_and_follows_moves_and_updates() {
    let moto = start_moto();
    let c = orgs(moto.port);
    let rt = rt();
    let o = rt.block_on(build(&c));
    let t = Tmp::new();
    let cfg = t.write(
        "org.toml",
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n[organization]\nsource = \"aws\"\nrefresh = \"15m\"\nregions_from_scps = true\n",
    );
    let (rows, stderr) = org_json(&cfg, moto.port);
    assert!(stderr.contains("API calls"), "{stderr}");
    let pay = &rows[&o.accounts["pay-prod"]];
    assert_eq!(pay["name"], "pay-prod");
    assert_eq!(pay["ou_path"], "/prod/eu/payments");
    // The root's list ∩ the eu OU's list; the account's own Action-list SCP is not understood.
    assert_eq!(regions(pay), ["eu-central-1", "eu-west-1"]);
    assert_eq!(
        pay["source"],
        format!(
            "scp:{} at {} ∩ scp:{} at {}",
            o.policies["eu"], o.ous["eu"], o.policies["root"], o.root
        )
    );
    let not_understood = pay["not_understood"].as_array().unwrap();
    assert_eq!(not_understood.len(), 1, "{pay}");
    let why = not_understood[0].as_str().unwrap();
    assert!(
        why.contains(&o.policies["odd"])
            && why.contains("Ec2Only")
            && why.contains("only some actions"),
        "{why}"
    );
    let web = &rows[&o.accounts["web-prod"]];
    assert_eq!(web["ou_path"], "/prod");
    assert_eq!(regions(web), ["eu-central-1", "eu-west-1", "us-east-1"]);
    assert_eq!(
        web["source"],
        format!("scp:{} at {}", o.policies["root"], o.root)
    );
    assert_eq!(rows[&o.accounts["sec"]]["ou_path"], "/");
    assert_eq!(rows[&o.accounts["play"]]["ou_path"], "/sandbox");

    // A MoveAccount and an UpdatePolicy are seen on the next read.
    rt.block_on(async {
        c.move_account()
            .account_id(&o.accounts["web-prod"])
            .source_parent_id(&o.ous["prod"])
            .destination_parent_id(&o.ous["eu"])
            .send()
            .await
            .unwrap();
        c.update_policy()
            .policy_id(&o.policies["root"])
            .content(region_deny("OrgRegions", &["us-east-1", "eu-west-1"], None))
            .send()
            .await
            .unwrap();
    });
    let (rows, _) = org_json(&cfg, moto.port);
    let web = &rows[&o.accounts["web-prod"]];
    assert_eq!(web["ou_path"], "/prod/eu");
    assert_eq!(
        regions(web),
        ["eu-west-1"],
        "(eu-central-1, eu-west-1) ∩ (us-east-1, eu-west-1)"
    );
    assert_eq!(
        regions(&rows[&o.accounts["sec"]]),
        ["eu-west-1", "us-east-1"]
    );

    // With regions_from_scps = false, the config policy applies by real OU membership.
    let cfg2 = t.write(
        "org-config.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[policy.ous.\"{}\"]\napproved_regions = [\"ap-south-1\"]\n\n[organization]\nsource = \"aws\"\nregions_from_scps = false\n",
            o.ous["prod"]
        ),
    );
    let (rows, _) = org_json(&cfg2, moto.port);
    let pay = &rows[&o.accounts["pay-prod"]];
    assert_eq!(
        regions(pay),
        ["ap-south-1"],
        "the nearest configured OU on its real path"
    );
    assert_eq!(pay["source"], format!("config:ou:{}", o.ous["prod"]));
    assert_eq!(regions(&rows[&o.accounts["play"]]), ["us-east-1"]);
}

#[test]
fn org_exits_2_with_the_api_error_when_organizations_cannot_be_read() {
    let t = Tmp::new();
    let cfg = t.write(
        "org.toml",
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n[organization]\nsource = \"aws\"\n",
    );
    let out = trailwatch(free_port())
        .args(["org", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the organization: ListRoots:"),
        "{err}"
    );
}

/// Real records re-homed into the organization's accounts: `replay` with `[organization]`
/// reads the tree at start, and the region rule follows each account's effective SCPs.
#[test]
fn replay_with_the_organization_raises_scp_bypass_and_marks_exemptions() {
    let moto = start_moto();
    let c = orgs(moto.port);
    let rt = rt();
    let o = rt.block_on(build(&c));
    let pay = o.accounts["pay-prod"].clone();
    let base = stratus()[0].clone();
    let event =
        |id: &str, source: &str, name: &str, region: &str, error: Option<&str>, arn: Value| {
            let mut fields = json!({
                "eventID": id, "eventSource": source, "eventName": name, "awsRegion": region,
                "readOnly": false, "recipientAccountId": pay,
                "userIdentity": arn,
            });
            fields["errorCode"] = error.map_or(Value::Null, Value::from);
            let mut v: Value = serde_json::from_str(&with_fields(&base, fields)).unwrap();
            if error.is_none() {
                v.as_object_mut().unwrap().remove("errorCode");
                v.as_object_mut().unwrap().remove("errorMessage");
            }
            v.to_string()
        };
    let user = json!({"type": "IAMUser", "accountId": pay, "arn": format!("arn:aws:iam::{pay}:user/alice")});
    let break_glass = json!({
        "type": "AssumedRole", "accountId": pay,
        "arn": format!("arn:aws:sts::{pay}:assumed-role/BreakGlass/ops"),
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{pay}:role/BreakGlass")}},
    });
    let recs = vec![
        event(
            "e-bypass",
            "ec2.amazonaws.com",
            "RunInstances",
            "ap-south-1",
            None,
            user.clone(),
        ),
        event(
            "e-denied",
            "ec2.amazonaws.com",
            "RunInstances",
            "ap-south-1",
            Some("AccessDenied"),
            user.clone(),
        ),
        event(
            "e-exempt-action",
            "iam.amazonaws.com",
            "CreateUser",
            "ap-south-1",
            None,
            user.clone(),
        ),
        event(
            "e-approved",
            "ec2.amazonaws.com",
            "RunInstances",
            "eu-west-1",
            None,
            user.clone(),
        ),
        event(
            "e-break-glass",
            "ec2.amazonaws.com",
            "RunInstances",
            "us-east-1",
            None,
            break_glass,
        ),
    ];
    let t = Tmp::new();
    let input = t.write("events.jsonl", jsonl(&recs));
    let cfg = t.write(
        "org.toml",
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n[organization]\nsource = \"aws\"\n",
    );
    let out = trailwatch(moto.port)
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: BTreeMap<String, Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["event_id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    assert_eq!(
        alerts.keys().map(String::as_str).collect::<Vec<_>>(),
        ["e-break-glass", "e-bypass", "e-denied"],
        "no alert for the NotAction-exempt call or the approved region"
    );
    let bypass = &alerts["e-bypass"];
    assert_eq!(
        (bypass["rule"].as_str(), bypass["severity"].as_str()),
        (Some("scp-bypass"), Some("critical"))
    );
    let denied = &alerts["e-denied"];
    assert_eq!(denied["rule"], "unapproved-region");
    assert_eq!(denied["denied_by_scp"], true);
    let glass = &alerts["e-break-glass"];
    assert_eq!(glass["rule"], "unapproved-region");
    assert_eq!(glass["scp_exempt_principal"], true);
    assert!(glass.get("denied_by_scp").is_none());
    for a in alerts.values() {
        assert_eq!(a["account_name"], "pay-prod");
        assert_eq!(a["ou_path"], "/prod/eu/payments");
        assert_eq!(a["ou"], o.ous["payments"]);
        assert_eq!(
            a["policy_level"],
            format!(
                "scp:{} at {} ∩ scp:{} at {}",
                o.policies["eu"], o.ous["eu"], o.policies["root"], o.root
            )
        );
        assert_eq!(a["approved_regions"], json!(["eu-central-1", "eu-west-1"]));
    }
}
