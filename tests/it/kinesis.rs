//! `trailwatch run` against a real Kinesis API: kinesalite (npm), started here on a free port
//! (`scripts/test` installs it into `.emu/`; `TRAILWATCH_KINESALITE` points elsewhere). The
//! test drives the stream with the real aws-sdk-kinesis client and the consumer is the
//! binary itself, pointed at the emulator with `AWS_ENDPOINT_URL_KINESIS`.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::emu::*;
use crate::common::http::read_http;
use crate::common::*;
use serde_json::Value;

fn config(t: &Tmp, stream: &str) -> PathBuf {
    t.write(
        "run.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"{stream}\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\ndiscovery_interval = \"1s\"\n\n[checkpoint]\npath = \"{}\"\ninterval = \"500ms\"\n",
            t.path("state/checkpoints.json").display()
        ),
    )
}

#[test]
fn four_shards_every_alert_once_and_restarts_resume() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let cfg = config(&t, "org");
    let recs = stratus();
    let (first, second) = recs.split_at(12);
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "org", 4));
    rt.block_on(put(&c, "org", first, 0));
    let want_first = expected(&cfg, &t, first);
    assert!(!want_first.is_empty());

    let mport = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maddr = format!("127.0.0.1:{mport}");
    let run = Consumer::start_with(&cfg, k.port, &["--metrics-addr", &maddr]);
    let got = run.collect(want_first.len(), Duration::from_secs(30));
    // Metrics and health while it runs.
    let (status, body) = http_get(mport, "/metrics");
    assert_eq!(status, 200, "{body}");
    for m in [
        "trailwatch_records_total",
        "trailwatch_events_total",
        "trailwatch_alerts_total{rule=\"unapproved-region\"}",
        "trailwatch_shards_owned",
        "trailwatch_event_to_alert_seconds_bucket",
    ] {
        assert!(body.contains(m), "/metrics lacks {m}:\n{body}");
    }
    assert_eq!(http_get(mport, "/healthz").0, 200);
    assert_eq!(http_get(mport, "/readyz").0, 200);
    // The container health check: the binary itself.
    let health = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .arg("health")
            .args(args)
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(health(&[&maddr]), Some(0));
    assert_eq!(health(&[&maddr, "--ready"]), Some(0));
    assert_eq!(health(&[&format!("127.0.0.1:{}", free_port())]), Some(1));
    let (code, extra) = run.stop();
    assert_eq!(code, 0, "graceful shutdown exits 0");
    let mut all: Vec<String> = got.into_iter().chain(extra).collect();
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), want_first);
    assert_eq!(all.len(), want_first.len(), "each alert exactly once");

    // The checkpoint holds all four shards.
    let cp: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("state/checkpoints.json")).unwrap())
            .unwrap();
    assert_eq!(cp["stream"], "org");
    // The dedup ids are in the id log beside it, not in its JSON.
    assert!(cp["pipeline"].get("event_ids").is_none(), "{cp}");
    assert!(cp["ids"]["entries"].as_u64().is_some_and(|n| n > 0), "{cp}");
    let log = t.path(&format!(
        "state/checkpoints.json.ids.{}",
        cp["ids"]["generation"]
    ));
    assert!(std::fs::metadata(&log).is_ok_and(|m| m.len() >= cp["ids"]["len"].as_u64().unwrap()));

    // Restart: nothing old again; new records alert once.
    rt.block_on(put(&c, "org", second, 100));
    let want_second = expected(&cfg, &t, second);
    let run = Consumer::start(&cfg, k.port);
    let got = run.collect(want_second.len(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500)); // a few more polls: nothing else may come
    let (code, extra) = run.stop();
    assert_eq!(code, 0);
    let second_run: Vec<String> = got.into_iter().chain(extra).collect();
    assert_eq!(
        second_run.iter().cloned().collect::<BTreeSet<_>>(),
        want_second,
        "only the new records alert"
    );
    assert_eq!(second_run.len(), want_second.len());
    all.extend(second_run);
    assert_eq!(
        all.len(),
        all.iter().collect::<BTreeSet<_>>().len(),
        "no alert twice across the restart"
    );
}

