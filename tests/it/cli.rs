//! End-to-end tests of the `trailwatch` binary: every envelope built from real fixture records,
//! dedup, dead letters, exit codes, `validate`, `explain`, `--include-event` and the bundled
//! example. Run with `cargo test --test cli`.

use std::collections::BTreeSet;
use std::io::Write;

use crate::common::*;
use serde_json::{json, Value};

/// Asserts a clean replay: exit 0, `events` events, no dead letters, and exactly the
/// `expected` event ids alerted (each once).
fn assert_clean(out: &Out, events: u64, expected: &BTreeSet<String>) {
    assert_eq!(out.code, 0, "{}", out.show());
    let sum = out.summary();
    assert_eq!(sum.events, events, "events: {}", out.show());
    assert_eq!(sum.dead_letters, 0, "dead letters: {}", out.show());
    assert_eq!(&out.alert_ids(), expected, "alerts: {}", out.show());
    assert_eq!(
        sum.alerts,
        expected.len() as u64,
        "summary alerts: {}",
        out.show()
    );
}

// ============================================================================================
// 1. Envelopes

#[test]
fn json_lines_alert_exactly_the_unapproved_writes() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let input = t.write("all.jsonl", jsonl(&all_records()));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 30, &set(&STRATUS_ALERTING));
    // The helper predicate agrees with the pinned list (other tests rely on it).
    assert_eq!(expected_alerts(&all_records()), set(&STRATUS_ALERTING));
    let sum = out.summary();
    assert_eq!(
        (sum.inputs, sum.records, sum.duplicates),
        (1, 30, 0),
        "{}",
        out.show()
    );
    // Failed calls get the failed-call severity (medium); the others the default (high).
    for a in out.alerts() {
        let want = if a["error_code"].is_null() {
            "high"
        } else {
            "medium"
        };
        assert_eq!(a["severity"], want, "{a}");
    }
}

#[test]
fn single_json_record_compact_and_pretty() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let rec = record("c64c4ded-ef03-4e5c-81eb-153b118d72f2");
    // Compact, without a trailing newline.
    let compact = t.write("one.json", rec.trim_end());
    let out = replay(&cfg, &[&compact]);
    assert_clean(&out, 1, &set(&["c64c4ded-ef03-4e5c-81eb-153b118d72f2"]));
    // Pretty-printed: the first line is not a complete JSON value.
    let pretty = t.write(
        "pretty.json",
        serde_json::to_string_pretty(&parse(&rec)).unwrap() + "\n",
    );
    let out = replay(&cfg, &[&pretty]);
    assert_clean(&out, 1, &set(&["c64c4ded-ef03-4e5c-81eb-153b118d72f2"]));
    // A read-only record is an event but no alert.
    let ro = t.write("ro.json", record("bddee0fb-2541-430d-aad5-b1fdd5d419f1"));
    let out = replay(&cfg, &[&ro]);
    assert_clean(&out, 1, &BTreeSet::new());
}

#[test]
fn s3_logfile_pretty_printed_fixture() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let out = replay(&cfg, &[fixture_path("s3_logfile.json")]);
    assert_clean(
        &out,
        5,
        &set(&[
            "d373b5dd-6a82-439d-bdcf-4e6c7c7a9292",
            "f634894e-d625-4b7b-b1c1-50354cc1100e",
            "55e470c0-611d-4549-ad87-a7c830a75063",
        ]),
    );
}

#[test]
fn s3_logfile_json_gz() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = all_records();
    let input = t.write(
        "AWSLogs/o-x/111122223333/CloudTrail/us-east-1/2024/08/01/f_CloudTrail_us-east-1_x.json.gz",
        gz(s3_logfile(&recs).as_bytes()),
    );
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 30, &expected_alerts(&recs));
    // The pretty-printed fixture gzip'd reads the same as plain.
    let pretty_gz = t.write("pretty.json.gz", gz(fixture("s3_logfile.json").as_bytes()));
    let out = replay(&cfg, &[&pretty_gz]);
    assert_eq!(out.summary().events, 5, "{}", out.show());
    assert_eq!(out.alert_ids().len(), 3, "{}", out.show());
}

#[test]
fn digest_file_skipped_by_content() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let out = replay(&cfg, &[fixture_path("s3_digest.json")]);
    assert_eq!(out.code, 0, "{}", out.show());
    let sum = out.summary();
    assert_eq!(
        (sum.events, sum.skipped, sum.dead_letters, sum.alerts),
        (0, 1, 0, 0),
        "{}",
        out.show()
    );
    // Gzip'd too, next to a log file.
    let dg = t.write("digest.json.gz", gz(fixture("s3_digest.json").as_bytes()));
    let out = replay(
        &cfg,
        &[dg.as_path(), fixture_path("s3_logfile.json").as_path()],
    );
    assert_clean(&out, 5, &expected_alerts(&lines_of_logfile()));
    assert_eq!(out.summary().skipped, 1, "{}", out.show());
}

fn lines_of_logfile() -> Vec<String> {
    parse(&fixture("s3_logfile.json"))["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn digest_files_skipped_by_path() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = stratus();
    t.write(
        "AWSLogs/o-x/111122223333/CloudTrail/eu-west-1/2024/08/01/a_CloudTrail_eu-west-1_1.json.gz",
        gz(s3_logfile(&recs[..10]).as_bytes()),
    );
    // Under a CloudTrail-Digest directory: skipped by path, whatever the content (here log
    // records that would alert if read).
    t.write(
        "AWSLogs/o-x/111122223333/CloudTrail-Digest/eu-west-1/2024/08/01/a_CloudTrail-Digest_eu-west-1_1.json.gz",
        gz(s3_logfile(&recs[10..]).as_bytes()),
    );
    t.write(
        "AWSLogs/o-x/111122223333/CloudTrail-Digest/eu-west-1/2024/08/02/b_CloudTrail-Digest_eu-west-1_2.json.gz",
        gz(fixture("s3_digest.json").as_bytes()),
    );
    let out = replay(&cfg, &[t.path("AWSLogs")]);
    assert_clean(&out, 10, &expected_alerts(&recs[..10]));
    let sum = out.summary();
    assert_eq!(
        (sum.digests, sum.inputs, sum.skipped),
        (2, 1, 0),
        "{}",
        out.show()
    );
}

#[test]
fn cloudwatch_logs_gzip_data_and_control_message() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = stratus();
    let data = t.write("cwl/data.gz", gz(cwl_data(&recs[..8]).as_bytes()));
    let data2 = t.write("cwl/data2.gz", gz(cwl_data(&recs[8..]).as_bytes()));
    let control = t.write("cwl/control.gz", gz(cwl_control().as_bytes()));
    let out = replay(&cfg, &[&data, &data2, &control]);
    assert_clean(&out, 20, &expected_alerts(&recs));
    let sum = out.summary();
    assert_eq!(sum.control_messages, 1, "{}", out.show());
    assert_eq!(sum.inputs, 3, "{}", out.show());
}

#[test]
fn eventbridge_envelopes() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = all_records();
    let lines: Vec<String> = recs.iter().map(|r| eventbridge(r)).collect();
    let input = t.write("eb.jsonl", jsonl(&lines));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 30, &expected_alerts(&recs));
    // One pretty-printed EventBridge event, as the console shows it.
    let one = record("ee73c230-44bc-4492-8542-cfb189eae287");
    let pretty = serde_json::to_string_pretty(&parse(&eventbridge(&one))).unwrap();
    let input = t.write("eb.json", pretty);
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 1, &set(&["ee73c230-44bc-4492-8542-cfb189eae287"]));
}

#[test]
fn kpl_aggregate_file() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = all_records();
    let input = t.write("agg.bin", kpl(&recs));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 30, &expected_alerts(&recs));
}

#[test]
fn kinesis_get_records_output_with_gzip_cwl_data() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = stratus();
    let datas = vec![
        gz(cwl_data(&recs[..12]).as_bytes()),
        gz(cwl_data(&recs[12..]).as_bytes()),
        gz(cwl_control().as_bytes()),
    ];
    let input = t.write("get-records.json", get_records(&datas));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 20, &expected_alerts(&recs));
    assert_eq!(out.summary().control_messages, 1, "{}", out.show());
}

