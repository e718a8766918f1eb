//! `cargo run --release -- EVENTS.jsonl.gz` (the corpus of scripts/bench-replay): how fast three
//! JSON readers take the hot fields of each CloudTrail record. This decided to keep serde_json
//! (docs/operations.md, "Which JSON reader"). ROUNDS=1 for one round (under callgrind).
//! Reading CloudTrail records' hot fields: serde_json (borrowed, skipping the rest), sonic-rs
//! (lazy: get_many over pointer paths), simd-json (its serde over a mutable copy).
use serde::Deserialize;
use std::borrow::Cow;
use std::io::BufRead;
use std::time::Instant;

#[derive(Deserialize, Default)]
#[allow(dead_code)]
struct Ident<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "accountId")]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "principalId")]
    principal_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "userName")]
    user_name: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "invokedBy")]
    invoked_by: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "accessKeyId")]
    access_key_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[allow(dead_code)]
struct Hot<'a> {
    #[serde(borrow, rename = "eventID")]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventTime")]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventVersion")]
    event_version: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventSource")]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventName")]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventType")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "awsRegion")]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "errorCode")]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "recipientAccountId")]
    recipient: Option<Cow<'a, str>>,
    #[serde(rename = "readOnly")]
    read_only: Option<bool>,
    #[serde(borrow, rename = "userIdentity")]
    user_identity: Option<Ident<'a>>,
}

const TOP: [&str; 11] = ["eventID", "eventTime", "eventVersion", "eventSource", "eventName", "eventType", "awsRegion", "sourceIPAddress", "userAgent", "errorCode", "recipientAccountId"];
const IDENT: [&str; 7] = ["type", "arn", "accountId", "principalId", "userName", "invokedBy", "accessKeyId"];

fn main() {
    let path = std::env::args().nth(1).expect("events.jsonl.gz");
    let f = std::fs::File::open(path).unwrap();
    let r = std::io::BufReader::new(flate2::read::GzDecoder::new(f));
    let lines: Vec<String> = r.lines().map(|l| l.unwrap()).filter(|l| !l.trim().is_empty()).collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    println!("{} records, {} bytes", lines.len(), bytes);
    let mut tree = sonic_rs::PointerTree::new();
    for k in TOP { tree.add_path(&[k]); }
    tree.add_path(&["readOnly"]);
    for k in IDENT { tree.add_path(&["userIdentity", k]); }
    let mut bufs: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    for round in 0..rounds {
        let t = Instant::now();
        let mut n = 0usize;
        for l in &lines {
            let h: Hot = serde_json::from_str(l).unwrap();
            n += h.event_name.map_or(0, |s| s.len());
        }
        let a = t.elapsed();
        let t = Instant::now();
        let mut m = 0usize;
        for l in &lines {
            let got = sonic_rs::get_many(l.as_str(), &tree).unwrap();
            for v in got.iter().flatten() {
                if let Some(s) = sonic_rs::JsonValueTrait::as_str(v) { m += s.len() & 1; }
            }
        }
        let b = t.elapsed();
        // simd-json parses in place: copy each record first (counted), as the decoder would.
        let t = Instant::now();
        let mut k = 0usize;
        for (l, buf) in lines.iter().zip(bufs.iter_mut()) {
            buf.clear();
            buf.extend_from_slice(l.as_bytes());
            let h: Hot = simd_json::serde::from_slice(buf).unwrap();
            k += h.event_name.map_or(0, |s| s.len());
        }
        let c = t.elapsed();
        let per = |d: std::time::Duration| d.as_nanos() as f64 / lines.len() as f64;
        let gbs = |d: std::time::Duration| bytes as f64 / d.as_secs_f64() / 1e9;
        println!("round {round}: serde_json {:.0} ns/record ({:.2} GB/s); sonic-rs get_many {:.0} ns ({:.2} GB/s); simd-json serde {:.0} ns ({:.2} GB/s)  [{n} {m} {k}]",
            per(a), gbs(a), per(b), gbs(b), per(c), gbs(c));
    }
}
