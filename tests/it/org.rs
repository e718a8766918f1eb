//! Issue 13: the organization read from AWS Organizations, through the real
//! aws-sdk-organizations client against moto's Organizations (started here, as the other moto
//! tests are): OUs nested three deep, accounts moved between them, SCPs at the root, an OU and
//! an account (the documented region-deny shape with `NotAction` and a principal exemption,
//! besides the `FullAWSAccess` moto attaches everywhere), and what `trailwatch org` prints.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::common::emu::*;
use crate::common::*;
use aws_sdk_organizations::types::PolicyType;
use aws_sdk_organizations::Client;
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

/// `trailwatch ARGS --config CFG` against AWS at `port`.
fn tw(port: u16, args: &[&str], cfg: &std::path::Path) -> std::process::Output {
    trailwatch(port)
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap()
}

/// moto's Organizations holding the test organization, its client, and a runtime.
fn org_in_moto() -> (Emulator, Client, tokio::runtime::Runtime, Org) {
    let moto = start_moto();
    let c = orgs(moto.port);
    let rt = rt();
    let o = rt.block_on(build(&c));
    (moto, c, rt, o)
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
    let (moto, c, rt, o) = org_in_moto();
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
    let out = tw(free_port(), &["org"], &cfg);
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
    let (moto, _c, _rt, o) = org_in_moto();
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

    // explain shows the whole SCP chain, root first, and what it could not take on.
    let one = t.write("bypass.json", &recs[0]);
    let out = trailwatch(moto.port)
        .args(["explain", "--config"])
        .arg(&cfg)
        .arg("--event")
        .arg(&one)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let root = format!("    {}: {} (OrgRegions) allows us-east-1, eu-west-1, eu-central-1; 6 NotAction patterns exempt\n", o.root, o.policies["root"]);
    let eu = format!("    {}: {} (DenyAllOutsideEU) allows eu-central-1, eu-west-1; 6 NotAction patterns exempt; callers exempt: arn:aws:iam::*:role/BreakGlass\n", o.ous["eu"], o.policies["eu"]);
    let (r, e) = (text.find(&root), text.find(&eu));
    assert!(r.is_some() && e.is_some() && r < e, "{text}");
    assert!(text.contains("    = eu-central-1, eu-west-1\n"), "{text}");
    assert!(
        text.contains(&format!(
            "    not understood: {} at {pay} (Ec2Only): ",
            o.policies["odd"]
        )),
        "{text}"
    );
    assert!(text.contains("=> ALERT (critical, scp-bypass)"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Live: `run` follows the organization (drift alerts once, also across a restart) and SIGHUP.

/// moto's Organizations with the test organization, kinesalite with a stream.
struct Live {
    moto: Emulator,
    k: Emulator,
    c: Client,
    kc: aws_sdk_kinesis::Client,
    rt: tokio::runtime::Runtime,
    o: Org,
    t: Tmp,
}

impl Live {
    fn new(stream: &str) -> Live {
        let (moto, c, rt, o) = org_in_moto();
        let k = start_kinesalite();
        let kc = client(k.port);
        rt.block_on(create_stream(&kc, stream, 1));
        Live {
            moto,
            k,
            c,
            kc,
            rt,
            o,
            t: Tmp::new(),
        }
    }
}

fn live_config(t: &Tmp, stream: &str, extra: &str) -> std::path::PathBuf {
    t.write(
        "live.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"{stream}\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\n\n[checkpoint]\npath = \"{}\"\ninterval = \"500ms\"\n\n{extra}",
            t.path("state/cp.json").display()
        ),
    )
}

fn start_run(cfg: &std::path::Path, k: u16, moto: u16, extra: &[&str]) -> Consumer {
    Consumer::spawn_env(
        cfg,
        k,
        None,
        extra,
        &[(
            "AWS_ENDPOINT_URL_ORGANIZATIONS",
            format!("http://127.0.0.1:{moto}"),
        )],
    )
}

/// Alerts from the consumer until `done` holds of them (or 30 s).
fn alerts_until(c: &Consumer, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut got = Vec::new();
    while !done(&got) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match c.lines.recv_timeout(left) {
            Ok(l) => got.push(serde_json::from_str(&l).unwrap()),
            Err(_) => panic!("timed out; got {got:#?}"),
        }
    }
    got
}

fn quiet_for(c: &Consumer, secs: u64) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut got = Vec::new();
    while let Ok(l) = c
        .lines
        .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        got.push(serde_json::from_str(&l).unwrap());
    }
    got
}

fn drifts(alerts: &[Value]) -> BTreeMap<String, Value> {
    alerts
        .iter()
        .filter(|a| a["rule"] == "org-policy-drift")
        .map(|a| (a["account"].as_str().unwrap().to_string(), a.clone()))
        .collect()
}

