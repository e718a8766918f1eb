//! What one checkpoint costs with the dedup window full: 1,000,000 and 2,000,000 event ids
//! (plus 200,000 alert ids), the state of `run` or `serve` after a busy TTL.
//!
//! - `whole_json`: the ids written into the JSON state file on every checkpoint (how the
//!   state was saved before the id log; the same serde_json and atomic write).
//! - `append`: a steady checkpoint now: the 5,000 ids added since the last one (1,000
//!   events/s for a 5 s interval) appended to the id log, the small JSON rewritten.
//! - `rewrite`: the first checkpoint after a start, or a compaction: every id, a new
//!   generation of the log.
//!
//! Bytes written per checkpoint are printed once per case. `cargo bench --bench checkpoint`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use trailwatch::pipeline::PipelineSnapshot;
use trailwatch::state::{EngineSnapshot, StateFile};

fn ids(n: usize, from: u64) -> Vec<(u64, i64)> {
    (from..from + n as u64)
        .map(|i| {
            (
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                1_765_000_000 + (i / 1000) as i64,
            )
        })
        .collect()
}

fn snapshot(
    events: Vec<(u64, i64)>,
    alerts: Vec<(u64, i64)>,
    marks: (u64, u64),
    delta: bool,
    held: (usize, usize),
) -> EngineSnapshot {
    EngineSnapshot {
        pipeline: Some(PipelineSnapshot {
            event_ids: events,
            alert_ids: alerts,
            marks: Some(marks),
            delta,
            held,
            correlation: Default::default(),
            sessions: Vec::new(),
            first_seen: Vec::new(),
        }),
        ..EngineSnapshot::default()
    }
}

#[derive(serde::Serialize)]
struct WholeJson<'a> {
    stream: &'a str,
    event_ids: &'a [(u64, i64)],
    alert_ids: &'a [(u64, i64)],
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("checkpoint");
    g.sample_size(10);
    for n in [1_000_000usize, 2_000_000] {
        let events = ids(n, 0);
        let alerts = ids(200_000, 1 << 40);
        let dir = tempfile::tempdir().unwrap();

        let path = dir.path().join("whole.json");
        let write_whole = || {
            let mut bytes = serde_json::to_vec(&WholeJson {
                stream: "s",
                event_ids: &events,
                alert_ids: &alerts,
            })
            .unwrap();
            bytes.push(b'\n');
            trailwatch::atomic_file::write(&path, &bytes).unwrap();
            bytes.len()
        };
        eprintln!(
            "checkpoint/whole_json/{n}: {} bytes per checkpoint",
            write_whole()
        );
        g.bench_function(format!("whole_json/{n}"), |b| b.iter(write_whole));

        let path = dir.path().join("cp.json");
        let mut state = StateFile::open(&path, "s").unwrap();
        let held = (n, alerts.len());
        state.state.engine = snapshot(
            events.clone(),
            alerts.clone(),
            (n as u64, 200_000),
            false,
            held,
        );
        let w = state.save().unwrap();
        eprintln!(
            "checkpoint/rewrite/{n}: {} bytes (ids) + {} (JSON)",
            w.id_bytes, w.json_bytes
        );
        let mut next = n as u64;
        let mut printed = false;
        g.bench_function(format!("append/{n}"), |b| {
            b.iter_batched(
                || {
                    let new = ids(5_000, next);
                    next += 5_000;
                    snapshot(new, Vec::new(), (next, 200_000), true, held)
                },
                |snap| {
                    state.state.engine = snap;
                    let w = state.save().unwrap();
                    if !printed {
                        eprintln!(
                            "checkpoint/append/{n}: {} bytes (ids) + {} (JSON)",
                            w.id_bytes, w.json_bytes
                        );
                        printed = true;
                    }
                },
                BatchSize::LargeInput,
            )
        });
        let path = dir.path().join("rw.json");
        let mut state = StateFile::open(&path, "s").unwrap();
        g.bench_function(format!("rewrite/{n}"), |b| {
            b.iter_batched(
                || {
                    snapshot(
                        events.clone(),
                        alerts.clone(),
                        (n as u64, 200_000),
                        false,
                        held,
                    )
                },
                |snap| {
                    state.state.engine = snap;
                    state.save().unwrap()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
