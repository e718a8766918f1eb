//! Helpers for the CLI integration tests: running the binary, temp inputs and configs, the
//! fixture records, and every envelope trailwatch reads, built from those real records.

#![allow(dead_code)]

pub mod archive;
pub mod aws_calls;
pub mod emu;
pub mod http;
pub mod proxy;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Running the binary

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `trailwatch ARGS` with an empty stdin.
pub fn run<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_with_stdin(args, b"")
}

/// Runs `trailwatch ARGS` with `stdin` piped in.
pub fn run_with_stdin<I, S>(args: I, stdin: &[u8]) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(args)
        // Quiet, colourless logs: only the summary and errors matter to the tests.
        .env("TRAILWATCH_LOG", "error")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trailwatch");
    {
        let mut input = child.stdin.take().unwrap();
        // The binary may exit before reading everything (e.g. bad config): ignore EPIPE.
        let _ = input.write_all(stdin);
    }
    let out = child.wait_with_output().expect("wait for trailwatch");
    Out {
        code: out
            .status
            .code()
            .expect("trailwatch was killed by a signal (crash?)"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `trailwatch replay --config CONFIG INPUTS...`
pub fn replay<P: AsRef<Path>>(config: &Path, inputs: &[P]) -> Out {
    let mut args: Vec<String> = vec!["replay".into(), "--config".into(), s(config)];
    args.extend(inputs.iter().map(|p| s(p.as_ref())));
    run(args)
}

/// `trailwatch replay --config CONFIG --dead-letter DL INPUTS...`
pub fn replay_dl<P: AsRef<Path>>(config: &Path, dead_letter: &Path, inputs: &[P]) -> Out {
    let mut args: Vec<String> = vec![
        "replay".into(),
        "--config".into(),
        s(config),
        "--dead-letter".into(),
        s(dead_letter),
    ];
    args.extend(inputs.iter().map(|p| s(p.as_ref())));
    run(args)
}

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

impl Out {
    /// Every stdout line parsed as a JSON object (an alert); panics on anything else.
    pub fn alerts(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:.300}"));
                assert!(v.is_object(), "alert is not an object: {l:.300}");
                v
            })
            .collect()
    }

    /// The event ids of the alerts, asserting none is repeated.
    pub fn alert_ids(&self) -> BTreeSet<String> {
        let alerts = self.alerts();
        let ids: Vec<String> = alerts
            .iter()
            .map(|a| {
                a["event_id"]
                    .as_str()
                    .expect("alert without event_id")
                    .to_string()
            })
            .collect();
        let set: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(set.len(), ids.len(), "an event alerted twice: {ids:?}");
        set
    }

    /// The `trailwatch replay:` summary line, parsed.
    pub fn summary(&self) -> Summary {
        Summary::parse(&self.stderr)
    }

    /// A one-screen description for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "exit {}\n--- stdout ({} lines) ---\n{:.2000}\n--- stderr ---\n{:.4000}",
            self.code,
            self.stdout.lines().count(),
            self.stdout,
            self.stderr
        )
    }
}

/// The counts of the replay summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub inputs: u64,
    pub records: u64,
    pub events: u64,
    pub duplicates: u64,
    pub alerts: u64,
    pub dead_letters: u64,
    pub control_messages: u64,
    pub skipped: u64,
    pub digests: u64,
}

impl Summary {
    pub fn parse(stderr: &str) -> Summary {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("trailwatch replay:"))
            .unwrap_or_else(|| panic!("no `trailwatch replay:` summary on stderr:\n{stderr}"));
        let mut sum = Summary::default();
        let mut seen = 0;
        for part in line["trailwatch replay:".len()..].split(',') {
            let part = part.trim();
            let Some((n, label)) = part.split_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            let slot = match label {
                "inputs" => &mut sum.inputs,
                "records" => &mut sum.records,
                "events" => &mut sum.events,
                "duplicates" => &mut sum.duplicates,
                "alerts" => &mut sum.alerts,
                "dead letters" => &mut sum.dead_letters,
                "control messages" => &mut sum.control_messages,
                "skipped" => &mut sum.skipped,
                "digest files skipped" => &mut sum.digests,
                _ => continue,
            };
            *slot = n;
            seen += 1;
        }
        assert_eq!(seen, 9, "summary line does not have the 9 counts: {line}");
        sum
    }
}

/// The Lambda handler for a config file, on its own runtime (two workers, as in Lambda).
pub fn lambda_handler(
    cfg: &Path,
    drop_non_matching: bool,
) -> (tokio::runtime::Runtime, trailwatch::road::lambda::Lambda) {
    use trailwatch::build::{engine, Options, OutputChoice};
    let config = trailwatch::config::load(cfg, 0).unwrap().config;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let output = OutputChoice::configured(&config, None);
    let options = Options::live(output, trailwatch::clock::now_secs());
    let e = rt.block_on(engine(&config, options)).unwrap();
    let l = trailwatch::road::lambda::Lambda::new(e, drop_non_matching);
    (rt, l)
}

// ---------------------------------------------------------------------------------------------
// Temp files and configs