/// UpdatePolicy on the root's region-deny SCP: these regions allowed.
async fn set_root_regions(c: &Client, o: &Org, regions: &[&str]) {
    c.update_policy()
        .policy_id(&o.policies["root"])
        .content(region_deny("OrgRegions", regions, None))
        .send()
        .await
        .unwrap();
}

/// A CloudTrail record of a call: `(source, name)` by the management account's admin.
fn call(id: &str, source: &str, name: &str, account: &str, region: &str) -> String {
    with_fields(
        &stratus()[0],
        json!({
            "eventID": id, "eventSource": source, "eventName": name, "awsRegion": region,
            "readOnly": false, "recipientAccountId": account, "errorCode": null,
            "userIdentity": {"type": "IAMUser", "accountId": account, "arn": format!("arn:aws:iam::{account}:user/admin")},
        }),
    )
}

#[test]
fn run_follows_the_organization_and_raises_drift_once_also_across_a_restart() {
    let Live {
        moto,
        k,
        c,
        kc,
        rt,
        o,
        t,
    } = Live::new("org");
    let cfg = live_config(
        &t,
        "org",
        "[organization]\nsource = \"aws\"\nrefresh = \"1h\"\nchange_delay = \"0s\"\n",
    );
    let run = start_run(&cfg, k.port, moto.port, &[]);
    // Every account is restricted by the root's SCP: the first read raises nothing. A record
    // that alerts shows the consumer is through its start-up.
    let mgmt = "123456789012";
    rt.block_on(put(
        &kc,
        "org",
        &[call(
            "probe-1",
            "ec2.amazonaws.com",
            "RunInstances",
            &o.accounts["sec"],
            "ap-south-1",
        )],
        0,
    ));
    let got = alerts_until(&run, |a| !a.is_empty());
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        got[0]["rule"], "scp-bypass",
        "ap-south-1 is outside the root's SCP"
    );

    // UpdatePolicy widens the root's list; the stream's record of it sets off a read.
    rt.block_on(async {
        set_root_regions(
            &c,
            &o,
            &["us-east-1", "eu-west-1", "eu-central-1", "ap-south-1"],
        )
        .await;
        put(
            &kc,
            "org",
            &[call(
                "chg-1",
                "organizations.amazonaws.com",
                "UpdatePolicy",
                mgmt,
                "us-east-1",
            )],
            1,
        )
        .await;
    });
    let got = alerts_until(&run, |a| drifts(a).len() >= 3);
    let d = drifts(&got);
    // pay-prod stays within the eu OU's list; the others widen by ap-south-1.
    let widened: Vec<&str> = ["sec", "web-prod", "play"]
        .iter()
        .map(|n| o.accounts[n].as_str())
        .collect();
    assert_eq!(
        d.keys()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        widened.iter().copied().collect()
    );
    let sec = &d[&o.accounts["sec"]];
    assert_eq!(sec["severity"], "high");
    assert_eq!(sec["account_name"], "sec");
    assert_eq!(
        sec["drift"]["before"],
        json!(["eu-central-1", "eu-west-1", "us-east-1"])
    );
    assert_eq!(
        sec["drift"]["after"],
        json!(["ap-south-1", "eu-central-1", "eu-west-1", "us-east-1"])
    );
    assert_eq!(sec["drift"]["added"], json!(["ap-south-1"]));
    let cause = sec["drift"]["cause"].as_str().unwrap();
    assert!(
        cause.starts_with(&format!(
            "{} (org-regions) updated; read after UpdatePolicy by arn:aws:iam::{mgmt}:user/admin",
            o.policies["root"]
        )),
        "{cause}"
    );
    assert!(cause.contains("(event chg-1)"), "{cause}");
    // The new policy is in force: ap-south-1 is now approved for sec.
    rt.block_on(put(
        &kc,
        "org",
        &[call(
            "probe-2",
            "ec2.amazonaws.com",
            "RunInstances",
            &o.accounts["sec"],
            "ap-south-1",
        )],
        2,
    ));

    // MoveAccount: pay-prod leaves the eu OU for the sandbox, and widens.
    rt.block_on(async {
        c.move_account()
            .account_id(&o.accounts["pay-prod"])
            .source_parent_id(&o.ous["payments"])
            .destination_parent_id(&o.ous["sandbox"])
            .send()
            .await
            .unwrap();
        put(
            &kc,
            "org",
            &[call(
                "chg-2",
                "organizations.amazonaws.com",
                "MoveAccount",
                mgmt,
                "us-east-1",
            )],
            3,
        )
        .await;
    });
    let got = alerts_until(&run, |a| !drifts(a).is_empty());
    let d = drifts(&got);
    assert!(
        got.iter().all(|a| a["event_id"] != "probe-2"),
        "probe-2 is approved now: {got:#?}"
    );
    let pay = &d[&o.accounts["pay-prod"]];
    assert_eq!(pay["ou_path"], "/sandbox");
    assert_eq!(pay["drift"]["before"], json!(["eu-central-1", "eu-west-1"]));
    let cause = pay["drift"]["cause"].as_str().unwrap();
    assert!(
        cause.starts_with(&format!(
            "moved from /prod/eu/payments ({}) to /sandbox ({})",
            o.ous["payments"], o.ous["sandbox"]
        )),
        "{cause}"
    );
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(quiet_for(&run, 2).is_empty(), "each drift is raised once");
    let (code, rest) = run.stop();
    assert_eq!(code, 0);
    assert!(
        rest.iter().all(|l| !l.contains("org-policy-drift")),
        "{rest:?}"
    );

    // Restarted: the saved tree is what AWS says: nothing again.
    let run = start_run(&cfg, k.port, moto.port, &[]);
    rt.block_on(put(
        &kc,
        "org",
        &[call(
            "probe-3",
            "ec2.amazonaws.com",
            "RunInstances",
            &o.accounts["sec"],
            "sa-east-1",
        )],
        4,
    ));
    let got = alerts_until(&run, |a| a.iter().any(|a| a["event_id"] == "probe-3"));
    assert!(
        drifts(&got).is_empty(),
        "no drift twice across a restart: {got:#?}"
    );
    let (code, _) = run.stop();
    assert_eq!(code, 0);

    // A change while it was down is raised at the next start, once.
    rt.block_on(async {
        set_root_regions(
            &c,
            &o,
            &[
                "us-east-1",
                "eu-west-1",
                "eu-central-1",
                "ap-south-1",
                "sa-east-1",
            ],
        )
        .await;
    });
    let run = start_run(&cfg, k.port, moto.port, &[]);
    let got = alerts_until(&run, |a| drifts(a).len() >= 4);
    let d = drifts(&got);
    assert!(
        d.values()
            .all(|a| a["drift"]["added"] == json!(["sa-east-1"])),
        "{d:#?}"
    );
    assert!(d[&o.accounts["sec"]]["drift"]["cause"]
        .as_str()
        .unwrap()
        .ends_with("(org-regions) updated"));
    assert_eq!(d.len(), 4, "{d:#?}");
    rt.block_on(put(
        &kc,
        "org",
        &[call(
            "probe-5",
            "ec2.amazonaws.com",
            "RunInstances",
            &o.accounts["sec"],
            "me-south-1",
        )],
        5,
    ));
    let got = alerts_until(&run, |a| a.iter().any(|a| a["event_id"] == "probe-5"));
    assert!(drifts(&got).is_empty(), "{got:#?}");
    assert_eq!(run.stop().0, 0);
    let run = start_run(&cfg, k.port, moto.port, &[]);
    rt.block_on(put(
        &kc,
        "org",
        &[call(
            "probe-4",
            "ec2.amazonaws.com",
            "RunInstances",
            &o.accounts["sec"],
            "me-central-1",
        )],
        6,
    ));
    let got = alerts_until(&run, |a| a.iter().any(|a| a["event_id"] == "probe-4"));
    assert!(drifts(&got).is_empty(), "raised once: {got:#?}");
    assert!(drifts(&quiet_for(&run, 1)).is_empty());
    assert_eq!(run.stop().0, 0);

    // Organizations unreachable at start: the tree saved with the checkpoint is the policy.
    let dead = moto.port;
    drop(moto);
    let run = start_run(&cfg, k.port, dead, &[]);
    rt.block_on(put(
        &kc,
        "org",
        &[call(
            "probe-6",
            "ec2.amazonaws.com",
            "RunInstances",
            &o.accounts["pay-prod"],
            "me-central-1",
        )],
        7,
    ));
    let got = alerts_until(&run, |a| !a.is_empty());
    assert_eq!(got[0]["event_id"], "probe-6");
    assert_eq!(
        got[0]["rule"], "scp-bypass",
        "the saved SCPs still apply: {got:#?}"
    );
    assert_eq!(
        got[0]["ou_path"], "/sandbox",
        "the saved tree, with the move"
    );
    assert_eq!(run.stop().0, 0);
}