#[test]
fn lambda_kinesis_event() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = all_records();
    // A plain record, a KPL aggregate, and a gzip'd CloudWatch Logs envelope.
    let datas = vec![
        recs[1].clone().into_bytes(),
        kpl(&recs[2..12]),
        gz(cwl_data(&recs[12..30]).as_bytes()),
    ];
    let input = t.write("lambda-event.json", lambda_kinesis(&datas));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 29, &expected_alerts(&recs[1..]));
}

#[test]
fn firehose_http_endpoint_body() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = all_records();
    let datas: Vec<Vec<u8>> = recs.iter().map(|r| format!("{r}\n").into_bytes()).collect();
    let input = t.write("firehose-http.json", firehose_http(&datas));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 30, &expected_alerts(&recs));
}

#[test]
fn firehose_transformation_event() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = stratus();
    let datas = vec![
        gz(cwl_data(&recs[..5]).as_bytes()),
        gz(cwl_control().as_bytes()),
        gz(cwl_data(&recs[5..]).as_bytes()),
    ];
    let input = t.write("firehose-transform.json", firehose_transform(&datas));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 20, &expected_alerts(&recs));
    assert_eq!(out.summary().control_messages, 1, "{}", out.show());
}

#[test]
fn directory_tree_mixing_envelopes() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let s = stratus();
    let o = otrf();
    t.write("tree/a/lines.jsonl", jsonl(&s[..5]));
    t.write("tree/a/b/cwl.json.gz", gz(cwl_data(&s[5..10]).as_bytes()));
    t.write("tree/a/b/c/agg.kpl", kpl(&s[10..15]));
    t.write(
        "tree/kinesis/get-records.json",
        get_records(&[gz(cwl_data(&s[15..20]).as_bytes())]),
    );
    let eb: Vec<String> = o.iter().map(|r| eventbridge(r)).collect();
    t.write("tree/eb/otrf.jsonl.gz", gz(jsonl(&eb).as_bytes()));
    t.write("tree/digest.json", fixture("s3_digest.json"));
    t.write(
        "tree/AWSLogs/111122223333/CloudTrail-Digest/x_CloudTrail-Digest_y.json.gz",
        gz(fixture("s3_digest.json").as_bytes()),
    );
    // Hidden files and directories are not read: this record would alert.
    let hidden = with_fields(&s[1], json!({"eventID": "hidden-record-0001"}));
    t.write("tree/.hidden.jsonl", jsonl(&[&hidden]));
    t.write("tree/.cache/x.jsonl", jsonl(&[&hidden]));
    let out = replay(&cfg, &[t.path("tree")]);
    assert_clean(&out, 30, &expected_alerts(&all_records()));
    let sum = out.summary();
    assert_eq!(
        (sum.inputs, sum.skipped, sum.digests),
        (6, 1, 1),
        "{}",
        out.show()
    );
}

#[test]
fn stdin_dash() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = all_records();
    let out = run_with_stdin(
        ["replay", "--config", &s(&cfg), "-"],
        jsonl(&recs).as_bytes(),
    );
    assert_clean(&out, 30, &expected_alerts(&recs));
    // Gzip'd stdin too.
    let out = run_with_stdin(
        ["replay", "--config", &s(&cfg), "-"],
        &gz(s3_logfile(&recs).as_bytes()),
    );
    assert_clean(&out, 30, &expected_alerts(&recs));
}

// ============================================================================================
// 2. Dedup

#[test]
fn dedup_same_record_twice_alerts_once() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let rec = record("d373b5dd-6a82-439d-bdcf-4e6c7c7a9292");
    let other = record("bfdbd679-9ac4-41e0-84f6-2be3ac12d3e5"); // same second, read-only
    let input = t.write("dup.jsonl", jsonl(&[&rec, &other, &rec]));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 3, &set(&["d373b5dd-6a82-439d-bdcf-4e6c7c7a9292"]));
    assert_eq!(out.summary().duplicates, 1, "{}", out.show());
}

#[test]
fn dedup_across_two_envelopes() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let rec = record("d373b5dd-6a82-439d-bdcf-4e6c7c7a9292");
    let a = t.write("a.jsonl", jsonl(&[&rec]));
    let b = t.write("b.json.gz", gz(eventbridge(&rec).as_bytes()));
    let out = replay(&cfg, &[&a, &b]);
    assert_clean(&out, 2, &set(&["d373b5dd-6a82-439d-bdcf-4e6c7c7a9292"]));
    assert_eq!(out.summary().duplicates, 1, "{}", out.show());
    // And inside one S3 log file plus a KPL aggregate carrying it again.
    let c = t.write("c.json", s3_logfile(&[&rec]));
    let d = t.write("d.bin", kpl(&[&rec]));
    let out = replay(&cfg, &[&c, &d]);
    assert_clean(&out, 2, &set(&["d373b5dd-6a82-439d-bdcf-4e6c7c7a9292"]));
    assert_eq!(out.summary().duplicates, 1, "{}", out.show());
}

// ============================================================================================
// 3. Dead letters

const GOOD_A: &str = "c64c4ded-ef03-4e5c-81eb-153b118d72f2";
const GOOD_B: &str = "ee73c230-44bc-4492-8542-cfb189eae287";

/// One input: good record, `bad` line, good record. Asserts the run survives (exit 0), both
/// good records alert, and exactly one dead letter is written at line 2 with `path`, a reason
/// containing `reason`, and the record's first bytes. Returns the dead letter.
fn dead_letter_case(config: &str, bad: &[u8], path: &str, reason: &str) -> Value {
    let t = Tmp::new();
    let cfg = t.config(config);
    let mut data = Vec::new();
    data.extend_from_slice(record(GOOD_A).as_bytes());
    data.push(b'\n');
    data.extend_from_slice(bad);
    data.push(b'\n');
    data.extend_from_slice(record(GOOD_B).as_bytes());
    data.push(b'\n');
    let input = t.write("mixed.jsonl", &data);
    let dl = t.path("dead.jsonl");
    let out = replay_dl(&cfg, &dl, &[&input]);
    // Ran, but one record was not evaluated: exit 3, said on stderr (issue 27).
    assert_eq!(out.code, 3, "{}", out.show());
    assert!(
        out.stderr
            .contains("trailwatch replay: INCOMPLETE: 1 records not evaluated"),
        "{}",
        out.show()
    );
    assert_eq!(out.alert_ids(), set(&[GOOD_A, GOOD_B]), "{}", out.show());
    let sum = out.summary();
    assert_eq!((sum.events, sum.dead_letters), (2, 1), "{}", out.show());
    let dead = t.dead_letters(&dl);
    assert_eq!(dead.len(), 1, "dead letters: {dead:?}\n{}", out.show());
    let d = dead[0].clone();
    assert_eq!(d["input"], s(&input), "{d}");
    assert_eq!(d["line"], 2, "{d}");
    assert_eq!(d["path"], path, "{d}");
    let why = d["reason"].as_str().unwrap_or_default();
    assert!(
        why.contains(reason),
        "reason {why:?} should mention {reason:?}"
    );
    let head = b64_decode(d["head_base64"].as_str().expect("head_base64"));
    assert!(!head.is_empty() && head.len() <= 256, "{d}");
    assert!(d["size"].as_u64().unwrap() >= head.len() as u64, "{d}");
    d
}

/// A get-records line whose only record carries `data` (base64'd here), sequence number 7.
fn get_records_line(data: &[u8]) -> Vec<u8> {
    json!({"Records": [{"SequenceNumber": "7", "Data": b64(data), "PartitionKey": "p"}]})
        .to_string()
        .into_bytes()
}

#[test]
fn dead_letter_bad_gzip() {
    let mut bad = gz(cwl_data(&stratus()[..3]).as_bytes());
    for b in &mut bad[10..40] {
        *b ^= 0x5a;
    }
    let d = dead_letter_case(
        TEST_CONFIG,
        &get_records_line(&bad),
        "Records[0]/base64",
        "gzip",
    );
    assert_eq!(d["sequence_number"], "7", "{d}");
    assert_eq!(
        b64_decode(d["head_base64"].as_str().unwrap())[..2],
        [0x1f, 0x8b],
        "{d}"
    );
}

#[test]
fn dead_letter_gzip_bomb() {
    // ~200 MiB of zeros, streamed through the encoder: about 200 KB compressed.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..200 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let d = dead_letter_case(
        TEST_CONFIG,
        &get_records_line(&bomb),
        "Records[0]/base64",
        "(decode.max_decompressed_bytes)",
    );
    assert!(d["reason"].as_str().unwrap().contains("134217728"), "{d}");
}

