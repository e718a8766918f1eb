//! The engine alone: an injected clock, an in-memory sink that accepts, fails, stalls or
//! rejects, and the default writer on a file. No process and no emulator.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{load_str, Config};
use crate::rules::custom::RuleSet;
use crate::rules::RegionPolicy;
use crate::sink::deliver::{Dispatcher, SinkParts, WorkerSettings};
use crate::sink::destination::memory::{Memory, Mode};
use crate::sink::destination::Destination;
use crate::sink::route::Router;

pub(crate) const RECORDS: &str = include_str!("../../tests/fixtures/stratus_sample.jsonl");
/// 2024-08-01, about when the fixture records happened.
pub(crate) const NOW: i64 = 1_722_513_600;

fn config() -> Config {
    load_str(
        "[policy]\napproved_regions = [\"us-east-1\"]\n\
         [[sinks]]\nname = \"mem\"\ntype = \"stdout\"\n\
         [[routes]]\nstream = \"siem\"\nsinks = [\"mem\"]\n",
        "engine.toml",
        0,
    )
    .unwrap()
    .config
}

fn parts(c: &Config, clock: ClockMode) -> Parts {
    Parts {
        pipeline: Pipeline::new(
            &c.dedup,
            RuleSet::from_rules(&c.rules),
            RegionPolicy::build(&c.policy),
            false,
        ),
        shaper: None,
        decoder: Decoder::default(),
        clock,
        dead_letters: None,
        jobs: 1,
        health: c.health.clone(),
        guidance: crate::engine::Guidance::of(c),
    }
}

/// The dispatcher with one in-memory sink taking the siem stream.
fn sinks(c: &Config, state_dir: &Path, mem: &Memory, accept_within: Duration) -> Output {
    let parts = vec![SinkParts {
        name: "mem".into(),
        target: Destination::Memory(mem.clone()),
        queue: 16,
        settings: WorkerSettings {
            timeout: Duration::from_millis(200),
            max_attempts: 1000,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(50),
            accept_within,
        },
    }];
    let router = Router::new(&c.delivery.routes, &c.policy.ous);
    Output::Sinks(Dispatcher::start(router, parts, state_dir, 1 << 20, 1000).unwrap())
}

/// Makes the `mem` sink's spool unwritable (its directory becomes a file); gives the path,
/// to put the directory back with [`mend_spool`].
pub(crate) fn break_spool(dir: &Path) -> std::path::PathBuf {
    let spool = crate::sink::spool::dir(dir, "mem");
    std::fs::remove_dir_all(&spool).unwrap();
    std::fs::write(&spool, b"not a directory").unwrap();
    spool
}

/// The spool directory back where [`break_spool`] put a file.
pub(crate) fn mend_spool(spool: &Path) {
    std::fs::remove_file(spool).unwrap();
    std::fs::create_dir_all(spool).unwrap();
}

/// An engine on the test config, delivering to `mem` with spools under `dir`.
pub(crate) fn with_memory(dir: &Path, mem: &Memory, accept_within: Duration, now: i64) -> Engine {
    let c = config();
    let out = sinks(&c, dir, mem, accept_within);
    Engine::new(parts(&c, ClockMode::Arrival), out, None, now).unwrap()
}

pub(crate) fn lines() -> Vec<&'static str> {
    RECORDS.lines().filter(|l| !l.trim().is_empty()).collect()
}

pub(crate) fn records<'a>(lines: &[&'a str]) -> Vec<Record<'a>> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut position = Position::new("shardId-000000000000");
            position.sequence_number = Some(format!("{}", 1000 + i));
            Record {
                position,
                data: Data::Bytes(l.as_bytes()),
            }
        })
        .collect()
}

/// The alert ids the test config raises for these lines (evaluated alone).
pub(crate) fn expected_ids(lines: &[&str]) -> Vec<String> {
    let c = config();
    let e = Engine::new(
        parts(&c, ClockMode::Arrival),
        Output::Writer(Writer::stdout(Streams::SIEM, false)),
        None,
        NOW,
    )
    .unwrap();
    let ev = e.evaluate(records(lines), None, NOW);
    let ids: Vec<String> = ev.pending.items().iter().map(|i| i.id()).collect();
    // Nothing is written: these items are settled by hand so the engine stays clean.
    ev.pending.settle();
    ids
}