fn metric(port: u16, line_start: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics");
    body.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_metric(port: u16, line_start: &str, want: f64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while metric(port, line_start) != Some(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "{line_start} never {want}: {:?}",
            metric(port, line_start)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn hangup(c: &Consumer) {
    let ok = Command::new("kill")
        .args(["-HUP", &c.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// The alert rules by event id.
fn rules_by_event(alerts: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in alerts {
        out.entry(a["event_id"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(a["rule"].as_str().unwrap().to_string());
    }
    out
}

/// With `[organization]` and no tree saved, Organizations throttled at start (through a
/// proxy answering TooManyRequestsException): `run` judges nothing until the first read
/// succeeds; past `first_read_timeout` it judges on the config policy and, once the tree is
/// read, judges those events again (raising what the tree raises, nothing twice); SIGTERM
/// during the start-up read stops it at once.
#[test]
fn run_waits_for_the_organization_and_judges_again_what_it_judged_without_it() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let Live {
        moto,
        k,
        kc,
        rt,
        o,
        t,
        ..
    } = Live::new("first");
    rt.block_on(create_stream(&kc, "fallback", 1));
    let throttled = std::sync::Arc::new(AtomicBool::new(true));
    let th = throttled.clone();
    let proxy = common::proxy::Proxy::start(moto.port, move |_, _| th.load(SeqCst).then_some(429));
    let config = |name: &str, stream: &str, org: &str| {
        t.write(
            &format!("{name}.toml"),
            format!(
                "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"{stream}\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\n\n[checkpoint]\npath = \"{}\"\ninterval = \"500ms\"\n\n[organization]\nsource = \"aws\"\nchange_delay = \"0s\"\n{org}",
                t.path(&format!("state/{name}.json")).display()
            ),
        )
    };
    // Writes in ap-south-1, outside the root's SCP: `scp-bypass` on the tree, only
    // `unapproved-region` on the config policy.
    let writes = |prefix: &str| -> Vec<String> {
        (1..=5)
            .map(|i| {
                call(
                    &format!("{prefix}-{i}"),
                    "ec2.amazonaws.com",
                    "RunInstances",
                    &o.accounts["sec"],
                    "ap-south-1",
                )
            })
            .collect()
    };

    // 1. Waits for the first read.
    let cfg = config(
        "wait",
        "first",
        "first_read_timeout = \"60s\"\nrefresh = \"1h\"\n",
    );
    let run = start_run(&cfg, k.port, proxy.port, &[]);
    rt.block_on(put(&kc, "first", &writes("wait"), 0));
    let early = quiet_for(&run, 3);
    assert!(
        early.is_empty(),
        "judged before the organization was read: {early:#?}"
    );
    throttled.store(false, SeqCst);
    let got = alerts_until(&run, |a| a.len() >= 5);
    let by_event = rules_by_event(&got);
    assert_eq!(by_event.len(), 5, "{got:#?}");
    assert!(
        by_event.values().all(|r| r == &["scp-bypass"]),
        "judged on the tree: {by_event:#?}"
    );
    let (code, rest) = run.stop();
    assert_eq!(code, 0);
    assert!(rest.is_empty(), "{rest:?}");

    // 2. Past first_read_timeout: judged on the config policy, then again on the tree.
    throttled.store(true, SeqCst);
    let cfg = config(
        "fallback",
        "fallback",
        "first_read_timeout = \"2s\"\nrefresh = \"3s\"\n",
    );
    let run = start_run(&cfg, k.port, proxy.port, &[]);
    rt.block_on(put(&kc, "fallback", &writes("fb"), 0));
    let first = alerts_until(&run, |a| a.len() >= 5);
    assert!(
        rules_by_event(&first)
            .values()
            .all(|r| r == &["unapproved-region"]),
        "{first:#?}"
    );
    throttled.store(false, SeqCst);
    let again = alerts_until(&run, |a| a.len() >= 5);
    let by_event = rules_by_event(&again);
    assert_eq!(
        by_event.keys().collect::<Vec<_>>(),
        rules_by_event(&first).keys().collect::<Vec<_>>(),
        "{again:#?}"
    );
    assert!(
        by_event.values().all(|r| r == &["scp-bypass"]),
        "what the tree raises, once: {by_event:#?}"
    );
    let more = quiet_for(&run, 5);
    assert!(
        more.iter().all(|a| a["rule"] == "org-policy-drift"),
        "nothing twice: {more:#?}"
    );
    let (code, _) = run.stop();
    assert_eq!(code, 0);

    // 3. SIGTERM during the start-up read: a clean stop, at once.
    throttled.store(true, SeqCst);
    let cfg = config("stop", "first", "first_read_timeout = \"60s\"\n");
    let run = start_run(&cfg, k.port, proxy.port, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let asked = std::time::Instant::now();
    let (code, rest) = run.stop();
    assert_eq!(code, 0);
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    // 4. The API error is one line: call, code, message, request id; no SDK dump.
    let out = tw(proxy.port, &["org"], &cfg);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("cannot read the organization"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("ListRoots: TooManyRequestsException: AWS Organizations can't complete")
            && line.ends_with("(request id injected-req-1)"),
        "{line}"
    );
    assert!(
        !err.contains("ErrorMetadata") && !err.contains("Error {"),
        "{err}"
    );
}

/// SIGHUP with a good file swaps the policy and `[organization]` (here a faster refresh that
/// then picks up an UpdatePolicy on its own); with a bad file the running config stays.
#[test]
fn sighup_reloads_a_good_config_and_keeps_running_on_a_bad_one() {
    let Live {
        moto,
        k,
        c,
        kc,
        rt,
        o,
        t,
    } = Live::new("hup");
    let org = "[organization]\nsource = \"aws\"\nchange_delay = \"0s\"\n";
    let cfg = live_config(&t, "hup", &format!("{org}refresh = \"1h\"\n"));
    let mport = free_port();
    let maddr = format!("127.0.0.1:{mport}");
    let run = start_run(&cfg, k.port, moto.port, &["--metrics-addr", &maddr]);
    // 999999999999 is no account of the organization: the config policy applies.
    let outsider = "999999999999";
    let mut n = 0;
    let mut send = |id: &str, region: &str| {
        rt.block_on(put(
            &kc,
            "hup",
            &[call(
                id,
                "ec2.amazonaws.com",
                "RunInstances",
                outsider,
                region,
            )],
            n,
        ));
        n += 1;
    };
    send("before-reload", "ap-south-1");
    let got = alerts_until(&run, |a| !a.is_empty());
    assert_eq!(got[0]["event_id"], "before-reload");

    // A good file: ap-south-1 approved, and the organization read every second.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let good = text
        .replace(
            "approved_regions = [\"us-east-1\"]",
            "approved_regions = [\"us-east-1\", \"ap-south-1\"]",
        )
        .replace("refresh = \"1h\"", "refresh = \"1s\"");
    std::fs::write(&cfg, &good).unwrap();
    hangup(&run);
    wait_metric(mport, "trailwatch_config_reloads_total{result=\"ok\"}", 1.0);
    send("after-reload-approved", "ap-south-1");
    send("after-reload-other", "eu-north-1");
    let got = alerts_until(&run, |a| {
        a.iter().any(|a| a["event_id"] == "after-reload-other")
    });
    assert!(
        got.iter().all(|a| a["event_id"] != "after-reload-approved"),
        "{got:#?}"
    );
    // The faster refresh sees an UpdatePolicy that the stream never carried.
    rt.block_on(async {
        set_root_regions(
            &c,
            &o,
            &["us-east-1", "eu-west-1", "eu-central-1", "ca-central-1"],
        )
        .await;
    });
    let got = alerts_until(&run, |a| drifts(a).len() >= 3);
    let d = drifts(&got);
    assert_eq!(
        d[&o.accounts["sec"]]["drift"]["added"],
        json!(["ca-central-1"])
    );
    assert!(
        !d[&o.accounts["sec"]]["drift"]["cause"]
            .as_str()
            .unwrap()
            .contains("read after"),
        "a periodic read"
    );

    // A bad file (a wrong type, and a policy change that must not apply): refused, kept.
    let bad = good
        .replace(
            "approved_regions = [\"us-east-1\", \"ap-south-1\"]",
            "approved_regions = [\"us-east-1\"]",
        )
        .replace(
            "start = \"trim_horizon\"",
            "start = \"trim_horizon\"\npoll_interval_typo = 3",
        );
    std::fs::write(&cfg, &bad).unwrap();
    hangup(&run);
    wait_metric(
        mport,
        "trailwatch_config_reloads_total{result=\"error\"}",
        1.0,
    );
    send("after-bad-approved", "ap-south-1");
    send("after-bad-other", "eu-south-1");
    let got = alerts_until(&run, |a| {
        a.iter().any(|a| a["event_id"] == "after-bad-other")
    });
    assert!(
        got.iter().all(|a| a["event_id"] != "after-bad-approved"),
        "the running config stays: {got:#?}"
    );
    // Issue 28, item 2: an empty file, and one without the road's [source.kinesis] or
    // without [policy], are valid TOML that `run` would not start with: refused, counted as
    // errors, the running config stays. (An empty file was "ok" before, and made every
    // account approve no region.)
    let no_source = good.replace("[source.kinesis]", "[source.firehose_typo_removed]");
    let no_source = no_source
        .split("[source.firehose_typo_removed]")
        .next()
        .unwrap()
        .to_string();
    let no_policy = good
        .replace("[policy]", "")
        .replace("approved_regions = [\"us-east-1\", \"ap-south-1\"]", "");
    for (n, text) in [String::new(), no_source, no_policy]
        .into_iter()
        .enumerate()
    {
        std::fs::write(&cfg, &text).unwrap();
        hangup(&run);
        wait_metric(
            mport,
            "trailwatch_config_reloads_total{result=\"error\"}",
            2.0 + n as f64,
        );
    }
    send("after-empty-approved", "ap-south-1");
    send("after-empty-other", "ca-west-1");
    let got = alerts_until(&run, |a| {
        a.iter().any(|a| a["event_id"] == "after-empty-other")
    });
    assert!(
        got.iter().all(|a| a["event_id"] != "after-empty-approved"),
        "the running config stays: {got:#?}"
    );
    assert_eq!(
        metric(mport, "trailwatch_config_reloads_total{result=\"ok\"}"),
        Some(1.0)
    );
    let (code, _) = run.stop();
    assert_eq!(code, 0);
}

/// `validate` with `[organization]` reads it: a written `ou` that Organizations disagrees
/// with (or an account it does not know) is a warning; an API error exits 2.
#[test]
fn validate_warns_where_the_configs_ou_disagrees_with_organizations() {
    let (moto, _c, _rt, o) = org_in_moto();
    let t = Tmp::new();
    let (prod, sandbox) = (&o.ous["prod"], &o.ous["sandbox"]);
    let cfg = t.write(
        "v.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[policy.ous.\"{prod}\"]\napproved_regions = [\"eu-west-1\"]\n\n[policy.ous.\"{sandbox}\"]\napproved_regions = [\"us-west-2\"]\naccounts = [\"999999999999\"]\n\n[policy.accounts.\"{}\"]\nou = \"{sandbox}\"\n\n[policy.accounts.\"{}\"]\nou = \"{prod}\"\n\n[organization]\nsource = \"aws\"\n",
            o.accounts["pay-prod"], o.accounts["web-prod"],
        ),
    );
    let out = tw(moto.port, &["validate"], &cfg);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{text}");
    let pay = format!("policy.accounts.\"{}\".ou: \"{sandbox}\", but AWS Organizations puts it in {} (/prod/eu/payments)", o.accounts["pay-prod"], o.ous["payments"]);
    assert!(warnings.iter().any(|w| w.contains(&pay)), "{text}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("\"999999999999\".ou") && w.contains("has no such account")),
        "{text}"
    );
    assert!(
        !text.contains(&o.accounts["web-prod"]),
        "web-prod is where the config says: {text}"
    );
    assert!(text.contains("organization: 5 accounts, 4 OUs"), "{text}");

    let out = tw(free_port(), &["validate"], &cfg);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("organization: cannot read the organization: ListRoots:"),
        "{text}"
    );
}

/// `serve` follows the organization too: read at start, read again when a request carries an
/// UpdatePolicy, drift raised, and the next request judged by the new policy.
#[test]
fn serve_follows_the_organization() {
    let (moto, c, rt, o) = org_in_moto();
    let t = Tmp::new();
    let port = free_port();
    let cfg = t.write(
        "serve.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[checkpoint]\npath = \"{}\"\n\n[source.firehose]\nlisten = \"127.0.0.1:{port}\"\naccess_keys_env = \"TW_KEYS\"\n\n[organization]\nsource = \"aws\"\nrefresh = \"1h\"\nchange_delay = \"0s\"\n",
            t.path("state/serve.json").display()
        ),
    );
    let mut child = trailwatch(moto.port)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("TW_KEYS", "key-12345678")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = stdout_lines(stdout);
    let http = reqwest::Client::new();
    let post = |id: &str, rec: String| {
        let body = json!({"requestId": id, "timestamp": 0, "records": [{"data": b64(&gz(cwl_data(&[&rec]).as_bytes()))}]});
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let sent = rt.block_on(
                http.post(format!("http://127.0.0.1:{port}/"))
                    .header("x-amz-firehose-access-key", "key-12345678")
                    .header("x-amz-firehose-request-id", id)
                    .body(body.to_string())
                    .send(),
            );
            match sent {
                Ok(r) => return assert_eq!(r.status().as_u16(), 200),
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                Err(e) => panic!("{e}"),
            }
        }
    };
    let next = |until: &dyn Fn(&[Value]) -> bool| {
        let mut got: Vec<Value> = Vec::new();
        while !until(&got) {
            let l = lines
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("timed out; got {got:#?}"));
            got.push(serde_json::from_str(&l).unwrap());
        }
        got
    };
    let sec = o.accounts["sec"].clone();
    post(
        "r-1",
        call(
            "s-1",
            "ec2.amazonaws.com",
            "RunInstances",
            &sec,
            "ap-south-1",
        ),
    );
    let got = next(&|a| !a.is_empty());
    assert_eq!(got[0]["rule"], "scp-bypass", "read at start: {got:#?}");
    rt.block_on(set_root_regions(
        &c,
        &o,
        &["us-east-1", "eu-west-1", "eu-central-1", "ap-south-1"],
    ));
    post(
        "r-2",
        call(
            "s-chg",
            "organizations.amazonaws.com",
            "UpdatePolicy",
            "123456789012",
            "us-east-1",
        ),
    );
    let got = next(&|a| drifts(a).len() >= 3);
    assert!(drifts(&got).contains_key(&sec), "{got:#?}");
    post(
        "r-3",
        call(
            "s-2",
            "ec2.amazonaws.com",
            "RunInstances",
            &sec,
            "ap-south-1",
        ),
    );
    post(
        "r-4",
        call(
            "s-3",
            "ec2.amazonaws.com",
            "RunInstances",
            &sec,
            "sa-east-1",
        ),
    );
    let got = next(&|a| a.iter().any(|a| a["event_id"] == "s-3"));
    assert!(
        got.iter().all(|a| a["event_id"] != "s-2"),
        "ap-south-1 is approved now: {got:#?}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// `[health] expected = "organization"`: `replay` of a day in which every account of the
/// organization sends but `play` raises one `feed-missing`, for `play`, with its name.
#[test]
fn replay_with_health_expecting_the_organization_finds_the_account_that_never_sent() {
    let (moto, _c, _rt, o) = org_in_moto();
    let base: Value = serde_json::from_str(&stratus()[0]).unwrap();
    // Every active account of the organization (the management account too), as read.
    let t = Tmp::new();
    let org_cfg = t.write(
        "org.toml",
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n[organization]\nsource = \"aws\"\n",
    );
    let (rows, _) = org_json(&org_cfg, moto.port);
    let play = o.accounts["play"].clone();
    assert!(rows.contains_key(&play));
    let day = 1_788_220_800; // 2026-09-01
    let mut recs = Vec::new();
    for step in 0..(6 * 12) {
        for account in rows.keys().filter(|a| **a != play) {
            let mut r = base.clone();
            r["eventID"] = format!("m-{account}-{step}").into();
            r["eventTime"] = trailwatch::event::format_utc_secs(day + step * 300).into();
            r["recipientAccountId"] = account.clone().into();
            r["awsRegion"] = "us-east-1".into();
            r["readOnly"] = true.into();
            recs.push(r.to_string());
        }
    }
    let input = t.write("day.jsonl", jsonl(&recs));
    let cfg = t.write(
        "health.toml",
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n[organization]\nsource = \"aws\"\nregions_from_scps = false\n\n[health]\nexpected = \"organization\"\nmissing_after = \"1h\"\n",
    );
    let out = trailwatch(moto.port)
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg(&input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let found: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap(),
                a["account"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(found, vec![("feed-missing", play.as_str())], "{stdout}");
    assert_eq!(alerts[0]["account_name"], "play");
    // Expected from the first event; missing an hour after it.
    assert_eq!(
        alerts[0]["event_time"],
        trailwatch::event::format_utc_secs(day + 3600)
    );
}

/// The webhook's alert rules, with how many times each alert id arrived.
fn delivered(server: &common::http::Server) -> BTreeMap<String, (String, usize)> {
    let mut out: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for r in server.accepted() {
        for a in r.json().as_array().cloned().unwrap_or_default() {
            let e = out
                .entry(a["alert_id"].as_str().unwrap_or_default().to_string())
                .or_insert_with(|| (a["rule"].as_str().unwrap_or_default().to_string(), 0));
            e.1 += 1;
        }
    }
    out
}

/// Issue 28's chaos run, shared by `run` and `serve`: Organizations throttled at start (so
/// events are judged on the config policy, then again on the tree), a webhook that is down
/// (alerts spool), the records to send (real ones under fresh ids, five writes outside the
/// root's SCP, one record dated 2099) and what the webhook must receive.
struct Chaos {
    throttled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    proxy: common::proxy::Proxy,
    server: common::http::Server,
    state: std::path::PathBuf,
    text: String,
    cfg: std::path::PathBuf,
    first: Vec<String>,
    second: Vec<String>,
    want: BTreeSet<String>,
    writes: usize,
}

impl Chaos {
    /// `source`: the `[source.…]` table of the road.
    fn new(t: &Tmp, o: &Org, moto: u16, source: &str) -> Chaos {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let throttled = std::sync::Arc::new(AtomicBool::new(true));
        let th = throttled.clone();
        let proxy = common::proxy::Proxy::start(moto, move |_, _| th.load(SeqCst).then_some(429));
        let server = common::http::Server::start();
        server.down();
        let state = t.path("state");
        let base = format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n{source}\n[checkpoint]\npath = \"{}\"\ninterval = \"500ms\"\n\n[delivery]\nstate_dir = \"{}\"\naccept_within = \"1s\"\n\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = 20\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            state.join("cp.json").display(),
            state.display(),
            server.url("/in")
        );
        let text = format!(
            "{base}\n[organization]\nsource = \"aws\"\nchange_delay = \"0s\"\nfirst_read_timeout = \"2s\"\nrefresh = \"3s\"\n"
        );
        let cfg = t.write("chaos.toml", &text);
        let plain = t.write("plain.toml", &base);
        let writes: Vec<String> = (1..=5)
            .map(|i| {
                call(
                    &format!("chaos-{i}"),
                    "ec2.amazonaws.com",
                    "RunInstances",
                    &o.accounts["sec"],
                    "ap-south-1",
                )
            })
            .collect();
        let many = many_records(6);
        let future = with_fields(
            &many[0],
            json!({"eventID": "from-2099", "eventTime": "2099-01-01T00:00:00Z"}),
        );
        let mut first: Vec<String> = many[..60].to_vec();
        first.extend(writes.iter().cloned());
        first.push(future);
        let second: Vec<String> = many[60..].to_vec();
        let mut all = first.clone();
        all.extend(second.iter().cloned());
        let want = expected(&plain, t, &all);
        assert!(want.len() > 50, "{}", want.len());
        Chaos {
            throttled,
            proxy,
            server,
            state,
            text,
            cfg,
            first,
            second,
            want,
            writes: writes.len(),
        }
    }

    /// Once the first records' alerts are spooled: the spool directory removed, an empty
    /// config reloaded (refused), the real one reloaded, Organizations back.
    fn strike(&self, pid: u32) {
        let spool = self.state.join("spool").join("hook");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::fs::read_dir(&spool).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
        }) {
            assert!(std::time::Instant::now() < deadline, "nothing spooled");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        std::fs::remove_dir_all(self.state.join("spool")).unwrap();
        let hup = || {
            let ok = Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        };
        std::fs::write(&self.cfg, "").unwrap();
        hup();
        std::thread::sleep(std::time::Duration::from_millis(700));
        std::fs::write(&self.cfg, &self.text).unwrap();
        hup();
        self.throttled
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn scp(d: &BTreeMap<String, (String, usize)>) -> usize {
        d.values().filter(|(rule, _)| rule == "scp-bypass").count()
    }

    /// The webhook back: everything arrives; then, once stopped, each exactly once.
    fn deliver(&self) {
        std::thread::sleep(std::time::Duration::from_secs(2));
        self.server.up();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let d = delivered(&self.server);
            if self.want.iter().all(|id| d.contains_key(id)) && Self::scp(&d) >= self.writes {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not everything delivered: {} of {} (+{} scp-bypass)",
                self.want.iter().filter(|id| d.contains_key(*id)).count(),
                self.want.len(),
                Self::scp(&d)
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        std::thread::sleep(std::time::Duration::from_millis(1500)); // nothing else may come
    }

    fn check(&self) {
        let d = delivered(&self.server);
        let twice: Vec<_> = d.iter().filter(|(_, (_, n))| *n > 1).collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
        let extra: Vec<_> = d
            .iter()
            .filter(|(id, (rule, _))| !self.want.contains(*id) && rule != "scp-bypass")
            .collect();
        assert!(extra.is_empty(), "not expected: {extra:?}");
        assert_eq!(
            Self::scp(&d),
            self.writes,
            "what the tree raises, once each"
        );
    }
}

/// Issue 28's chaos test on `run` (see [`Chaos`]): every accepted alert delivered exactly once.
#[test]
fn chaos_run_delivers_every_accepted_alert_exactly_once() {
    let Live {
        moto,
        k,
        kc,
        rt,
        o,
        t,
        ..
    } = Live::new("chaos");
    let chaos = Chaos::new(
        &t,
        &o,
        moto.port,
        "[source.kinesis]\nstream = \"chaos\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\n",
    );
    let run = start_run(&chaos.cfg, k.port, chaos.proxy.port, &[]);
    rt.block_on(put(&kc, "chaos", &chaos.first, 0));
    chaos.strike(run.child.id());
    rt.block_on(put(&kc, "chaos", &chaos.second, 100));
    chaos.deliver();
    let (code, rest) = run.stop();
    assert_eq!(code, 0);
    assert!(rest.is_empty(), "{rest:?}");
    chaos.check();
}

/// Issue 28's chaos test on `serve` (see [`Chaos`]): Firehose requests answered 200 only once
/// their alerts are delivered or spooled, and each of those delivered exactly once.
#[test]
fn chaos_serve_delivers_every_accepted_alert_exactly_once() {
    let (moto, _c, rt, o) = org_in_moto();
    let t = Tmp::new();
    let port = free_port();
    let chaos = Chaos::new(
        &t,
        &o,
        moto.port,
        &format!(
            "[source.firehose]\nlisten = \"127.0.0.1:{port}\"\naccess_keys_env = \"TW_KEYS\"\n"
        ),
    );
    let mut child = trailwatch(chaos.proxy.port)
        .args(["serve", "--config"])
        .arg(&chaos.cfg)
        .env("TW_KEYS", "key-12345678")
        .env("TRAILWATCH_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let post = |id: &str, recs: &[String]| {
        let records: Vec<Value> = recs
            .iter()
            .map(|r| json!({"data": b64(&gz(cwl_data(&[r]).as_bytes()))}))
            .collect();
        let body = json!({"requestId": id, "timestamp": 0, "records": records});
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let sent = rt.block_on(
                http.post(format!("http://127.0.0.1:{port}/"))
                    .header("x-amz-firehose-access-key", "key-12345678")
                    .header("x-amz-firehose-request-id", id)
                    .body(body.to_string())
                    .send(),
            );
            match sent {
                Ok(r) => return assert_eq!(r.status().as_u16(), 200),
                // Not listening until the organization is read or given up on.
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                Err(e) => panic!("{e}"),
            }
        }
    };
    post("chaos-1", &chaos.first);
    chaos.strike(child.id());
    post("chaos-2", &chaos.second);
    chaos.deliver();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    chaos.check();
}
