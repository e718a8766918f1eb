//! Shaping cost per alert: a flood on one key (aggregation), many keys (new windows and
//! limiter keys), and a flood over the rate limit (suppression into digests).

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use trailwatch::alert::{Alert, Severity};
use trailwatch::shaping::{Settings, Shaper};

fn alert(i: usize, principal: &str, account: &str) -> Alert {
    Alert {
        alert_id: format!("{i:032x}"),
        rule: "unapproved-region".into(),
        title: "Activity in a region not approved for the account".into(),
        severity: Severity::High,
        event_id: Some(format!("00000000-0000-4000-8000-{i:012}")),
        event_time: None,
        account: Some(account.into()),
        account_name: None,
        ou: None,
        region: Some("ap-southeast-3".into()),
        principal: Some(principal.into()),
        principal_type: Some("AssumedRole".into()),
        event_source: Some("ec2.amazonaws.com".into()),
        event_name: Some("RunInstances".into()),
        event_type: Some("AwsApiCall".into()),
        read_only: Some(false),
        source_ip: None,
        user_agent: None,
        error_code: None,
        reason: "RunInstances by a principal in ap-southeast-3, which is not approved.".into(),
        runbook: None,
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
        event: None,
    }
}

fn bench(c: &mut Criterion) {
    const N: usize = 5000;
    let one_key: Vec<Alert> = (0..N)
        .map(|i| alert(i, "arn:aws:sts::1:assumed-role/x/flood", "111122223333"))
        .collect();
    let many_keys: Vec<Alert> = (0..N)
        .map(|i| {
            alert(
                i,
                &format!("arn:aws:sts::1:assumed-role/x/s{i}"),
                "111122223333",
            )
        })
        .collect();
    let over_limit: Vec<Alert> = (0..N)
        .map(|i| {
            alert(
                i,
                "arn:aws:sts::1:assumed-role/x/flood",
                &format!("{:012}", i % 500),
            )
        })
        .collect();
    let mut g = c.benchmark_group("shaping");
    g.throughput(Throughput::Elements(N as u64));
    for (name, alerts) in [
        ("flood_one_key", &one_key),
        ("distinct_keys", &many_keys),
        ("over_rate_limit", &over_limit),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    (
                        Shaper::new(Settings::default(), HashMap::new()),
                        alerts.clone(),
                    )
                },
                |(mut sh, alerts)| {
                    let mut out = Vec::new();
                    for (i, a) in alerts.into_iter().enumerate() {
                        sh.push(a, 1_700_000_000 + (i / 10) as i64, &mut out);
                    }
                    sh.flush(&mut out);
                    out.len()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
