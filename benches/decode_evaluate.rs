//! Decode + dedup + evaluate, per envelope type, on the bundled real records
//! (tests/fixtures: Stratus Red Team and OTRF, re-homed to unapproved regions so a share alert).
//!
//! `cargo bench --bench decode_evaluate`; throughput is in events per second.

use std::io::Write;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flate2::{write::GzEncoder, Compression};
use trailwatch::config::load_str;
use trailwatch::decode::{kpl, DeadLetter, Decoder, Position, Visit};
use trailwatch::event::Event;
use trailwatch::pipeline::Pipeline;
use trailwatch::rules::custom::RuleSet;
use trailwatch::rules::RegionPolicy;

const CONFIG: &str = r#"
[policy]
approved_regions = ["us-east-1", "us-west-2"]
[policy.accounts."111122223333"]
approved_regions = ["eu-west-1"]
"#;

/// Real records, each given a fresh eventID so dedup does not short-cut them.
fn records(n: usize) -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let mut base = Vec::new();
    for f in ["stratus_sample.jsonl", "otrf_sample.jsonl"] {
        let text = std::fs::read_to_string(format!("{dir}{f}")).expect("fixture");
        base.extend(text.lines().map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["awsRegion"] = "us-east-1".into();
            v
        }));
    }
    (0..n)
        .map(|i| {
            let mut v = base[i % base.len()].clone();
            v["eventID"] = format!("bench-{i:08}").into();
            if i % 20 == 0 {
                v["awsRegion"] = "ap-southeast-3".into(); // 5% off-policy
            }
            v.to_string()
        })
        .collect()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::new(6));
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn cwl(records: &[String]) -> Vec<u8> {
    let events: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 1, "message": m}))
        .collect();
    let env = serde_json::json!({"messageType":"DATA_MESSAGE","owner":"111122223333",
        "logGroup":"org","logStream":"s","subscriptionFilters":["f"],"logEvents":events});
    gz(env.to_string().as_bytes())
}

struct Run {
    pipeline: Pipeline,
    alerts: Vec<trailwatch::alert::Alert>,
    events: usize,
    out: Vec<u8>,
}

impl Visit for Run {
    fn event(&mut self, ev: Event<'_>, _pos: &Position) {
        self.events += 1;
        let now = ev.time_secs().unwrap_or(0);
        self.pipeline.process(&ev, now, &mut self.alerts);
        for a in self.alerts.drain(..) {
            serde_json::to_writer(&mut self.out, &a).expect("write");
        }
    }
    fn dead_letter(&mut self, dead: DeadLetter) {
        panic!("bench input must decode: {}", dead.reason);
    }
}

fn bench(c: &mut Criterion) {
    let config = load_str(CONFIG, "bench.toml", 0).expect("config").config;
    let recs = records(500);
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let chunks: Vec<Vec<u8>> = recs.chunks(50).map(cwl).collect();
    let json_lines: Vec<Vec<u8>> = recs.iter().map(|r| r.clone().into_bytes()).collect();
    let eventbridge: Vec<Vec<u8>> = recs
        .iter()
        .map(|r| {
            format!(r#"{{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"1","time":"t","region":"us-east-1","resources":[],"detail":{r}}}"#)
                .into_bytes()
        })
        .collect();
    let s3 = vec![format!(r#"{{"Records":[{}]}}"#, recs.join(",")).into_bytes()];
    let s3_gz = vec![gz(&s3[0])];
    let kpl_aggs: Vec<Vec<u8>> = chunks
        .chunks(5)
        .map(|c| {
            let parts: Vec<(&str, &[u8])> = c.iter().map(|d| ("pk", d.as_slice())).collect();
            kpl::aggregate(&parts)
        })
        .collect();
    let get_records = vec![format!(
        r#"{{"Records":[{}]}}"#,
        chunks
            .iter()
            .enumerate()
            .map(|(i, d)| format!(
                r#"{{"SequenceNumber":"{i}","Data":"{}","PartitionKey":"p"}}"#,
                b64(d)
            ))
            .collect::<Vec<_>>()
            .join(",")
    )
    .into_bytes()];

    let cases: [(&str, &Vec<Vec<u8>>); 7] = [
        ("json_line", &json_lines),
        ("eventbridge", &eventbridge),
        ("s3_file", &s3),
        ("s3_file_gzip", &s3_gz),
        ("cloudwatch_logs_gzip", &chunks),
        ("kpl_of_cwl", &kpl_aggs),
        ("get_records_dump", &get_records),
    ];
    let mut g = c.benchmark_group("decode_evaluate");
    g.throughput(Throughput::Elements(recs.len() as u64));
    for (name, inputs) in cases {
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || Run {
                    pipeline: Pipeline::new(
                        &config.dedup,
                        RuleSet::from_rules(&config.rules),
                        RegionPolicy::build(&config.policy),
                        false,
                    ),
                    alerts: Vec::new(),
                    events: 0,
                    out: Vec::with_capacity(1 << 16),
                },
                |run| {
                    let decoder = Decoder::default();
                    let mut pos = Position::new("bench");
                    for input in inputs.iter() {
                        decoder.decode(input, &mut pos, run);
                    }
                    assert_eq!(run.events, recs.len());
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
