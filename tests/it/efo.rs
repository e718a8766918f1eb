//! Issue 31: enhanced fan-out (`consumer = "efo"`) against ministack (PyPI), the one local
//! Kinesis that serves SubscribeToShard to the Rust SDK; its subscriptions are made to end
//! after 3 seconds (AWS: 5 minutes) so that resubscribing is exercised. The consumer is the
//! binary itself.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::emu::*;
use crate::common::*;

/// With `leases`, the lease table and this worker's own state file.
fn config(t: &Tmp, stream: &str, leases: Option<(&str, &str)>) -> PathBuf {
    let checkpoint = match leases {
        None => format!(
            "[checkpoint]\npath = \"{}\"\ninterval = \"300ms\"\n",
            t.path("state/checkpoints.json").display()
        ),
        Some((table, worker)) => format!(
            "[checkpoint]\nkind = \"dynamodb\"\ntable = \"{table}\"\nlease_duration = \"3s\"\npath = \"{}\"\ninterval = \"300ms\"\n",
            t.path(&format!("state-{worker}/worker.json")).display()
        ),
    };
    let name = match leases {
        Some((_, worker)) => format!("efo-{worker}.toml"),
        None => "efo.toml".into(),
    };
    t.write(
        &name,
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"{stream}\"\nstart = \"trim_horizon\"\nconsumer = \"efo\"\nconsumer_name = \"trailwatch\"\ndiscovery_interval = \"1s\"\n\n{checkpoint}"
        ),
    )
}

