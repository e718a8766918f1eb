//! Two workers sharing a 4-shard stream through a DynamoDB lease table: kinesalite (npm) for
//! Kinesis and moto's server (PyPI) for DynamoDB, both started here on free ports. The workers
//! are the binary itself; the test reads the lease table with the real aws-sdk-dynamodb.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::emu::*;
use crate::common::*;

const TABLE: &str = "trailwatch-leases";
const LEASE: Duration = Duration::from_secs(4);

fn config(t: &Tmp, worker: &str) -> PathBuf {
    t.write(
        &format!("{worker}.toml"),
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"org\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\ndiscovery_interval = \"1s\"\n\n[checkpoint]\nkind = \"dynamodb\"\ntable = \"{TABLE}\"\nlease_duration = \"{}s\"\npath = \"{}\"\ninterval = \"500ms\"\n",
            LEASE.as_secs(),
            t.path(&format!("state-{worker}/state.json")).display()
        ),
    )
}

/// shard → owner ("" when free), read from the lease table.
fn owners(rt: &tokio::runtime::Runtime, db: &aws_sdk_dynamodb::Client) -> BTreeMap<String, String> {
    rt.block_on(async {
        let Ok(resp) = db
            .scan()
            .table_name(TABLE)
            .consistent_read(true)
            .send()
            .await
        else {
            return BTreeMap::new();
        };
        resp.items()
            .iter()
            .map(|i| {
                let get = |k: &str| {
                    i.get(k)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                (get("leaseKey"), get("leaseOwner"))
            })
            .collect()
    })
}

fn count(owners: &BTreeMap<String, String>, who: &str) -> usize {
    owners.values().filter(|o| *o == who).count()
}

/// Waits until `ok` holds for the lease table; returns how long it took.
fn wait_table(
    rt: &tokio::runtime::Runtime,
    db: &aws_sdk_dynamodb::Client,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&BTreeMap<String, String>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let o = owners(rt, db);
        if ok(&o) {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "{what}: lease table is {o:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_ids(files: &[&Path]) -> Vec<String> {
    files.iter().flat_map(|f| ids_in(f, false)).collect()
}

fn wait_all(files: &[&Path], n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while all_ids(files).len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} alerts arrived",
            all_ids(files).len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 5, test 4: balanced ownership; a worker joining gets its share by hand-over (no
/// record read twice); `kill -9` one worker and the other takes its leases over within two
/// lease durations and reads on from their checkpoints; no alert lost, none repeated; a
/// graceful stop releases the leases.
#[test]
fn two_workers_share_four_shards_and_take_over_from_a_dead_one() {
    let k = start_kinesalite();
    let m = start_moto();
    let t = Tmp::new();
    let (cfg_a, cfg_b) = (config(&t, "a"), config(&t, "b"));
    let (out_a, out_b) = (t.path("a.jsonl"), t.path("b.jsonl"));
    let files = [out_a.as_path(), out_b.as_path()];
    let recs = stratus();
    let quarter = recs.len() / 4;
    let (phase1, rest) = recs.split_at(quarter);
    let (phase2, rest) = rest.split_at(quarter);
    let (phase3, phase4) = rest.split_at(quarter);
    let rt = rt();
    let c = client(k.port);
    let db = dynamodb(m.port);
    rt.block_on(create_stream(&c, "org", 4));
    rt.block_on(put_round_robin(&c, "org", phase1, 4));
    let out_a_arg = out_a.display().to_string();
    let out_b_arg = out_b.display().to_string();

    // One worker alone owns every shard.
    let a = Consumer::spawn(
        &cfg_a,
        k.port,
        Some(m.port),
        &["--worker-id", "a", "--output", &out_a_arg],
    );
    wait_table(&rt, &db, "a owns all four", Duration::from_secs(30), |o| {
        o.len() == 4 && count(o, "a") == 4
    });

    // A second worker joins while records keep coming: two shards each, by hand-over.
    let mut b = Consumer::spawn(
        &cfg_b,
        k.port,
        Some(m.port),
        &["--worker-id", "b", "--output", &out_b_arg],
    );
    rt.block_on(put_round_robin(&c, "org", phase2, 4));
    wait_table(&rt, &db, "balanced 2/2", Duration::from_secs(30), |o| {
        count(o, "a") == 2 && count(o, "b") == 2
    });
    // Records on every shard once balanced: b reads its two.
    rt.block_on(put_round_robin(&c, "org", phase3, 4));
    let want123: BTreeSet<String> = expected(&cfg_a, &t, &[phase1, phase2, phase3].concat());
    wait_all(&files, want123.len());
    assert!(
        !ids_in(&out_b, false).is_empty(),
        "b delivered alerts from its shards"
    );
    // Quiet: the last batches' checkpoints are written right after their alerts.
    std::thread::sleep(Duration::from_millis(1500));
    let owned_b: Vec<String> = owners(&rt, &db)
        .into_iter()
        .filter(|(_, o)| o == "b")
        .map(|(s, _)| s)
        .collect();

    // kill -9 b: no release, no goodbye. New records land on its shards too.
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let killed = Instant::now();
    rt.block_on(put_round_robin(&c, "org", phase4, 4));
    wait_table(
        &rt,
        &db,
        "a took b's leases",
        2 * LEASE + Duration::from_secs(20),
        |o| count(o, "a") == 4,
    );
    let takeover = killed.elapsed();
    eprintln!("takeover after kill -9: {takeover:?} (lease duration {LEASE:?})");
    assert!(
        takeover < 2 * LEASE,
        "takeover of {owned_b:?} took {takeover:?}, more than two lease durations"
    );
    let want: BTreeSet<String> = expected(&cfg_a, &t, &recs);
    wait_all(&files, want.len());
    std::thread::sleep(Duration::from_millis(1500)); // more polls: nothing else may come

    let (code, _) = a.stop();
    assert_eq!(code, 0, "graceful shutdown exits 0");
    let ids = all_ids(&files);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "no alert lost"
    );
    assert_eq!(ids.len(), want.len(), "no alert delivered twice: {ids:?}");
    let after = owners(&rt, &db);
    assert!(
        after.values().all(String::is_empty),
        "a released its leases on shutdown: {after:?}"
    );
}

/// The lease table's writes are conditional: a worker that lost a lease can neither renew it
/// nor move its checkpoint; a take on a stale counter fails; a hand-over needs the request;
/// a table of another stream is refused.
#[test]
fn a_worker_that_lost_its_lease_cannot_move_the_new_owners_checkpoint() {
    use trailwatch::source::leases::{LeaseError, LeaseTable};
    use trailwatch::state::ShardCheckpoint;
    let m = start_moto();
    let rt = rt();
    rt.block_on(async {
        let a = LeaseTable::new(dynamodb(m.port), "t", "org", "a");
        let b = LeaseTable::new(dynamodb(m.port), "t", "org", "b");
        a.ensure().await.unwrap();
        b.ensure().await.unwrap(); // already there: fine
        a.create("s0", &["p".into()]).await.unwrap();
        b.create("s0", &[]).await.unwrap(); // exists: left as it is
        let l = &a.scan().await.unwrap()[0];
        assert_eq!((l.owner.as_deref(), l.counter), (None, 0));
        assert_eq!(l.parents, vec!["p".to_string()]);

        assert!(a.take("s0", 0).await.unwrap());
        assert!(!b.take("s0", 0).await.unwrap(), "stale counter");
        let cp = |seq: &str| ShardCheckpoint {
            sequence_number: Some(seq.into()),
            sub_sequence: Some(2),
            finished: false,
            arrived: None,
        };
        assert!(a.checkpoint("s0", &cp("100")).await.unwrap());
        assert!(!b.checkpoint("s0", &cp("999")).await.unwrap(), "not b's");
        assert!(!b.renew("s0").await.unwrap());
        assert!(a.renew("s0").await.unwrap());

        // a stops renewing; b takes over on the counter it observed.
        let seen = b.scan().await.unwrap()[0].counter;
        assert!(b.take("s0", seen).await.unwrap());
        assert!(!a.checkpoint("s0", &cp("150")).await.unwrap(), "a lost it");
        assert!(!a.renew("s0").await.unwrap());
        let l = &b.scan().await.unwrap()[0];
        assert_eq!(l.owner.as_deref(), Some("b"));
        assert_eq!(l.checkpoint, cp("100"), "a's late checkpoint did not land");

        // Hand-over only to the worker that asked.
        assert!(!b.hand_over("s0", "a").await.unwrap(), "nobody asked");
        assert!(a.request("s0", "b").await.unwrap());
        assert!(!a.request("s0", "b").await.unwrap(), "already asked");
        assert!(b.hand_over("s0", "a").await.unwrap());
        let l = &a.scan().await.unwrap()[0];
        assert_eq!(
            (l.owner.as_deref(), l.wanted_by.as_deref()),
            (Some("a"), None)
        );
        assert!(a.release("s0").await.unwrap());
        assert_eq!(a.scan().await.unwrap()[0].owner, None);
        assert!(!a.delete_finished("s0").await.unwrap(), "not finished");

        let other = LeaseTable::new(dynamodb(m.port), "t", "another-stream", "c");
        assert!(matches!(
            other.scan().await,
            Err(LeaseError::OtherStream { .. })
        ));
    });
}

/// Issue 29: the Kinesis road's checkpointer on a lease table (moto's DynamoDB): a taken
/// lease brings its checkpoint into the positions, a commit moves the position and writes it
/// to the lease, and once another worker owns the lease a commit says so (the reader stops)
/// and the new owner's checkpoint stays.
#[test]
fn the_lease_checkpointer_writes_the_acknowledged_position_only_while_it_owns_the_lease() {
    use std::collections::HashMap;
    use trailwatch::road::kinesis::{Checkpointer, Committed};
    use trailwatch::source::leases::{Coordinator, LeaseTable};
    use trailwatch::state::positions::{Ack, Positions};
    use trailwatch::state::ShardCheckpoint;
    let m = start_moto();
    let rt = rt();
    rt.block_on(async {
        let table = LeaseTable::new(dynamodb(m.port), "leases", "org", "a");
        let mut a = Coordinator::new(table, "a", Duration::from_secs(60));
        a.ensure_table().await.unwrap();
        let positions = Positions::default();
        let shards = HashMap::from([("s0".to_string(), Vec::new())]);
        // The lease is created and taken; its (empty) checkpoint is where a starts.
        let tick = a.tick(&shards, &positions).await.unwrap();
        assert!(tick.read.contains("s0"), "{tick:?}");
        let checkpointer = Checkpointer::leased(positions.clone(), a.writer());
        let ack = |seq: &str, end: bool| Ack {
            shard: "s0".into(),
            sequence_number: Some(seq.into()),
            sub_sequence: None,
            shard_end: end,
            arrived: Some(1_800_000_000),
        };
        let moved = checkpointer.commit(&ack("100", false)).await;
        // The record's arrival time rides with the position (for `feed-gap` after a restart).
        let want = ShardCheckpoint {
            sequence_number: Some("100".into()),
            sub_sequence: None,
            finished: false,
            arrived: Some(1_800_000_000),
        };
        assert_eq!(moved, Committed::Moved(want.clone()));
        assert!(moved.reads_on());
        let observer = LeaseTable::new(dynamodb(m.port), "leases", "org", "b");
        let lease = observer.scan().await.unwrap().remove(0);
        assert_eq!(lease.checkpoint, want, "the lease holds the position");
        // b takes the lease over (a stopped renewing, as far as b can tell).
        assert!(observer.take("s0", lease.counter).await.unwrap());
        assert!(observer.checkpoint("s0", &want).await.unwrap());
        let lost = checkpointer.commit(&ack("150", true)).await;
        assert_eq!(lost, Committed::LeaseLost);
        assert!(!lost.reads_on(), "a reads on a shard it does not own");
        let lease = observer.scan().await.unwrap().remove(0);
        assert_eq!(lease.owner.as_deref(), Some("b"));
        assert_eq!(
            lease.checkpoint, want,
            "a's late commit landed in b's lease"
        );
    });
}
