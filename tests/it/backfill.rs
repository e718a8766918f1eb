//! Issue 31: backfill. A `feed-gap` window (here: a start a few days before the stream
//! existed) is read from the organization trail's archive (a local directory in CloudTrail's
//! layout, built from real Stratus Red Team records re-dated into the window) and fed into
//! the live engine beside the stream (kinesalite). Events in both the archive and the stream
//! alert once; the window is told filled with its counts; a `kill -9` during backfill and a
//! restart still write every alert once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::emu::*;
use crate::common::*;
use serde_json::Value;

const ACCOUNT: &str = "111122223333";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The Stratus records re-dated to one every 10 seconds from `start`, `copies` times over
/// (each copy with its own event ids).
fn redated(start: i64, copies: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for c in 0..copies {
        for (i, line) in stratus().iter().enumerate() {
            let mut r: Value = serde_json::from_str(line).unwrap();
            let n = c * 100 + i;
            r["eventTime"] = rfc3339(start + n as i64 * 10).into();
            r["eventID"] = format!("{}-{c}", r["eventID"].as_str().unwrap()).into();
            r["recipientAccountId"] = ACCOUNT.into();
            out.push(r);
        }
    }
    out
}

/// One log file per record, keyed as CloudTrail keys them (delivered 5 minutes after).
fn archive_files(records: &[Value]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let t = time::OffsetDateTime::parse(
            r["eventTime"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
            + time::Duration::minutes(5);
        let region = r["awsRegion"].as_str().unwrap();
        let key = format!(
            "AWSLogs/o-exampleorgid/{ACCOUNT}/CloudTrail/{region}/{:04}/{:02}/{:02}/{ACCOUNT}_CloudTrail_{region}_{:04}{:02}{:02}T{:02}{:02}Z_f{i:04}.json.gz",
            t.year(), t.month() as u8, t.day(), t.year(), t.month() as u8, t.day(), t.hour(), t.minute()
        );
        let body = serde_json::json!({ "Records": [r] }).to_string();
        out.push((key, gz(body.as_bytes())));
    }
    out
}

fn write_archive(dir: &Path, records: &[Value]) {
    for (key, data) in archive_files(records) {
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// What the run reads in all, as JSON lines: the archive's records, then the stream's.
fn union(archived: &[Value], live: Vec<String>) -> Vec<String> {
    archived.iter().map(Value::to_string).chain(live).collect()
}

fn config(t: &Tmp, start: i64, archive: &Path) -> PathBuf {
    config_source(t, start, &archive.display().to_string())
}

fn config_source(t: &Tmp, start: i64, source: &str) -> PathBuf {
    t.write(
        "run.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"org\"\nstart = \"at_timestamp:{}\"\npoll_interval = \"100ms\"\ndiscovery_interval = \"1s\"\n\n[checkpoint]\npath = \"{}\"\ninterval = \"200ms\"\n\n[backfill]\nsource = \"{}\"\n",
            rfc3339(start),
            t.path("state/cp.json").display(),
            source
        ),
    )
}

fn lines_of_file(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait_until(path: &Path, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = lines_of_file(path);
        if ok(&got) {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {} lines",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The alert ids of everything but `feed-gap`, in order.
fn event_alert_ids(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .filter(|a| a["rule"] != "feed-gap")
        .map(|a| a["alert_id"].as_str().unwrap().to_string())
        .collect()
}

fn filled(a: &[Value]) -> Vec<&Value> {
    a.iter()
        .filter(|x| x["rule"] == "feed-gap" && x["title"].as_str().unwrap().contains("filled"))
        .collect()
}

#[test]
fn a_gap_is_filled_from_the_archive_and_events_in_both_alert_once() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "org", 2));
    let created = now();
    // Two days ago, in the window the stream never held: in the archive only. The first five
    // are also put into the stream (a record delivered both ways).
    let archived = redated(created - 2 * 86_400, 1);
    write_archive(&t.path("archive"), &archived);
    let overlap: Vec<String> = archived[..5].iter().map(Value::to_string).collect();
    let live: Vec<String> = stratus();
    rt.block_on(put(&c, "org", &[overlap.clone(), live.clone()].concat(), 0));
    let cfg = config(&t, created - 3 * 86_400, &t.path("archive"));
    let union = union(&archived, live);
    let want = expected(&cfg, &t, &union);
    assert!(!want.is_empty());
    let out = t.path("siem.jsonl");
    let run = Consumer::start_with(&cfg, k.port, &["--output", &out.display().to_string()]);
    wait_until(&out, "the window filled", |a| !filled(a).is_empty());
    std::thread::sleep(Duration::from_millis(1000));
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    let got = lines_of_file(&out);
    let ids = event_alert_ids(&got);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "the union's alerts"
    );
    assert_eq!(
        ids.len(),
        want.len(),
        "each once: the overlap is deduplicated"
    );
    let gaps: Vec<&Value> = got.iter().filter(|a| a["rule"] == "feed-gap").collect();
    assert_eq!(gaps.len(), 2, "the gap, then filled: {gaps:?}");
    let f = filled(&got)[0];
    let reason = f["reason"].as_str().unwrap();
    let from_archive = archived.len();
    assert!(
        reason.contains(&format!(": {from_archive} events,")),
        "every archived event read: {reason}"
    );
    assert_eq!(f["severity"], "info", "whole");
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("state/cp.json")).unwrap()).unwrap();
    assert!(st.get("backfill").is_none(), "the job is done: {st}");
}