#[test]
fn dead_letter_bad_base64() {
    let line = br#"{"Records":[{"SequenceNumber":"7","Data":"not*base64!!","PartitionKey":"p"}]}"#;
    let d = dead_letter_case(TEST_CONFIG, line, "Records[0]", "base64");
    assert_eq!(d["sequence_number"], "7", "{d}");
}

#[test]
fn dead_letter_bad_json() {
    let line = br#"{"eventVersion":"1.08","eventID":"bad-json-1","eventName": ,}"#;
    let d = dead_letter_case(TEST_CONFIG, line, "", "JSON");
    assert_eq!(
        b64_decode(d["head_base64"].as_str().unwrap()),
        line.to_vec(),
        "{d}"
    );
}

#[test]
fn dead_letter_wrong_types() {
    // An envelope key of the wrong type is still unreadable (nothing to open).
    dead_letter_case(TEST_CONFIG, br#"{"Records":"x"}"#, "", "field `Records`");
}

/// Issue 27, case 7: a hot field of a type CloudTrail never writes there (`userAgent` an
/// object, `eventName` a number) reads as absent: the event is judged, not dead-lettered.
/// Failed before: the whole record was a dead letter.
#[test]
fn hot_fields_of_unexpected_types_do_not_drop_the_event() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let a = with_fields(
        &record("d373b5dd-6a82-439d-bdcf-4e6c7c7a9292"),
        json!({"userAgent": {"name": "aws-cli"}, "sourceIPAddress": 7}),
    );
    let b = with_fields(
        &record(GOOD_B),
        json!({"eventName": 42, "userIdentity": {"type": "IAMUser", "arn": ["x"]}}),
    );
    let input = t.write("odd.jsonl", jsonl(&[a.clone(), b.clone()]));
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 0, "{}", out.show());
    let sum = out.summary();
    assert_eq!((sum.events, sum.dead_letters), (2, 0), "{}", out.show());
    assert_eq!(
        out.alert_ids(),
        set(&[id_of(&a).as_str(), GOOD_B]),
        "{}",
        out.show()
    );
}

#[test]
fn dead_letter_huge_record() {
    let config = format!("{TEST_CONFIG}\n[decode]\nmax_event_bytes = 2048\n");
    let rec = with_fields(
        &record("d373b5dd-6a82-439d-bdcf-4e6c7c7a9292"),
        json!({"eventID": "huge-1", "padding": "x".repeat(3000)}),
    );
    assert!(rec.len() > 2048);
    dead_letter_case(&config, rec.as_bytes(), "", "max_event_bytes");
}

#[test]
fn dead_letter_deeply_nested_json() {
    let rec = with_fields(
        &record("d373b5dd-6a82-439d-bdcf-4e6c7c7a9292"),
        json!({"eventID": "deep-1", "requestParameters": "@@DEEP@@"}),
    )
    .replace(
        "\"@@DEEP@@\"",
        &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    );
    // The product's own decoder tests expect "recursion limit"; accept any wording about depth.
    let d = dead_letter_case(TEST_CONFIG, rec.as_bytes(), "", "");
    let why = d["reason"].as_str().unwrap().to_lowercase();
    assert!(
        why.contains("recursion") || why.contains("nest") || why.contains("deep"),
        "reason should mention the nesting: {why}"
    );
}

#[test]
fn dead_letter_unknown_envelope() {
    dead_letter_case(TEST_CONFIG, br#"{"foo":1}"#, "", "unknown envelope");
}

#[test]
fn dead_letter_binary_garbage() {
    let garbage: Vec<u8> = (0u8..=255)
        .filter(|b| *b != b'\n')
        .cycle()
        .take(600)
        .collect();
    let d = dead_letter_case(TEST_CONFIG, &garbage, "", "unknown format");
    assert_eq!(
        b64_decode(d["head_base64"].as_str().unwrap()),
        garbage[..256].to_vec()
    );
    assert_eq!(d["size"], 600, "{d}");
}

/// Every cause in one input, between good records (the deep-nesting case has its own test):
/// the run goes on, every good record alerts, one dead letter per bad line, in order.
#[test]
fn dead_letters_of_every_cause_in_one_input_do_not_stop_it() {
    let t = Tmp::new();
    let cfg = t.config(&format!(
        "{TEST_CONFIG}\n[decode]\nmax_event_bytes = 2048\n"
    ));
    let mut bad_gz = gz(b"{\"eventID\":\"x\"}");
    let n = bad_gz.len();
    for b in &mut bad_gz[10..n - 8] {
        *b = 0xff;
    }
    let wrong = br#"{"eventID":"w1","Records":42}"#.to_vec();
    let huge = with_fields(
        &stratus()[1],
        json!({"eventID": "h1", "pad": "y".repeat(3000)}),
    );
    let bads: Vec<(Vec<u8>, &str)> = vec![
        (get_records_line(&bad_gz), "gzip"),
        (
            br#"{"Records":[{"Data":"%%%%","PartitionKey":"p"}]}"#.to_vec(),
            "base64",
        ),
        (br#"{"eventID":"j1","eventName":"#.to_vec(), "JSON"),
        (wrong, "field `Records`"),
        (huge.into_bytes(), "max_event_bytes"),
        (br#"{"foo":1}"#.to_vec(), "unknown envelope"),
        (
            b"\x00\x01\x02\xfe\xff garbage \x7f".to_vec(),
            "unknown format",
        ),
    ];
    let goods = stratus();
    let mut data = Vec::new();
    let mut good_used = Vec::new();
    for (i, (bad, _)) in bads.iter().enumerate() {
        data.extend_from_slice(goods[i].as_bytes());
        data.push(b'\n');
        good_used.push(goods[i].clone());
        data.extend_from_slice(bad);
        data.push(b'\n');
    }
    data.extend_from_slice(goods[19].as_bytes());
    data.push(b'\n');
    good_used.push(goods[19].clone());
    let input = t.write("mixed.jsonl", &data);
    let dl = t.path("dl.jsonl");
    let out = replay_dl(&cfg, &dl, &[&input]);
    assert_eq!(out.code, 3, "{}", out.show());
    assert_clean_except_dead(&out, good_used.len() as u64, &expected_alerts(&good_used));
    let dead = t.dead_letters(&dl);
    assert_eq!(dead.len(), bads.len(), "{dead:#?}");
    assert_eq!(
        out.summary().dead_letters,
        bads.len() as u64,
        "{}",
        out.show()
    );
    for (i, (d, (_, why))) in dead.iter().zip(&bads).enumerate() {
        assert_eq!(d["input"], s(&input), "{d}");
        assert_eq!(d["line"], 2 * i as u64 + 2, "{d}");
        assert!(d["path"].is_string(), "{d}");
        assert!(d["head_base64"].is_string(), "{d}");
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.contains(why),
            "dead letter {i}: {reason:?} should mention {why:?}"
        );
    }
}

fn assert_clean_except_dead(out: &Out, events: u64, expected: &BTreeSet<String>) {
    assert_eq!(out.summary().events, events, "{}", out.show());
    assert_eq!(&out.alert_ids(), expected, "{}", out.show());
}

/// A whole input that is corrupt gzip is one dead letter, and the other inputs are still read.
#[test]
fn corrupt_gzip_input_does_not_stop_the_others() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let mut bad = gz(jsonl(&stratus()).as_bytes());
    let n = bad.len();
    for b in &mut bad[10..n - 8] {
        *b ^= 0xa5;
    }
    let bad = t.write("a_corrupt.jsonl.gz", bad);
    let good = t.write("b_good.jsonl", jsonl(&otrf()[..2]));
    let good2 = t.write("c_good.json", record(GOOD_A));
    let out = replay(&cfg, &[&bad, &good, &good2]);
    assert_eq!(out.code, 3, "{}", out.show());
    assert_eq!(out.summary().dead_letters, 1, "{}", out.show());
    assert_eq!(out.alert_ids(), set(&[GOOD_A]), "{}", out.show());
    assert_eq!(out.summary().events, 3, "{}", out.show());
}

/// Issue 27, case 2: a gzip'd JSON-lines file longer than `decode.max_decompressed_bytes` is
/// read to its end (the cap bounds one line, not the file). Failed before: the run stopped at
/// the cap with a dead letter and exited 0.
#[test]
fn a_gzipped_json_lines_file_longer_than_the_gzip_cap_is_read_whole() {
    let t = Tmp::new();
    // 1 MiB cap per gzip layer; ~2,000 records of about 1.5 KB: over 2 MiB inflated.
    let cfg = t.config(&format!(
        "{TEST_CONFIG}\n[decode]\nmax_decompressed_bytes = 1048576\n"
    ));
    let recs = many_records(100);
    let text = jsonl(&recs);
    assert!(text.len() > 2 << 20, "{} bytes", text.len());
    let input = t.write("long.jsonl.gz", gz(text.as_bytes()));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, recs.len() as u64, &expected_alerts(&recs));
    // One line over the cap is one dead letter naming it; the lines after it are read.
    let mut text = jsonl(&recs[..10]);
    text.push_str(&format!("{{\"pad\":\"{}\"}}\n", "x".repeat(1_200_000)));
    text.push_str(&jsonl(&recs[10..20]));
    let input = t.write("one_long_line.jsonl.gz", gz(text.as_bytes()));
    let dl = t.path("dl.jsonl");
    let flag = std::path::Path::new("--allow-incomplete");
    let out = replay_dl(&cfg, &dl, &[input.as_path(), flag]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(out.summary().events, 20, "{}", out.show());
    let dead = t.dead_letters(&dl);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["line"], 11, "{}", dead[0]);
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("exceeds 1048576 bytes (decode.max_decompressed_bytes)"),
        "{}",
        dead[0]
    );
}

