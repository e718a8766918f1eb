//! Issue 31: `feed-gap`, the records a Kinesis stream no longer holds, found when a shard's
//! reading starts or resumes: a start before the stream existed, a checkpoint older than the
//! stream's retention, a shard of the checkpoint that left the stream unfinished; and no gap
//! for a stream that was merely quiet. Against kinesalite, with the consumer itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::emu::*;
use crate::common::*;
use serde_json::Value;

fn config(t: &Tmp, stream: &str, start: &str) -> PathBuf {
    t.write(
        "run.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"{stream}\"\nstart = \"{start}\"\npoll_interval = \"100ms\"\ndiscovery_interval = \"1s\"\n\n[checkpoint]\npath = \"{}\"\ninterval = \"300ms\"\n",
            t.path("state/checkpoints.json").display()
        ),
    )
}

/// Every line the consumer writes until `n` alerts arrived, then a quiet second.
pub(crate) fn lines(run: &Consumer, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match run.lines.recv_timeout(left) {
            Ok(l) => out.push(serde_json::from_str(&l).unwrap()),
            Err(_) => break,
        }
    }
    while let Ok(l) = run.lines.recv_timeout(Duration::from_millis(1500)) {
        out.push(serde_json::from_str(&l).unwrap());
    }
    out
}

pub(crate) fn gaps(alerts: &[Value]) -> Vec<&Value> {
    alerts.iter().filter(|a| a["rule"] == "feed-gap").collect()
}

pub(crate) fn others(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .filter(|a| a["rule"] != "feed-gap")
        .map(|a| a["alert_id"].as_str().unwrap().to_string())
        .collect()
}

fn state(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn a_start_before_the_stream_existed_is_one_feed_gap_and_a_quiet_restart_is_none() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "young", 2));
    let created = now();
    let recs = stratus();
    rt.block_on(put(&c, "young", &recs, 0));
    let week_ago = created - 7 * 86_400;
    let cfg = config(&t, "young", &format!("at_timestamp:{}", rfc3339(week_ago)));
    let want = expected(&cfg, &t, &recs);
    let run = Consumer::start(&cfg, k.port);
    let got = lines(&run, want.len() + 1);
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    assert_eq!(others(&got), want, "every record still held is read");
    let g = gaps(&got);
    assert_eq!(
        g.len(),
        1,
        "one window, one feed-gap (both shards found it): {g:?}"
    );
    let gap = &g[0]["gap"];
    assert_eq!(gap["stream"], "young");
    assert_eq!(gap["cause"], "before-creation");
    assert_eq!(gap["from"], week_ago);
    let to = gap["to"].as_i64().unwrap();
    assert!(
        (created - 5..=created + 1).contains(&to),
        "to = the stream's creation: {to} vs {created}"
    );
    assert_eq!(g[0]["severity"], "high");
    assert!(g[0]["reason"]
        .as_str()
        .unwrap()
        .contains("older than the stream"));
    // Restarted from its checkpoint a moment later: a quiet stream is not a gap.
    let run = Consumer::start(&cfg, k.port);
    let again = lines(&run, 0);
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    assert!(again.is_empty(), "nothing new: {again:?}");
}

#[test]
fn a_checkpoint_older_than_the_stream_and_a_vanished_shard_are_gaps_a_recent_one_is_not() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "org", 2));
    let recs = stratus();
    let (first, second) = recs.split_at(10);
    rt.block_on(put(&c, "org", first, 0));
    let cfg = config(&t, "org", "trim_horizon");
    let run = Consumer::start(&cfg, k.port);
    let got = lines(&run, expected(&cfg, &t, first).len());
    run.stop();
    assert!(
        gaps(&got).is_empty(),
        "trim_horizon asks for nothing older: {got:?}"
    );
    let path = t.path("state/checkpoints.json");
    let mut st = state(&path);
    let shards: Vec<String> = st["shards"].as_object().unwrap().keys().cloned().collect();
    for s in &shards {
        let arrived = st["shards"][s]["arrived"].as_i64();
        if st["shards"][s]["sequence_number"].is_string() {
            assert!(
                arrived.is_some_and(|a| (now() - 120..=now()).contains(&a)),
                "{st}"
            );
        }
    }
    // As if trailwatch had been down for two days: every checkpoint is older than what the
    // stream holds (here older than the stream itself: kinesalite's streams are as young as
    // the test, so the retention rule is the unit tests' in `health::gap`); and a shard that
    // has since left the stream, never finished.
    let two_days_ago = now() - 2 * 86_400;
    let mut read: Vec<String> = Vec::new();
    for s in &shards {
        if st["shards"][s]["sequence_number"].is_string() {
            st["shards"][s]["arrived"] = two_days_ago.into();
            read.push(s.clone());
        }
    }
    assert!(!read.is_empty());
    st["shards"]["shardId-000000000042"] = serde_json::json!({
        "sequence_number": "49590338271490256608559692538361571095921575989136588898",
        "sub_sequence": null, "finished": false, "arrived": two_days_ago - 3_600
    });
    std::fs::write(&path, st.to_string()).unwrap();
    rt.block_on(put(&c, "org", second, 100));
    let want = expected(&cfg, &t, second);
    let run = Consumer::start(&cfg, k.port);
    let got = lines(&run, want.len());
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    assert_eq!(others(&got), want, "the records held are read");
    let g = gaps(&got);
    let created = rt.block_on(async {
        c.describe_stream_summary()
            .stream_name("org")
            .send()
            .await
            .unwrap()
            .stream_description_summary()
            .unwrap()
            .stream_creation_timestamp()
            .secs()
    });
    let old: Vec<_> = g
        .iter()
        .filter(|a| a["gap"]["cause"] == "before-creation")
        .collect();
    assert_eq!(
        old.len(),
        1,
        "both shards lost the same window: one alert: {g:?}"
    );
    assert_eq!(old[0]["gap"]["from"], two_days_ago);
    assert_eq!(old[0]["gap"]["to"], created);
    let gone: Vec<_> = g
        .iter()
        .filter(|a| a["gap"]["cause"] == "shard-gone")
        .collect();
    assert_eq!(gone.len(), 1, "{g:?}");
    assert_eq!(gone[0]["gap"]["shard"], "shardId-000000000042");
    assert_eq!(gone[0]["gap"]["from"], two_days_ago - 3_600);
    // The vanished shard is marked finished: told once.
    let st = state(&path);
    assert_eq!(
        st["shards"]["shardId-000000000042"]["finished"], true,
        "{st}"
    );
    // Checkpoints at the stream's very start and nothing new since (a quiet stream): the
    // stream still holds everything after them, so no gap and nothing else.
    let mut st = st;
    for s in &read {
        st["shards"][s]["arrived"] = created.into();
    }
    std::fs::write(&path, st.to_string()).unwrap();
    let run = Consumer::start(&cfg, k.port);
    let again = lines(&run, 0);
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    assert!(again.is_empty(), "a quiet stream is not a gap: {again:?}");
}