/// The `alert_id` of every line of a feed.
fn alert_ids(feed: &str) -> Vec<String> {
    feed.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["alert_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_position_moves_only_after_the_sink_has_the_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Fail);
    let engine = with_memory(dir.path(), &mem, Duration::from_secs(30), NOW);
    let lines = lines();
    let want = expected_ids(&lines);
    assert!(want.len() >= 10, "{want:?}");
    let evaluated = engine.evaluate(records(&lines), None, NOW);
    assert_eq!(evaluated.counts.events, lines.len() as u64);
    assert_eq!(evaluated.counts.alerts, want.len() as u64);
    // What the road does with an acceptance: move its position once it resolves.
    let position = Arc::new(std::sync::Mutex::new(None::<String>));
    let accepted = engine.submit(evaluated.pending).await;
    let moved = {
        let position = position.clone();
        tokio::spawn(async move {
            let r = accepted.wait().await;
            if r.is_ok() {
                *position.lock().unwrap() = Some("1019".to_string());
            }
            r.is_ok()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!moved.is_finished(), "accepted while the sink fails");
    assert_eq!(*position.lock().unwrap(), None);
    assert!(
        engine.snapshot().is_none(),
        "a snapshot while alerts are unaccepted"
    );
    assert!(mem.ids().is_empty());
    // The sink recovers: the retry delivers, then the position moves.
    mem.set(Mode::Accept);
    assert!(moved.await.unwrap());
    assert_eq!(position.lock().unwrap().as_deref(), Some("1019"));
    assert_eq!(sorted(mem.ids()), sorted(want));
    assert!(engine.snapshot().is_some(), "everything is accepted");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_that_can_neither_be_delivered_nor_spooled_stop_snapshots_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Stall);
    let engine = with_memory(dir.path(), &mem, Duration::from_millis(100), NOW);
    // The spool cannot be written: its directory is a file.
    let spool = break_spool(dir.path());
    let lines = lines();
    let (a, b) = lines.split_at(10);
    let submit = |recs: &[&str]| {
        let ev = engine.evaluate(records(recs), None, NOW);
        let n = ev.pending.items().len();
        assert!(n > 0);
        (n, engine.submit(ev.pending))
    };
    let (na, acc_a) = submit(a);
    let refused_a = acc_a.await.wait().await.unwrap_err();
    let (_, acc_b) = submit(b);
    let refused_b = acc_b.await.wait().await.unwrap_err();
    assert_eq!(refused_a.pending.items().len(), na, "the items come back");
    assert!(engine.snapshot().is_none(), "unaccepted items are held");
    // The disk is back: submitted again, A is accepted (spooled); B is still held.
    mend_spool(&spool);
    engine
        .submit(refused_a.pending)
        .await
        .wait()
        .await
        .expect("spooled");
    assert!(engine.snapshot().is_none(), "B is not accepted yet");
    // B is given up: the engine never snapshots again, though nothing is in flight.
    drop(refused_b);
    assert!(!engine.is_settled());
    assert!(engine.snapshot().is_none());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_alerts_already_spooled_are_not_raised_again() {
    let dir = tempfile::tempdir().unwrap();
    let lines = lines();
    let want = expected_ids(&lines);
    {
        // The sink is down: everything is spooled within accept_within, and accepted.
        let mem = Memory::new(Mode::Fail);
        let engine = with_memory(dir.path(), &mem, Duration::from_millis(100), NOW);
        let ev = engine.evaluate(records(&lines), None, NOW);
        engine.submit(ev.pending).await.wait().await.unwrap();
        // A crash: no snapshot is saved; the records will be read again.
        engine.shutdown().await;
    }
    let mem = Memory::new(Mode::Fail);
    let engine = with_memory(dir.path(), &mem, Duration::from_millis(100), NOW + 60);
    let ev = engine.evaluate(records(&lines), None, NOW + 60);
    assert_eq!(ev.counts.events, lines.len() as u64);
    assert_eq!(ev.counts.alerts, 0, "already spooled");
    assert_eq!(ev.counts.repeated, want.len() as u64);
    engine.submit(ev.pending).await.wait().await.unwrap();
    // The sink comes back: the spool drains, each alert once.
    mem.set(Mode::Accept);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mem.ids().len() < want.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sorted(mem.ids()), sorted(want));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_item_goes_to_the_rejected_file_and_counts_as_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Reject);
    let engine = with_memory(dir.path(), &mem, Duration::from_secs(5), NOW);
    let lines = lines();
    let want = expected_ids(&lines[..4]);
    assert!(!want.is_empty());
    let ev = engine.evaluate(records(&lines[..4]), None, NOW);
    engine.submit(ev.pending).await.wait().await.unwrap();
    let rejected =
        std::fs::read_to_string(crate::sink::spool::rejected_file(dir.path(), "mem")).unwrap();
    let ids: Vec<String> = rejected
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["reason"], "400 from the test");
            v["item"]["alert_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(sorted(ids), sorted(want));
    assert!(mem.ids().is_empty());
    assert!(engine.snapshot().is_some(), "rejected items are settled");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_writer_flushes_before_acceptance_and_recovers_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("feed.jsonl");
    let c = config();
    let lines = lines();
    let (first, second) = lines.split_at(10);
    let want_first = expected_ids(first);
    let want_all = expected_ids(&lines);
    let snapshot = {
        let engine = Engine::new(
            parts(&c, ClockMode::Arrival),
            Output::Writer(Writer::file(&out, false)),
            None,
            NOW,
        )
        .unwrap();
        let ev = engine.evaluate(records(first), None, NOW);
        engine.submit(ev.pending).await.wait().await.unwrap();
        // Accepted means on the file already.
        let written = std::fs::read_to_string(&out).unwrap();
        let ids = alert_ids(&written);
        assert_eq!(sorted(ids), sorted(want_first.clone()));
        let snap = engine.snapshot().unwrap();
        assert_eq!(snap.output_len, Some(written.len() as u64));
        // Then the second part is written, and the process dies before the next snapshot,
        // halfway through a line.
        let ev = engine.evaluate(records(second), None, NOW);
        engine.submit(ev.pending).await.wait().await.unwrap();
        snap
    };
    let mut f = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    std::io::Write::write_all(&mut f, b"{\"alert_id\":\"torn").unwrap();
    drop(f);
    // Restart from the snapshot: the second part's records are read again.
    let engine = Engine::new(
        parts(&c, ClockMode::Arrival),
        Output::Writer(Writer::file(&out, false)),
        Some(snapshot),
        NOW + 5,
    )
    .unwrap();
    let ev = engine.evaluate(records(second), None, NOW + 5);
    assert_eq!(ev.counts.alerts, 0, "written before the crash");
    engine.submit(ev.pending).await.wait().await.unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'), "the torn line is cut");
    let ids = alert_ids(&text);
    assert_eq!(ids.len(), want_all.len(), "each alert once");
    assert_eq!(sorted(ids), sorted(want_all));
}

#[test]
fn the_clock_is_the_one_passed_in_or_event_time() {
    let c = load_str(
        "[policy]\napproved_regions = [\"us-east-1\"]\n[dedup]\nevent_ttl = \"1h\"\n",
        "t.toml",
        0,
    )
    .unwrap()
    .config;
    let line = lines()
        .into_iter()
        .find(|l| l.contains("\"readOnly\":false"))
        .unwrap();
    let engine = Engine::new(
        parts(&c, ClockMode::Arrival),
        Output::Writer(Writer::stdout(Streams::SIEM, false)),
        None,
        NOW,
    )
    .unwrap();
    let once = |now| {
        let ev = engine.evaluate(records(&[line]), None, now);
        let c = ev.counts;
        ev.pending.settle();
        c
    };
    assert_eq!(once(NOW).alerts, 1);
    assert_eq!(once(NOW + 3599).duplicates, 1, "within the TTL");
    let later = once(NOW + 3 * 3600);
    assert_eq!(
        (later.duplicates, later.repeated),
        (0, 1),
        "past the TTL: evaluated again, its alert remembered"
    );
    // Event time: the TTL runs on the records' own times, whatever `now` says.
    let engine = Engine::new(
        parts(&c, ClockMode::EventTime),
        Output::Writer(Writer::stdout(Streams::SIEM, false)),
        None,
        0,
    )
    .unwrap();
    for now in [0, NOW * 2] {
        let ev = engine.evaluate(records(&[line]), None, now);
        let dup = ev.counts.duplicates;
        ev.pending.settle();
        assert_eq!(dup, u64::from(now != 0));
    }
}

/// A batch well over [`PARALLEL_MIN_BYTES`]: every fixture line many times under fresh
/// eventIDs, each also repeated (a duplicate), with unreadable records between.
fn big_batch() -> Vec<String> {
    let mut out = Vec::new();
    let mut n = 0;
    while out.iter().map(String::len).sum::<usize>() < 3 * PARALLEL_MIN_BYTES {
        for l in lines() {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["eventID"] = format!("big-{n}").into();
            n += 1;
            let text = v.to_string();
            out.push(text.clone());
            if n % 7 == 0 {
                out.push(text);
            }
            if n % 50 == 0 {
                out.push("{\"Records\": [not json".into());
            }
        }
    }
    out
}

fn writer_engine(jobs: usize) -> Engine {
    let c = config();
    let mut p = parts(&c, ClockMode::Arrival);
    p.jobs = jobs;
    p.shaper = Some(crate::shaping::Shaper::for_rules(&c.shaping, &c.rules));
    Engine::new(
        p,
        Output::Writer(Writer::stdout(Streams::SIEM, false)),
        None,
        NOW,
    )
    .unwrap()
}

#[test]
fn a_large_batch_judged_on_several_threads_raises_the_same_items_in_the_same_order() {
    let batch = big_batch();
    let lines: Vec<&str> = batch.iter().map(String::as_str).collect();
    let run = |jobs: usize| {
        let e = writer_engine(jobs);
        let ev = e.evaluate(records(&lines), None, NOW);
        let ids: Vec<String> = ev.pending.items().iter().map(|i| i.id()).collect();
        ev.pending.settle();
        (ids, ev.counts)
    };
    let (one, c1) = run(1);
    assert!(
        c1.duplicates > 10 && c1.dead_letters > 5 && c1.alerts > 100,
        "{c1:?}"
    );
    assert!(c1.notify > 0, "the shaper saw the alerts: {c1:?}");
    let judges = [writer_engine(1).judge()];
    let shares = parallel::judge_records(
        &Decoder::default(),
        &judges,
        records(&lines),
        &None,
        NOW,
        3,
        false,
    );
    assert_eq!(shares.len(), 3, "the batch is split between the threads");
    for jobs in [2, 3, 8] {
        let (many, c) = run(jobs);
        assert_eq!(c, c1, "counts with {jobs} threads");
        assert_eq!(many, one, "items with {jobs} threads");
    }
}

/// A CloudTrail record of the fixture's first, as `account` at `time` in eu-west-3
/// (unapproved: each raises `unapproved-region`).
fn dated(account: &str, id: &str, time: i64) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(lines()[0]).unwrap();
    v["recipientAccountId"] = account.into();
    v["userIdentity"]["accountId"] = account.into();
    v["eventID"] = id.into();
    v["eventTime"] = crate::event::format_utc_secs(time).into();
    v["awsRegion"] = "eu-west-3".into();
    v["eventName"] = "RunInstances".into();
    v["readOnly"] = false.into();
    v
}