/// JSON lines whose first line is cut short: one dead letter, and the other lines are still read.
#[test]
fn truncated_first_line_does_not_stop_the_input() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = stratus();
    let mut text = format!("{}\n", &recs[0][..60]);
    text.push_str(&jsonl(&recs[1..]));
    let input = t.write("cut.jsonl", text);
    let dl = t.path("dl.jsonl");
    let out = replay_dl(&cfg, &dl, &[&input]);
    assert_eq!(out.code, 3, "{}", out.show());
    let sum = out.summary();
    assert_eq!((sum.events, sum.dead_letters), (19, 1), "{}", out.show());
    assert_eq!(
        out.alert_ids(),
        expected_alerts(&recs[1..]),
        "{}",
        out.show()
    );
    let dead = t.dead_letters(&dl);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["line"], 1, "{}", dead[0]);
}

// ============================================================================================
// 4. Exit codes

#[test]
fn exit_0_when_it_ran() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let input = t.write("x.jsonl", jsonl(&otrf()));
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, 10, &BTreeSet::new());
    assert!(out.stdout.is_empty());
}

#[test]
fn exit_1_for_only_garbage() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let input = t.write(
        "garbage.bin",
        b"\x00\x01\x02\x03 not a trail \xff\xfe\n\x05\x06".repeat(20),
    );
    let dl = t.path("dl.jsonl");
    let out = replay_dl(&cfg, &dl, &[&input]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stdout.is_empty(), "{}", out.show());
    assert!(out.summary().dead_letters >= 1, "{}", out.show());
    assert!(!t.dead_letters(&dl).is_empty());
}

#[test]
fn exit_1_for_a_nonexistent_input() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let missing = t.path("no/such/file.jsonl");
    let out = replay(&cfg, &[&missing]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains("file.jsonl"), "{}", out.show());
    // Next to a readable input, a missing one is reported, and the run is incomplete (exit 3).
    let good = t.write("good.jsonl", jsonl(&[record(GOOD_A)]));
    let out = replay(&cfg, &[&missing, &good]);
    assert_eq!(out.code, 3, "{}", out.show());
    assert!(
        out.stderr
            .contains("INCOMPLETE: 1 inputs not read to their end"),
        "{}",
        out.show()
    );
    assert!(out.stderr.contains("file.jsonl"), "{}", out.show());
    assert_eq!(out.alert_ids(), set(&[GOOD_A]));
}

#[test]
fn exit_2_for_an_unknown_config_key() {
    let t = Tmp::new();
    let cfg = t.config(
        "[policy]\napproved_regions = [\"us-east-1\"]\napproved_region = [\"eu-west-1\"]\n",
    );
    let input = t.write("x.jsonl", jsonl(&[record(GOOD_A)]));
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(out.stdout.is_empty(), "nothing may run: {}", out.show());
    assert!(out.stderr.contains("approved_region"), "{}", out.show());
    assert!(out.stderr.contains(&s(&cfg)), "{}", out.show());
}

#[test]
fn exit_2_for_a_missing_config_argument() {
    let t = Tmp::new();
    let input = t.write("x.jsonl", jsonl(&[record(GOOD_A)]));
    let out = run(["replay", &s(&input)]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(out.stderr.contains("--config"), "{}", out.show());
    assert!(out.stdout.is_empty());
}

#[test]
fn exit_2_for_a_bad_region_naming_key_and_fix() {
    let t = Tmp::new();
    let cfg = t.config("[policy]\napproved_regions = [\"us-east-1\", \"eu-nrth-1\"]\n");
    let input = t.write("x.jsonl", jsonl(&[record(GOOD_A)]));
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(out.stdout.is_empty(), "{}", out.show());
    assert!(
        out.stderr.contains("policy.approved_regions[1]"),
        "{}",
        out.show()
    );
    assert!(out.stderr.contains("eu-north-1"), "{}", out.show());
}

// ============================================================================================
// 5. validate

fn problem_lines(out: &Out, level: &str) -> Vec<String> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{level}: ")))
        .map(str::to_string)
        .collect()
}

/// Asserts one `LEVEL: FILE: KEY: ...` line contains all of `words`.
fn assert_problem(lines: &[String], file: &str, key: &str, words: &[&str]) {
    let prefix_ok = |l: &String| l.contains(&format!("{file}: {key}: "));
    assert!(
        lines
            .iter()
            .any(|l| prefix_ok(l) && words.iter().all(|w| l.contains(w))),
        "no problem at {key} mentioning {words:?} in:\n{}",
        lines.join("\n")
    );
}

const MANY_PROBLEMS: &str = r#"
[policy]
approved_regions = ["us-east-1"]

[policy.ous."ou-ab12-prodeu"]
name = "Production EU"
approved_regions = ["eu-nrth-1"]

[policy.accounts."111122223333"]
name = "payments"
colour = "red"

[policy.accounts."444455556666"]
ou = "ou-zz99-missing"

[policy.accounts."12345"]
name = "too short"

[[policy.exempt]]
principal = "arn:aws:iam::*:role/BreakGlass*"
"#;

/// The four meaning problems of `MANY_PROBLEMS`, each with its file and key path.
fn assert_meaning_problems(errors: &[String], file: &str) {
    assert_problem(
        errors,
        file,
        "policy.ous.ou-ab12-prodeu.approved_regions[0]",
        &["eu-nrth-1", "eu-north-1"],
    );
    assert_problem(errors, file, "policy.exempt[0].reason", &["reason"]);
    assert_problem(
        errors,
        file,
        "policy.accounts.\"444455556666\".ou",
        &["ou-zz99-missing"],
    );
    assert_problem(errors, file, "policy.accounts.\"12345\"", &["12 digits"]);
}

#[test]
fn validate_reports_every_problem_at_once() {
    let t = Tmp::new();
    let cfg = t.config(MANY_PROBLEMS);
    let out = run(["validate", "--config", &s(&cfg)]);
    assert_eq!(out.code, 2, "{}", out.show());
    let file = s(&cfg);
    let errors = problem_lines(&out, "error");
    assert_problem(
        &errors,
        &file,
        "policy.accounts.\"111122223333\".colour",
        &["unknown field `colour`"],
    );
    assert_meaning_problems(&errors, &file);
    assert_eq!(errors.len(), 5, "{}", out.show());
}

