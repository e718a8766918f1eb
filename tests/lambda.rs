//! Issue 7, Lambda mode: the handler invoked with `aws_lambda_events` events built from real
//! records (a Kinesis event source mapping batch, a Firehose transformation), delivering to a
//! webhook served here. A spool that cannot be written makes the batch fail from the first
//! record whose alerts were not accepted; the retry delivers them, once.

mod common;

use std::collections::BTreeSet;

use aws_lambda_events::event::firehose::{KinesisFirehoseEvent, KinesisFirehoseEventRecord};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use common::emu::expected;
use common::http::Server;
use common::*;
use serde_json::{json, Value};
use trailwatch::source::lambda::Lambda;

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

fn lambda(cfg: &std::path::Path, drop_non_matching: bool) -> (tokio::runtime::Runtime, Lambda) {
    let config = trailwatch::config::load(cfg, 0).unwrap().config;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = rt
        .block_on(trailwatch::sink::build::dispatcher(&config))
        .unwrap();
    let l = Lambda::new(&config, d, drop_non_matching);
    (rt, l)
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

fn delivered(hook: &Server) -> Vec<String> {
    hook.accepted()
        .iter()
        .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
        .map(|v| v["alert_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kinesis_batches_alert_dead_letter_and_fail_partially_from_the_first_unaccepted_record() {
    let t = Tmp::new();
    let hook = Server::start();
    let cfg = config(&t, &hook);
    let recs = stratus();
    let (a, b) = recs.split_at(10);
    let (rt, mut l) = lambda(&cfg, false);

    // A batch with a bad record in the middle: no failure, every alert delivered.
    let mut datas: Vec<Vec<u8>> = a.iter().map(|r| gz(cwl_data(&[r]).as_bytes())).collect();
    datas.insert(3, b"\x1f\x8b\x08\x00 not gzip".to_vec());
    let resp = rt.block_on(l.handle(kinesis_event(&datas, 1000))).unwrap();
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let want_a = expected(&cfg, &t, a);
    assert_eq!(
        delivered(&hook).into_iter().collect::<BTreeSet<_>>(),
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
    let got = delivered(&hook);
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
        let (rt, mut l) = lambda(&cfg, drop);
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
    let got = delivered(&hook);
    assert_eq!(got.len(), 2, "one alert per invocation (two environments)");
    assert!(got.iter().all(|g| want.contains(g)));
    let unknown = {
        let (rt, mut l) = lambda(&cfg, false);
        let r = rt.block_on(l.handle(json!({"hello": "world"})));
        rt.block_on(l.close());
        r
    };
    assert!(unknown.is_err());
}
