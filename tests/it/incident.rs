//! Issue 30: the destinations incident response already uses, each against a real local
//! receiver started here that checks the documented request schema field by field and
//! answers as the service does (202, or 400 naming every problem): PagerDuty's Events API v2,
//! Opsgenie's Alert API and a Teams Workflows webhook; and Security Hub through moto's
//! server with the real SDK client (`AWS_ENDPOINT_URL`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::emu::*;
use crate::common::http::{Fault, Request, Server};
use crate::common::*;
use serde_json::Value;

/// Every event a rule's alert (so every one carries who is behind it), on the identity
/// fixture: IAM users and the role sessions they started.
fn config(t: &Tmp, name: &str, body: &str) -> PathBuf {
    t.write(
        name,
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n\
             [[rules]]\nid = \"every-event\"\nfilter = '{{ $.eventID = * }}'\nseverity = \"low\"\n\n\
             [delivery]\nstate_dir = \"{}\"\nbackoff_initial = \"50ms\"\nbackoff_max = \"1s\"\n{body}",
            t.path(&format!("state-{name}")).display()
        ),
    )
}

fn input() -> PathBuf {
    fixture_path("stratus_identity.jsonl")
}

fn deliver(cfg: &Path, env: &[(&str, &str)]) -> Output {
    deliver_from(cfg, env, &input())
}

