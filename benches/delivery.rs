//! Delivery costs per item: each rendering (native JSON, OCSF, Slack Block Kit, SNS text) of
//! an alert carrying its CloudTrail record, and the spool (append with fsync per batch of 100,
//! then read back and commit), and the delivered-ids journal (one request's ids written, fsync'd
//! in batches; the lookup each item gets before it is sent).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trailwatch::alert::{Alert, Severity};
use trailwatch::item::Item;
use trailwatch::render;
use trailwatch::sink::destination::{render, Format};
use trailwatch::sink::journal::Journal;
use trailwatch::sink::spool::Spool;

fn item() -> Item {
    let record = include_str!("../tests/fixtures/stratus_sample.jsonl")
        .lines()
        .next()
        .unwrap_or("{}");
    let raw = serde_json::value::RawValue::from_string(record.to_string()).ok();
    Item::Siem(Alert {
        alert_id: format!("{:032x}", 7),
        rule: "unapproved-region".into(),
        title: "Activity in a region not approved for the account".into(),
        severity: Severity::High,
        event_id: Some("c64c4ded-ef03-4e5c-81eb-153b118d72f2".into()),
        event_time: Some("2024-07-30T21:53:13Z".into()),
        account: Some("111122223333".into()),
        account_name: Some("prod".into()),
        ou: Some("ou-ab12-prodeu".into()),
        region: Some("ap-southeast-3".into()),
        principal: Some("arn:aws:iam::111122223333:user/christophe".into()),
        principal_type: Some("IAMUser".into()),
        event_source: Some("iam.amazonaws.com".into()),
        event_name: Some("CreateAccessKey".into()),
        event_type: Some("AwsApiCall".into()),
        read_only: Some(false),
        source_ip: Some("211.9.16.253".into()),
        user_agent: Some("aws-cli/2".into()),
        error_code: None,
        reason: "CreateAccessKey (iam.amazonaws.com) by arn:aws:iam::111122223333:user/christophe in ap-southeast-3, which is not approved for account 111122223333 (prod).".into(),
        runbook: Some("https://wiki.example.com/runbooks/unapproved-region".into()),
        approved_regions: vec!["us-east-1".into()],
        policy_level: "organization".into(),
        ou_path: None,
        scp_exempt_principal: None,
        denied_by_scp: None,
        drift: None,
        last_event_time: None,
        silent_for: None,
        silent_for_seconds: None,
        lag: None,
        gap: None,
        first_seen: None,
        sigma: None,
        identity: None,
        console_url: None,
        origin_exemptions: Vec::new(),
        also: Vec::new(),
        event: raw,
    })
}

fn bench(c: &mut Criterion) {
    let it = item();
    let mut g = c.benchmark_group("render");
    g.throughput(Throughput::Elements(1));
    g.bench_function("native", |b| {
        b.iter(|| serde_json::to_vec(&render(Format::Native, &it, false)))
    });
    g.bench_function("ocsf", |b| {
        b.iter(|| serde_json::to_vec(&render(Format::Ocsf, &it, false)))
    });
    g.bench_function("slack", |b| {
        b.iter(|| serde_json::to_vec(&render::slack::message(&it)))
    });
    g.bench_function("sns_text", |b| {
        b.iter(|| (render::text::subject(&it), render::text::body(&it)))
    });
    g.bench_function("teams", |b| {
        b.iter(|| serde_json::to_vec(&render::teams::message(&it)))
    });
    g.bench_function("pagerduty", |b| {
        b.iter(|| serde_json::to_vec(&render::pagerduty::event(&it)))
    });
    g.bench_function("opsgenie", |b| {
        b.iter(|| serde_json::to_vec(&render::opsgenie::alert(&it)))
    });
    g.bench_function("asff", |b| {
        b.iter(|| render::asff::finding(&it, "999988887777", "us-east-1", "999988887777"))
    });
    g.finish();

    let dir = tempfile::tempdir().expect("tempdir");
    let payload = it.to_spool();
    let batch: Vec<Vec<u8>> = (0..100).map(|_| payload.clone()).collect();
    let mut spool = Spool::open(dir.path(), 8 << 20).expect("spool");
    let mut g = c.benchmark_group("spool");
    g.throughput(Throughput::Elements(100));
    g.bench_function("append_fsync_read_commit_100", |b| {
        b.iter(|| {
            spool.append(&batch, 0).expect("append");
            let back = spool.peek(100).expect("peek");
            spool.commit(back.len()).expect("commit");
        })
    });
    g.finish();

    // A journal at its default bound, full, as after a long run.
    let mut journal = Journal::open(&dir.path().join("delivered.ids"), 100_000).expect("journal");
    let mut next = 0u128;
    let mut ids = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                next += 1;
                format!("{:032x}", next.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            })
            .collect()
    };
    for _ in 0..1000 {
        let batch = ids(100);
        journal
            .record(batch.iter().map(String::as_str))
            .expect("record");
    }
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(10));
    g.bench_function("record_request_of_10", |b| {
        b.iter_batched(
            || ids(10),
            |batch| journal.record(batch.iter().map(String::as_str)),
            criterion::BatchSize::SmallInput,
        )
    });
    let probe = it.id();
    g.throughput(Throughput::Elements(1));
    g.bench_function("contains", |b| b.iter(|| journal.contains(&probe)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