#[test]
fn a_split_shard_is_drained_before_its_children() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let cfg = config(&t, "split");
    let recs = stratus();
    let (before, after) = recs.split_at(10);
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "split", 1));
    rt.block_on(put(&c, "split", before, 0));
    let run = Consumer::start(&cfg, k.port);
    let want_before = expected(&cfg, &t, before);
    let mut got = run.collect(want_before.len(), Duration::from_secs(30));
    // Split the only shard at the middle of the hash range, then write to the children.
    rt.block_on(async {
        c.split_shard()
            .stream_name("split")
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("170141183460469231731687303715884105728")
            .send()
            .await
            .unwrap();
        wait_active(&c, "split").await;
    });
    rt.block_on(put(&c, "split", after, 100));
    let want_all: BTreeSet<String> = want_before
        .iter()
        .cloned()
        .chain(expected(&cfg, &t, after))
        .collect();
    got.extend(run.collect(want_all.len() - got.len(), Duration::from_secs(30)));
    let (code, extra) = run.stop();
    assert_eq!(code, 0);
    got.extend(extra);
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<_>>(),
        want_all,
        "no loss across the split"
    );
    assert_eq!(got.len(), want_all.len(), "no alert twice");
    let cp: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("state/checkpoints.json")).unwrap())
            .unwrap();
    assert_eq!(
        cp["shards"]["shardId-000000000000"]["finished"], true,
        "the parent is marked finished: {cp}"
    );
    let children = cp["shards"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "shardId-000000000000")
        .count();
    assert_eq!(children, 2, "both children were read: {cp}");
}

/// `kill -9` long before any checkpoint: the restart reads back what was written and writes
/// nothing twice; a torn last line is cut.
#[test]
fn kill_9_mid_stream_loses_nothing_and_repeats_nothing() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let cfg = t.write(
        "run.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"crash\"\npoll_interval = \"100ms\"\n\n[checkpoint]\npath = \"{}\"\ninterval = \"1h\"\n",
            t.path("state/cp.json").display()
        ),
    );
    let out = t.path("siem.jsonl");
    let out_arg = out.display().to_string();
    let recs = stratus();
    let (first, second) = recs.split_at(12);
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "crash", 2));
    rt.block_on(put(&c, "crash", first, 0));
    let want_first = expected(&cfg, &t, first);

    let mut run = Consumer::start_with(&cfg, k.port, &["--output", &out_arg]);
    wait_for_lines(&out, want_first.len());
    run.child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    run.child.wait().unwrap();
    // The only checkpoint so far (at start-up) covers none of the alerts written.
    let covered = std::fs::read_to_string(t.path("state/cp.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["output_len"].as_u64())
        .unwrap_or(0);
    assert!(
        covered < std::fs::metadata(&out).unwrap().len(),
        "the crash came before a checkpoint covered the alerts"
    );
    // A write torn by the crash.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"alert_id\":\"torn"))
        .unwrap();

    rt.block_on(put(&c, "crash", second, 100));
    let want: BTreeSet<String> = want_first
        .iter()
        .cloned()
        .chain(expected(&cfg, &t, second))
        .collect();
    let run = Consumer::start_with(&cfg, k.port, &["--output", &out_arg]);
    wait_for_lines(&out, want.len());
    std::thread::sleep(Duration::from_millis(1500)); // more polls: nothing else may come
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    let ids = alert_ids_in(&out);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "no alert lost"
    );
    assert_eq!(ids.len(), want.len(), "no alert written twice");
}

/// A small HTTP/1.1 proxy in front of kinesalite that answers some GetRecords calls with
/// ProvisionedThroughputExceededException or ExpiredIteratorException instead of forwarding.
struct FaultProxy {
    port: u16,
    injected: std::sync::Arc<std::sync::Mutex<(usize, usize)>>,
}

impl FaultProxy {
    fn start(upstream: u16) -> FaultProxy {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let injected = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize)));
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let inj = injected.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (inj, counter) = (inj.clone(), counter.clone());
                std::thread::spawn(move || {
                    let mut client = conn;
                    while let Some((request, head)) = read_http(&mut client) {
                        let get_records = head
                            .to_ascii_lowercase()
                            .contains("x-amz-target: kinesis_20131202.getrecords");
                        let n = if get_records {
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                        } else {
                            usize::MAX
                        };
                        let fault = match n % 7 {
                            _ if n == usize::MAX => None,
                            2 => Some("ProvisionedThroughputExceededException"),
                            5 => Some("ExpiredIteratorException"),
                            _ => None,
                        };
                        let response = match fault {
                            Some(kind) => {
                                let mut i = inj.lock().unwrap();
                                if kind.starts_with("Provisioned") {
                                    i.0 += 1
                                } else {
                                    i.1 += 1
                                }
                                let body = format!("{{\"__type\":\"{kind}\",\"message\":\"injected by the test\"}}");
                                format!("HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: test\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
                            }
                            None => {
                                let Ok(mut up) =
                                    std::net::TcpStream::connect(("127.0.0.1", upstream))
                                else {
                                    return;
                                };
                                if up.write_all(&request).is_err() {
                                    return;
                                }
                                match read_http(&mut up) {
                                    Some((resp, _)) => resp,
                                    None => return,
                                }
                            }
                        };
                        if client.write_all(&response).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FaultProxy { port, injected }
    }
}

/// Throttling and expired iterators, injected between the SDK and the emulator: the consumer
/// backs off, recreates iterators from its checkpoint, and loses and repeats nothing.
#[test]
fn recovers_from_throttling_and_expired_iterators() {
    let k = start_kinesalite();
    let proxy = FaultProxy::start(k.port);
    let t = Tmp::new();
    let cfg = config(&t, "faults");
    let recs = stratus();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "faults", 2));
    // Records arrive while the consumer runs, so it keeps calling GetRecords.
    let want = expected(&cfg, &t, &recs);
    let run = Consumer::start_with(&cfg, proxy.port, &[]);
    for (i, chunk) in recs.chunks(4).enumerate() {
        rt.block_on(put(&c, "faults", chunk, i * 10));
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut got = run.collect(want.len(), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1000));
    let (code, extra) = run.stop();
    got.extend(extra);
    assert_eq!(code, 0);
    let (throttled, expired) = *proxy.injected.lock().unwrap();
    assert!(
        throttled > 0 && expired > 0,
        "faults injected: {throttled} throttling, {expired} expired"
    );
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "no loss"
    );
    assert_eq!(got.len(), want.len(), "no repeats");
}

