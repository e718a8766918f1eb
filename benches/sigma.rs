//! The per-event cost of SigmaHQ's 57 CloudTrail rules (rules/sigma/sigmahq/) as trailwatch
//! evaluates them today: the record parsed once into a `serde_json::Value`, then every rule's
//! detection on it. Over the 30 fixture records (Stratus Red Team and OTRF), cycled.
//!
//! `cargo bench --bench sigma`

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trailwatch::rules::sigma;

fn rules() -> Vec<sigma::Rule> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma/sigmahq");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    let l = sigma::load_files(&files, &Default::default());
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l.rules
}

fn records() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    ["stratus_sample.jsonl", "otrf_sample.jsonl"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(root.join(f))
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    assert_eq!(rules.len(), 57);
    let records = records();
    let mut g = c.benchmark_group("sigma");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            records
                .iter()
                .map(|r| serde_json::from_str::<serde_json::Value>(r).is_ok() as usize)
                .sum::<usize>()
        })
    });
    g.bench_function("sigmahq_57_rules", |b| {
        b.iter(|| {
            let mut hits = 0;
            for r in &records {
                let v: serde_json::Value = serde_json::from_str(r).unwrap();
                hits += rules.iter().filter(|rule| rule.matches(&v)).count();
            }
            hits
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
