//! `trailwatch backtest` over an organization trail's archive built from real records: in a
//! local directory, and in S3 (moto, through the real client) behind a recording proxy that
//! shows which prefixes were listed and can throttle or fail requests.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::common::archive::{self, Archive, ACCOUNTS};
use crate::common::emu::*;
use crate::common::proxy::Proxy;
use crate::common::*;
use serde_json::Value;

const NEW: &str = "[policy]\napproved_regions = [\"us-east-1\"]\n";

fn tw(port: Option<u16>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    c.arg("backtest");
    if let Some(port) = port {
        c.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "3");
    }
    c
}

fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0),
        "exit {:?}\n{err}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The report without what names the sources (to compare runs over the same objects).
fn without_sources(mut r: Value) -> Value {
    r["scope"]["sources"] = Value::Null;
    r
}

/// The alert lines of `--alerts`: mark → alert ids.
fn marked(path: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in std::fs::read_to_string(path).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let id = v["alert"]["alert_id"].as_str().unwrap().to_string();
        m.entry(v["diff"].as_str().unwrap().to_string())
            .or_default()
            .insert(id);
    }
    m
}

/// `replay`'s summary figure named `what` ("events", "alerts", …).
fn replay_figure(stderr: &str, what: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("trailwatch replay:"))
        .unwrap();
    let at = line.find(&format!(" {what},")).unwrap();
    line[..at].rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_local_archive_gives_replays_totals_and_the_same_report_whatever_the_jobs() {
    let t = Tmp::new();
    let a = Archive::build();
    a.write(&t.path("archive"));
    // Two objects hold the same records: a redelivery, caught by dedup.
    let (dup_key, dup) = a.logs().next().unwrap().clone();
    t.write(&format!("archive/{}", dup_key.replace("_f00", "_f99")), dup);
    let cfg = t.config(NEW);
    let mut reports = Vec::new();
    for jobs in ["1", "4"] {
        let (rp, al) = (
            t.path(&format!("r{jobs}.json")),
            t.path(&format!("a{jobs}.jsonl")),
        );
        run(tw(None)
            .arg("--config")
            .arg(&cfg)
            .args(["--jobs", jobs, "--report"])
            .arg(&rp)
            .arg("--alerts")
            .arg(&al)
            .arg(t.path("archive")));
        reports.push((std::fs::read(&rp).unwrap(), std::fs::read(&al).unwrap()));
    }
    assert!(reports[0] == reports[1], "--jobs 1 and --jobs 4 differ");
    let r = json(&t.path("r1.json"));
    let logs = a.logs().count() as u64 + 1;
    assert_eq!(
        r["input"]["objects"], logs,
        "every log file once; the digest never read"
    );
    assert_eq!(r["input"]["events"], a.events() as u64 + 30);
    assert_eq!(r["input"]["duplicates"], 30);
    let out = run(Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .arg("replay")
        .arg("--config")
        .arg(&cfg)
        .arg(t.path("archive")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        replay_figure(&err, "events"),
        r["input"]["events"].as_u64().unwrap()
    );
    assert_eq!(replay_figure(&err, "duplicates"), 30);
    assert_eq!(
        replay_figure(&err, "alerts"),
        r["totals"]["alerts"].as_u64().unwrap()
    );
    assert_eq!(replay_figure(&err, "dead letters"), 0);
    assert!(
        r["totals"]["alerts"].as_u64().unwrap() > 100,
        "{}",
        r["totals"]
    );
    // Per region: us-east-1 is approved, so no alert of the headline rule there.
    assert!(
        r["by_region"].get("us-east-1").is_none(),
        "{}",
        r["by_region"]
    );
    assert_eq!(r["by_day"].as_object().unwrap().len(), 4);
    assert!(r["totals"]["notify"].as_u64().unwrap() > 0);
}

fn upload(moto: u16, bucket: &str, files: &[(String, Vec<u8>)]) {
    let rt = rt();
    let c = archive::s3(moto);
    rt.block_on(archive::upload(&c, bucket, "trail/", files));
}

#[test]
fn s3_listing_reads_only_the_prefixes_the_scope_allows_and_totals_match_the_local_copy() {
    let moto = start_moto();
    let a = Archive::build();
    upload(moto.port, "org-trail", &a.files);
    let proxy = Proxy::start(moto.port, |_, _| None);
    let t = Tmp::new();
    a.write(&t.path("archive"));
    let cfg = t.config(NEW);
    let scope = [
        "--since",
        "2026-09-02",
        "--until",
        "2026-09-03",
        "--accounts",
        ACCOUNTS[1],
        "--regions",
        "eu-west-1,us-east-1",
    ];
    run(tw(Some(proxy.port))
        .arg("--config")
        .arg(&cfg)
        .args(scope)
        .arg("--report")
        .arg(t.path("s3.json"))
        .arg("s3://org-trail/trail/"));
    let listed = proxy.listed_prefixes();
    let org = format!("trail/AWSLogs/{}/", archive::ORG);
    let allowed: BTreeSet<String> = ["eu-west-1", "us-east-1"]
        .iter()
        .flat_map(|r| {
            ["02", "03"].map(|d| format!("{org}{}/CloudTrail/{r}/2026/09/{d}/", ACCOUNTS[1]))
        })
        .chain(["trail/".to_string(), "trail/AWSLogs/".to_string()])
        .collect();
    let got: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(got, allowed, "listed exactly the scope's prefixes");
    let gets = proxy.gets();
    assert_eq!(gets.len(), 2 * 2 * 2, "{gets:?}");
    assert!(
        gets.iter().all(|g| g.contains(ACCOUNTS[1])
            && (g.contains("/2026/09/02/") || g.contains("/2026/09/03/"))),
        "{gets:?}"
    );
    let s3 = json(&t.path("s3.json"));
    assert_eq!(
        s3["input"]["events"],
        2 * 2 * 30,
        "day 2, two regions, two files"
    );
    assert_eq!(
        s3["input"]["outside"],
        2 * 2 * 30,
        "day 3's events are after --until"
    );
    // The same scope over the local copy: the same report.
    run(tw(None)
        .arg("--config")
        .arg(&cfg)
        .args(scope)
        .arg("--report")
        .arg(t.path("local.json"))
        .arg(t.path("archive")));
    assert_eq!(
        without_sources(s3),
        without_sources(json(&t.path("local.json")))
    );
    // And the whole bucket: the whole local archive.
    run(tw(Some(proxy.port))
        .arg("--config")
        .arg(&cfg)
        .args(["--report"])
        .arg(t.path("s3-all.json"))
        .arg("s3://org-trail/trail/"));
    run(tw(None)
        .arg("--config")
        .arg(&cfg)
        .args(["--report"])
        .arg(t.path("local-all.json"))
        .arg(t.path("archive")));
    let all = json(&t.path("s3-all.json"));
    assert_eq!(all["input"]["events"], a.events() as u64);
    assert_eq!(
        without_sources(all),
        without_sources(json(&t.path("local-all.json")))
    );
}

/// The test archive written to `archive/` in a new directory, and the config `NEW` there.
fn local_archive() -> (Tmp, Archive, std::path::PathBuf) {
    let t = Tmp::new();
    let a = Archive::build();
    a.write(&t.path("archive"));
    let cfg = t.config(NEW);
    (t, a, cfg)
}

#[test]
fn a_policy_change_adds_and_removes_exactly_the_expected_alerts() {
    let (t, _, old) = local_archive();
    // The baseline's alerts, to choose an exemption and to know what must go.
    run(tw(None)
        .arg("--config")
        .arg(&old)
        .arg("--alerts")
        .arg(t.path("base.jsonl"))
        .arg(t.path("archive")));
    let base: Vec<Value> = std::fs::read_to_string(t.path("base.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["alert"].clone())
        .collect();
    let mut by_principal: HashMap<String, usize> = HashMap::new();
    for b in &base {
        if b["region"] != "eu-west-1" {
            *by_principal
                .entry(b["principal"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let (exempt, _) = by_principal
        .iter()
        .max_by_key(|(p, n)| (**n, (*p).clone()))
        .unwrap();
    let new = t.write(
        "new.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\", \"eu-west-1\"]\n\
             [[policy.exempt]]\nprincipal = \"{exempt}\"\nreason = \"deploy role\"\n"
        ),
    );
    let expect_removed: BTreeSet<String> = base
        .iter()
        .filter(|b| b["region"] == "eu-west-1" || b["principal"] == exempt.as_str())
        .map(|b| b["alert_id"].as_str().unwrap().to_string())
        .collect();
    let all: BTreeSet<String> = base
        .iter()
        .map(|b| b["alert_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!expect_removed.is_empty() && expect_removed.len() < all.len());
    let out = run(tw(None)
        .arg("--config")
        .arg(&new)
        .arg("--baseline")
        .arg(&old)
        .args(["--fail-on-increase", "0", "--alerts"])
        .arg(t.path("diff.jsonl"))
        .arg("--report")
        .arg(t.path("diff.json"))
        .arg(t.path("archive")));
    let m = marked(&t.path("diff.jsonl"));
    assert_eq!(
        m.get("removed").cloned().unwrap_or_default(),
        expect_removed
    );
    assert_eq!(m.get("added"), None);
    let same: BTreeSet<String> = all.difference(&expect_removed).cloned().collect();
    assert_eq!(m.get("same").cloned().unwrap_or_default(), same);
    let r = json(&t.path("diff.json"));
    assert_eq!(r["totals"]["removed"], expect_removed.len() as u64);
    assert_eq!(r["totals"]["added"], 0);
    assert_eq!(r["totals"]["baseline_alerts"], all.len() as u64);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("changes by rule and account"), "{table}");
    // The same as a text report for a person: grouped by rule, each line marked.
    run(tw(None)
        .arg("--config")
        .arg(&new)
        .arg("--baseline")
        .arg(&old)
        .args(["--alerts-format", "text", "--alerts"])
        .arg(t.path("diff.txt"))
        .arg(t.path("archive")));
    let text = std::fs::read_to_string(t.path("diff.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("unapproved-region: "), "{text}");
    let count = |mark: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("  {mark:<7} [")))
            .count()
    };
    assert_eq!(count("removed"), expect_removed.len(), "{text}");
    assert_eq!(count("same"), same.len(), "{text}");
    assert_eq!(count("added"), 0, "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" by ") && l.contains(" — ")),
        "{text}"
    );
    // The other way round the change adds them: a CI gate fails.
    let back = tw(None)
        .arg("--config")
        .arg(&old)
        .arg("--baseline")
        .arg(&new)
        .args(["--fail-on-increase", "3", "--alerts"])
        .arg(t.path("back.jsonl"))
        .arg(t.path("archive"))
        .output()
        .unwrap();
    assert_eq!(
        back.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(
        marked(&t.path("back.jsonl"))
            .get("added")
            .cloned()
            .unwrap_or_default(),
        expect_removed
    );
}

#[test]
fn partial_runs_merged_equal_the_whole_run() {
    let t = Tmp::new();
    Archive::build().write(&t.path("archive"));
    let cfg = t.config(NEW);
    let report = |name: &str, extra: &[&str], env: Option<&str>| {
        let mut c = tw(None);
        if let Some(i) = env {
            c.env("AWS_BATCH_JOB_ARRAY_INDEX", i);
        }
        run(c
            .arg("--config")
            .arg(&cfg)
            .args(extra)
            .arg("--report")
            .arg(t.path(name))
            .arg(t.path("archive")));
        t.path(name)
    };
    let whole = report("whole.json", &[], None);
    let p0 = report("p0.json", &["--partition", "0/2"], None);
    let p1 = report("p1.json", &["--partition", "auto/2"], Some("1"));
    let (r0, r1) = (json(&p0), json(&p1));
    let events = |r: &Value| r["input"]["events"].as_u64().unwrap();
    assert!(
        events(&r0) > 0 && events(&r1) > 0,
        "both partitions hold work"
    );
    assert_eq!(events(&r0) + events(&r1), events(&json(&whole)));
    let merged = t.path("merged.json");
    archive::merge(&[&p0, &p1], &merged);
    let mut want = json(&whole);
    want["scope"] = json(&p0)["scope"].clone();
    assert_eq!(json(&merged), want);
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(&whole).unwrap(),
        "byte for byte"
    );
    // A partition missing, or twice: refused.
    let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["backtest", "merge"])
        .arg(&p0)
        .arg(&p0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("twice"));
}

#[test]
fn corrupt_objects_wrong_keys_failing_gets_and_a_missing_bucket_are_reported_and_the_run_goes_on() {
    let moto = start_moto();
    let a = Archive::build();
    let mut files = a.files.clone();
    let corrupt = archive::key(ACCOUNTS[0], "eu-west-1", "2026-09-01", "1255", 90);
    files.push((
        corrupt.clone(),
        b"\x1f\x8b\x08\x00 this is not gzip".to_vec(),
    ));
    let wrong = format!(
        "AWSLogs/{}/{}/CloudTrail/eu-west-1/2026/09/01/notes.txt",
        archive::ORG,
        ACCOUNTS[0]
    );
    files.push((wrong.clone(), b"hello".to_vec()));
    upload(moto.port, "org-trail", &files);
    let logs: Vec<String> = a.logs().map(|(k, _)| k.clone()).collect();
    let (flaky, broken, cut) = (logs[3].clone(), logs[5].clone(), logs[7].clone());
    let calls: Mutex<HashMap<String, u32>> = Mutex::default();
    let (f, b, c) = (flaky.clone(), broken.clone(), cut.clone());
    let proxy = Proxy::start(moto.port, move |method, path| {
        if !common::proxy::is_get_object(method, path) {
            return None;
        }
        let path = path.split('?').next().unwrap_or(path);
        let mut calls = calls.lock().unwrap();
        let n = calls.entry(path.to_string()).or_default();
        *n += 1;
        match () {
            _ if path.ends_with(&f) && *n <= 2 => Some(503),
            _ if path.ends_with(&b) => Some(500),
            _ if path.ends_with(&c) && *n == 1 => Some(0),
            _ => None,
        }
    });
    let t = Tmp::new();
    let cfg = t.config(NEW);
    let out = run(tw(Some(proxy.port))
        .arg("--config")
        .arg(&cfg)
        .arg("--report")
        .arg(t.path("r.json"))
        .arg("--dead-letter")
        .arg(t.path("dead.jsonl"))
        .arg("--allow-incomplete")
        .arg("s3://no-such-bucket/")
        .arg("s3://org-trail/trail/"));
    let r = json(&t.path("r.json"));
    assert_eq!(r["complete"], false, "{}", r["shortfall"]);
    assert_eq!(
        r["shortfall"],
        serde_json::json!({"dead_letters": 1, "unread_inputs": 1, "unlisted": 1,
            "dedup_forgotten": 0, "left_spooled": 0, "not_accepted": 0, "rejected": 0})
    );
    let failed = r["input"]["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["key"], format!("s3://org-trail/trail/{broken}"));
    assert!(
        failed[0]["error"].as_str().unwrap().contains("500")
            || failed[0]["error"]
                .as_str()
                .unwrap()
                .contains("InternalError"),
        "{failed:?}"
    );
    let flaky_gets = proxy.gets().iter().filter(|g| g.ends_with(&flaky)).count();
    assert_eq!(flaky_gets, 3, "throttled twice, read the third time");
    let cut_gets = proxy.gets().iter().filter(|g| g.ends_with(&cut)).count();
    assert_eq!(cut_gets, 2, "a body cut short is read again");
    assert_eq!(
        r["input"]["unexpected"],
        serde_json::json!([format!("s3://org-trail/trail/{wrong}")])
    );
    assert_eq!(r["input"]["dead_letters"], 1, "the corrupt object");
    let dead = std::fs::read_to_string(t.path("dead.jsonl")).unwrap();
    assert!(dead.contains(&corrupt), "{dead}");
    let unlisted = r["input"]["unlisted"].as_array().unwrap();
    assert!(
        unlisted.iter().any(|u| u["key"]
            .as_str()
            .unwrap()
            .starts_with("s3://no-such-bucket/")),
        "{unlisted:?}"
    );
    assert_eq!(
        r["input"]["events"],
        (a.events() - 30) as u64,
        "every other object read"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-bucket") && err.contains(&broken),
        "{err}"
    );
}

/// Issue 27, case 3: a backtest that could not read part of the archive does not pass the CI
/// gate. 1 in 3 objects answered 403: `--fail-on-increase 0` against an identical baseline
/// (nothing added) exits 3, the table and the report say what was not read, and
/// `--allow-incomplete` accepts it. Failed before: exit 0, and the table said nothing.
#[test]
fn unread_objects_fail_the_ci_gate_unless_accepted() {
    let moto = start_moto();
    let a = Archive::build();
    upload(moto.port, "org-trail", &a.files);
    let denied: BTreeSet<String> = a.logs().step_by(3).map(|(k, _)| k.clone()).collect();
    let d = denied.clone();
    let proxy = Proxy::start(moto.port, move |method, path| {
        let path = path.split('?').next().unwrap_or(path);
        (common::proxy::is_get_object(method, path) && d.iter().any(|k| path.ends_with(k)))
            .then_some(403)
    });
    let t = Tmp::new();
    let cfg = t.config(NEW);
    let gate = |extra: &[&str]| {
        tw(Some(proxy.port))
            .arg("--config")
            .arg(&cfg)
            .arg("--baseline")
            .arg(&cfg)
            .args(["--fail-on-increase", "0", "--report"])
            .arg(t.path("r.json"))
            .args(extra)
            .arg("s3://org-trail/trail/")
            .output()
            .unwrap()
    };
    let out = gate(&[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stderr}\n{stdout}");
    let n = denied.len();
    assert!(
        stdout.contains(&format!("INCOMPLETE: {n} inputs not read to their end")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "trailwatch backtest: INCOMPLETE: {n} inputs not read to their end; exit 3"
        )),
        "{stderr}"
    );
    let r = json(&t.path("r.json"));
    assert_eq!(r["complete"], false);
    assert_eq!(r["shortfall"]["unread_inputs"], n as u64);
    assert_eq!(r["input"]["failed"].as_array().unwrap().len(), n);
    assert_eq!(
        r["input"]["events"],
        (a.events() - n * 30) as u64,
        "the readable objects are still read"
    );
    let out = gate(&["--allow-incomplete"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("accepted by --allow-incomplete"));
    // Locally, one unreadable file (a link to nothing): exit 3, and said on stdout too.
    a.write(&t.path("archive"));
    let victim = t.path(&format!("archive/{}", a.logs().nth(4).unwrap().0));
    std::fs::remove_file(&victim).unwrap();
    std::os::unix::fs::symlink(t.path("nowhere"), &victim).unwrap();
    let out = tw(None)
        .arg("--config")
        .arg(&cfg)
        .arg(t.path("archive"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("INCOMPLETE: 1 inputs not read"));
}

/// `--explain-listing` names each prefix listed, among them the day folder of every log
/// file read; without it, none is named.
#[test]
fn explain_listing_names_the_prefixes_listed_and_only_when_asked() {
    let (t, a, cfg) = local_archive();
    let listed = |explain: bool| -> Vec<String> {
        let mut c = tw(None);
        c.arg("--config").arg(&cfg);
        if explain {
            c.arg("--explain-listing");
        }
        let out = run(c.arg(t.path("archive")));
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| l.strip_prefix("listed ").map(str::to_string))
            .collect()
    };
    let named = listed(true);
    for (key, _) in a.logs() {
        let day = &key[..key.rfind('/').unwrap() + 1];
        let want = t.path("archive").join(day).display().to_string();
        assert!(named.contains(&want), "{want} not in {named:?}");
    }
    assert!(listed(false).is_empty(), "named without --explain-listing");
}

/// Issue 27, case 4: a local source at the folder above `AWSLogs/`, at `AWSLogs/`, at the
/// organization folder or at an account folder is recognised (and `--explain-listing` says
/// which), so `--accounts` prunes the same from each. Failed before: from `AWSLogs/` and the
/// organization folder every object was read and discarded as outside the scope.
#[test]
fn every_layout_level_prunes_the_same() {
    let (t, a, cfg) = local_archive();
    let org = format!("archive/AWSLogs/{}", archive::ORG);
    let levels = [
        ("archive", "the folder above AWSLogs/"),
        ("archive/AWSLogs", "the AWSLogs/ folder"),
        (org.as_str(), "an organization folder"),
    ];
    let per_account = (a.logs().count() / 3) as u64;
    let mut reports = Vec::new();
    for (dir, says) in levels {
        let rp = t.path(&format!("{}.json", dir.replace('/', "_")));
        let out = run(tw(None)
            .arg("--config")
            .arg(&cfg)
            .args(["--accounts", ACCOUNTS[1], "--explain-listing", "--report"])
            .arg(&rp)
            .arg(t.path(dir)));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{dir}: {err}");
        let r = json(&rp);
        assert_eq!(r["input"]["objects"], per_account, "{dir}: {}", r["input"]);
        assert_eq!(
            r["input"]["outside"], 0,
            "{dir}: nothing read to be discarded"
        );
        reports.push(without_sources(r));
    }
    // The account folder itself.
    let acct = format!("{org}/{}", ACCOUNTS[1]);
    let out = run(tw(None)
        .arg("--config")
        .arg(&cfg)
        .args(["--accounts", ACCOUNTS[1], "--explain-listing", "--report"])
        .arg(t.path("acct.json"))
        .arg(t.path(&acct)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("an account folder"));
    reports.push(without_sources(json(&t.path("acct.json"))));
    for r in &reports[1..] {
        assert_eq!(r, &reports[0]);
    }
    // A folder with no AWSLogs/ is said to be read whole.
    std::fs::create_dir_all(t.path("loose")).unwrap();
    std::fs::copy(
        t.path(&format!("archive/{}", a.logs().next().unwrap().0)),
        t.path("loose/x.json.gz"),
    )
    .unwrap();
    let out = run(tw(None)
        .arg("--config")
        .arg(&cfg)
        .arg("--explain-listing")
        .arg(t.path("loose")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the CloudTrail layout"));
}
