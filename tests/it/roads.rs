//! Issue 11, one engine behind every road: the same records (each a gzip'd CloudWatch Logs
//! envelope of one real record) go through `replay --deliver`, `run` (kinesalite), `serve`
//! (HTTP) and the Lambda handler, each into a native file sink with the record
//! (`include_event = true`) and an OCSF file sink. Every road writes the same items, and every
//! item carries its CloudTrail record. (Neither format holds a delivery time: OCSF `time` is
//! the event's, so the items compare whole.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::emu::*;
use crate::common::*;
use serde_json::{json, Value};

/// The roads' shared config: two file sinks on the siem stream, plus `extra` (the source).
fn config(t: &Tmp, extra: &str) -> PathBuf {
    t.write(
        "road.toml",
        format!(
            r#"[policy]
approved_regions = ["us-east-1"]

[checkpoint]
path = "{state}/state.json"
interval = "500ms"

[delivery]
state_dir = "{state}"

[[sinks]]
name = "native"
type = "file"
path = "{native}"
include_event = true

[[sinks]]
name = "ocsf"
type = "file"
path = "{ocsf}"
format = "ocsf"

[[routes]]
stream = "siem"
sinks = ["native", "ocsf"]
{extra}"#,
            state = t.path("state").display(),
            native = t.path("native.jsonl").display(),
            ocsf = t.path("ocsf.jsonl").display(),
        ),
    )
}

/// A file sink's lines by alert id (each once).
fn items(path: &Path, id: fn(&Value) -> &Value) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:.200}: {e}"));
        let key = id(&v).as_str().expect("an alert id").to_string();
        assert!(
            out.insert(key, v).is_none(),
            "an item twice in {}",
            path.display()
        );
    }
    out
}

fn native(t: &Tmp) -> BTreeMap<String, Value> {
    items(&t.path("native.jsonl"), |v| &v["alert_id"])
}

fn ocsf(t: &Tmp) -> BTreeMap<String, Value> {
    items(&t.path("ocsf.jsonl"), |v| &v["unmapped"]["alert_id"])
}

fn datas(recs: &[String]) -> Vec<Vec<u8>> {
    recs.iter().map(|r| gz(cwl_data(&[r]).as_bytes())).collect()
}

fn replay_road(recs: &[String]) -> Tmp {
    let t = Tmp::new();
    let cfg = config(&t, "");
    let input = t.write("get-records.json", get_records(&datas(recs)));
    let out = run(["replay", "--config", &s(&cfg), "--deliver", &s(&input)]);
    assert_eq!(out.code, 0, "{}", out.show());
    t
}

fn run_road(recs: &[String], want: usize) -> Tmp {
    let k = start_kinesalite();
    let t = Tmp::new();
    let cfg = config(
        &t,
        "\n[source.kinesis]\nstream = \"roads\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\ndiscovery_interval = \"1s\"\n",
    );
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "roads", 2));
    rt.block_on(put(&c, "roads", recs, 0));
    let consumer = Consumer::start(&cfg, k.port);
    let count = |f: &str| {
        std::fs::read_to_string(t.path(f))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while count("native.jsonl") < want || count("ocsf.jsonl") < want {
        assert!(Instant::now() < deadline, "run wrote too few items");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _) = consumer.stop();
    assert_eq!(code, 0, "graceful shutdown");
    t
}

fn serve_road(recs: &[String]) -> Tmp {
    let t = Tmp::new();
    let port = free_port();
    let cfg = config(
        &t,
        &format!("\n[source.firehose]\nlisten = \"127.0.0.1:{port}\"\naccess_keys_env = \"TW_ROAD_KEYS\"\n"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["serve", "--config", &s(&cfg)])
        .env("TW_ROAD_KEYS", "road-key")
        .env("TRAILWATCH_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let records: Vec<Value> = datas(recs)
        .iter()
        .map(|d| json!({"data": b64(d)}))
        .collect();
    let body =
        json!({"requestId": "road-1", "timestamp": 1_722_513_860_000i64, "records": records});
    let status = rt().block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/"))
            .header("x-amz-firehose-request-id", "road-1")
            .header("x-amz-firehose-access-key", "road-key")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200, "answered once every alert is in the sinks");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    t
}

fn lambda_road(recs: &[String]) -> Tmp {
    let t = Tmp::new();
    let (rt, mut l) = lambda_handler(&config(&t, ""), false);
    let event: Value = serde_json::from_str(&lambda_kinesis(&datas(recs))).unwrap();
    let resp = rt.block_on(l.handle(event)).unwrap();
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    rt.block_on(l.close());
    t
}

#[test]
fn every_road_writes_the_same_items_and_each_carries_its_record() {
    let recs = stratus();
    let want = expected_alerts(&recs);
    assert_eq!(want.len(), STRATUS_ALERTING.len());
    let by_event: BTreeMap<String, Value> = recs.iter().map(|r| (id_of(r), parse(r))).collect();

    let roads = [
        ("replay --deliver", replay_road(&recs)),
        ("run", run_road(&recs, want.len())),
        ("serve", serve_road(&recs)),
        ("lambda", lambda_road(&recs)),
    ];
    let (first, reference) = (&roads[0].0, &roads[0].1);
    let (want_native, want_ocsf) = (native(reference), ocsf(reference));
    // The reference road is right: one item per alerting event, with its record.
    assert_eq!(
        want_native
            .values()
            .map(|a| a["event_id"].as_str().unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>(),
        want
    );
    for a in want_native.values() {
        let id = a["event_id"].as_str().unwrap();
        assert_eq!(
            a["event"], by_event[id],
            "native `event` is the record of {id}"
        );
    }
    for f in want_ocsf.values() {
        let id = f["finding_info"]["related_events"][0]["uid"]
            .as_str()
            .unwrap();
        assert_eq!(
            f["evidences"][0]["data"], by_event[id],
            "OCSF evidence is the record of {id}"
        );
    }
    assert_eq!(want_ocsf.len(), want_native.len());
    for (road, t) in &roads[1..] {
        same(
            &native(t),
            &want_native,
            &format!("native items of `{road}` and `{first}`"),
        );
        same(
            &ocsf(t),
            &want_ocsf,
            &format!("OCSF items of `{road}` and `{first}`"),
        );
    }
}

/// The same items by id, field by field; a difference names the item and the field.
fn same(got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: different alert ids"
    );
    for (id, w) in want {
        let g = &got[id];
        for (k, wv) in w.as_object().unwrap() {
            assert_eq!(g.get(k), Some(wv), "{what}: alert {id} differs in `{k}`");
        }
        for k in g.as_object().unwrap().keys() {
            assert!(w.get(k).is_some(), "{what}: alert {id} has an extra `{k}`");
        }
    }
}
