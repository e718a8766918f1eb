//! Feed health (`[health]`) through the binary: `replay` judges silence on event time (an
//! archive shows its past silences); `run` against kinesalite judges it, and delivery lag, on
//! arrival time, and keeps an ongoing silence across a restart.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::emu::*;
use crate::common::*;
use serde_json::Value;

/// A real CloudTrail record (Stratus Red Team), as account `account` at `time`, read-only in
/// an approved region so that only the feed's health can alert.
fn record(base: &Value, account: &str, time: i64, n: usize) -> String {
    let mut r = base.clone();
    r["eventID"] = format!("health-{account}-{time}-{n}").into();
    r["eventTime"] = trailwatch::event::format_utc_secs(time).into();
    r["recipientAccountId"] = account.into();
    r["awsRegion"] = "us-east-1".into();
    r["readOnly"] = true.into();
    r.to_string()
}

fn base() -> Value {
    serde_json::from_str(&stratus()[0]).unwrap()
}

fn rules(alerts: &[Value]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or("").to_string(),
                a["account"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

const DAY: i64 = 1_788_220_800; // 2026-09-01T00:00:00Z

#[test]
fn replay_of_a_day_with_one_account_cut_off_at_noon_raises_its_silence_at_the_expected_time() {
    let t = Tmp::new();
    let base = base();
    let mut lines = Vec::new();
    for step in 0..(24 * 12) {
        let at = DAY + step * 300;
        for (i, account) in ["111111111111", "222222222222", "333333333333"]
            .iter()
            .enumerate()
        {
            // 222… sends nothing from noon to 14:00.
            let gone = *account == "222222222222" && (12 * 3600..14 * 3600).contains(&(at - DAY));
            if !gone {
                lines.push(record(&base, account, at + i as i64, 0));
            }
        }
    }
    let input = t.write("day.jsonl", lines.join("\n"));
    let cfg = t.config(
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n[health]\nsilent_after = \"30m\"\n",
    );
    let out = replay(&cfg, &[&input]);
    assert_eq!(out.code, 0, "{}", out.show());
    let alerts = out.alerts();
    assert_eq!(
        rules(&alerts),
        vec![
            ("feed-silent".to_string(), "222222222222".to_string()),
            ("feed-resumed".to_string(), "222222222222".to_string())
        ],
        "{}",
        out.show()
    );
    let last = trailwatch::event::format_utc_secs(DAY + 12 * 3600 - 300 + 1);
    // Silent 30 minutes (the floor; 3 x its 5-minute rhythm is less) after its last event.
    assert_eq!(
        alerts[0]["event_time"],
        trailwatch::event::format_utc_secs(DAY + 12 * 3600 + 25 * 60 + 1)
    );
    assert_eq!(alerts[0]["last_event_time"], last);
    assert_eq!(alerts[0]["silent_for"], "30m");
    assert_eq!(alerts[0]["region"], Value::Null);
    assert_eq!(
        alerts[1]["event_time"],
        trailwatch::event::format_utc_secs(DAY + 14 * 3600 + 1)
    );
    assert_eq!(alerts[1]["silent_for"], "2h 5m");
    assert_eq!(alerts[1]["silent_for_seconds"], 7500);
    // The same alerts go to the notify stream too (same routes and shaping as any alert).
    let both = common::run([
        "replay",
        "--config",
        &s(&cfg),
        "--stream",
        "notify",
        &s(&input),
    ]);
    assert!(both.stdout.contains("feed-silent"), "{}", both.show());
}

fn live_config(t: &Tmp, stream: &str, health: &str) -> std::path::PathBuf {
    t.write(
        "run.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"{stream}\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\ndiscovery_interval = \"1s\"\n\n[checkpoint]\npath = \"{}\"\ninterval = \"300ms\"\n\n[health]\n{health}\n",
            t.path("state/checkpoints.json").display()
        ),
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The next alert line within `timeout`, parsed.
fn next_alert(c: &Consumer, timeout: Duration) -> Option<Value> {
    let line = c.lines.recv_timeout(timeout).ok()?;
    Some(serde_json::from_str(&line).unwrap())
}

#[test]
fn run_raises_lagging_for_records_twenty_minutes_old() {
    let k = start_kinesalite();
    let t = Tmp::new();
    let cfg = live_config(&t, "lag", "lag_threshold = \"15m\"");
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "lag", 1));
    let base = base();
    let old = now() - 20 * 60;
    let mut recs = Vec::new();
    for i in 0..8 {
        recs.push(record(&base, "111111111111", old + i, i as usize));
        // The other account's records are on time.
        recs.push(record(&base, "222222222222", now() - 5, i as usize));
    }
    rt.block_on(put(&c, "lag", &recs, 0));
    let run = Consumer::start(&cfg, k.port);
    let got = next_alert(&run, Duration::from_secs(30)).expect("an alert");
    assert_eq!(got["rule"], "feed-lagging", "{got}");
    assert_eq!(got["account"], "111111111111");
    assert_eq!(got["lag"]["threshold_seconds"], 900);
    assert!(got["lag"]["max_seconds"].as_u64().unwrap() >= 1200, "{got}");
    assert_eq!(got["lag"]["share_late"], 1.0);
    // Nothing for the account that is on time.
    assert!(next_alert(&run, Duration::from_secs(2)).is_none());
    let (code, rest) = run.stop();
    assert_eq!(code, 0);
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn run_keeps_an_ongoing_silence_across_a_restart() {
    let k = start_kinesalite();
    let t = Tmp::new();
    // Seconds, not minutes, so the test can wait for it: silent after 2 s (3 x its 1 s
    // rhythm is 3 s), once it has sent 5 events over 4 s.
    let cfg = live_config(
        &t,
        "quiet",
        "silent_after = \"2s\"\nlearn_events = 5\nlag_threshold = \"1h\"",
    );
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "quiet", 1));
    let base = base();
    let start = now();
    let recs: Vec<String> = (0..8)
        .map(|i| record(&base, "111111111111", start - 8 + i, 0))
        .collect();
    rt.block_on(put(&c, "quiet", &recs, 0));
    let run = Consumer::start(&cfg, k.port);
    let silent = next_alert(&run, Duration::from_secs(30)).expect("feed-silent");
    assert_eq!(silent["rule"], "feed-silent", "{silent}");
    assert_eq!(silent["account"], "111111111111");
    let (code, rest) = run.stop();
    assert_eq!(code, 0);
    assert!(rest.is_empty(), "one silence, one alert: {rest:?}");

    // Restarted in the middle of the silence: it is not raised again...
    let run = Consumer::start(&cfg, k.port);
    let waited = Instant::now();
    assert!(
        next_alert(&run, Duration::from_secs(4)).is_none(),
        "raised again after the restart"
    );
    assert!(waited.elapsed() >= Duration::from_secs(4));
    // ...and not forgotten: the account's next event resumes it.
    let back = vec![record(&base, "111111111111", now(), 1)];
    rt.block_on(put(&c, "quiet", &back, 100));
    let resumed = next_alert(&run, Duration::from_secs(30)).expect("feed-resumed");
    assert_eq!(resumed["rule"], "feed-resumed", "{resumed}");
    assert_eq!(resumed["account"], "111111111111");
    assert!(
        resumed["silent_for_seconds"].as_u64().unwrap() >= 4,
        "{resumed}"
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("state/checkpoints.json")).unwrap())
            .unwrap();
    assert!(
        state["health"]["accounts"]["111111111111"].is_object(),
        "{state}"
    );
    run.stop();
}