/// Issue 12: every value of the wrong type, in every section, is reported in one run with
/// its full key path, what was expected and what was found, and no follow-on warning.
#[test]
fn validate_names_every_wrong_type_with_its_key_path() {
    let t = Tmp::new();
    let cfg = t.config(
        r#"
[policy]
approved_regions = "us-east-1"

[dedup]
event_ttl = 5

[decode]
max_decompressed_bytes = "big"

[source.kinesis]
stream = 5
max_records = "x"
poll_interval = "fast"

[checkpoint]
path = 7

[delivery]
timeout = "10"
queue = "big"
accept_within = 5

[[sinks]]
name = "hook"
type = "webhook"
url = 5
batch = "x"

[[routes]]
stream = "siem"
sinks = ["hook"]
min_severity = 3

[[rules]]
id = "r1"
title = 3
filter = '{ $.eventName = "X" }'
"#,
    );
    let out = run(["validate", "--config", &s(&cfg)]);
    assert_eq!(out.code, 2, "{}", out.show());
    let file = s(&cfg);
    let errors = problem_lines(&out, "error");
    for (key, words) in [
        (
            "policy.approved_regions",
            &["expected a sequence", "found string \"us-east-1\""][..],
        ),
        ("dedup.event_ttl", &["found integer"]),
        (
            "decode.max_decompressed_bytes",
            &["expected usize", "found string \"big\""],
        ),
        (
            "source.kinesis.stream",
            &["expected a string", "found integer"],
        ),
        ("source.kinesis.max_records", &["found string \"x\""]),
        (
            "source.kinesis.poll_interval",
            &["\"fast\" is not a duration"],
        ),
        ("checkpoint.path", &["expected a string", "found integer"]),
        ("delivery.timeout", &["\"10\" is not a duration"]),
        (
            "delivery.queue",
            &["expected usize", "found string \"big\""],
        ),
        (
            "delivery.accept_within",
            &["expected a string", "found integer 5"],
        ),
        ("sinks[0].url", &["expected a string", "found integer 5"]),
        (
            "sinks[0].batch",
            &["expected an integer", "found string \"x\""],
        ),
        (
            "routes[0].min_severity",
            &["expected a string", "found integer 3"],
        ),
        ("rules[0].title", &["expected a string", "found integer"]),
    ] {
        assert_problem(&errors, &file, key, words);
    }
    assert_eq!(errors.len(), 14, "one problem per key:\n{}", out.show());
    assert!(
        !out.stdout.contains("empty: every account"),
        "no follow-on warning about the list that had the wrong type:\n{}",
        out.show()
    );
}

/// The same problems without the unknown key: the four meaning checks, all in one run.
#[test]
fn validate_reports_all_meaning_problems_at_once() {
    let t = Tmp::new();
    let cfg = t.config(&MANY_PROBLEMS.replace("colour = \"red\"\n", ""));
    let out = run(["validate", "--config", &s(&cfg)]);
    assert_eq!(out.code, 2, "{}", out.show());
    let file = s(&cfg);
    let errors = problem_lines(&out, "error");
    assert_meaning_problems(&errors, &file);
    assert_eq!(errors.len(), 4, "{}", out.show());
}

/// Issue 27, case 8: two hints validate gave without: a top-level key written below a table
/// says to move it above the first table, and `[policy]`'s "expected one of" names its
/// tables (`accounts`, `ous`, `exempt`, `global_services`). Failed before: neither was said.
#[test]
fn validate_hints_a_top_level_key_below_a_table_and_names_policys_tables() {
    let t = Tmp::new();
    let cfg = t.config(
        r#"
[policy]
approved_regions = ["us-east-1"]

[policy.account."111122223333"]
name = "a typo for accounts"

[[policy.exempt]]
principal = "arn:aws:iam::*:role/X"
reason = "r"

sigma_rules = ["rules/"]
"#,
    );
    let out = run(["validate", "--config", &s(&cfg)]);
    assert_eq!(out.code, 2, "{}", out.show());
    let errors = problem_lines(&out, "error");
    assert_problem(
        &errors,
        &s(&cfg),
        "policy.exempt[0].sigma_rules",
        &["is a top-level key", "above the first table"],
    );
    assert_problem(
        &errors,
        &s(&cfg),
        "policy.account",
        &["`accounts`", "`ous`", "`exempt`", "`global_services`"],
    );
}

/// Issue 27, case 8: log lines written to a pipe or a file carry no ANSI colour codes.
/// Failed before: every WARN line carried them.
#[test]
fn log_lines_to_a_pipe_have_no_colour_codes() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let input = t.write("x.jsonl", format!("{}\nnot json\n", record(GOOD_A)));
    // Not the tests' own runner: it sets NO_COLOR. Here, as a user's pipe would be.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["replay", "--config", &s(&cfg), &s(&input)])
        .env_remove("NO_COLOR")
        .env("TRAILWATCH_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("WARN"), "a log line was written: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn validate_expired_exemption_is_a_warning() {
    let t = Tmp::new();
    let cfg = t.config(
        r#"
[policy]
approved_regions = ["us-east-1"]

[[policy.exempt]]
principal = "arn:aws:iam::*:role/BreakGlass*"
reason = "incident response"
expires = "2020-01-31"
"#,
    );
    let out = run(["validate", "--config", &s(&cfg)]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(problem_lines(&out, "error").is_empty(), "{}", out.show());
    let warnings = problem_lines(&out, "warning");
    assert_problem(
        &warnings,
        &s(&cfg),
        "policy.exempt[0].expires",
        &["expired", "2020-01-31"],
    );
    // replay runs with it too (the warning goes to stderr).
    let input = t.write("x.jsonl", jsonl(&[record(GOOD_A)]));
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stderr.contains("expired"), "{}", out.show());
}

#[test]
fn validate_example_config_is_ok() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trailwatch.toml");
    let out = run(["validate", "--config", &s(&example)]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(problem_lines(&out, "error").is_empty(), "{}", out.show());
    assert!(out.stdout.contains(": ok ("), "{}", out.show());
}

// ============================================================================================
// 6. explain

const EXPLAIN_CONFIG: &str = r#"
[policy]
approved_regions = ["us-east-1"]

# The account of the CreateAccessKey record: only eu-west-1 approved (so us-east-1 is not).
[policy.accounts."946986569305"]
name = "iam-test"
approved_regions = ["eu-west-1"]

[[policy.exempt]]
principal = "arn:aws:iam::*:user/christoph?"
event_name = "DeleteTrail"
reason = "trail migration"
expires = "2030-01-01"
"#;

/// `explain` of one record; returns the output and its single `=> ` decision.
fn explain(rec: &str, at: &str) -> (Out, String) {
    let t = Tmp::new();
    let cfg = t.config(EXPLAIN_CONFIG);
    let ev = t.write("event.json", rec);
    let out = run([
        "explain",
        "--config",
        &s(&cfg),
        "--event",
        &s(&ev),
        "--at",
        at,
    ]);
    let decisions: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  => "))
        .map(|l| l["  => ".len()..].to_string())
        .collect();
    assert_eq!(decisions.len(), 1, "{}", out.show());
    let d = decisions[0].clone();
    (out, d)
}

#[test]
fn explain_alerting_event() {
    let (out, d) = explain(&record("d373b5dd-6a82-439d-bdcf-4e6c7c7a9292"), "now");
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(d.starts_with("ALERT (high): StopInstances"), "{d}");
    assert!(
        d.contains("ca-northsouth-2r") && d.contains("us-east-1"),
        "{d}"
    );
}

#[test]
fn explain_read_only_event() {
    let (out, d) = explain(&record("bddee0fb-2541-430d-aad5-b1fdd5d419f1"), "now");
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(d, "no alert: not activity");
    assert!(out.stdout.contains("readOnly is true"), "{}", out.show());
}

#[test]
fn explain_approved_region_event() {
    // OTRF sts AssumeRole in us-east-1: activity by the name fallback, in an approved region.
    let (out, d) = explain(&record("1da77391-d4f7-4c3f-bc15-dcb4e5e1e4d8"), "now");
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(d, "no alert: us-east-1 is approved for this account");
}

#[test]
fn explain_global_service_event() {
    let rec = with_fields(
        &record("c64c4ded-ef03-4e5c-81eb-153b118d72f2"),
        json!({"awsRegion": "us-east-1"}),
    );
    let (out, d) = explain(&rec, "now");
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("approved:       eu-west-1"),
        "{}",
        out.show()
    );
    assert_eq!(
        d,
        "no alert: a global service recording in its global region"
    );
    // The same record in its own (unapproved, non-global) region alerts.
    let (_, d) = explain(&record("c64c4ded-ef03-4e5c-81eb-153b118d72f2"), "now");
    assert!(d.starts_with("ALERT (high)"), "{d}");
}