fn metrics_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn efo_reads_every_alert_once_resubscribes_and_restarts_from_the_checkpoint() {
    let m = start_ministack(3.0);
    let t = Tmp::new();
    let rt = rt();
    let c = client(m.port);
    rt.block_on(create_stream(&c, "org", 2));
    let recs = stratus();
    let (first, rest) = recs.split_at(8);
    let (second, third) = rest.split_at(6);
    rt.block_on(put(&c, "org", first, 0));
    let cfg = config(&t, "org", None);
    let want_first = expected(&cfg, &t, first);
    let mport = metrics_port();
    let maddr = format!("127.0.0.1:{mport}");
    let run = Consumer::start_with(&cfg, m.port, &["--metrics-addr", &maddr]);
    let mut got = run.collect(want_first.len(), Duration::from_secs(30));
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want_first);
    // Past the subscriptions' end: records put now arrive on new subscriptions.
    std::thread::sleep(Duration::from_secs(4));
    rt.block_on(put(&c, "org", second, 100));
    let want_second = expected(&cfg, &t, second);
    got.extend(run.collect(want_second.len(), Duration::from_secs(30)));
    let (_, body) = http_get(mport, "/metrics");
    assert!(
        metric(&body, "trailwatch_kinesis_subscriptions_total") >= 4.0,
        "two shards, each subscribed again after 3 s:\n{body}"
    );
    let (code, extra) = run.stop();
    assert_eq!(code, 0);
    got.extend(extra);
    let want: BTreeSet<String> = want_first.union(&want_second).cloned().collect();
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(got.len(), want.len(), "each alert exactly once");
    // Restart: it subscribes from the checkpoint; only the new records alert.
    rt.block_on(put(&c, "org", third, 200));
    let want_third = expected(&cfg, &t, third);
    let run = Consumer::start(&cfg, m.port);
    let again = run.collect(want_third.len(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    let (code, extra) = run.stop();
    assert_eq!(code, 0);
    let again: Vec<String> = again.into_iter().chain(extra).collect();
    assert_eq!(again.iter().cloned().collect::<BTreeSet<_>>(), want_third);
    assert_eq!(
        again.len(),
        want_third.len(),
        "nothing read twice across the restart"
    );
}

/// Shared leases with enhanced fan-out (ministack serves DynamoDB too): two workers split four
/// shards, each subscribing only to its own; after `kill -9` of one, the other takes its
/// leases over and subscribes from their checkpoints. Every alert once.
#[test]
fn two_efo_workers_share_the_shards_and_one_takes_over_from_a_dead_one() {
    let m = start_ministack(300.0);
    let t = Tmp::new();
    let rt = rt();
    let c = client(m.port);
    rt.block_on(create_stream(&c, "org", 4));
    let recs = stratus();
    let (before, after) = recs.split_at(recs.len() / 2);
    let (cfg_a, cfg_b) = (
        config(&t, "org", Some(("efo-leases", "a"))),
        config(&t, "org", Some(("efo-leases", "b"))),
    );
    let cfg = cfg_a.clone();
    let (out_a, out_b) = (t.path("a.jsonl"), t.path("b.jsonl"));
    let files = [out_a.as_path(), out_b.as_path()];
    let spawn = |who: &str, out: &std::path::Path| {
        Consumer::spawn(
            if who == "a" { &cfg_a } else { &cfg_b },
            m.port,
            Some(m.port),
            &["--worker-id", who, "--output", &out.display().to_string()],
        )
    };
    let a = spawn("a", &out_a);
    let mut b = spawn("b", &out_b);
    let db = dynamodb(m.port);
    let owners = || -> Vec<String> {
        rt.block_on(async {
            db.scan()
                .table_name("efo-leases")
                .consistent_read(true)
                .send()
                .await
                .map(|r| {
                    r.items()
                        .iter()
                        .filter_map(|i| i.get("leaseOwner")?.as_s().ok().cloned())
                        .collect()
                })
                .unwrap_or_default()
        })
    };
    let wait = |what: &str, ok: &dyn Fn(&[String]) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        loop {
            let o = owners();
            if ok(&o) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: {o:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let count = |o: &[String], who: &str| o.iter().filter(|x| *x == who).count();
    wait("two shards each", &|o| {
        count(o, "a") == 2 && count(o, "b") == 2
    });
    rt.block_on(put_round_robin(&c, "org", before, 4));
    let want_before = expected(&cfg, &t, before);
    let all = |fs: &[&std::path::Path]| -> Vec<String> {
        fs.iter().flat_map(|f| ids_in(f, false)).collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while all(&files).len() < want_before.len() {
        assert!(std::time::Instant::now() < deadline, "{:?}", all(&files));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!ids_in(&out_a, false).is_empty() && !ids_in(&out_b, false).is_empty());
    std::thread::sleep(Duration::from_millis(1500)); // the last checkpoints
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    rt.block_on(put_round_robin(&c, "org", after, 4));
    wait("a took b's leases", &|o| count(o, "a") == 4);
    let want = expected(&cfg, &t, &recs);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while all(&files).len() < want.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {}",
            all(&files).len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (code, _) = a.stop();
    assert_eq!(code, 0);
    let ids = all(&files);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "no alert lost"
    );
    assert_eq!(ids.len(), want.len(), "no alert twice");
}

/// Splits the stream's first shard at the middle of the hash range (ministack removes the
/// parent from the stream at once: AWS keeps it listed, closed, until its records expire).
fn split(rt: &tokio::runtime::Runtime, c: &aws_sdk_kinesis::Client, stream: &str) {
    rt.block_on(async {
        c.split_shard()
            .stream_name(stream)
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("170141183460469231731687303715884105728")
            .send()
            .await
            .unwrap();
        wait_active(c, stream).await;
    });
}

/// A reshard while subscribed: the parent's subscription ends with its child shards, the
/// parent is marked finished (no `feed-gap`: it was read to its end), and both children are
/// subscribed to from their start. Every alert once.
#[test]
fn efo_reads_a_split_shards_children_after_the_parents_subscription_ends() {
    let m = start_ministack(300.0);
    let t = Tmp::new();
    let rt = rt();
    let c = client(m.port);
    rt.block_on(create_stream(&c, "split", 1));
    let recs = stratus();
    let (before, after) = recs.split_at(10);
    rt.block_on(put(&c, "split", before, 0));
    let cfg = config(&t, "split", None);
    let want_before = expected(&cfg, &t, before);
    let run = Consumer::start(&cfg, m.port);
    let mut got = crate::gap::lines(&run, want_before.len());
    assert_eq!(crate::gap::others(&got), want_before);
    split(&rt, &c, "split");
    rt.block_on(put(&c, "split", after, 100));
    let want_after = expected(&cfg, &t, after);
    got.extend(crate::gap::lines(&run, want_after.len()));
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    assert!(crate::gap::gaps(&got).is_empty(), "no gap: {got:?}");
    let want: BTreeSet<String> = want_before.union(&want_after).cloned().collect();
    assert_eq!(crate::gap::others(&got), want, "no loss across the split");
    assert_eq!(got.len(), want.len(), "no alert twice");
    let cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("state/checkpoints.json")).unwrap())
            .unwrap();
    assert_eq!(
        cp["shards"]["shardId-000000000000"]["finished"], true,
        "{cp}"
    );
    let children = cp["shards"].as_object().unwrap().len() - 1;
    assert_eq!(children, 2, "both children were read: {cp}");
}

/// With a lease table: the parent was left unfinished (records after its checkpoint) and
/// left the stream while no worker ran. Its owner tells the gap once (`shard-gone`), marks
/// the lease finished, the lease is deleted, and the children are read: they do not wait
/// for a parent that can never finish.
#[test]
fn a_leased_shard_that_left_the_stream_unfinished_is_a_gap_and_its_children_are_read() {
    let m = start_ministack(300.0);
    let t = Tmp::new();
    let rt = rt();
    let c = client(m.port);
    rt.block_on(create_stream(&c, "org", 1));
    let recs = stratus();
    let (first, rest) = recs.split_at(8);
    let (lost, after) = rest.split_at(4);
    rt.block_on(put(&c, "org", first, 0));
    let cfg = config(&t, "org", Some(("gone-leases", "a")));
    let spawn = || Consumer::spawn(&cfg, m.port, Some(m.port), &["--worker-id", "a"]);
    let want_first = expected(&cfg, &t, first);
    let run = spawn();
    let got = crate::gap::lines(&run, want_first.len());
    assert_eq!(crate::gap::others(&got), want_first);
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    // While no worker runs: more records, then the split takes them with the parent.
    rt.block_on(put(&c, "org", lost, 50));
    split(&rt, &c, "org");
    rt.block_on(put(&c, "org", after, 100));
    let want_after = expected(&cfg, &t, after);
    let run = spawn();
    let got = crate::gap::lines(&run, want_after.len() + 1);
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    assert_eq!(
        crate::gap::others(&got),
        want_after,
        "the children are read"
    );
    let gaps = crate::gap::gaps(&got);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["gap"]["cause"], "shard-gone");
    assert_eq!(gaps[0]["gap"]["shard"], "shardId-000000000000");
    let db = dynamodb(m.port);
    let shards: BTreeSet<String> = rt.block_on(async {
        db.scan()
            .table_name("gone-leases")
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .filter_map(|i| i.get("leaseKey")?.as_s().ok().cloned())
            .collect()
    });
    assert!(
        !shards.contains("shardId-000000000000") && shards.len() == 2,
        "the finished parent's lease is deleted, the children's remain: {shards:?}"
    );
}