fn deliver_from(cfg: &Path, env: &[(&str, &str)], input: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    c.args(["replay", "--deliver", "--config"])
        .arg(cfg)
        .arg(input);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run trailwatch");
    assert!(
        out.status.success(),
        "replay --deliver: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What `replay --stream S` prints: the items the sink should get, in order.
fn expected(cfg: &Path, stream: &str) -> Vec<Value> {
    expected_from(cfg, stream, &input())
}

fn expected_from(cfg: &Path, stream: &str, input: &Path) -> Vec<Value> {
    let out = run([
        "replay".as_ref(),
        "--stream".as_ref(),
        stream.as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        input.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    out.alerts()
}

/// A receiver answering 202 to a request `check` finds nothing wrong with, 401 to a bad
/// key, else 400 with the problems (as the services do).
fn receiver(check: fn(&Request) -> Vec<String>) -> Server {
    Server::start_with(move |r| {
        let problems = check(r);
        if problems.iter().any(|p| p.starts_with("authorization")) {
            return (401, r#"{"message":"Could not authenticate"}"#.into());
        }
        match problems.is_empty() {
            true => (202, r#"{"status":"success"}"#.into()),
            false => (400, problems.join("; ")),
        }
    })
}

fn str_len(v: &Value, key: &str, min: usize, max: usize, p: &mut Vec<String>) {
    match v[key].as_str() {
        Some(s) if (min..=max).contains(&s.chars().count()) => {}
        Some(s) => p.push(format!(
            "{key}: {} characters, expected {min}..={max}",
            s.chars().count()
        )),
        None if min == 0 && v.get(key).is_none() => {}
        None => p.push(format!("{key}: expected a string")),
    }
}

fn only_keys(v: &Value, allowed: &[&str], at: &str, p: &mut Vec<String>) {
    match v.as_object() {
        Some(o) => {
            for k in o.keys().filter(|k| !allowed.contains(&k.as_str())) {
                p.push(format!("{at}{k}: not a field of the API"));
            }
        }
        None => p.push(format!("{at}: expected an object")),
    }
}

const PD_KEY: &str = "0123456789abcdef0123456789abcdef";

/// PagerDuty Events API v2, `POST /v2/enqueue`.
fn pagerduty_schema(r: &Request) -> Vec<String> {
    let mut p = Vec::new();
    if r.path != "/v2/enqueue" || r.method != "POST" {
        p.push(format!(
            "{} {}: expected POST /v2/enqueue",
            r.method, r.path
        ));
    }
    if !r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        p.push("content-type: expected application/json".into());
    }
    let e = r.json();
    only_keys(
        &e,
        &[
            "routing_key",
            "event_action",
            "dedup_key",
            "payload",
            "images",
            "links",
            "client",
            "client_url",
        ],
        "",
        &mut p,
    );
    if e["routing_key"] != PD_KEY {
        p.push("routing_key: not the integration's key".into());
    }
    if !["trigger", "acknowledge", "resolve"].contains(&e["event_action"].as_str().unwrap_or("")) {
        p.push("event_action: expected trigger, acknowledge or resolve".into());
    }
    str_len(&e, "dedup_key", 1, 255, &mut p);
    let pl = &e["payload"];
    only_keys(
        pl,
        &[
            "summary",
            "source",
            "severity",
            "timestamp",
            "component",
            "group",
            "class",
            "custom_details",
        ],
        "payload.",
        &mut p,
    );
    str_len(pl, "summary", 1, 1024, &mut p);
    str_len(pl, "source", 1, 255, &mut p);
    if !["critical", "error", "warning", "info"].contains(&pl["severity"].as_str().unwrap_or("")) {
        p.push("payload.severity: expected critical, error, warning or info".into());
    }
    if let Some(t) = pl["timestamp"].as_str() {
        if time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_err() {
            p.push(format!("payload.timestamp: {t:?} is not ISO 8601"));
        }
    }
    if !pl["custom_details"].is_object() {
        p.push("payload.custom_details: expected an object".into());
    }
    for l in e["links"].as_array().into_iter().flatten() {
        if !l["href"]
            .as_str()
            .is_some_and(|h| h.starts_with("https://"))
        {
            p.push(format!("links: {l}: expected an https href"));
        }
    }
    p
}

#[test]
fn pagerduty_gets_events_v2_with_the_group_as_dedup_key_and_429_honoured() {
    let t = Tmp::new();
    let server = receiver(pagerduty_schema);
    server.script([Fault::status(429, "Too Many Requests").retry_after(1)]);
    let cfg = config(
        &t,
        "pd.toml",
        "[shaping]\ngroup_by = [\"rule\", \"account\"]\nwindow = \"1h\"\n\n\
         [[sinks]]\nname = \"pager\"\ntype = \"pagerduty\"\nurl_placeholder\nrouting_key_env = \"TW_PD_KEY\"\n\n\
         [[routes]]\nstream = \"notify\"\nsinks = [\"pager\"]\n"
            .replace("url_placeholder", &format!("url = \"{}\"", server.url("/v2/enqueue")))
            .as_str(),
    );
    let want = expected(&cfg, "notify");
    assert!(
        want.iter().any(|i| i["kind"] == "update"),
        "updates to attach"
    );
    let out = deliver(&cfg, &[("TW_PD_KEY", PD_KEY)]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(PD_KEY),
        "the key is never logged"
    );
    let reqs = server.requests();
    assert_eq!(reqs[0].status, 429);
    assert!(
        reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    let bad: Vec<String> = reqs
        .iter()
        .filter(|r| r.status == 400)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(bad.is_empty(), "requests off the schema: {bad:?}");
    let got: Vec<Value> = server.accepted().iter().map(Request::json).collect();
    assert_eq!(got.len(), want.len(), "one event per notify item");
    // An update carries the dedup key of the alert that opened its group's incident.
    let mut opened = BTreeMap::new();
    for (e, item) in got.iter().zip(&want) {
        let d = &e["payload"]["custom_details"];
        assert_eq!(d["alert_id"], item["alert_id"], "in order");
        let key = e["dedup_key"].as_str().unwrap();
        assert_eq!(
            key,
            format!("trailwatch/{}", item["group_key"].as_str().unwrap())
        );
        match item["kind"].as_str().unwrap() {
            "alert" => {
                opened.insert(key.to_string(), item["alert_id"].clone());
            }
            _ => assert!(
                opened.contains_key(key),
                "{key}: an update without its incident"
            ),
        }
        assert!(e["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("every-event"));
        if item["principal_type"] == "AssumedRole" {
            assert!(
                d["behind_it"].as_str().unwrap().starts_with("christophe"),
                "{e}"
            );
        }
    }
}

/// Opsgenie's Alert API, `POST /v2/alerts` with `Authorization: GenieKey <key>`.
fn opsgenie_schema(r: &Request) -> Vec<String> {
    let mut p = Vec::new();
    if r.path != "/v2/alerts" || r.method != "POST" {
        p.push(format!("{} {}: expected POST /v2/alerts", r.method, r.path));
    }
    if r.header("authorization") != Some("GenieKey og-test-key") {
        p.push("authorization: expected GenieKey <api key>".into());
    }
    let a = r.json();
    only_keys(
        &a,
        &[
            "message",
            "alias",
            "description",
            "responders",
            "visibleTo",
            "actions",
            "tags",
            "details",
            "entity",
            "source",
            "priority",
            "user",
            "note",
        ],
        "",
        &mut p,
    );
    str_len(&a, "message", 1, 130, &mut p);
    str_len(&a, "alias", 0, 512, &mut p);
    str_len(&a, "description", 0, 15_000, &mut p);
    str_len(&a, "entity", 0, 512, &mut p);
    str_len(&a, "source", 0, 100, &mut p);
    match a["tags"].as_array() {
        Some(t)
            if t.len() <= 20
                && t.iter()
                    .all(|t| t.as_str().is_some_and(|s| s.chars().count() <= 50)) => {}
        _ => p.push("tags: expected at most 20 strings of at most 50 characters".into()),
    }
    if !a["details"]
        .as_object()
        .is_some_and(|d| d.values().all(Value::is_string))
    {
        p.push("details: expected a map of strings".into());
    }
    if !["P1", "P2", "P3", "P4", "P5"].contains(&a["priority"].as_str().unwrap_or("")) {
        p.push("priority: expected P1..P5".into());
    }
    p
}

#[test]
fn opsgenie_gets_alerts_with_the_group_as_alias_and_a_bad_key_is_not_retried_for_ever() {
    let t = Tmp::new();
    let server = receiver(opsgenie_schema);
    let cfg = config(
        &t,
        "og.toml",
        &format!(
            "[[sinks]]\nname = \"og\"\ntype = \"opsgenie\"\nurl = \"{}\"\napi_key_env = \"TW_OG_KEY\"\n\n\
             [[routes]]\nstream = \"notify\"\nsinks = [\"og\"]\n",
            server.url("/v2/alerts")
        ),
    );
    let want = expected(&cfg, "notify");
    deliver(&cfg, &[("TW_OG_KEY", "og-test-key")]);
    let reqs = server.requests();
    assert!(
        reqs.iter().all(|r| r.status == 202),
        "{:?}",
        reqs.iter()
            .find(|r| r.status != 202)
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
    );
    let got: Vec<Value> = reqs.iter().map(Request::json).collect();
    assert_eq!(got.len(), want.len());
    for (a, item) in got.iter().zip(&want) {
        assert_eq!(a["details"]["alert_id"], item["alert_id"]);
        assert_eq!(
            a["alias"],
            format!("trailwatch/{}", item["group_key"].as_str().unwrap())
        );
        assert_eq!(a["details"]["origin"], item["identity"]["origin"]);
        assert!(a["message"].as_str().unwrap().contains("every-event"));
    }
    // A wrong key: Opsgenie answers 401 to every request; the items stay in the spool and
    // the run says so (it did less than asked).
    let t2 = Tmp::new();
    let cfg2 = config(
        &t2,
        "og2.toml",
        &format!(
            "[[sinks]]\nname = \"og\"\ntype = \"opsgenie\"\nurl = \"{}\"\napi_key_env = \"TW_OG_KEY\"\n\n\
             [[routes]]\nstream = \"notify\"\nsinks = [\"og\"]\n",
            server.url("/v2/alerts")
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["replay", "--deliver", "--drain-timeout", "1s", "--config"])
        .arg(&cfg2)
        .arg(input())
        .env("TW_OG_KEY", "og-wrong-key")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "INCOMPLETE: {} items still spooled at exit",
            want.len()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("og-wrong-key"),
        "the key is never logged: {stderr}"
    );
}

/// A Teams Workflows webhook: a message with one Adaptive Card.
fn teams_schema(r: &Request) -> Vec<String> {
    let mut p = Vec::new();
    if r.body.len() > 28_000 {
        p.push(format!("{} bytes: over Teams' 28 KB", r.body.len()));
    }
    let m = r.json();
    if m["type"] != "message" {
        p.push("type: expected \"message\"".into());
    }
    let atts = m["attachments"].as_array().cloned().unwrap_or_default();
    if atts.len() != 1 {
        p.push("attachments: expected one card".into());
    }
    for a in &atts {
        if a["contentType"] != "application/vnd.microsoft.card.adaptive" {
            p.push("attachments[].contentType: expected an Adaptive Card".into());
        }
        let c = &a["content"];
        if c["type"] != "AdaptiveCard" {
            p.push("content.type: expected AdaptiveCard".into());
        }
        if !["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"]
            .contains(&c["version"].as_str().unwrap_or(""))
        {
            p.push("content.version: expected 1.0 to 1.5".into());
        }
        for b in c["body"].as_array().into_iter().flatten() {
            match b["type"].as_str() {
                Some("TextBlock") if b["text"].is_string() => {}
                Some("FactSet") => {
                    let ok = b["facts"].as_array().is_some_and(|f| {
                        f.iter()
                            .all(|f| f["title"].is_string() && f["value"].is_string())
                    });
                    if !ok {
                        p.push("FactSet.facts: expected {title, value} strings".into());
                    }
                }
                other => p.push(format!("body: {other:?} is not an element with its fields")),
            }
        }
        for act in c["actions"].as_array().into_iter().flatten() {
            if act["type"] != "Action.OpenUrl"
                || !act["title"].is_string()
                || !act["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("https://"))
            {
                p.push(format!(
                    "actions: {act}: expected Action.OpenUrl with a title and an https url"
                ));
            }
        }
    }
    p
}

#[test]
fn teams_gets_adaptive_cards_naming_the_rule_and_who_is_behind_with_a_portal_link() {
    let t = Tmp::new();
    let server = receiver(teams_schema);
    let cfg = config(
        &t,
        "teams.toml",
        "[console]\nlink = \"identity-center\"\nstart_url = \"https://d-1234567890.awsapps.com/start\"\nrole = \"SecurityAudit\"\n\n\
         [[sinks]]\nname = \"teams\"\ntype = \"teams\"\nwebhook_url_env = \"TW_TEAMS\"\nmin_interval = \"10ms\"\n\n\
         [[routes]]\nstream = \"notify\"\nsinks = [\"teams\"]\n",
    );
    let want = expected(&cfg, "notify");
    let url = server.url("/workflows/abc/triggers/manual/paths/invoke?sig=TEAMSSECRET");
    let out = deliver(&cfg, &[("TW_TEAMS", &url)]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("TEAMSSECRET"));
    let reqs = server.requests();
    let bad: Vec<String> = reqs
        .iter()
        .filter(|r| r.status != 202)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(bad.is_empty(), "cards off the schema: {bad:?}");
    assert_eq!(reqs.len(), want.len(), "one card per notify item");
    let mut behind = 0;
    for (r, item) in reqs.iter().zip(&want) {
        let card = &r.json()["attachments"][0]["content"];
        let texts: Vec<String> = card["body"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str().map(str::to_string))
            .collect();
        assert!(
            texts[1].contains("every-event"),
            "the preview names the rule"
        );
        if item["kind"] == "alert" {
            assert!(texts
                .iter()
                .any(|t| t.contains(item["alert_id"].as_str().unwrap())));
        }
        let facts = card["body"][2]["facts"].as_array().unwrap();
        if let Some(f) = facts.iter().find(|f| f["title"] == "Behind it") {
            assert!(f["value"].as_str().unwrap().starts_with("christophe"));
            behind += 1;
        }
        let link = card["actions"][0]["url"].as_str().unwrap();
        assert_eq!(link, item["console_url"].as_str().unwrap());
        assert!(link.starts_with(&format!(
            "https://d-1234567890.awsapps.com/start/#/console?account_id={}&role_name=SecurityAudit&destination=https%3A%2F%2F",
            item["account"].as_str().unwrap()
        )));
    }
    assert!(behind > 0, "a role session's card says who is behind it");
}

/// Enables Security Hub in moto, or reads its findings back (boto3 from moto's virtualenv).
fn security_hub(port: u16, op: &str) -> Value {
    let out = Command::new(moto_python())
        .args([
            "-c",
            r#"
import boto3, sys, json
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
sh = boto3.client("securityhub", **kw)
if sys.argv[2] == "enable":
    sh.enable_security_hub()
    print("{}")
else:
    found, token = [], None
    while True:
        r = sh.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        found += r["Findings"]
        token = r.get("NextToken")
        if not token:
            break
    print(json.dumps(found, default=str))
"#,
            &format!("http://127.0.0.1:{port}"),
            op,
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn security_hub_gets_asff_findings_in_batches_and_a_redelivery_updates_them() {
    let m = start_moto();
    security_hub(m.port, "enable");
    let t = Tmp::new();
    let sink = |extra: &str| {
        format!(
            "[[sinks]]\nname = \"hub\"\ntype = \"securityhub\"\naccount_id = \"999988887777\"\nregion = \"us-east-1\"\n{extra}\n\
             [[routes]]\nstream = \"siem\"\nsinks = [\"hub\"]\n\n\
             [[rules]]\nid = \"every-event-again\"\nfilter = '{{ $.eventID = * }}'\nseverity = \"info\"\n"
        )
    };
    // Alerts enough for more than one call: a second rule on every event, over the identity
    // fixture, the Stratus sample and the OTRF sample.
    let cfg = config(&t, "hub.toml", &sink(""));
    let records: String = [
        "stratus_identity.jsonl",
        "stratus_sample.jsonl",
        "otrf_sample.jsonl",
    ]
    .iter()
    .map(|f| fixture(f))
    .collect();
    let input = t.write("records.jsonl", records);
    let want = expected_from(&cfg, "siem", &input);
    assert!(want.len() > 100, "more than one BatchImportFindings");
    let endpoint = format!("http://127.0.0.1:{}", m.port);
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ];
    deliver_from(&cfg, &env, &input);
    let found = security_hub(m.port, "get");
    let by_id: BTreeMap<&str, &Value> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["Id"].as_str().unwrap(), f))
        .collect();
    assert_eq!(
        by_id.len(),
        found.as_array().unwrap().len(),
        "one finding per Id"
    );
    let want_ids: BTreeSet<&str> = want
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap())
        .collect();
    assert_eq!(by_id.keys().copied().collect::<BTreeSet<_>>(), want_ids);
    for a in &want {
        let f = by_id[a["alert_id"].as_str().unwrap()];
        assert_eq!(f["SchemaVersion"], "2018-10-08");
        assert_eq!(f["GeneratorId"], a["rule"]);
        assert_eq!(
            f["AwsAccountId"], "999988887777",
            "the caller, as AWS requires"
        );
        assert_eq!(
            f["ProductArn"],
            "arn:aws:securityhub:us-east-1:999988887777:product/999988887777/default"
        );
        assert_eq!(
            f["Severity"]["Label"],
            a["severity"]
                .as_str()
                .unwrap()
                .to_uppercase()
                .replace("INFO", "INFORMATIONAL")
        );
        assert_eq!(f["Title"], a["title"]);
        assert!(f["Description"]
            .as_str()
            .unwrap()
            .contains(a["reason"].as_str().unwrap()));
        assert!(f["Types"][0].as_str().unwrap().contains('/'));
        let res = f["Resources"].as_array().unwrap();
        assert_eq!(res[0]["Id"], a["principal"]);
        assert_eq!(res[0]["Region"], a["region"]);
        assert_eq!(
            res.last().unwrap()["Id"],
            format!("AWS::::Account:{}", a["account"].as_str().unwrap())
        );
        if let Some(origin) = a["identity"]["origin"].as_str() {
            assert_eq!(f["ProductFields"]["trailwatch/origin"], origin);
        }
    }
    // Delivered again with the alert's account named: the same findings, updated.
    let t2 = Tmp::new();
    let cfg2 = config(&t2, "hub2.toml", &sink("finding_account = \"alert\"\n"));
    deliver_from(&cfg2, &env, &input);
    let again = security_hub(m.port, "get");
    assert_eq!(
        again.as_array().unwrap().len(),
        want.len(),
        "updated, not added"
    );
    for f in again.as_array().unwrap() {
        let a = want.iter().find(|a| a["alert_id"] == f["Id"]).unwrap();
        assert_eq!(
            f["AwsAccountId"], a["account"],
            "finding_account = \"alert\""
        );
    }
}
