//! Issue 32: first-seen pairs shared by several workers through DynamoDB (moto's server).
//! Two `trailwatch run` workers, each on its own stream (kinesalite), share `[baseline]
//! table`: the same new pair seen by both at once raises one alert; a third worker with no
//! state of its own knows the key's history and the pairs the fleet has seen.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::emu::*;
use crate::common::*;
use serde_json::Value;

const DAY: i64 = 86_400;
/// Day 0 of the records: midnight UTC 60 days ago (recent, so nothing is forgotten by now:
/// the shared table's time to live works on the wall clock).
fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        now - now.rem_euclid(DAY) - 60 * DAY
    })
}
const ACCOUNT: &str = "111122223333";

/// The fixture's first IAM-user write (christophe, Stratus Red Team), re-timed to `day` and
/// re-placed in `region`; `n` makes its event id unique.
fn record(region: &str, day: i64, n: usize) -> String {
    let mut v: Value = stratus()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["userIdentity"]["type"] == "IAMUser" && v["readOnly"] == false)
        .unwrap();
    v["userIdentity"]["accountId"] = ACCOUNT.into();
    v["userIdentity"]["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/christophe").into();
    v["recipientAccountId"] = ACCOUNT.into();
    v["awsRegion"] = region.into();
    let t = time::OffsetDateTime::from_unix_timestamp(t0() + day * DAY).unwrap();
    v["eventTime"] = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .into();
    v["eventID"] = format!("fs-{region}-{day}-{n}").into();
    v.to_string()
}

fn config(t: &Tmp, who: &str, stream: &str) -> PathBuf {
    t.write(
        &format!("{who}.toml"),
        format!(
            "[policy]\napproved_regions = [\"us-east-1\", \"eu-west-1\", \"ap-southeast-2\", \"sa-east-1\"]\n\n\
             [source.kinesis]\nstream = \"{stream}\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\n\n\
             [checkpoint]\npath = \"{}\"\ninterval = \"200ms\"\n\n\
             [[first_seen]]\nname = \"region-for-principal\"\nkey = [\"principal\"]\nvalue = [\"region\"]\nlearn_for = \"10d\"\n\n\
             [baseline]\ntable = \"fs-baseline\"\n",
            t.path(&format!("state-{who}/cp.json")).display()
        ),
    )
}

/// The first-seen alerts written so far: (region, event id).
fn first_seen(out: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|a| a["first_seen"].is_object())
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("region"), s("event_id"))
        })
        .collect()
}

fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How many records of `stream` a worker has checkpointed past: its state file's shard
/// position is the last record's sequence number once it has read them all.
fn read_all(state: &Path, last_sequence: &str) -> bool {
    std::fs::read_to_string(state)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .is_some_and(|v| {
            v["shards"]
                .as_object()
                .is_some_and(|m| m.values().any(|s| s["sequence_number"] == last_sequence))
        })
}

async fn put_one(c: &aws_sdk_kinesis::Client, stream: &str, r: &str) -> String {
    let data = gz(cwl_data(&[r]).as_bytes());
    c.put_record()
        .stream_name(stream)
        .data(aws_sdk_kinesis::primitives::Blob::new(data))
        .partition_key("one")
        .send()
        .await
        .unwrap()
        .sequence_number()
        .to_string()
}