#[test]
fn explain_exempt_event() {
    let rec = record("ee73c230-44bc-4492-8542-cfb189eae287");
    let (out, d) = explain(&rec, "2025-06-01T00:00:00Z");
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(d, "no alert: exempt by policy.exempt[0] (trail migration)");
    // Judged at the event's own time (2024) it is exempt too.
    let (_, d) = explain(&rec, "event");
    assert_eq!(d, "no alert: exempt by policy.exempt[0] (trail migration)");
}

#[test]
fn explain_expired_exemption_alerts() {
    let (out, d) = explain(
        &record("ee73c230-44bc-4492-8542-cfb189eae287"),
        "2030-01-02T00:00:00Z",
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(d.starts_with("ALERT (high): DeleteTrail"), "{d}");
    assert!(
        out.stdout.contains("would match but expired on 2030-01-01"),
        "{}",
        out.show()
    );
}

/// Issue 27, case 7: `aws cloudtrail lookup-events` output (each record a JSON string in
/// `CloudTrailEvent`) is read by content, by `replay` and `explain`. Failed before: "unknown
/// envelope", exit 1.
#[test]
fn lookup_events_output_is_read() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = stratus();
    let lookup = json!({
        "Events": recs.iter().map(|r| json!({
            "EventId": id_of(r), "EventName": parse(r)["eventName"], "ReadOnly": "false",
            "Resources": [], "CloudTrailEvent": r
        })).collect::<Vec<_>>(),
        "NextToken": "abc"
    });
    let input = t.write(
        "lookup.json",
        serde_json::to_string_pretty(&lookup).unwrap(),
    );
    let out = replay(&cfg, &[&input]);
    assert_clean(&out, recs.len() as u64, &expected_alerts(&recs));
    let one = json!({"Events": [{"EventId": "x", "CloudTrailEvent": record(GOOD_A)}]});
    let ev = t.write("one.json", one.to_string());
    let out = run(["explain", "--config", &s(&cfg), "--event", &s(&ev)]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains(&format!("event {GOOD_A}")),
        "{}",
        out.show()
    );
    // An entry without the string is a dead letter with its position.
    let dl = t.path("dl.jsonl");
    let bad = t.write(
        "bad.json",
        json!({"Events": [{"EventId": "x"}]}).to_string(),
    );
    let out = replay_dl(&cfg, &dl, &[&bad, &ev]);
    assert_eq!(out.code, 3, "{}", out.show());
    assert_eq!(t.dead_letters(&dl)[0]["path"], "Events[0]");
}

/// A session of the role `BreakGlass` as CloudTrail writes it (a real Stratus record whose
/// identity is renamed): the `sts` session ARN, with the `iam` role ARN as its session issuer.
fn break_glass_session() -> String {
    with_fields(
        &record("8452e2fb-1252-460b-8f58-d3f5333c2630"),
        json!({"awsRegion": "ap-south-2", "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROA2N7TQQRGKJYPCLOG0:alice",
            "arn": "arn:aws:sts::494659789341:assumed-role/BreakGlass/alice",
            "accountId": "494659789341",
            "sessionContext": {"sessionIssuer": {
                "type": "Role",
                "principalId": "AROA2N7TQQRGKJYPCLOG0",
                "arn": "arn:aws:iam::494659789341:role/BreakGlass",
                "accountId": "494659789341",
                "userName": "BreakGlass"
            }}
        }}),
    )
}

/// Issue 27, case 1: the shipped exemption `principal = "arn:aws:iam::*:role/BreakGlass*"` (the
/// role ARN that IAM shows) exempts that role's sessions, which CloudTrail names with `sts` ARNs.
/// Failed on the code before (`=> ALERT (high)`, no word on the exemption).
#[test]
fn shipped_role_exemption_applies_to_the_roles_sessions() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trailwatch.toml");
    let t = Tmp::new();
    let explain_at = |rec: &str| {
        let ev = t.write("event.json", rec);
        run([
            "explain",
            "--config",
            &s(&example),
            "--event",
            &s(&ev),
            "--at",
            "2026-12-01T00:00:00Z",
        ])
    };
    let out = explain_at(&break_glass_session());
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout
            .contains("=> no alert: exempt by policy.exempt[0] (incident response)"),
        "{}",
        out.show()
    );
    assert!(
        out.stdout
            .contains("exemption:      policy.exempt[0] applies (incident response)"),
        "{}",
        out.show()
    );
    // Every other exemption says which key missed.
    assert!(
        out.stdout.contains("policy.exempt[1] does not apply: principal arn:aws:sts::494659789341:assumed-role/BreakGlass/alice (a session of role arn:aws:iam::494659789341:role/BreakGlass) matches none of its patterns"),
        "{}",
        out.show()
    );
    // Another role's session in the same region still alerts, and says why no exemption held.
    let other = break_glass_session().replace("BreakGlass", "Deployer");
    let out = explain_at(&other);
    assert!(out.stdout.contains("=> ALERT (high)"), "{}", out.show());
    assert!(
        out.stdout
            .contains("policy.exempt[0] does not apply: principal"),
        "{}",
        out.show()
    );
    // replay agrees: the BreakGlass session raises nothing, the other alerts.
    let input = t.write(
        "both.jsonl",
        jsonl(&[break_glass_session(), other.replace("8452e2fb", "9452e2fb")]),
    );
    let cfg = t.config(
        &std::fs::read_to_string(&example)
            .unwrap()
            .replace("include_rules = [\"rules/cis.toml\"]", ""),
    );
    let out = replay(&cfg, &[&input]);
    let alerted: Vec<String> = out
        .alerts()
        .iter()
        .filter(|a| a["rule"] == "unapproved-region")
        .map(|a| a["principal"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        alerted,
        ["arn:aws:sts::494659789341:assumed-role/Deployer/alice"],
        "{}",
        out.show()
    );
}

/// Issue 27, case 1: `validate` names a principal pattern no CloudTrail principal can have, with
/// its key path and what to write. Failed before (exit 0, nothing said).
#[test]
fn validate_refuses_principal_patterns_no_record_can_match() {
    let t = Tmp::new();
    let cfg = t.config(
        r#"
[policy]
approved_regions = ["us-east-1"]

[[policy.exempt]]
principal = "arn:aws:sts::*:role/BreakGlass"
reason = "a role written as a session"

[[policy.exempt]]
principal = ["arn:aws:iam::*:role/Ok", "arn:aws:iam::111122223333:assumed-role/Admin/*"]
reason = "a session written as a role"

[[policy.exempt]]
principal = "arn:aws-china:iam::*:role/X"
reason = "no such partition"

[[policy.exempt]]
principal = "arn:aws:iam:role/X"
reason = "malformed"
"#,
    );
    let out = run(["validate", "--config", &s(&cfg)]);
    assert_eq!(out.code, 2, "{}", out.show());
    let errors = problem_lines(&out, "error");
    assert_eq!(errors.len(), 4, "{}", out.show());
    assert_problem(
        &errors,
        &s(&cfg),
        "policy.exempt[0].principal",
        &["never a role", "arn:aws:iam::*:role/BreakGlass"],
    );
    assert_problem(
        &errors,
        &s(&cfg),
        "policy.exempt[1].principal[1]",
        &["arn:aws:sts::111122223333:assumed-role/Admin/*"],
    );
    assert_problem(
        &errors,
        &s(&cfg),
        "policy.exempt[2].principal",
        &["partition"],
    );
    assert_problem(
        &errors,
        &s(&cfg),
        "policy.exempt[3].principal",
        &["not an ARN"],
    );
}

/// `explain --at event` judges exemptions at "the event's own time, as replay does": replay must
/// then not depend on the order of its input. A DeleteTrail made while its exemption was active
/// stays exempt even when a later event (after the expiry) was read first.
#[test]
fn replay_judges_exemptions_at_each_events_own_time() {
    let t = Tmp::new();
    let cfg = t.config(
        r#"
[policy]
approved_regions = ["us-east-1"]

[[policy.exempt]]
event_name = "DeleteTrail"
reason = "trail migration"
expires = "2024-08-01"
"#,
    );
    let exempt = record("ee73c230-44bc-4492-8542-cfb189eae287"); // DeleteTrail, 2024-07-31
    let later = record("865d9377-9c6b-4fd7-8aad-725e95f6a140"); // ConsoleLogin, 2024-08-02
    let ev = t.write("event.json", &exempt);
    let out = run([
        "explain",
        "--config",
        &s(&cfg),
        "--event",
        &s(&ev),
        "--at",
        "event",
    ]);
    assert!(
        out.stdout
            .contains("=> no alert: exempt by policy.exempt[0]"),
        "{}",
        out.show()
    );
    let want = set(&["865d9377-9c6b-4fd7-8aad-725e95f6a140"]);
    let in_order = t.write("in-order.jsonl", jsonl(&[&exempt, &later]));
    let out = replay(&cfg, &[&in_order]);
    assert_clean(&out, 2, &want);
    let reordered = t.write("reordered.jsonl", jsonl(&[&later, &exempt]));
    let out = replay(&cfg, &[&reordered]);
    assert_clean(&out, 2, &want);
}

