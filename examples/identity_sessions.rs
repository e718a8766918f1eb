//! Memory and time of identity resolution: N issued keys held at once (each a two-role chain
//! from an IAM user), then N resolutions of sessions acting with them. Run:
//! `cargo run --release --example identity_sessions [N]`; prints the peak RSS before and
//! after, bytes per session, the snapshot's size, and nanoseconds per issue and per resolve.

use std::time::Instant;

use trailwatch::identity::{resolve, Facts, Identity, Issuance, Sessions};

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let now = 1_722_513_600;
    let mut sessions = Sessions::new(n, 12 * 3600);
    let before = rss_kib();
    let started = Instant::now();
    for i in 0..n {
        let caller = Identity {
            origin: Some(format!(
                "arn:aws:iam::{:012}:user/engineer-{}",
                i % 1000,
                i % 5000
            )),
            chain: vec![format!(
                "arn:aws:sts::{:012}:assumed-role/deploy-role/session-{i}",
                i % 1000
            )],
            ..Identity::default()
        };
        let iss = Issuance {
            access_key_id: format!("ASIA{i:016}"),
            session_arn: Some(format!(
                "arn:aws:sts::{:012}:assumed-role/workload-role/aws-go-sdk-{i}",
                (i + 1) % 1000
            )),
            expires: Some(now + 3600),
            event_id: Some(format!("{i:08x}-1111-2222-3333-444455556666")),
        };
        sessions.issue(&caller, &iss, now);
    }
    let issue_ns = started.elapsed().as_nanos() as f64 / n as f64;
    let after = rss_kib();
    let started = Instant::now();
    let mut found = 0usize;
    for i in 0..n {
        let f = Facts {
            kind: Some("AssumedRole".into()),
            arn: Some(format!(
                "arn:aws:sts::{:012}:assumed-role/workload-role/aws-go-sdk-{i}",
                (i + 1) % 1000
            )),
            access_key_id: Some(format!("ASIA{i:016}")),
            ..Facts::default()
        };
        found += usize::from(resolve(&f, &sessions, now).origin.is_some());
    }
    let resolve_ns = started.elapsed().as_nanos() as f64 / n as f64;
    let snapshot = serde_json::to_string(&sessions.snapshot()).map_or(0, |s| s.len());
    println!(
        "{n} sessions: RSS {:.1} MiB more ({:.0} bytes each); snapshot {:.1} MB ({:.0} bytes each); \
         issue {issue_ns:.0} ns, resolve {resolve_ns:.0} ns (with building its facts); {found} resolved",
        (after - before) / 1024.0,
        (after - before) * 1024.0 / n as f64,
        snapshot as f64 / 1e6,
        snapshot as f64 / n as f64,
    );
}