/// A temp directory that names files relative to itself.
pub struct Tmp {
    pub dir: tempfile::TempDir,
}

impl Tmp {
    pub fn new() -> Self {
        Tmp {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `data` to `rel` (creating parent directories) and returns its path.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }

    /// Writes a config file.
    pub fn config(&self, text: &str) -> PathBuf {
        self.write("trailwatch.toml", text)
    }

    /// Writes the standard test config (only us-east-1 approved).
    pub fn test_config(&self) -> PathBuf {
        self.config(TEST_CONFIG)
    }

    /// The dead-letter file's lines, parsed (empty when it was never created).
    pub fn dead_letters(&self, p: &Path) -> Vec<Value> {
        match std::fs::read_to_string(p) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).expect("dead-letter line is JSON"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Only us-east-1 is approved, for every account. Under it, a fixture record alerts exactly
/// when `readOnly` is false and its region is not us-east-1 (see [`expected_alerts`]).
pub const TEST_CONFIG: &str = r#"
[policy]
approved_regions = ["us-east-1"]
"#;

// ---------------------------------------------------------------------------------------------
// Fixture records

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

pub fn lines_of(name: &str) -> Vec<String> {
    fixture(name)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The 20 Stratus Red Team records, each exactly as its fixture line (compact JSON).
pub fn stratus() -> Vec<String> {
    lines_of("stratus_sample.jsonl")
}

/// `n` copies of the Stratus records, each with its own eventID (so each alerts on its own).
pub fn many_records(n: usize) -> Vec<String> {
    let base = stratus();
    (0..n)
        .flat_map(|i| {
            base.iter().enumerate().map(move |(j, line)| {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                v["eventID"] = format!("00000000-0000-4000-8000-{i:06}{j:06}").into();
                v.to_string()
            })
        })
        .collect()
}

/// The 10 OTRF records (all us-east-1, no `readOnly`).
pub fn otrf() -> Vec<String> {
    lines_of("otrf_sample.jsonl")
}

/// All 30 fixture records.
pub fn all_records() -> Vec<String> {
    let mut v = stratus();
    v.extend(otrf());
    v
}

/// The Stratus records that alert under [`TEST_CONFIG`]: every `readOnly:false` one (all are in
/// fake, hence unapproved, regions). Pinned here so the [`expected_alerts`] predicate is checked.
pub const STRATUS_ALERTING: [&str; 14] = [
    "c64c4ded-ef03-4e5c-81eb-153b118d72f2",
    "ee73c230-44bc-4492-8542-cfb189eae287",
    "10163ed2-2253-469d-a5ee-cbc6651f8934",
    "ded2f5af-f3a5-46d2-a170-a23206a32c36",
    "d373b5dd-6a82-439d-bdcf-4e6c7c7a9292",
    "131c198f-7042-4c88-be71-545471d55f4c",
    "1f00bcfa-e050-4c2e-b99b-768ebe3a3dd3",
    "083dc4ad-e264-46bc-a407-d0dd31b58bdc",
    "64fb98c9-cb40-4f9a-b800-6c15e82e9be6",
    "b67a9bba-d9da-4980-bf74-baed881b117d",
    "16903cbd-fdff-4818-82f2-d66ad09aaf57",
    "865d9377-9c6b-4fd7-8aad-725e95f6a140",
    "a46a1a42-9ef1-48d4-9c61-507eb6d4019f",
    "8452e2fb-1252-460b-8f58-d3f5333c2630",
];

pub fn parse(rec: &str) -> Value {
    serde_json::from_str(rec).expect("fixture record is JSON")
}

pub fn id_of(rec: &str) -> String {
    parse(rec)["eventID"].as_str().unwrap().to_string()
}

pub fn ids<S: AsRef<str>>(recs: &[S]) -> BTreeSet<String> {
    recs.iter().map(|r| id_of(r.as_ref())).collect()
}

/// The event ids [`TEST_CONFIG`] alerts on among `recs` (none of the fixtures is an
/// AwsServiceEvent, and none of the Stratus ones is in us-east-1, the global region).
pub fn expected_alerts<S: AsRef<str>>(recs: &[S]) -> BTreeSet<String> {
    recs.iter()
        .map(|r| parse(r.as_ref()))
        .filter(|v| v["readOnly"] == json!(false) && v["awsRegion"] != json!("us-east-1"))
        .map(|v| v["eventID"].as_str().unwrap().to_string())
        .collect()
}

pub fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The fixture record with this event id.
pub fn record(event_id: &str) -> String {
    all_records()
        .into_iter()
        .find(|r| id_of(r) == event_id)
        .unwrap_or_else(|| panic!("no fixture record {event_id}"))
}

/// A copy of a record with top-level fields replaced (re-serialised compactly).
pub fn with_fields(rec: &str, fields: Value) -> String {
    let mut v = parse(rec);
    for (k, val) in fields.as_object().unwrap() {
        v[k] = val.clone();
    }
    serde_json::to_string(&v).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Envelopes

pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn b64_decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

/// JSON lines: one record per line, with a trailing newline.
pub fn jsonl<S: AsRef<str>>(recs: &[S]) -> String {
    let mut out = String::new();
    for r in recs {
        out.push_str(r.as_ref());
        out.push('\n');
    }
    out
}

fn values<S: AsRef<str>>(recs: &[S]) -> Vec<Value> {
    recs.iter().map(|r| parse(r.as_ref())).collect()
}

/// An S3 log file `{"Records":[...]}` (compact, as CloudTrail writes it).
pub fn s3_logfile<S: AsRef<str>>(recs: &[S]) -> String {
    json!({ "Records": values(recs) }).to_string()
}

/// A CloudWatch Logs subscription DATA_MESSAGE whose `logEvents[].message` are the records.
pub fn cwl_data<S: AsRef<str>>(recs: &[S]) -> String {
    let events: Vec<Value> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "id": format!("3719505869385672600000000000000000000000000000000000000{i}"),
                "timestamp": 1722513810000u64 + i as u64,
                "message": r.as_ref(),
            })
        })
        .collect();
    json!({
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": "aws-cloudtrail-logs-org",
        "logStream": "111122223333_CloudTrail_us-east-1",
        "subscriptionFilters": ["to-kinesis"],
        "logEvents": events,
    })
    .to_string()
}

/// A CloudWatch Logs CONTROL_MESSAGE (the subscription's reachability probe).
pub fn cwl_control() -> String {
    json!({
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{
            "id": "",
            "timestamp": 1722513810000u64,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."
        }],
    })
    .to_string()
}