// ============================================================================================
// 7. --include-event

#[test]
fn include_event_carries_the_original_record() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = stratus();
    // Through an envelope, so `event` must be the inner record, not the envelope.
    let input = t.write("cwl.gz", gz(cwl_data(&recs).as_bytes()));
    let out = run([
        "replay",
        "--config",
        &s(&cfg),
        "--include-event",
        &s(&input),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    let alerts = out.alerts();
    assert_eq!(alerts.len(), STRATUS_ALERTING.len(), "{}", out.show());
    for a in &alerts {
        let id = a["event_id"].as_str().unwrap();
        assert_eq!(a["event"]["eventID"], id, "{a}");
        assert_eq!(
            a["event"],
            parse(&record(id)),
            "event differs from the original for {id}"
        );
    }
    // Without the flag, no `event`.
    let out = replay(&cfg, &[&input]);
    assert!(
        out.alerts().iter().all(|a| a.get("event").is_none()),
        "{}",
        out.show()
    );
}

// ============================================================================================
// 8. The bundled example

#[test]
fn bundled_example_replays() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = replay(
        &root.join("examples/trailwatch.toml"),
        &[root.join("examples/org-sample.jsonl.gz")],
    );
    assert_eq!(out.code, 0, "{}", out.show());
    let alerts = out.alerts();
    assert!(!alerts.is_empty(), "{}", out.show());
    let sum = out.summary();
    assert_eq!(sum.events, 434, "{}", out.show());
    assert_eq!(sum.dead_letters, 0, "{}", out.show());
    // The example config includes the CIS rules: their alerts are exactly what each rule's
    // pattern matches among the sample's distinct events.
    let (region, rest): (Vec<&Value>, Vec<&Value>) = alerts
        .iter()
        .partition(|a| a["rule"] == "unapproved-region");
    // The example's two first-seen rules: the sample spans years, so a few keys have learnt.
    let (first_seen, cis): (Vec<&Value>, Vec<&Value>) = rest
        .into_iter()
        .partition(|a| a["rule"].as_str().unwrap().starts_with("first-seen:"));
    assert!(!first_seen.is_empty(), "{}", out.show());
    for a in &first_seen {
        let f = &a["first_seen"];
        let since = trailwatch::event::parse_utc_secs(f["key_known_since"].as_str().unwrap());
        let at = trailwatch::event::parse_utc_secs(a["event_time"].as_str().unwrap());
        assert!(
            at.unwrap() - since.unwrap() >= 14 * 86_400,
            "learn_for (14d) holds: {a}"
        );
        assert_eq!(a["region"], f["value"], "{a}");
        assert!(
            !f["values_known"].as_array().unwrap().contains(&f["value"]),
            "{a}"
        );
    }
    let text = {
        let gz = std::fs::read(root.join("examples/org-sample.jsonl.gz")).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut s)
            .unwrap();
        s
    };
    let mut seen = BTreeSet::new();
    let events: Vec<&str> = text
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            seen.insert(v["eventID"].as_str().unwrap().to_string())
        })
        .collect();
    let rules: toml::Table = std::fs::read_to_string(root.join("examples/rules/cis.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let mut expected_cis = 0;
    for rule in rules["rules"].as_array().unwrap() {
        let p = trailwatch::filter::Pattern::parse(rule["filter"].as_str().unwrap()).unwrap();
        expected_cis += events.iter().filter(|e| p.matches_message(e)).count();
    }
    assert!(expected_cis > 0);
    assert_eq!(cis.len(), expected_cis, "{}", out.show());
    assert_eq!(sum.alerts as usize, alerts.len());
    for a in &cis {
        assert!(a["rule"].as_str().unwrap().starts_with("cis-"), "{a}");
        assert!(a["title"].as_str().is_some_and(|t| !t.is_empty()), "{a}");
    }
    // examples/SOURCES.md: 20 unique readOnly:false records in unapproved regions.
    assert_eq!(region.len(), 20, "{}", out.show());
    let mut alert_ids = BTreeSet::new();
    for a in alerts.iter().filter(|a| a["rule"] == "unapproved-region") {
        let obj = a.as_object().unwrap();
        for f in ALERT_FIELDS {
            assert!(obj.contains_key(f), "alert lacks {f}: {a}");
        }
        assert!(!obj.contains_key("event"), "{a}");
        let id = a["alert_id"].as_str().unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{a}"
        );
        assert!(alert_ids.insert(id.to_string()), "alert_id {id} repeated");
        assert_eq!(a["rule"], "unapproved-region");
        assert!(
            ["high", "medium"].contains(&a["severity"].as_str().unwrap()),
            "{a}"
        );
        for f in [
            "event_id",
            "event_time",
            "account",
            "region",
            "event_source",
            "event_name",
            "policy_level",
            "reason",
        ] {
            assert!(
                a[f].as_str().is_some_and(|v| !v.is_empty()),
                "{f} empty: {a}"
            );
        }
        assert_eq!(a["read_only"], false, "{a}");
        let approved: Vec<&str> = a["approved_regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(!approved.contains(&a["region"].as_str().unwrap()), "{a}");
    }
}

#[test]
fn config_from_an_environment_variable() {
    let text = "[policy]\napproved_regions = [\"us-east-1\"]\n";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["validate", "--config", "env:TW_TEST_CONFIG"])
        .env("TW_TEST_CONFIG", text)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["validate", "--config", "env:TW_TEST_CONFIG_UNSET"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("the environment variable TW_TEST_CONFIG_UNSET is not set"),
        "{text}"
    );
}

// ============================================================================================
// Issue 27: the one rule for incomplete runs, as a property

/// What one generated replay holds, and so what its summary must say.
#[derive(Debug, Clone)]
struct Mix {
    /// Distinct Stratus records, each with how many extra copies (duplicates) follow it.
    good: Vec<(usize, usize)>,
    /// Lines that are not JSON.
    bad: usize,
    /// Lines over `max_document_bytes`.
    long: usize,
    /// CloudWatch Logs control messages (not CloudTrail: skipped).
    control: usize,
    /// Paths that do not exist.
    missing: usize,
    gzip: bool,
    allow: bool,
}

fn mix() -> impl proptest::strategy::Strategy<Value = Mix> {
    use proptest::prelude::*;
    (
        proptest::collection::vec((0usize..20, 0usize..3), 0..6),
        0usize..3,
        0usize..3,
        0usize..3,
        0usize..3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut good, bad, long, control, missing, gzip, allow)| {
            good.sort();
            good.dedup_by_key(|g| g.0);
            Mix {
                good,
                bad,
                long,
                control,
                missing,
                gzip,
                allow,
            }
        })
}