/// An engine on arrival time with the feed-health watch (silent after 30 minutes, learning
/// from 3 events), starting from `restore`.
fn health_engine(restore: Option<EngineSnapshot>) -> Engine {
    let c = load_str(
        "[policy]\napproved_regions = [\"us-east-1\"]\n\
         [health]\nsilent_after = \"30m\"\nlearn_events = 3\n",
        "engine.toml",
        0,
    )
    .unwrap()
    .config;
    Engine::new(
        parts(&c, ClockMode::Arrival),
        Output::Writer(Writer::stdout(Streams::SIEM, false)),
        restore,
        NOW,
    )
    .unwrap()
}

/// Live (arrival time): one record dated 2099 for an account must not become its last event
/// for the health watch (its usual gap would be decades and it could never be silent); it is
/// still judged and alerted on with its own time, and counted as clamped.
#[test]
fn a_far_future_event_time_is_clamped_for_the_health_watch_on_arrival_time() {
    let engine = health_engine(None);
    let record = |account: &str, id: String, time: i64| dated(account, &id, time).to_string();
    let feed = |lines: Vec<String>, now: i64| {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let ev = engine.evaluate(records(&refs), None, now);
        let out = (ev.counts, ev.pending.items().len());
        ev.pending.settle();
        out
    };
    // Two accounts every 5 minutes for two hours.
    let mut t = NOW;
    while t < NOW + 2 * 3600 {
        for a in ["111111111111", "222222222222"] {
            feed(vec![record(a, format!("{a}-{t}"), t)], t);
        }
        t += 300;
    }
    // One record of 111… dated 2099, arriving now: judged (it alerts) and clamped.
    let future = crate::event::parse_utc_secs("2099-01-01T00:00:00Z").unwrap();
    let (counts, items) = feed(vec![record("111111111111", "from-2099".into(), future)], t);
    assert_eq!(counts.clamped, 1);
    assert_eq!(counts.clamped_latest, Some(future));
    assert_eq!((counts.alerts, items), (1, 1), "judged with its own time");
    // Then 111… stops while 222… goes on for an hour: 111… is silent.
    let mut silent = Vec::new();
    let end = t + 3600;
    while t < end {
        t += 300;
        feed(vec![record("222222222222", format!("222-{t}"), t)], t);
        let p = engine.tick(t);
        for i in p.items() {
            if let Item::Siem(a) = i.as_ref() {
                silent.push((a.rule.clone(), a.account.clone()));
            }
        }
        p.settle();
    }
    assert_eq!(
        silent,
        vec![(
            crate::config::health::SILENT.to_string(),
            Some("111111111111".to_string())
        )],
        "the account's last event is its last real one, not 2099"
    );
}

