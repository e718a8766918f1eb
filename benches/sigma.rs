//! The per-event cost of SigmaHQ's 57 CloudTrail rules (rules/sigma/sigmahq/), over the 30
//! fixture records (Stratus Red Team and OTRF), cycled:
//! - `decode_only`: the decoder's parse into an `Event` (paid by every rule kind);
//! - `sigmahq_57_rules`: decode, then the rules as the pipeline runs them (the hot-field
//!   prefilter, the full parse only for what it cannot settle); the difference with
//!   `decode_only` is the Sigma cost;
//! - `sigmahq_114_rules`: the same rules twice, to show how the cost grows;
//! - `parse_only` and `without_prefilter`: the record parsed into a `serde_json::Value` and
//!   every rule's detection run on it (what the prefilter saves);
//! - `judge_57_rules` and `judge_57_rules_and_8_correlations`: decode, then the judge as the
//!   pipeline runs it (alerts built), with SigmaHQ's eight `unsupported/` rules added
//!   (rules/sigma/sigmahq-unsupported/: six Sigma 1 counts, two temporal correlations) and
//!   their windows fed: what correlations add.
//!
//! `cargo bench --bench sigma`

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trailwatch::decode::object;
use trailwatch::rules::sigma;

fn rules() -> Vec<sigma::Rule> {
    load("rules/sigma/sigmahq")
}

fn load(dir: &str) -> Vec<sigma::Rule> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
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
    g.bench_function("without_prefilter", |b| {
        b.iter(|| {
            let mut hits = 0;
            for r in &records {
                let v: serde_json::Value = serde_json::from_str(r).unwrap();
                hits += rules.iter().filter(|rule| rule.matches(&v)).count();
            }
            hits
        })
    });
    g.bench_function("decode_only", |b| {
        b.iter(|| {
            records
                .iter()
                .map(|r| object::parse(r).is_ok() as usize)
                .sum::<usize>()
        })
    });
    let twice: Vec<sigma::Rule> = rules.iter().chain(rules.iter()).cloned().collect();
    for (name, set) in [("sigmahq_57_rules", &rules), ("sigmahq_114_rules", &twice)] {
        g.bench_function(name, |b| {
            let mut hits = Vec::new();
            b.iter(|| {
                hits.clear();
                for r in &records {
                    let ev = object::parse(r).unwrap().event;
                    sigma::evaluate(set, &ev, &mut hits, &mut Default::default());
                }
                hits.len()
            })
        });
    }
    let mut with_correlations = rules.clone();
    with_correlations.extend(load("rules/sigma/sigmahq-unsupported"));
    let relinked = {
        // Linked as one set, as `sigma_rules` would load both folders.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for d in ["rules/sigma/sigmahq", "rules/sigma/sigmahq-unsupported"] {
            trailwatch::config::sigma::rule_files(&dir.join(d), &mut files).unwrap();
        }
        sigma::load_files(&files, &Default::default()).rules
    };
    assert_eq!(relinked.len(), with_correlations.len());
    for (name, set) in [
        ("judge_57_rules", rules.clone()),
        ("judge_57_rules_and_8_correlations", relinked),
    ] {
        let policy = trailwatch::rules::RegionPolicy::build(&Default::default());
        let judge = trailwatch::pipeline::Judge::new(policy, Default::default(), false)
            .with_sigma(set.clone());
        let mut windows = trailwatch::pipeline::correlate::Correlator::new(&set);
        g.bench_function(name, |b| {
            let mut scratch = trailwatch::pipeline::Scratch::default();
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                for r in &records {
                    let ev = object::parse(r).unwrap().event;
                    judge.judge(&ev, 1_700_000_000, &mut scratch, &mut out);
                    for h in scratch.hits.drain(..) {
                        out.extend(windows.hit(h));
                    }
                }
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
