//! Dedup by eventID: the ordered single-thread set that backtest, replay and the live roads
//! use (the stage after the parallel decode), against dashmap's concurrent set filled from
//! one and from two threads. 1,000,000 ids, 5% of them twice.
//!
//! `cargo bench --bench dedup`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dashmap::DashSet;
use trailwatch::pipeline::dedup::{key, Dedup};

const N: usize = 1_000_000;

fn keys() -> Vec<u64> {
    let mut v: Vec<u64> = (0..N)
        .map(|i| key(&format!("{:08x}-3f1e-4bd2-9c1a-{:012x}", i * 7919, i)))
        .collect();
    for i in (0..N).step_by(20) {
        v[i] = v[i / 2];
    }
    v
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let mut g = c.benchmark_group("dedup");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("ordered_single_thread", |b| {
        b.iter_batched(
            || Dedup::new(7200, 2_000_000),
            |mut d| {
                let mut dup = 0;
                for &k in &keys {
                    dup += usize::from(!d.first_seen_key(k, 0));
                }
                dup
            },
            BatchSize::LargeInput,
        )
    });
    for threads in [1usize, 2] {
        g.bench_function(format!("dashmap_{threads}_threads"), |b| {
            b.iter_batched(
                DashSet::<u64>::new,
                |set| {
                    std::thread::scope(|s| {
                        for part in keys.chunks(N.div_ceil(threads)) {
                            let set = &set;
                            s.spawn(move || part.iter().filter(|k| !set.insert(**k)).count());
                        }
                    });
                    set.len()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