/// A checkpoint inside a KPL aggregate (sequence number + sub-sequence): the restart reads that
/// record again and delivers only the sub-records after the checkpoint; then the checkpoint
/// moves past the whole record.
#[test]
fn a_restart_inside_a_kpl_aggregate_neither_loses_nor_repeats_sub_records() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let cfg = config(&t, "kpl");
    let recs: Vec<String> = stratus().into_iter().take(8).collect();
    let (done, todo) = recs.split_at(4);
    assert!(
        !expected(&cfg, &t, done).is_empty(),
        "the done sub-records would alert if read again"
    );
    let want = expected(&cfg, &t, todo);
    assert!(!want.is_empty());
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "kpl", 1));
    let seq = rt.block_on(async {
        c.put_record()
            .stream_name("kpl")
            .data(aws_sdk_kinesis::primitives::Blob::new(kpl(&recs)))
            .partition_key("agg")
            .send()
            .await
            .unwrap()
            .sequence_number()
            .to_string()
    });
    // Sub-records 0..=3 of that aggregate were delivered before the restart.
    std::fs::create_dir_all(t.path("state")).unwrap();
    std::fs::write(
        t.path("state/checkpoints.json"),
        serde_json::json!({"stream": "kpl", "shards": {"shardId-000000000000":
            {"sequence_number": seq, "sub_sequence": 3, "finished": false}}})
        .to_string(),
    )
    .unwrap();
    let run = Consumer::start(&cfg, k.port);
    let mut got = run.collect(want.len(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500)); // more polls: nothing else may come
    let (code, extra) = run.stop();
    assert_eq!(code, 0);
    got.extend(extra);
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(got.len(), want.len());
    let cp: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("state/checkpoints.json")).unwrap())
            .unwrap();
    let shard = &cp["shards"]["shardId-000000000000"];
    assert_eq!(shard["sequence_number"], seq.as_str());
    assert!(
        shard["sub_sequence"].is_null(),
        "the whole record is done: {shard}"
    );
}

