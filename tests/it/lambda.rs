//! Issue 7, Lambda mode: the handler invoked with `aws_lambda_events` events built from real
//! records (a Kinesis event source mapping batch, a Firehose transformation), delivering to a
//! webhook served here. A spool that cannot be written makes the batch fail from the first
//! record whose alerts were not accepted; the retry delivers them, once.

use std::collections::BTreeSet;

use crate::common::emu::expected;
use crate::common::http::Server;
use crate::common::*;
use aws_lambda_events::event::firehose::{KinesisFirehoseEvent, KinesisFirehoseEventRecord};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use serde_json::{json, Value};

fn kinesis_event(datas: &[Vec<u8>], first_seq: u64) -> Value {
    let mut ev = KinesisEvent::default();
    for (i, d) in datas.iter().enumerate() {
        let mut r = KinesisEventRecord::default();
        r.event_source = Some("aws:kinesis".into());
        r.event_source_arn =
            Some("arn:aws:kinesis:us-east-1:111122223333:stream/org-cloudtrail".into());
        r.kinesis.sequence_number = format!("{}", first_seq + i as u64);
        r.kinesis.partition_key = format!("pk-{i}");
        *r.kinesis.data = d.clone();
        ev.records.push(r);
    }
    serde_json::to_value(&ev).unwrap()
}

fn config(t: &Tmp, hook: &Server) -> std::path::PathBuf {
    t.write(
        "lambda.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[delivery]\nstate_dir = \"{}\"\naccept_within = \"300ms\"\nbackoff_initial = \"50ms\"\n\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            t.path("state").display(),
            hook.url("/in")
        ),
    )
}

#[test]
fn kinesis_batches_alert_dead_letter_and_fail_partially_from_the_first_unaccepted_record() {
    let t = Tmp::new();
    let hook = Server::start();
    let cfg = config(&t, &hook);
    let recs = stratus();
    let (a, b) = recs.split_at(10);
    let (rt, mut l) = lambda_handler(&cfg, false);

    // A batch with a bad record in the middle: no failure, every alert delivered.
    let mut datas: Vec<Vec<u8>> = a.iter().map(|r| gz(cwl_data(&[r]).as_bytes())).collect();
    datas.insert(3, b"\x1f\x8b\x08\x00 not gzip".to_vec());
    let resp = rt.block_on(l.handle(kinesis_event(&datas, 1000))).unwrap();
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let want_a = expected(&cfg, &t, a);
    assert_eq!(
        hook.webhook_alert_ids()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        want_a
    );

    // The webhook is down and the spool cannot be written: nothing can be accepted.
    hook.down();
    let spool = t.path("state/spool/hook");
    std::fs::remove_dir_all(&spool).unwrap();
    std::fs::write(&spool, b"not a directory").unwrap();
    let datas: Vec<Vec<u8>> = b.iter().map(|r| gz(cwl_data(&[r]).as_bytes())).collect();
    let event = kinesis_event(&datas, 2000);
    let resp = rt.block_on(l.handle(event.clone())).unwrap();
    let failures = resp["batchItemFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{resp}");
    let first_with_alerts = b
        .iter()
        .position(|r| !expected(&cfg, &t, std::slice::from_ref(r)).is_empty())
        .unwrap();
    assert_eq!(
        failures[0]["itemIdentifier"],
        (2000 + first_with_alerts as u64).to_string(),
        "Lambda retries from the first record whose alerts were not accepted"
    );

    // The retry (same records) after the sink and the disk recover: each alert once.
    std::fs::remove_file(&spool).unwrap();
    hook.up();
    let resp = rt.block_on(l.handle(event)).unwrap();
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let got = hook.webhook_alert_ids();
    let want: BTreeSet<String> = want_a.into_iter().chain(expected(&cfg, &t, b)).collect();
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "none lost"
    );
    assert_eq!(got.len(), want.len(), "none twice");
    rt.block_on(l.close());
}