#[test]
fn workers_sharing_the_baseline_table_raise_a_new_pair_once_and_share_history() {
    let k = start_kinesalite();
    let m = start_moto();
    let t = Tmp::new();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(async {
        create_stream(&c, "org-a", 1).await;
        create_stream(&c, "org-b", 1).await;
    });
    let (cfg_a, cfg_b) = (config(&t, "a", "org-a"), config(&t, "b", "org-b"));
    let (out_a, out_b) = (t.path("a.jsonl"), t.path("b.jsonl"));
    let spawn = |cfg: &Path, out: &Path| {
        Consumer::spawn(
            cfg,
            k.port,
            Some(m.port),
            &["--output", &out.display().to_string()],
        )
    };
    let a = spawn(&cfg_a, &out_a);
    let b = spawn(&cfg_b, &out_b);
    // History: us-east-1 on day 0 (both), eu-west-1 on day 1 (a only). Each worker alone
    // would take ap-southeast-2 on day 20 as new to a key that has learnt.
    let (last_a, last_b) = rt.block_on(async {
        put_one(&c, "org-a", &record("us-east-1", 0, 0)).await;
        let b = put_one(&c, "org-b", &record("us-east-1", 0, 5)).await;
        (put_one(&c, "org-a", &record("eu-west-1", 1, 0)).await, b)
    });
    wait_for("both read their history", || {
        read_all(&t.path("state-a/cp.json"), &last_a)
            && read_all(&t.path("state-b/cp.json"), &last_b)
    });
    assert!(first_seen(&out_a).is_empty(), "learning: nothing yet");
    // The same new pair reaches both workers at once.
    let (new_a, new_b) = (
        record("ap-southeast-2", 20, 1),
        record("ap-southeast-2", 20, 2),
    );
    let (last_a, last_b) = rt.block_on(async {
        tokio::join!(put_one(&c, "org-a", &new_a), put_one(&c, "org-b", &new_b))
    });
    wait_for("both read the new pair", || {
        read_all(&t.path("state-a/cp.json"), &last_a)
            && read_all(&t.path("state-b/cp.json"), &last_b)
    });
    let both: Vec<_> = [first_seen(&out_a), first_seen(&out_b)].concat();
    assert_eq!(both.len(), 1, "one alert for the fleet: {both:?}");
    assert_eq!(both[0].0, "ap-southeast-2");
    assert_eq!(a.stop().0, 0);
    assert_eq!(b.stop().0, 0);
    // A third worker with no state of its own, on b's stream read again from its start: it
    // learns nothing alone, but the table knows the key since day 0 and its pairs.
    let cfg_c = config(&t, "c", "org-b");
    let out_c = t.path("c.jsonl");
    let last = rt.block_on(async {
        put_one(&c, "org-b", &record("sa-east-1", 22, 3)).await;
        put_one(&c, "org-b", &record("eu-west-1", 23, 4)).await
    });
    let run = spawn(&cfg_c, &out_c);
    wait_for("c read b's stream", || {
        read_all(&t.path("state-c/cp.json"), &last)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(run.stop().0, 0);
    let got: BTreeSet<_> = first_seen(&out_c).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        got,
        BTreeSet::from(["sa-east-1".to_string()]),
        "sa-east-1 is new to the fleet and the key has a history there; ap-southeast-2 and eu-west-1 were seen by the fleet"
    );
    // The table holds the key's first event and each pair.
    let db = dynamodb(m.port);
    let items = rt.block_on(async {
        db.scan()
            .table_name("fs-baseline")
            .send()
            .await
            .unwrap()
            .items()
            .to_vec()
    });
    let since: Vec<i64> = items
        .iter()
        .filter(|i| i["pk"].as_s().unwrap().starts_with('k'))
        .map(|i| i["since"].as_n().unwrap().parse().unwrap())
        .collect();
    assert_eq!(since, vec![t0()], "the key's first event, day 0");
    let pairs = items
        .iter()
        .filter(|i| i["pk"].as_s().unwrap().starts_with('p'))
        .count();
    assert_eq!(pairs, 4, "us-east-1, eu-west-1, ap-southeast-2, sa-east-1");
}

/// The shared table goes away while the worker runs: a pair new to the worker alerts as the
/// worker alone decides (its key has learnt here), and the fallback is counted and logged.
#[test]
fn without_the_shared_table_a_worker_decides_alone_and_says_so() {
    let k = start_kinesalite();
    let mut m = start_moto();
    let t = Tmp::new();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "org-a", 1));
    let cfg = config(&t, "a", "org-a");
    let out = t.path("a.jsonl");
    let mport = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maddr = format!("127.0.0.1:{mport}");
    let run = Consumer::spawn(
        &cfg,
        k.port,
        Some(m.port),
        &[
            "--output",
            &out.display().to_string(),
            "--metrics-addr",
            &maddr,
        ],
    );
    let last = rt.block_on(put_one(&c, "org-a", &record("us-east-1", 0, 0)));
    wait_for("the history is read", || {
        read_all(&t.path("state-a/cp.json"), &last)
    });
    m.kill();
    let last = rt.block_on(put_one(&c, "org-a", &record("ap-southeast-2", 20, 1)));
    wait_for("the new pair is read", || {
        read_all(&t.path("state-a/cp.json"), &last)
    });
    let (_, body) = http_get(mport, "/metrics");
    assert_eq!(run.stop().0, 0);
    let got = first_seen(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "ap-southeast-2");
    let errors: f64 = body
        .lines()
        .filter(|l| l.starts_with("trailwatch_first_seen_shared_total") && l.contains("error"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(errors >= 1.0, "the fallback is counted:\n{body}");
}

/// `baseline seed` from the organization trail's archive in moto's S3, into `run`'s state
/// file; then the live stream: the seeded pair raises nothing, and a new region alerts at
/// once (the key's history came from the archive: no learning period).
#[test]
fn a_baseline_seeded_from_an_s3_archive_works_on_day_one() {
    seeded_then_live(false);
}

/// The same, seeded into the shared table (`[baseline] table`) that the live worker uses.
#[test]
fn a_baseline_seeded_into_the_shared_table_works_on_day_one() {
    seeded_then_live(true);
}

fn seeded_then_live(table: bool) {
    let k = start_kinesalite();
    let m = start_moto();
    let t = Tmp::new();
    let rt = rt();
    // The archive: the user in us-east-1 on day 0 and eu-west-1 on day 5, as CloudTrail
    // delivers them to S3.
    let files: Vec<(String, Vec<u8>)> = [("us-east-1", 0i64), ("eu-west-1", 5)]
        .iter()
        .enumerate()
        .map(|(i, (region, day))| {
            let day_text = time::OffsetDateTime::from_unix_timestamp(t0() + day * DAY)
                .unwrap()
                .date()
                .to_string();
            let key = crate::common::archive::key(ACCOUNT, region, &day_text, "0100", i);
            let body = s3_logfile(&[record(region, *day, 10 + i)]);
            (key, gz(body.as_bytes()))
        })
        .collect();
    rt.block_on(crate::common::archive::upload(
        &crate::common::archive::s3(m.port),
        "org-trail",
        "",
        &files,
    ));
    let cfg = t.write(
        "seed.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\", \"eu-west-1\", \"ap-southeast-2\"]\n\n\
             [source.kinesis]\nstream = \"org\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\n\n\
             [checkpoint]\npath = \"{}\"\ninterval = \"200ms\"\n\n\
             [[first_seen]]\nname = \"region-for-principal\"\nkey = [\"principal\"]\nvalue = [\"region\"]\nlearn_for = \"10d\"\n{}",
            t.path("state/cp.json").display(),
            if table { "\n[baseline]\ntable = \"fs-seeded\"\n" } else { "" }
        ),
    );
    let seed = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["baseline", "seed", "--config", &cfg.display().to_string()])
        .arg("s3://org-trail/AWSLogs/")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", m.port))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&seed.stderr);
    assert_eq!(seed.status.code(), Some(0), "{said}");
    let into = if table {
        "table fs-seeded"
    } else {
        "state file"
    };
    assert!(
        said.contains(&format!(
            "2 events read; 1 keys and 2 pairs written to the {into}"
        )),
        "{said}"
    );
    let c = client(k.port);
    rt.block_on(create_stream(&c, "org", 1));
    let last = rt.block_on(async {
        put_one(&c, "org", &record("eu-west-1", 30, 20)).await;
        put_one(&c, "org", &record("ap-southeast-2", 31, 21)).await
    });
    let out = t.path("out.jsonl");
    let run = Consumer::spawn(
        &cfg,
        k.port,
        table.then_some(m.port),
        &["--output", &out.display().to_string()],
    );
    wait_for("the live events are read", || {
        read_all(&t.path("state/cp.json"), &last)
    });
    assert_eq!(run.stop().0, 0);
    let got: Vec<String> = first_seen(&out).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        got,
        vec!["ap-southeast-2".to_string()],
        "the seeded pair is quiet; the new region alerts (a month of history, from the archive)"
    );
}

