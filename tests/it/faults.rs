//! Issue 12: nothing lost under faults. A crash (`kill -9` of `run` at several moments, a
//! webhook that counts), a full disk (a real 256 KiB tmpfs when root may mount one), damaged
//! spools, a gzip bomb, slow and stalled HTTP clients, and a config with many wrong types.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::emu::*;
use crate::common::http::Server;
use crate::common::*;

const POLICY: &str = "[policy]\napproved_regions = [\"us-east-1\"]\n";

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

/// Peak RSS (VmHWM, KiB) of a child, read from `/proc/<pid>/status` until it exits.
fn run_with_peak_rss(mut cmd: std::process::Command) -> (std::process::Output, u64) {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trailwatch");
    let pid = child.id();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let peak = peak.clone();
        std::thread::spawn(move || {
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = child.wait_with_output().expect("wait");
    watcher.join().unwrap();
    (out, peak.load(std::sync::atomic::Ordering::Relaxed))
}

/// A 1 MB `.jsonl.gz` that inflates to 1 GiB of zeros: `replay` stops reading it at
/// `decode.max_decompressed_bytes`, with a dead letter naming the cap, in well under twice
/// the cap of memory; the good file beside it is still read.
#[test]
fn a_gzip_bomb_input_file_is_capped_and_dead_lettered() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let t = Tmp::new();
    let member = {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(&vec![0u8; 8 << 20]).unwrap();
        e.finish().unwrap()
    };
    let bomb = t.path("bomb.jsonl.gz");
    let mut f = std::fs::File::create(&bomb).unwrap();
    for _ in 0..128 {
        f.write_all(&member).unwrap(); // 128 members of 8 MiB: 1 GiB inflated
    }
    drop(f);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 2 << 20);
    const CAP: u64 = 64 << 20;
    let cfg = t.write(
        "bomb.toml",
        format!("{POLICY}\n[decode]\nmax_decompressed_bytes = {CAP}\n"),
    );
    let good = t.write("good.jsonl", jsonl(&stratus()));
    let dead = t.path("dead.jsonl");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    cmd.args(["replay", "--config"])
        .arg(&cfg)
        .arg("--dead-letter")
        .arg(&dead)
        .arg(&bomb)
        .arg(&good);
    let (out, peak_kb) = run_with_peak_rss(cmd);
    eprintln!(
        "gzip bomb: peak RSS {peak_kb} KiB with a {} KiB cap",
        CAP / 1024
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "ran, but the bomb was not read whole: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let letters = std::fs::read_to_string(&dead).unwrap();
    assert!(
        letters.contains(&format!(
            "exceeds {CAP} bytes (decode.max_decompressed_bytes)"
        )),
        "the dead letter names the cap: {letters}"
    );
    let alerts = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(
        alerts,
        expected(&cfg, &t, &stratus()).len(),
        "the good file is still read"
    );
    assert!(
        peak_kb * 1024 < 2 * CAP,
        "peak RSS {peak_kb} KiB is more than twice the cap ({} KiB)",
        CAP / 1024
    );
}