#[test]
fn firehose_transformation_returns_every_record_once_with_its_result() {
    let t = Tmp::new();
    let hook = Server::start();
    let cfg = config(&t, &hook);
    let recs = stratus();
    let alerting = recs
        .iter()
        .find(|r| !expected(&cfg, &t, std::slice::from_ref(*r)).is_empty())
        .unwrap()
        .clone();
    let quiet = with_fields(
        &recs[1],
        json!({"eventID": "quiet-1", "readOnly": true, "eventName": "DescribeInstances"}),
    );
    let bad = b"\x1f\x8b\x08\x00 broken".to_vec();
    let datas = [
        gz(cwl_data(&[&alerting]).as_bytes()),
        gz(cwl_data(&[&quiet]).as_bytes()),
        bad.clone(),
    ];
    let mut ev = KinesisFirehoseEvent::default();
    ev.invocation_id = Some("inv-1".into());
    ev.delivery_stream_arn =
        Some("arn:aws:firehose:us-east-1:111122223333:deliverystream/ct".into());
    for (i, d) in datas.iter().enumerate() {
        let mut r = KinesisFirehoseEventRecord::default();
        r.record_id = Some(format!("rec-{i}"));
        *r.data = d.clone();
        ev.records.push(r);
    }
    let event = serde_json::to_value(&ev).unwrap();
    for drop in [false, true] {
        let (rt, mut l) = lambda_handler(&cfg, drop);
        let resp = rt.block_on(l.handle(event.clone())).unwrap();
        let out = resp["records"].as_array().unwrap();
        assert_eq!(out.len(), 3, "every recordId once");
        let by_id = |id: &str| out.iter().find(|r| r["recordId"] == id).unwrap().clone();
        assert_eq!(by_id("rec-0")["result"], "Ok");
        assert_eq!(
            by_id("rec-0")["data"],
            b64(&datas[0]),
            "passed through unchanged"
        );
        if drop {
            assert_eq!(by_id("rec-1")["result"], "Dropped");
            assert_eq!(by_id("rec-1")["data"], "");
        } else {
            assert_eq!(by_id("rec-1")["result"], "Ok");
            assert_eq!(by_id("rec-1")["data"], b64(&datas[1]));
        }
        assert_eq!(by_id("rec-2")["result"], "ProcessingFailed");
        assert_eq!(by_id("rec-2")["data"], b64(&bad), "the original data");
        rt.block_on(l.close());
    }
    let want = expected(&cfg, &t, &[alerting]);
    let got = hook.webhook_alert_ids();
    // The second handler shares the first one's state dir (as a restarted environment does):
    // its sink's delivered-ids journal knows the alert went out, so it is not sent again.
    assert_eq!(
        got.len(),
        1,
        "the alert once, though both handlers raised it"
    );
    assert!(got.iter().all(|g| want.contains(g)));
    let unknown = {
        let (rt, mut l) = lambda_handler(&cfg, false);
        let r = rt.block_on(l.handle(json!({"hello": "world"})));
        rt.block_on(l.close());
        r
    };
    assert!(unknown.is_err());
}

/// The binary under a Lambda Runtime API (served here, as Lambda serves it to `bootstrap`):
/// started with no arguments it is the function; it takes a Kinesis event and a Firehose
/// transformation event from `invocation/next` and posts each response.
#[test]
fn the_binary_is_a_lambda_function_under_the_runtime_api() {
    use std::sync::{Arc, Mutex};
    let t = Tmp::new();
    let recs = stratus();
    let datas: Vec<Vec<u8>> = recs[..6]
        .iter()
        .map(|r| gz(cwl_data(&[r]).as_bytes()))
        .collect();
    let mut fh = KinesisFirehoseEvent::default();
    for (i, d) in datas.iter().enumerate().take(2) {
        let mut r = KinesisFirehoseEventRecord::default();
        r.record_id = Some(format!("fh-{i}"));
        *r.data = d.clone();
        fh.records.push(r);
    }
    let events = Arc::new(Mutex::new(vec![
        (
            "inv-kinesis".to_string(),
            kinesis_event(&datas, 500).to_string(),
        ),
        (
            "inv-firehose".to_string(),
            serde_json::to_string(&fh).unwrap(),
        ),
    ]));
    let api = Server::start_full(move |r| {
        if r.method == "GET" && r.path.ends_with("/runtime/invocation/next") {
            let next = {
                let mut e = events.lock().unwrap();
                (!e.is_empty()).then(|| e.remove(0))
            };
            let Some((id, body)) = next else {
                std::thread::sleep(std::time::Duration::from_secs(30)); // no more work
                return (500, vec![], String::new());
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 60_000;
            let headers = vec![
                ("lambda-runtime-aws-request-id".to_string(), id),
                (
                    "lambda-runtime-deadline-ms".to_string(),
                    deadline.to_string(),
                ),
                (
                    "lambda-runtime-invoked-function-arn".to_string(),
                    "arn:aws:lambda:us-east-1:111122223333:function:trailwatch".to_string(),
                ),
                ("content-type".to_string(), "application/json".to_string()),
            ];
            return (200, headers, body);
        }
        (202, vec![], "{}".to_string())
    });
    let config = "[policy]\napproved_regions = [\"us-east-1\"]\n";
    let cfg = t.write("fn.toml", config);
    let want = expected(&cfg, &t, &recs[..6]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", api.port))
        .env("AWS_LAMBDA_FUNCTION_NAME", "trailwatch")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/trailwatch")
        .env("TRAILWATCH_CONFIG", config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    let responses = || -> Vec<(String, Value)> {
        api.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/response"))
            .map(|r| (r.path.clone(), r.json()))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while responses().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "responses: {:?}",
            api.requests()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = responses();
    assert!(r[0].0.contains("/runtime/invocation/inv-kinesis/response"));
    assert_eq!(r[0].1, json!({"batchItemFailures": []}));
    assert!(r[1].0.contains("/runtime/invocation/inv-firehose/response"));
    let recs_out = r[1].1["records"].as_array().unwrap();
    assert_eq!(recs_out.len(), 2);
    assert!(recs_out.iter().all(|x| x["result"] == "Ok"));
    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut out = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let got: BTreeSet<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["alert_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        got, want,
        "no sinks: the SIEM feed on stdout (CloudWatch Logs)"
    );
}
