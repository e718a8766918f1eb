//! First-seen baseline: recording a pair that is known (the hot path: almost every event), a
//! new pair, and the memory a million pairs take (printed: resident set growth per pair,
//! 200,000 role ARNs × 5 regions).
//!
//! `cargo bench --bench first_seen`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use trailwatch::firstseen::baseline::{Baseline, Learning};

const KEYS: usize = 200_000;
const REGIONS: [&str; 5] = [
    "us-east-1",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "us-west-2",
];

fn principal(i: usize) -> String {
    format!(
        "arn:aws:iam::{:012}:role/deploy-pipeline-{i:06}",
        100_000_000_000u64 + (i as u64 % 1000)
    )
}

/// One rule (14 days to learn, 90 to forget), room for two million pairs.
fn baseline() -> Baseline {
    Baseline::new(vec![("r".into(), Learning::days(14, 90))], 2_000_000)
}

fn filled(keys: &[String]) -> Baseline {
    let mut b = baseline();
    for (i, k) in keys.iter().enumerate() {
        for (j, r) in REGIONS.iter().enumerate() {
            b.observe(0, k, r, (i * 5 + j) as i64);
        }
    }
    b
}

/// Resident memory, bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn bench(c: &mut Criterion) {
    let keys: Vec<String> = (0..KEYS).map(principal).collect();
    let before = rss();
    let full = filled(&keys);
    let grown = rss().saturating_sub(before);
    println!(
        "first_seen/memory: {} pairs, {} keys: {:.1} MiB resident, {:.0} bytes per pair ({:.0} MiB per million pairs)",
        full.pairs(),
        full.keys(),
        grown as f64 / 1048576.0,
        grown as f64 / full.pairs() as f64,
        grown as f64 / full.pairs() as f64 * 1e6 / 1048576.0
    );
    let mut g = c.benchmark_group("first_seen");
    g.sample_size(10);
    g.throughput(Throughput::Elements(KEYS as u64));
    g.bench_function("known_pair", |b| {
        let mut base = filled(&keys);
        let mut t = 10_000_000i64;
        b.iter(|| {
            t += 1;
            let mut new = 0;
            for k in &keys {
                new += usize::from(base.observe(0, k, "eu-west-1", t).is_some());
            }
            new
        })
    });
    g.bench_function("new_key", |b| {
        b.iter_batched(
            baseline,
            |mut base| {
                for (i, k) in keys.iter().enumerate() {
                    base.observe(0, k, "us-east-1", i as i64);
                }
                base
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
    drop(full);
}

criterion_group!(benches, bench);
criterion_main!(benches);