#[test]
fn kill_9_during_backfill_then_restart_writes_every_alert_once() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "org", 1));
    let created = now();
    let archived = redated(created - 2 * 86_400, 60);
    write_archive(&t.path("archive"), &archived);
    rt.block_on(put(&c, "org", &stratus(), 0));
    let cfg = config(&t, created - 3 * 86_400, &t.path("archive"));
    let union = union(&archived, stratus());
    let want = expected(&cfg, &t, &union);
    let out = t.path("siem.jsonl");
    let out_arg = out.display().to_string();
    let mut run = Consumer::start_with(&cfg, k.port, &["--output", &out_arg]);
    // Backfill under way, its progress saved with a checkpoint: kill -9.
    let saved = || -> Option<Value> {
        let st: Value =
            serde_json::from_str(&std::fs::read_to_string(t.path("state/cp.json")).ok()?).ok()?;
        let done = st["backfill"][0]["done"].as_array()?.len();
        (done > 0).then_some(st)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let st = loop {
        if let Some(st) = saved() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no backfill progress saved"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    let first = lines_of_file(&out);
    assert!(
        filled(&first).is_empty(),
        "killed before the window was filled"
    );
    assert_eq!(st["backfill"].as_array().unwrap().len(), 1, "one job: {st}");
    let run = Consumer::start_with(&cfg, k.port, &["--output", &out_arg]);
    wait_until(&out, "the window filled", |a| !filled(a).is_empty());
    std::thread::sleep(Duration::from_millis(1000));
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    let got = lines_of_file(&out);
    let ids = event_alert_ids(&got);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "no alert lost"
    );
    assert_eq!(ids.len(), want.len(), "no alert written twice");
    assert_eq!(filled(&got).len(), 1);
}

/// Two workers sharing a lease table (moto's DynamoDB) both find the window on their shards;
/// one claims it in the table and reads the archive: every alert once across both outputs,
/// one `filled`.
#[test]
fn with_two_workers_a_window_is_filled_once() {
    let k = start_kinesalite();
    let m = start_moto();
    let t = Tmp::new();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "org", 4));
    let created = now();
    let archived = redated(created - 2 * 86_400, 2);
    write_archive(&t.path("archive"), &archived);
    rt.block_on(put_round_robin(&c, "org", &stratus(), 4));
    let cfg = |who: &str| {
        t.write(
            &format!("{who}.toml"),
            format!(
                "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"org\"\nstart = \"at_timestamp:{}\"\npoll_interval = \"100ms\"\ndiscovery_interval = \"1s\"\n\n[checkpoint]\nkind = \"dynamodb\"\ntable = \"leases\"\nlease_duration = \"3s\"\npath = \"{}\"\ninterval = \"200ms\"\n\n[backfill]\nsource = \"{}\"\n",
                rfc3339(created - 3 * 86_400),
                t.path(&format!("state-{who}/state.json")).display(),
                t.path("archive").display()
            ),
        )
    };
    let (cfg_a, cfg_b) = (cfg("a"), cfg("b"));
    let union = union(&archived, stratus());
    let want = expected(&cfg_a, &t, &union);
    let (out_a, out_b) = (t.path("a.jsonl"), t.path("b.jsonl"));
    let a = Consumer::spawn(
        &cfg_a,
        k.port,
        Some(m.port),
        &["--worker-id", "a", "--output", &out_a.display().to_string()],
    );
    let b = Consumer::spawn_env(
        &cfg_b,
        k.port,
        Some(m.port),
        &["--worker-id", "b", "--output", &out_b.display().to_string()],
        &[],
    );
    let both = || [lines_of_file(&out_a), lines_of_file(&out_b)].concat();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = both();
        let alerts = got.iter().filter(|x| x["rule"] != "feed-gap").count();
        if alerts >= want.len() && !filled(&got).is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{alerts} of {} alerts",
            want.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(a.stop().0, 0);
    assert_eq!(b.stop().0, 0, "both stop at once (no call left hanging)");
    let got = both();
    let ids = event_alert_ids(&got);
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(
        ids.len(),
        want.len(),
        "the archive read once: no alert twice"
    );
    assert_eq!(filled(&got).len(), 1, "one worker filled the window");
}