/// `backtest` evaluates first-seen rules with a baseline built as the archive is read: what
/// a rule would have raised, before it is enabled; it never touches the shared table.
#[test]
fn backtest_raises_what_a_first_seen_rule_would_have() {
    let t = Tmp::new();
    let archive = t.path("archive");
    for (i, (region, day)) in [
        ("us-east-1", 0i64),
        ("eu-west-1", 3),
        ("ap-southeast-2", 20),
    ]
    .iter()
    .enumerate()
    {
        let day_text = time::OffsetDateTime::from_unix_timestamp(t0() + day * DAY)
            .unwrap()
            .date()
            .to_string();
        let key = crate::common::archive::key(ACCOUNT, region, &day_text, "0100", i);
        let path = archive.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let body = s3_logfile(&[record(region, *day, 30 + i)]);
        std::fs::write(path, gz(body.as_bytes())).unwrap();
    }
    let cfg = t.write(
        "bt.toml",
        "[policy]\napproved_regions = [\"us-east-1\", \"eu-west-1\", \"ap-southeast-2\"]\n\n\
         [[first_seen]]\nname = \"region-for-principal\"\nkey = [\"principal\"]\nvalue = [\"region\"]\nlearn_for = \"10d\"\n\n\
         [baseline]\ntable = \"never-touched\"\n",
    );
    let alerts = t.path("alerts.jsonl");
    // No AWS endpoint or credentials here: a backtest that called the table would fail.
    let (cfg, alerts_arg) = (cfg.display().to_string(), alerts.display().to_string());
    let out = run([
        "backtest",
        "--config",
        &cfg,
        "--alerts",
        &alerts_arg,
        &archive.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got: Vec<(String, String)> = std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["alert"].clone())
        .filter(|a| a["first_seen"].is_object())
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("rule"), s("region"))
        })
        .collect();
    assert_eq!(
        got,
        vec![(
            "first-seen:region-for-principal".to_string(),
            "ap-southeast-2".to_string()
        )],
        "eu-west-1 on day 3 was still learning; ap-southeast-2 on day 20 is new"
    );
}
