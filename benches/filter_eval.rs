//! Filter-pattern evaluation: the CIS rule set (examples/rules/cis.toml, 15 patterns) on the
//! bundled real records, per pattern-evaluation.
//!
//! - `rule_set`: trailwatch's path: hot fields first, a full parse only when a rule needs it.
//! - `full_parse`: parse each record into `serde_json::Value`, then every pattern on it
//!   (the naive design, for comparison).
//!
//! Throughput is in pattern-evaluations per second (events × patterns).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trailwatch::alert::Severity;
use trailwatch::decode::object;
use trailwatch::filter::Pattern;
use trailwatch::rules::custom::{EvalStats, RuleSet};

fn records() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    ["stratus_sample.jsonl", "otrf_sample.jsonl"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(format!("{dir}{f}"))
                .expect("fixture")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn patterns() -> Vec<Pattern> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rules/cis.toml");
    let table: toml::Table = std::fs::read_to_string(path)
        .expect("cis.toml")
        .parse()
        .expect("toml");
    table["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| Pattern::parse(r["filter"].as_str().expect("filter")).expect("pattern"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let recs = records();
    let pats = patterns();
    let mut set = RuleSet::default();
    for (i, p) in pats.iter().enumerate() {
        set.add(format!("r{i}"), "t".into(), Severity::High, None, p.clone());
    }
    let events: Vec<_> = recs
        .iter()
        .map(|r| object::parse(r).expect("record").event)
        .collect();
    let mut g = c.benchmark_group("filter_eval");
    g.throughput(Throughput::Elements((recs.len() * pats.len()) as u64));
    g.bench_function("rule_set", |b| {
        let (mut out, mut stats) = (Vec::new(), EvalStats::default());
        b.iter(|| {
            out.clear();
            for ev in &events {
                set.evaluate(ev, &mut out, &mut stats);
            }
            out.len()
        })
    });
    g.bench_function("full_parse", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &recs {
                let v: serde_json::Value = serde_json::from_str(r).expect("json");
                n += pats
                    .iter()
                    .filter(|p| p.as_json().is_some_and(|j| j.matches_value(&v)))
                    .count();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