/// An EventBridge event carrying a CloudTrail record in `detail`.
pub fn eventbridge(rec: &str) -> String {
    let v = parse(rec);
    json!({
        "version": "0",
        "id": format!("eb-{}", v["eventID"].as_str().unwrap_or("x")),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{}", v["eventSource"].as_str().unwrap_or("x").trim_end_matches(".amazonaws.com")),
        "account": v["recipientAccountId"],
        "time": v["eventTime"],
        "region": v["awsRegion"],
        "resources": [],
        "detail": v,
    })
    .to_string()
}

/// A KPL aggregate of the records (one partition key per record).
pub fn kpl<S: AsRef<str>>(recs: &[S]) -> Vec<u8> {
    let keys: Vec<String> = (0..recs.len()).map(|i| format!("pk-{i}")).collect();
    let pairs: Vec<(&str, &[u8])> = keys
        .iter()
        .zip(recs)
        .map(|(k, r)| (k.as_str(), r.as_ref().as_bytes()))
        .collect();
    trailwatch::decode::kpl::aggregate(&pairs)
}

/// `aws kinesis get-records` output (pretty-printed, as the CLI prints it); `datas` are the
/// raw record payloads, base64'd here.
pub fn get_records(datas: &[Vec<u8>]) -> String {
    let records: Vec<Value> = datas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "SequenceNumber": format!("4959000000000000000000000000000000000000000000000000{i:04}"),
                "ApproximateArrivalTimestamp": "2024-08-01T12:04:20.000000+00:00",
                "Data": b64(d),
                "PartitionKey": "p",
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "Records": records,
        "NextShardIterator": "AAAAAAAAAAE=",
        "MillisBehindLatest": 0,
    }))
    .unwrap()
}

/// A Lambda event from a Kinesis trigger.
pub fn lambda_kinesis(datas: &[Vec<u8>]) -> String {
    let records: Vec<Value> = datas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "p",
                    "sequenceNumber": format!("4959100000000000000000000000000000000000000000000000{i:04}"),
                    "data": b64(d),
                    "approximateArrivalTimestamp": 1722513860.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:4959100000000000000{i}"),
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// A Firehose HTTP endpoint delivery request body.
pub fn firehose_http(datas: &[Vec<u8>]) -> String {
    let records: Vec<Value> = datas.iter().map(|d| json!({ "data": b64(d) })).collect();
    json!({ "requestId": "r", "timestamp": 1, "records": records }).to_string()
}

/// A Firehose data-transformation Lambda event.
pub fn firehose_transform(datas: &[Vec<u8>]) -> String {
    let records: Vec<Value> = datas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "recordId": format!("x{i}"),
                "approximateArrivalTimestamp": 1722513860000u64,
                "data": b64(d),
            })
        })
        .collect();
    json!({
        "invocationId": "i",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:111122223333:deliverystream/ct",
        "region": "us-east-1",
        "records": records,
    })
    .to_string()
}

/// The keys every alert carries (`event` only with --include-event).
pub const ALERT_FIELDS: [&str; 21] = [
    "alert_id",
    "rule",
    "severity",
    "event_id",
    "event_time",
    "account",
    "account_name",
    "ou",
    "region",
    "principal",
    "principal_type",
    "event_source",
    "event_name",
    "event_type",
    "read_only",
    "source_ip",
    "user_agent",
    "error_code",
    "reason",
    "approved_regions",
    "policy_level",
];

/// The lines a child writes (its stdout), as they come, on a channel.
pub fn stdout_lines(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    lines
}