/// The accounting line: `records: N = U unique events + D duplicates + L dead letters + S skipped`.
fn accounting(stderr: &str) -> [u64; 5] {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("trailwatch replay: records: "))
        .unwrap_or_else(|| panic!("no accounting line:\n{stderr}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    [n[0], n[1], n[2], n[3], n[4]]
}

/// Whatever is cut, skipped or unread, `replay` does not exit 0 without `--allow-incomplete`,
/// says so, and its counts add up to the records it was given: records = unique events +
/// duplicates + dead letters + skipped, each as generated.
#[test]
fn incomplete_runs_never_exit_0_unless_accepted_and_the_counts_add_up() {
    use proptest::test_runner::{Config, TestRunner};
    let recs = stratus();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&mix(), |m| {
            let t = Tmp::new();
            let cfg = t.config(&format!(
                "{TEST_CONFIG}\n[decode]\nmax_document_bytes = 4096\n"
            ));
            let mut lines = Vec::new();
            for &(i, copies) in &m.good {
                for _ in 0..=copies {
                    lines.push(recs[i].clone());
                }
            }
            // Interleaved, so no kind is only at the start or the end.
            for k in 0..m.bad.max(m.long).max(m.control) {
                let at = (k * 3 + 1).min(lines.len());
                if k < m.bad {
                    lines.insert(at, "{\"eventID\": 1,,}".to_string());
                }
                if k < m.long {
                    lines.insert(at, format!("{{\"pad\":\"{}\"}}", "x".repeat(5000)));
                }
                if k < m.control {
                    lines.insert(at, cwl_control());
                }
            }
            let text = jsonl(&lines);
            let input = match m.gzip {
                true => t.write("in.jsonl.gz", gz(text.as_bytes())),
                false => t.write("in.jsonl", text),
            };
            let mut args = vec!["replay".to_string(), "--config".into(), s(&cfg)];
            if m.allow {
                args.push("--allow-incomplete".into());
            }
            args.push(s(&input));
            for k in 0..m.missing {
                args.push(s(&t.path(&format!("missing-{k}.jsonl"))));
            }
            let out = run(&args);
            let unique = m.good.len() as u64;
            let dups: u64 = m.good.iter().map(|g| g.1 as u64).sum();
            let dead = (m.bad + m.long) as u64;
            let skipped = m.control as u64;
            let [records, u, d, l, sk] = accounting(&out.stderr);
            proptest::prop_assert_eq!(
                [records, u, d, l, sk],
                [unique + dups + dead + skipped, unique, dups, dead, skipped],
                "{:?}\n{}",
                m,
                out.show()
            );
            let incomplete = dead + m.missing as u64 > 0;
            let nothing = unique + dups + skipped == 0;
            let want = match (incomplete, nothing, m.allow) {
                (true, true, _) => 1,
                (true, false, false) => 3,
                _ => 0,
            };
            proptest::prop_assert_eq!(out.code, want, "{:?}\n{}", m, out.show());
            proptest::prop_assert_eq!(
                out.stderr.contains("INCOMPLETE"),
                incomplete && !nothing,
                "{:?}\n{}",
                m,
                out.show()
            );
            Ok(())
        })
        .unwrap();
}

/// Issue 27: a full dedup window is a limit hit: replay says how many ids it forgot before
/// their TTL, and exits 3 (0 with --allow-incomplete).
#[test]
fn a_full_dedup_window_makes_the_run_incomplete() {
    let t = Tmp::new();
    let cfg = t.config(&format!("{TEST_CONFIG}\n[dedup]\nmax_event_ids = 5\n"));
    // 20 events within one minute: every id is still within the 2 h TTL when the 6th comes.
    let recs: Vec<String> = stratus()
        .iter()
        .enumerate()
        .map(|(i, r)| with_fields(r, json!({"eventTime": format!("2024-07-31T12:00:{i:02}Z")})))
        .collect();
    let input = t.write("x.jsonl", jsonl(&recs));
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 3, "{}", out.show());
    assert!(
        out.stderr
            .contains("15 event ids forgotten before their TTL (dedup.max_event_ids)"),
        "{}",
        out.show()
    );
    let flag = std::path::Path::new("--allow-incomplete");
    let out = replay(&cfg, &[input.as_path(), flag]);
    assert_eq!(out.code, 0, "{}", out.show());
}

/// Issue 28, item 3: one record dated 2099 among real records moves no state clock in
/// `replay`: the run gives the same duplicates and the same alerts as without it, wherever it
/// sits in the input (before, every id before it expired: the redeliveries after it were no
/// longer duplicates and alerted again).
/// The records of years apart (2020, 2024, and copies a year and two years on), each
/// delivered twice, in the order written and in shuffled orders: the same alerts, the same
/// duplicates. Before, the second copy of a record the event clock had passed by more than
/// the 7-day alert-id TTL alerted again, and which copies did depended on the order.
#[test]
fn replay_output_does_not_depend_on_the_order_of_the_input() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let mut recs = all_records();
    for (year, tag) in [(1, "a"), (2, "b")] {
        for (j, line) in stratus().iter().enumerate() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            let time = v["eventTime"].as_str().unwrap().to_string();
            let y: i32 = time[..4].parse().unwrap();
            v["eventTime"] = format!("{}{}", y + year, &time[4..]).into();
            v["eventID"] = format!("{tag}0000000-0000-4000-8000-{j:012}").into();
            recs.push(v.to_string());
        }
    }
    let mut twice = recs.clone();
    twice.extend(recs.iter().cloned());
    let run_order = |order: &[String], name: &str| {
        let input = t.write(name, jsonl(order));
        let out = replay(&cfg, &[&input]);
        assert_eq!(out.code, 0, "{}", out.show());
        let mut alerts: Vec<String> = out.alerts().iter().map(|a| a.to_string()).collect();
        alerts.sort();
        (out.summary(), alerts, out)
    };
    let (sum, alerts, out) = run_order(&twice, "written.jsonl");
    assert_eq!(sum.duplicates, recs.len() as u64, "{}", out.show());
    assert!(alerts.len() >= 20, "{}", out.show());
    let ids: BTreeSet<String> = out
        .alerts()
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), alerts.len(), "an alert twice: {}", out.show());
    // A small deterministic shuffle (Fisher-Yates on a linear congruential generator).
    for seed in [1u64, 7, 42, 1234] {
        let mut order = twice.clone();
        let mut x = seed;
        for i in (1..order.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        let (s, a, out) = run_order(&order, &format!("shuffled{seed}.jsonl"));
        assert_eq!(s.duplicates, sum.duplicates, "seed {seed}: {}", out.show());
        assert_eq!(a, alerts, "seed {seed}: {}", out.show());
    }
}

#[test]
fn one_far_future_event_time_does_not_jump_the_replay_clock() {
    let t = Tmp::new();
    let cfg = t.test_config();
    let recs = stratus();
    // A read-only record: it raises nothing itself.
    let future = with_fields(
        &record("bddee0fb-2541-430d-aad5-b1fdd5d419f1"),
        json!({"eventID": "from-2099", "eventTime": "2099-01-01T00:00:00Z"}),
    );
    assert!(expected_alerts(std::slice::from_ref(&future)).is_empty());
    let run_order = |order: &[String], name: &str| {
        let input = t.write(name, jsonl(order));
        let out = replay(&cfg, &[&input]);
        assert_eq!(out.code, 0, "{}", out.show());
        out
    };
    // The records, then the last five delivered again (within the dedup TTL of each other).
    let mut base = recs.clone();
    base.extend(recs[recs.len() - 5..].iter().cloned());
    let without = run_order(&base, "base.jsonl");
    assert_eq!(without.summary().duplicates, 5, "{}", without.show());
    for at in [0, 7, recs.len(), base.len()] {
        let mut order = base.clone();
        order.insert(at, future.clone());
        let out = run_order(&order, &format!("at{at}.jsonl"));
        assert_eq!(
            out.summary().duplicates,
            5,
            "2099 at {at}: the redeliveries are still duplicates: {}",
            out.show()
        );
        assert_eq!(
            out.alerts(),
            without.alerts(),
            "2099 at {at}: {}",
            out.show()
        );
    }
}

/// The README's quickstart does what it says: its policy validates, `explain` judges the
/// fixture's events with it, and `replay` of the bundled sample raises alerts.
#[test]
fn the_readme_quickstart_runs_as_written() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quick = &readme[readme.find("## Quickstart").expect("a Quickstart section")..];
    let toml = quick
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block in the quickstart");
    let t = Tmp::new();
    let cfg = t.write("my.toml", toml);
    let cfg = cfg.display().to_string();
    let out = run(["validate", "--config", &cfg]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("1 accounts") || out.stderr.contains("1 accounts"),
        "{}",
        out.show()
    );
    let fixture = root.join("tests/fixtures/stratus_sample.jsonl");
    let out = run([
        "explain",
        "--config",
        &cfg,
        "--event",
        &fixture.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("raises:         unapproved-region"),
        "{}",
        out.show()
    );
    assert!(
        out.stdout.contains("policy.exempt[0] does not apply"),
        "{}",
        out.show()
    );
    let sample = root.join("examples/org-sample.jsonl.gz");
    let out = run(["replay", "--config", &cfg, &sample.display().to_string()]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.summary().alerts > 0, "{}", out.show());
}
