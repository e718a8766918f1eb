//! Issue 12: nothing lost under faults. A crash (`kill -9` of `run` at several moments, a
//! webhook that counts), a full disk (a real 256 KiB tmpfs when root may mount one), damaged
//! spools, a gzip bomb, slow and stalled HTTP clients, and a config with many wrong types.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::emu::*;
use common::http::Server;
use common::*;
use serde_json::Value;

const POLICY: &str = "[policy]\napproved_regions = [\"us-east-1\"]\n";

/// `n` copies of the Stratus records, each with its own eventID (so each alerts on its own).
fn many_records(n: usize) -> Vec<String> {
    let base = stratus();
    (0..n)
        .flat_map(|i| {
            base.iter().enumerate().map(move |(j, line)| {
                let mut v: Value = serde_json::from_str(line).unwrap();
                v["eventID"] = format!("00000000-0000-4000-8000-{:06}{:06}", i, j).into();
                v.to_string()
            })
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kill -9` of `run` three times while a slow webhook is receiving alerts, long before a
/// checkpoint covers them, then a last run to the end: every alert arrives, and the only
/// repeats are the one request in flight at each crash (at most `batch` items each).
#[test]
fn kill_9_while_delivering_repeats_at_most_the_request_in_flight() {
    const BATCH: usize = 4;
    let k = start_kinesalite();
    let t = Tmp::new();
    let server = Server::start_with(|_| {
        std::thread::sleep(Duration::from_millis(25));
        (200, "ok".into())
    });
    let cfg = t.write(
        "run.toml",
        format!(
            "{POLICY}\n[source.kinesis]\nstream = \"crash\"\npoll_interval = \"100ms\"\nmax_records = 50\n\n[checkpoint]\npath = \"{}\"\ninterval = \"3s\"\n\n[delivery]\nstate_dir = \"{}\"\naccept_within = \"30s\"\n\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = {BATCH}\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            t.path("state/cp.json").display(),
            t.path("state").display(),
            server.url("/in")
        ),
    );
    let recs = many_records(12);
    let want = expected(&cfg, &t, &recs);
    assert!(want.len() > 150, "{} alerts", want.len());
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "crash", 2));
    rt.block_on(put(&c, "crash", &recs, 0));

    // Crash at several moments: soon after alerts start, mid-way, late.
    let moments = [10, want.len() / 3, want.len() * 2 / 3];
    for &at in &moments {
        let mut run = Consumer::start(&cfg, k.port);
        let before = server.webhook_alert_ids().len();
        wait_until("deliveries", Duration::from_secs(60), || {
            server.webhook_alert_ids().len() >= at.max(before + 5)
        });
        run.child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
        run.child.wait().unwrap();
    }
    let run = Consumer::start(&cfg, k.port);
    wait_until("every alert", Duration::from_secs(90), || {
        server
            .webhook_alert_ids()
            .into_iter()
            .collect::<BTreeSet<_>>()
            == want
    });
    std::thread::sleep(Duration::from_millis(1500)); // more polls: nothing else may come
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    let got = server.webhook_alert_ids();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &got {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let repeats = got.len() - seen.len();
    assert_eq!(
        seen.keys().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
        want,
        "no alert lost"
    );
    assert!(
        repeats <= moments.len() * BATCH,
        "{repeats} repeats after {} crashes: more than one request in flight each",
        moments.len()
    );
}
