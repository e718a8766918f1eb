//! `backtest` over archives of several weeks: the walk in day (or hour) windows gives the
//! same output whatever the windows, the jobs and the partitions; memory does not grow with
//! the archive's length; a window whose listing fails is said by prefix and the run is
//! incomplete.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::archive::{self, Archive, ACCOUNTS};
use crate::common::emu::*;
use crate::common::proxy::{self, Proxy};
use crate::common::*;
use serde_json::Value;

const NEW: &str = "[policy]\napproved_regions = [\"us-east-1\"]\n";

fn backtest(cfg: &Path, args: &[&str], archive: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .arg("backtest")
        .arg("--config")
        .arg(cfg)
        .args(args)
        .arg(archive)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn weeks_of_archive_read_the_same_by_days_by_hours_on_any_jobs_and_in_partitions() {
    let t = Tmp::new();
    let a = Archive::weeks(21);
    a.write(&t.path("archive"));
    let cfg = t.config(NEW);
    let run = |name: &str, extra: &[&str]| {
        let (report, alerts) = (
            t.path(&format!("{name}.json")),
            t.path(&format!("{name}.jsonl")),
        );
        let mut args: Vec<&str> = extra.to_vec();
        let (r, al) = (report.to_str().unwrap(), alerts.to_str().unwrap());
        args.extend(["--report", r, "--alerts", al]);
        backtest(&cfg, &args, &t.path("archive"));
        (
            std::fs::read(&report).unwrap(),
            std::fs::read(&alerts).unwrap(),
        )
    };
    let days = run("days", &["--jobs", "1"]);
    let r: Value = serde_json::from_slice(&days.0).unwrap();
    assert_eq!(r["input"]["events"], a.events() as u64, "{}", r["input"]);
    assert!(r["totals"]["alerts"].as_u64().unwrap() > 0);
    // Nine folder-days a day and a window of 8 objects: every day is read by hours.
    let hours = run("hours", &["--jobs", "1", "--window-objects", "8"]);
    assert!(
        days.0 == hours.0,
        "report: day windows and hour windows differ"
    );
    assert!(
        days.1 == hours.1,
        "alerts: day windows and hour windows differ"
    );
    let two = run("two", &["--jobs", "2"]);
    assert!(days.0 == two.0 && days.1 == two.1, "--jobs 2 differs");

    // Three partitions merged: the one run, byte for byte.
    let mut parts = Vec::new();
    for i in 0..3 {
        let name = format!("p{i}");
        run(&name, &["--partition", &format!("{i}/3")]);
        parts.push(t.path(&format!("{name}.json")));
    }
    let merged = t.path("merged.json");
    let parts: Vec<&Path> = parts.iter().map(|p| p.as_path()).collect();
    archive::merge(&parts, &merged);
    let whole = run("whole", &[]).0;
    // The merged report states the partitions' scope, which names no partition either.
    let (m, w): (Value, Value) = (
        serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap(),
        serde_json::from_slice(&whole).unwrap(),
    );
    assert_eq!(m["input"], w["input"]);
    assert_eq!(m["totals"], w["totals"]);
    assert_eq!(std::fs::read(&merged).unwrap(), whole, "byte for byte");
}

/// A small archive of `days` days: 10 accounts, 2 regions, a file an hour, one read-only
/// record each (so nothing but the walk grows with the length).
fn tiny_archive(dir: &Path, days: usize) -> usize {
    let start = time::macros::date!(2026 - 03 - 02);
    let mut n = 0;
    for d in 0..days {
        let day = start + time::Duration::days(d as i64);
        let (y, m, dd) = (day.year(), day.month() as u8, day.day());
        for a in 0..10 {
            let acct = format!("1000000000{a:02}");
            for region in ["us-east-1", "eu-west-1"] {
                let folder = dir.join(format!(
                    "AWSLogs/{}/{acct}/CloudTrail/{region}/{y}/{m:02}/{dd:02}",
                    archive::ORG
                ));
                std::fs::create_dir_all(&folder).unwrap();
                for h in 0..24 {
                    let rec = serde_json::json!({"Records": [{
                        "eventVersion": "1.08", "eventID": format!("{acct}-{region}-{day}-{h}"),
                        "eventTime": format!("{day}T{h:02}:01:00Z"), "eventName": "DescribeInstances",
                        "eventSource": "ec2.amazonaws.com", "readOnly": true, "awsRegion": region,
                        "recipientAccountId": acct, "eventType": "AwsApiCall",
                        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::{acct}:user/ci")}
                    }]});
                    let name =
                        format!("{acct}_CloudTrail_{region}_{y}{m:02}{dd:02}T{h:02}05Z_x.json.gz");
                    std::fs::write(folder.join(name), gz(rec.to_string().as_bytes())).unwrap();
                    n += 1;
                }
            }
        }
    }
    n
}

/// Runs a backtest and reads its peak RSS (`VmHWM`) from /proc while it runs, in KiB.
fn peak_rss(cfg: &Path, archive: &Path) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .arg("backtest")
        .arg("--config")
        .arg(cfg)
        .args(["--jobs", "1"])
        .arg(archive)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let started = Instant::now();
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status) {
            let hwm = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "backtest failed");
            return peak;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "backtest took too long"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn memory_does_not_grow_with_the_archives_length() {
    let t = Tmp::new();
    let cfg = t.config(NEW);
    let short = tiny_archive(&t.path("short"), 3);
    let long = tiny_archive(&t.path("long"), 36);
    let (s, l) = (
        peak_rss(&cfg, &t.path("short")),
        peak_rss(&cfg, &t.path("long")),
    );
    eprintln!("peak RSS: {short} objects {s} KiB, {long} objects {l} KiB");
    // Holding the whole list cost about 800 bytes an object: 12,960 more objects were
    // 10 MiB more. A day's window is 480 objects.
    assert!(
        l < s + 3 * 1024,
        "{long} objects peaked at {l} KiB against {s} KiB for {short}"
    );
}

#[test]
fn a_window_that_cannot_be_listed_is_said_by_prefix_and_the_run_is_incomplete() {
    let moto = start_moto();
    let a = Archive::build();
    let c = archive::s3(moto.port);
    rt().block_on(archive::upload(&c, "org-trail", "trail/", &a.files));
    let denied = format!(
        "trail/AWSLogs/{}/{}/CloudTrail/eu-west-1/2026/09/02/",
        archive::ORG,
        ACCOUNTS[2]
    );
    let d = denied.clone();
    let proxy = Proxy::start(moto.port, move |method, path| {
        let listing = method == "GET" && path.contains("list-type=");
        (listing && proxy::query(path, "prefix").as_deref() == Some(d.as_str())).then_some(403)
    });
    let t = Tmp::new();
    let cfg = t.config(NEW);
    let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .arg("backtest")
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", proxy.port),
        )
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "2")
        .arg("--config")
        .arg(&cfg)
        .arg("--report")
        .arg(t.path("r.json"))
        .arg("s3://org-trail/trail/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("cannot list s3://org-trail/{denied}")),
        "{err}"
    );
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("r.json")).unwrap()).unwrap();
    assert_eq!(r["complete"], false);
    let unlisted = r["input"]["unlisted"].as_array().unwrap();
    assert_eq!(unlisted.len(), 1, "{unlisted:?}");
    assert_eq!(unlisted[0]["key"], format!("s3://org-trail/{denied}"));
    let per_file = a.events() / a.logs().count();
    assert_eq!(
        r["input"]["events"],
        (a.events() - archive::STAMPS.len() * per_file) as u64,
        "every other window read"
    );
}