/// The same against moto's server for both Kinesis and S3 (the archive in a bucket, read with
/// the real S3 client through `AWS_ENDPOINT_URL_S3`).
#[test]
fn a_gap_is_filled_from_an_s3_archive_on_moto() {
    let m = start_moto();
    let t = Tmp::new();
    let rt = rt();
    let c = client(m.port);
    rt.block_on(create_stream(&c, "org", 2));
    let created = now();
    let archived = redated(created - 2 * 86_400, 1);
    rt.block_on(crate::common::archive::upload(
        &crate::common::archive::s3(m.port),
        "trail",
        "",
        &archive_files(&archived),
    ));
    rt.block_on(put(&c, "org", &stratus(), 0));
    let cfg = config_source(
        &t,
        created - 3 * 86_400,
        "s3://trail/AWSLogs/o-exampleorgid/",
    );
    let union = union(&archived, stratus());
    let want = expected(&cfg, &t, &union);
    let out = t.path("siem.jsonl");
    let run = Consumer::spawn_env(
        &cfg,
        m.port,
        None,
        &["--output", &out.display().to_string()],
        &[(
            "AWS_ENDPOINT_URL_S3",
            format!("http://127.0.0.1:{}", m.port),
        )],
    );
    wait_until(&out, "the window filled", |a| !filled(a).is_empty());
    std::thread::sleep(Duration::from_millis(1000));
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    let got = lines_of_file(&out);
    let ids = event_alert_ids(&got);
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(ids.len(), want.len());
    let reason = filled(&got)[0]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains(&format!(": {} events,", archived.len())),
        "{reason}"
    );
}

/// A worker that claimed a window and died during backfill (here its archive never answers,
/// then `kill -9`): once its claim's heartbeat is older than twice the lease duration, another
/// worker takes the claim over and fills the window, and the claim is marked filled.
#[test]
fn a_window_claimed_by_a_worker_that_died_is_taken_over_and_filled() {
    let k = start_kinesalite();
    let m = start_moto();
    let t = Tmp::new();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "org", 1));
    let created = now();
    let archived = redated(created - 2 * 86_400, 1);
    write_archive(&t.path("archive"), &archived);
    rt.block_on(put(&c, "org", &stratus(), 0));
    // An S3 endpoint that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let cfg = |who: &str, source: &str| {
        t.write(
            &format!("{who}.toml"),
            format!(
                "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"org\"\nstart = \"at_timestamp:{}\"\npoll_interval = \"100ms\"\ndiscovery_interval = \"1s\"\n\n[checkpoint]\nkind = \"dynamodb\"\ntable = \"claims\"\nlease_duration = \"2s\"\npath = \"{}\"\ninterval = \"200ms\"\n\n[backfill]\nsource = \"{source}\"\n",
                rfc3339(created - 3 * 86_400),
                t.path(&format!("state-{who}/state.json")).display(),
            ),
        )
    };
    let cfg_a = cfg("a", "s3://archive/AWSLogs/");
    let cfg_b = cfg("b", &t.path("archive").display().to_string());
    let (out_a, out_b) = (t.path("a.jsonl"), t.path("b.jsonl"));
    let mut a = Consumer::spawn_env(
        &cfg_a,
        k.port,
        Some(m.port),
        &["--worker-id", "a", "--output", &out_a.display().to_string()],
        &[(
            "AWS_ENDPOINT_URL_S3",
            format!("http://127.0.0.1:{silent_port}"),
        )],
    );
    let db = dynamodb(m.port);
    let claim = || {
        rt.block_on(async {
            let items = db
                .scan()
                .table_name("claims")
                .consistent_read(true)
                .send()
                .await
                .map(|r| r.items().to_vec())
                .unwrap_or_default();
            items.into_iter().find(|i| {
                i.get("leaseKey")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|k| k.starts_with("backfill#"))
            })
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while claim().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "a never claimed the window"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let union = union(&archived, stratus());
    let want = expected(&cfg_b, &t, &union);
    let b = Consumer::spawn(
        &cfg_b,
        k.port,
        Some(m.port),
        &["--worker-id", "b", "--output", &out_b.display().to_string()],
    );
    let got_b = wait_until(&out_b, "b fills the window", |got| !filled(got).is_empty());
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(b.stop().0, 0);
    let got = [lines_of_file(&out_a), lines_of_file(&out_b)].concat();
    assert_eq!(
        event_alert_ids(&got).into_iter().collect::<BTreeSet<_>>(),
        want,
        "every alert of the stream and the archive"
    );
    let f = filled(&got_b);
    assert_eq!(f.len(), 1);
    assert!(
        f[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{} events", archived.len())),
        "the whole window read by b: {}",
        f[0]["reason"]
    );
    let item = claim().unwrap();
    assert_eq!(item["claimedBy"].as_s().unwrap(), "b");
    assert_eq!(
        item.get("filled").and_then(|v| v.as_bool().ok()),
        Some(&true)
    );
}
