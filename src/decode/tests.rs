use std::io::Write;

use base64::Engine as _;
use flate2::{write::GzEncoder, Compression};
use proptest::prelude::*;

use super::*;

const REC: &str = r#"{"eventVersion":"1.08","eventID":"11111111-0000-0000-0000-000000000001","eventName":"RunInstances","eventSource":"ec2.amazonaws.com","awsRegion":"sa-east-1","readOnly":false,"recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"}}"#;

fn rec(id: u32) -> String {
    REC.replace("000000000001", &format!("{id:012}"))
}

#[derive(Default)]
struct Collect {
    ids: Vec<String>,
    raws: Vec<String>,
    dead: Vec<DeadLetter>,
    control: usize,
    skipped: Vec<Skip>,
    transport: usize,
}

impl Visit for Collect {
    fn event(&mut self, ev: Event<'_>, _pos: &Position) {
        self.ids.push(ev.event_id().unwrap_or("-").to_string());
        self.raws.push(ev.raw.to_string());
    }
    fn dead_letter(&mut self, dead: DeadLetter) {
        self.dead.push(dead);
    }
    fn control_message(&mut self, _pos: &Position) {
        self.control += 1;
    }
    fn skipped(&mut self, why: Skip, _pos: &Position) {
        self.skipped.push(why);
    }
    fn transport_record(&mut self, _pos: &Position) {
        self.transport += 1;
    }
}

fn decode_with(limits: Limits, data: &[u8]) -> Collect {
    let mut c = Collect::default();
    Decoder::new(limits).decode(data, &mut Position::new("test"), &mut c);
    c
}