/// An archive object (a CloudTrail log file) of these records.
fn log_file(records: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::json!({ "Records": records })
        .to_string()
        .into_bytes()
}

/// The notify items (kind, events, first_seen) and siem alert rules of a pending set,
/// settled.
fn taken(p: Pending) -> (Vec<(crate::shaping::Kind, u64, String)>, Vec<String>) {
    let mut notify = Vec::new();
    let mut siem = Vec::new();
    for i in p.items() {
        match i.as_ref() {
            Item::Notify(n) => notify.push((n.kind, n.events, n.first_seen.clone())),
            Item::Siem(a) => siem.push(a.rule.clone()),
        }
    }
    p.settle();
    (notify, siem)
}

/// Backfill: archive events are shaped on their own event time by a shaper of their own,
/// flushed when the window is filled; the live shaper does not see them.
#[test]
fn archive_events_are_shaped_on_their_event_time_apart_from_the_live_ones() {
    let engine = writer_engine(1);
    let base = NOW - 2 * 86_400;
    let acct = "111111111111";
    // Four events an hour apart, then six within five minutes.
    let mut recs: Vec<_> = (0..4)
        .map(|h| dated(acct, &format!("hourly-{h}"), base + h * 3600))
        .collect();
    recs.extend((0..6).map(|m| dated(acct, &format!("burst-{m}"), base + 5 * 3600 + m * 50)));
    let bytes = log_file(recs);
    let ev = engine.evaluate_archive("AWSLogs/x.json", &bytes, base, base + 86_400, NOW);
    assert_eq!(ev.counts.alerts, 10);
    let (notify, siem) = taken(ev.pending);
    assert_eq!(siem.len(), 10, "every alert goes to the siem stream");
    let firsts: Vec<_> = notify
        .iter()
        .map(|(k, n, first)| (*k, *n, first.clone()))
        .collect();
    let at = |t: i64| crate::event::format_utc_secs(t);
    assert_eq!(
        firsts,
        vec![
            (crate::shaping::Kind::Alert, 1, at(base)),
            (crate::shaping::Kind::Alert, 1, at(base + 3600)),
            (crate::shaping::Kind::Alert, 1, at(base + 2 * 3600)),
            (crate::shaping::Kind::Alert, 1, at(base + 3 * 3600)),
            (crate::shaping::Kind::Alert, 1, at(base + 5 * 3600)),
        ],
        "each hour its own window, on the events' time (at arrival they would be one)"
    );
    assert!(
        engine.snapshot().unwrap().past.is_some(),
        "the lane is saved"
    );
    // A live event of the same key now: the live shaper has no window for it.
    let live = dated(acct, "live-1", NOW).to_string();
    let ev = engine.evaluate(records(&[live.as_str()]), None, NOW);
    let (notify, _) = taken(ev.pending);
    assert_eq!(notify.len(), 1);
    assert_eq!(notify[0].0, crate::shaping::Kind::Alert);
    // Filled: the burst's five others come out as one update, then the filled alert.
    let gap = crate::alert::Gap {
        stream: "org-trail".into(),
        shard: "shardId-000000000000".into(),
        from: base,
        to: base + 86_400,
        cause: crate::alert::GapCause::PastRetention,
        estimated_records: None,
    };
    let filled = crate::health::gap::filled_alert(&gap, 10, 10, 0, 0);
    let (notify, siem) = taken(engine.finish_past(vec![filled], NOW));
    assert_eq!(notify[0].0, crate::shaping::Kind::Update);
    assert_eq!(notify[0].1, 5, "the burst's other five alerts");
    assert_eq!(siem, vec![crate::config::health::GAP.to_string()]);
    assert!(
        engine.snapshot().unwrap().past.is_none(),
        "the lane is dropped"
    );
}