/// A Sigma correlation's window is state like the dedup ids: kept in the checkpoint, so a
/// window that two events opened before a restart is completed by a third after it.
#[test]
fn a_correlation_window_survives_a_restart_in_the_checkpoint() {
    let k = start_kinesalite();
    let t = Tmp::new();
    t.write(
        "rules/burst.yml",
        "title: Listing\nname: listing\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName|startswith: List\n  condition: sel\n---\ntitle: A burst of listing\ncorrelation:\n  type: event_count\n  rules: [listing]\n  group-by: [userIdentity.arn]\n  timespan: 10m\n  condition: {gte: 3}\nlevel: high\n",
    );
    let base = config(&t, "corr");
    let cfg = t.write(
        "run.toml",
        format!(
            "sigma_rules = [\"{}\"]\n{}",
            t.path("rules").display(),
            std::fs::read_to_string(&base).unwrap()
        ),
    );
    let listing = |id: &str, sec: u32| {
        let mut v: Value = serde_json::from_str(&stratus()[0]).unwrap();
        v["eventID"] = id.into();
        v["eventName"] = "ListUsers".into();
        v["eventTime"] = format!("2024-03-01T00:0{}:00Z", sec).into();
        v["awsRegion"] = "us-east-1".into();
        v["readOnly"] = true.into();
        v["userIdentity"]["arn"] = "arn:aws:iam::111122223333:user/mallory".into();
        v.to_string()
    };
    // Something that alerts on its own, to know the first run has read everything.
    let marker: String = stratus()
        .into_iter()
        .find(|r| expected_alerts(&[r.as_str()]).len() == 1)
        .unwrap();
    let first = vec![listing("l1", 1), listing("l2", 2), marker.clone()];
    let third = vec![listing("l3", 3)];
    let all: Vec<String> = first.iter().chain(&third).cloned().collect();
    let want_all = expected(&cfg, &t, &all);
    let want_first = expected(&cfg, &t, &first);
    let correlation: BTreeSet<String> = want_all.difference(&want_first).cloned().collect();
    assert_eq!(
        correlation.len(),
        1,
        "replay: the third listing completes the window"
    );

    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "corr", 1));
    rt.block_on(put(&c, "corr", &first, 0));
    let run = Consumer::start(&cfg, k.port);
    let got = run.collect(want_first.len(), Duration::from_secs(30));
    let (code, extra) = run.stop();
    assert_eq!(code, 0);
    let got: BTreeSet<String> = got.into_iter().chain(extra).collect();
    assert_eq!(got, want_first, "two listings are not a burst yet");
    let cp: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("state/checkpoints.json")).unwrap())
            .unwrap();
    let groups = &cp["pipeline"]["correlation"]["rules"][0]["groups"];
    assert_eq!(
        groups[0][0], "arn:aws:iam::111122223333:user/mallory",
        "{cp}"
    );
    assert_eq!(groups[0][1].as_array().map(Vec::len), Some(2), "{cp}");

    rt.block_on(put(&c, "corr", &third, 10));
    let mport = free_port();
    let run = Consumer::start_with(
        &cfg,
        k.port,
        &["--metrics-addr", &format!("127.0.0.1:{mport}")],
    );
    let got = run.collect(1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    let (_, body) = http_get(mport, "/metrics");
    assert!(
        body.contains("trailwatch_sigma_correlation_total{what=\"fired\"} 1"),
        "{body}"
    );
    let (code, extra) = run.stop();
    assert_eq!(code, 0);
    let got: BTreeSet<String> = got.into_iter().chain(extra).collect();
    assert_eq!(
        got, correlation,
        "the restored window, completed by the third"
    );
}

/// Issue 28, item 7: a missing state file is said at start; a saved position Kinesis refuses
/// (valid JSON, unusable sequence number) becomes an ERROR that says what to do after 5 tries
/// (it was a WARN repeated for ever), and `run --reset-shard` forgets it.
#[test]
fn an_unusable_saved_position_is_an_error_that_says_what_to_do() {
    use std::process::{Command, Stdio};
    let k = start_kinesalite();
    let t = Tmp::new();
    let cfg = config(&t, "reset");
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "reset", 1));
    let recs = stratus();
    rt.block_on(put(&c, "reset", &recs[..10], 0));
    let log = t.path("run.log");
    let mport = free_port();
    let spawn = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args([
                "run",
                "--config",
                &s(&cfg),
                "--metrics-addr",
                &format!("127.0.0.1:{mport}"),
            ])
            .args(extra)
            .env(
                "AWS_ENDPOINT_URL_KINESIS",
                format!("http://127.0.0.1:{}", k.port),
            )
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("TRAILWATCH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap()
    };
    let stop = |mut child: std::process::Child| {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().unwrap()
    };
    // First start: no state file, said; it reads and checkpoints.
    let child = spawn(&[]);
    let state = t.path("state/checkpoints.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("sequence_number\":\"")) {
        assert!(std::time::Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stop(child).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("no state file: every shard starts from `start`"),
        "{text}"
    );
    // A position of the right shape that the shard never had.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let shard = v["shards"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    v["shards"][&shard]["sequence_number"] =
        "49000000000000000000000000000000000000000000000000000000".into();
    std::fs::write(&state, v.to_string()).unwrap();
    let child = spawn(&[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("Kinesis keeps refusing to read this shard from its saved position") {
            assert!(
                text.contains(&format!("trailwatch run --reset-shard {shard}")),
                "{text}"
            );
            assert!(text.contains("ERROR"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ERROR after 60 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(stop(child).success());
    // --reset-shard forgets it: the shard is read again, and new records alert.
    rt.block_on(put(&c, "reset", &recs[10..], 10));
    let want = expected(&cfg, &t, &recs[10..]);
    let run = Consumer::start_with(&cfg, k.port, &["--reset-shard", &shard]);
    let got = run.collect(want.len(), Duration::from_secs(30));
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    let (code, _) = run.stop();
    assert_eq!(code, 0);
}