fn decode(data: &[u8]) -> Collect {
    decode_with(Limits::default(), data)
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
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

fn id(n: u32) -> String {
    format!("11111111-0000-0000-0000-{n:012}")
}

#[test]
fn plain_record_keeps_its_raw_text() {
    let c = decode(REC.as_bytes());
    assert_eq!(c.ids, [id(1)]);
    assert_eq!(c.raws, [REC]);
    assert!(c.dead.is_empty());
}

#[test]
fn s3_log_file_and_bare_array() {
    let file = format!(r#"{{"Records":[{},{}]}}"#, rec(1), rec(2));
    assert_eq!(decode(file.as_bytes()).ids, [id(1), id(2)]);
    assert_eq!(decode(&gz(file.as_bytes())).ids, [id(1), id(2)]);
    let arr = format!("[{}, {}]", rec(3), rec(4));
    assert_eq!(decode(arr.as_bytes()).ids, [id(3), id(4)]);
}

#[test]
fn cloudwatch_logs_envelope_and_control_message() {
    let c = decode(&cwl(&[rec(1), rec(2), rec(3)]));
    assert_eq!(c.ids, [id(1), id(2), id(3)]);
    let control = gz(br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":0,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}"#);
    let c = decode(&control);
    assert_eq!((c.ids.len(), c.control, c.dead.len()), (0, 1, 0));
    let odd = gz(br#"{"messageType":"WHATEVER","logEvents":[]}"#);
    let c = decode(&odd);
    assert!(c.dead[0].reason.contains("messageType"), "{:?}", c.dead);
}

#[test]
fn log_events_before_message_type_are_still_read() {
    let env = serde_json::json!({"logEvents": [{"id": "1", "timestamp": 1, "message": rec(1)},
        {"message": rec(2), "id": "2"}], "messageType": "DATA_MESSAGE", "owner": "1"});
    let c = decode(env.to_string().as_bytes());
    assert_eq!(c.ids, [id(1), id(2)]);
    // And in AWS's order, a log event without a message is an error for the envelope.
    let bad = r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1"}]}"#;
    let c = decode(bad.as_bytes());
    assert!(
        c.dead[0].reason.contains("missing field `message`"),
        "{}",
        c.dead[0].reason
    );
    let bad = r#"{"messageType":"DATA_MESSAGE","logEvents":[{"message":5}]}"#;
    let c = decode(bad.as_bytes());
    assert!(
        c.dead[0].reason.contains("field `logEvents`"),
        "{}",
        c.dead[0].reason
    );
}

#[test]
fn eventbridge_detail_is_the_record() {
    let eb = format!(
        r#"{{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"111122223333","time":"t","region":"sa-east-1","resources":[],"detail":{}}}"#,
        rec(7)
    );
    let c = decode(eb.as_bytes());
    assert_eq!(c.ids, [id(7)]);
    assert_eq!(c.raws, [rec(7)]);
    let signin = eb.replace("AWS API Call", "AWS Console Sign In");
    assert_eq!(decode(signin.as_bytes()).ids, [id(7)]);
    let other =
        r#"{"detail-type":"EC2 Instance State-change Notification","detail":{"state":"running"}}"#;
    let c = decode(other.as_bytes());
    assert_eq!(
        (c.ids.len(), c.skipped.as_slice()),
        (0, &[Skip::NotCloudTrail][..])
    );
}

#[test]
fn kpl_aggregate_of_cloudwatch_envelopes() {
    let a = cwl(&[rec(1), rec(2)]);
    let b = cwl(&[rec(3)]);
    let agg = kpl::aggregate(&[("pk1", &a), ("pk2", &b)]);
    assert_eq!(decode(&agg).ids, [id(1), id(2), id(3)]);
    // A bad MD5 means a plain record, which is then not JSON: a dead letter, not a panic.
    let mut bad = agg.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let c = decode(&bad);
    assert!(c.ids.is_empty() && c.dead.len() == 1);
}

#[test]
fn transport_dumps_carry_base64_payloads() {
    let data = b64(&cwl(&[rec(1), rec(2)]));
    let plain = b64(rec(3).as_bytes());
    let get_records = format!(
        r#"{{"Records":[{{"SequenceNumber":"4900","Data":"{data}","PartitionKey":"p"}},{{"SequenceNumber":"4901","Data":"{plain}","PartitionKey":"p"}}],"NextShardIterator":null}}"#
    );
    let c = decode(get_records.as_bytes());
    assert_eq!((c.ids.clone(), c.transport), (vec![id(1), id(2), id(3)], 2));
    let lambda = format!(
        r#"{{"Records":[{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"p","sequenceNumber":"49","data":"{data}","approximateArrivalTimestamp":1.5}},"eventSource":"aws:kinesis"}}]}}"#
    );
    assert_eq!(decode(lambda.as_bytes()).ids, [id(1), id(2)]);
    let firehose = format!(
        r#"{{"requestId":"r","timestamp":1,"records":[{{"data":"{data}"}},{{"data":""}}]}}"#
    );
    let c = decode(firehose.as_bytes());
    assert_eq!((c.ids.len(), c.skipped.as_slice()), (2, &[Skip::Empty][..]));
    let transform = format!(
        r#"{{"invocationId":"i","region":"us-east-1","records":[{{"recordId":"1","approximateArrivalTimestamp":1,"data":"{plain}"}}]}}"#
    );
    assert_eq!(decode(transform.as_bytes()).ids, [id(3)]);
    let awslogs = format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#);
    assert_eq!(decode(awslogs.as_bytes()).ids, [id(1), id(2)]);
}

#[test]
fn dead_letters_carry_position_and_reason() {
    let good = b64(&cwl(&[rec(1)]));
    let bad_gzip = b64(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
    let dump = format!(
        r#"{{"Records":[{{"SequenceNumber":"10","Data":"{good}"}},{{"SequenceNumber":"11","Data":"{bad_gzip}"}},{{"SequenceNumber":"12","Data":"not base64!"}}]}}"#
    );
    let c = decode(dump.as_bytes());
    assert_eq!(c.ids, [id(1)]);
    assert_eq!(c.dead.len(), 2);
    assert_eq!(c.dead[0].sequence_number.as_deref(), Some("11"));
    assert_eq!(c.dead[0].path, "Records[1]/base64");
    assert!(
        c.dead[0].reason.starts_with("gzip:"),
        "{}",
        c.dead[0].reason
    );
    assert_eq!(c.dead[1].sequence_number.as_deref(), Some("12"));
    assert!(
        c.dead[1].reason.starts_with("base64:"),
        "{}",
        c.dead[1].reason
    );
    assert_eq!(c.dead[1].path, "Records[2]");
}

#[test]
fn kpl_sub_record_position_is_kept() {
    let agg = kpl::aggregate(&[("a", rec(1).as_bytes()), ("b", b"{\"Records\": 5}")]);
    let c = decode(&agg);
    assert_eq!(c.ids, [id(1)]);
    assert_eq!(c.dead[0].sub_sequence, Some(1));
    assert_eq!(c.dead[0].path, "kpl[1]");
    assert!(
        c.dead[0].reason.contains("field `Records`"),
        "{}",
        c.dead[0].reason
    );
}

#[test]
fn each_cause_is_a_dead_letter() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "JSON:"),
        (
            br#"{"eventID":"x","Records":"a"}"#.to_vec(),
            "field `Records`",
        ),
        (br#"{"foo":1}"#.to_vec(), "unknown envelope"),
        (b"\x00\x01binary".to_vec(), "unknown format"),
        (b"{\"eventID\":\"\xff\xfe\"}".to_vec(), "not UTF-8"),
        (
            format!("{}{}{}", "[".repeat(5000), rec(1), "]".repeat(5000)).into_bytes(),
            "nested deeper",
        ),
        (
            format!(
                r#"{{"eventID":"x","requestParameters":{}{}}}"#,
                "[".repeat(300),
                "]".repeat(300)
            )
            .into_bytes(),
            "nested 301 levels deep",
        ),
    ];
    for (data, want) in cases {
        let c = decode(&data);
        assert!(c.ids.is_empty(), "{want}");
        assert_eq!(c.dead.len(), 1, "{want}");
        assert!(
            c.dead[0].reason.contains(want),
            "{want}: {}",
            c.dead[0].reason
        );
        assert!(c.dead[0].size > 0 && c.dead[0].size <= data.len());
    }
}

#[test]
fn gzip_bomb_and_huge_record_are_capped() {
    let limits = Limits {
        max_decompressed_bytes: 64 << 10,
        max_event_bytes: 4096,
        ..Limits::default()
    };
    let bomb = gz(&vec![b' '; 1 << 20]);
    let c = decode_with(limits, &bomb);
    assert!(
        c.dead[0].reason.contains("exceeds 65536 bytes"),
        "{}",
        c.dead[0].reason
    );
    let huge = REC.replace(
        "\"readOnly\"",
        &format!("\"pad\":\"{}\",\"readOnly\"", "x".repeat(5000)),
    );
    let c = decode_with(limits, huge.as_bytes());
    assert!(
        c.dead[0].reason.contains("max_event_bytes"),
        "{}",
        c.dead[0].reason
    );
}

#[test]
fn nesting_is_bounded() {
    let mut data = rec(1).into_bytes();
    for _ in 0..20 {
        data = gz(&data);
    }
    let c = decode(&data);
    assert!(
        c.dead[0].reason.contains("nested deeper"),
        "{}",
        c.dead[0].reason
    );
    let limits = Limits {
        max_depth: 30,
        ..Limits::default()
    };
    assert_eq!(decode_with(limits, &data).ids, [id(1)]);
}

#[test]
fn json_depth_counts_only_real_brackets() {
    let deep_in_string = format!(r#"{{"eventID":"x","userAgent":"{}"}}"#, "[{".repeat(200));
    assert_eq!(decode(deep_in_string.as_bytes()).ids, ["x"]);
    let wide = format!(
        r#"{{"eventID":"x","requestParameters":[{}]}}"#,
        vec!["{}"; 500].join(",")
    );
    assert_eq!(decode(wide.as_bytes()).ids, ["x"]);
    let at_limit = format!(
        r#"{{"eventID":"x","r":{}{}}}"#,
        "[".repeat(99),
        "]".repeat(99)
    );
    assert_eq!(decode(at_limit.as_bytes()).ids, ["x"]);
    let escaped_quote = format!(
        r#"{{"eventID":"x","u":"\"{}","r":{}{}}}"#,
        "[".repeat(150),
        "[".repeat(101),
        "]".repeat(101)
    );
    assert!(decode(escaped_quote.as_bytes()).dead[0]
        .reason
        .contains("102 levels"));
}

#[test]
fn concatenated_objects_are_each_read() {
    let two = format!("{}{}", rec(1), rec(2));
    let c = decode(two.as_bytes());
    assert_eq!(c.ids, [id(1), id(2)]);
    assert_eq!(c.raws, [rec(1), rec(2)]);
    // Two gzip'd envelopes concatenated (Firehose to S3) inflate to two objects on one line.
    let mut gzs = cwl(&[rec(3)]);
    gzs.extend(cwl(&[rec(4)]));
    assert_eq!(decode(&gzs).ids, [id(3), id(4)]);
    let c = decode(format!("{} trailing", rec(5)).as_bytes());
    assert_eq!(c.ids, [id(5)]);
    assert_eq!(c.dead.len(), 1);
}

#[test]
fn digest_files_are_skipped() {
    let digest = r#"{"awsAccountId":"1","digestStartTime":"t","digestEndTime":"t","logFiles":[]}"#;
    let c = decode(digest.as_bytes());
    assert_eq!(
        (c.ids.len(), c.dead.len(), c.skipped.as_slice()),
        (0, 0, &[Skip::Digest][..])
    );
}

#[test]
fn escaped_strings_are_unescaped() {
    let text = r#"{"eventID":"e\u0031","eventName":"Put\"Thing","awsRegion":"us-east-1"}"#;
    let mut c = Collect::default();
    struct One(Option<String>);
    impl Visit for One {
        fn event(&mut self, ev: Event<'_>, _: &Position) {
            self.0 = ev.event_name().map(str::to_string);
        }
        fn dead_letter(&mut self, _: DeadLetter) {}
    }
    let mut one = One(None);
    Decoder::default().decode(text.as_bytes(), &mut Position::new("t"), &mut one);
    assert_eq!(one.0.as_deref(), Some("Put\"Thing"));
    Decoder::default().decode(text.as_bytes(), &mut Position::new("t"), &mut c);
    assert_eq!(c.ids, ["e1"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&data);
    }

    #[test]
    fn mutated_envelopes_never_panic(seed in any::<u64>(), flips in 1usize..8) {
        let good = format!(
            r#"{{"Records":[{{"SequenceNumber":"1","Data":"{}"}}]}}"#,
            b64(&cwl(&[rec(1), rec(2)]))
        );
        let mut data = good.into_bytes();
        let mut s = seed | 1;
        for _ in 0..flips {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            let i = (s as usize) % data.len();
            data[i] = (s >> 32) as u8;
        }
        let c = decode(&data);
        // Every record is accounted for: events, or a dead letter explaining why not.
        prop_assert!(c.ids.len() + c.dead.len() + c.skipped.len() + c.control > 0);
    }
}