/// Backfill: the feed-health watch of the archive runs on event time (an account silent in
/// the middle of the window is raised, and its return), survives a restart from the
/// snapshot, and leaves the live watch alone.
#[test]
fn archive_events_are_watched_on_their_event_time_across_a_restart() {
    let start = health_engine;
    let base = NOW - 3 * 86_400;
    let (a, b) = ("111111111111", "222222222222");
    // Both every 5 minutes for two hours; then `a` stops for two hours; then both again.
    let mut first = Vec::new();
    let mut second = Vec::new();
    let mut t = base;
    while t < base + 6 * 3600 {
        let quiet = (base + 2 * 3600..base + 4 * 3600).contains(&t);
        let half = if t < base + 3 * 3600 {
            &mut first
        } else {
            &mut second
        };
        for acct in [a, b] {
            if !(quiet && acct == a) {
                half.push(dated(acct, &format!("{acct}-{t}"), t));
            }
        }
        t += 300;
    }
    let rules = |engine: &Engine, recs: Vec<serde_json::Value>| {
        let ev = engine.evaluate_archive("o.json", &log_file(recs), base, base + 86_400, NOW);
        let p = ev.pending;
        let mut found = Vec::new();
        for i in p.items() {
            if let Item::Siem(al) = i.as_ref() {
                if al.rule.starts_with("feed-") {
                    found.push((al.rule.clone(), al.account.clone()));
                }
            }
        }
        p.settle();
        found
    };
    let engine = start(None);
    let mut found = rules(&engine, first);
    let snap = engine.snapshot().unwrap();
    assert!(snap.health.as_ref().is_some(), "the live watch is there");
    assert_eq!(
        serde_json::to_value(snap.health.as_ref().unwrap()).unwrap()["accounts"],
        serde_json::json!({}),
        "the live watch saw none of the archive's events"
    );
    drop(engine);
    let engine = start(Some(snap));
    found.extend(rules(&engine, second));
    let silent = crate::config::health::SILENT.to_string();
    let resumed = crate::health::RESUMED.to_string();
    assert_eq!(
        found,
        vec![
            (silent, Some(a.to_string())),
            (resumed, Some(a.to_string()))
        ],
        "one silence of {a} in the window and its end, on event time"
    );
}
