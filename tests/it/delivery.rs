//! Issue 6: delivery to real local HTTP servers (Slack, Splunk HEC, webhooks) started here,
//! with faults injected (500s, 429 with Retry-After, slow answers, a server that is down and
//! comes back); SNS through moto with an SQS queue subscribed; and the spool across `kill -9`.
//! Oracle: `replay` without `--deliver` prints the items in order.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::http::{Fault, Server};
use crate::common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const POLICY: &str = "[policy]\napproved_regions = [\"us-east-1\"]\n";

fn config(t: &Tmp, name: &str, body: &str) -> PathBuf {
    t.write(
        name,
        format!(
            "{POLICY}\n[delivery]\nstate_dir = \"{}\"\nbackoff_initial = \"50ms\"\nbackoff_max = \"1s\"\n{body}",
            t.path("state").display()
        ),
    )
}

fn sample() -> PathBuf {
    fixture_path("stratus_sample.jsonl")
}

fn trailwatch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run trailwatch")
}

fn deliver(cfg: &Path, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let cfg = cfg.display().to_string();
    let input = sample().display().to_string();
    let mut args = vec!["replay", "--deliver", "--config", &cfg];
    args.extend_from_slice(extra);
    args.push(&input);
    let out = trailwatch(&args, env);
    assert!(
        out.status.success(),
        "replay --deliver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Item ids in the order `replay --stream S` prints them.
fn expected(cfg: &Path, stream: &str) -> Vec<String> {
    let cfg = cfg.display().to_string();
    let input = sample().display().to_string();
    let out = trailwatch(
        &["replay", "--stream", stream, "--config", &cfg, &input],
        &[],
    );
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["alert_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn assert_once_in_order(got: &[String], want: &[String]) {
    assert_eq!(
        got.iter().collect::<BTreeSet<_>>().len(),
        got.len(),
        "an item was delivered twice"
    );
    assert_eq!(got, want, "every item, once, in order");
}

#[test]
fn webhook_retries_500s_honours_retry_after_signs_and_keeps_order() {
    let t = Tmp::new();
    let server = Server::start();
    server.script([
        Fault::status(500, "boom"),
        Fault::status(502, "bad gateway"),
        Fault::status(429, "slow down").retry_after(1),
    ]);
    let cfg = config(
        &t,
        "w.toml",
        &format!(
            "[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nhmac_key_env = \"TW_HMAC\"\nbatch = 7\nmax_attempts = 5\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            server.url("/alerts")
        ),
    );
    let want = expected(&cfg, "siem");
    assert!(want.len() > 10);
    let key = "s3cr3t-hmac-key";
    let out = deliver(&cfg, &[("TW_HMAC", key)], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(key), "the key never appears in logs");

    let reqs = server.requests();
    assert_eq!(reqs[0].status, 500);
    assert_eq!(reqs[2].status, 429);
    assert!(
        reqs[3].at.duration_since(reqs[2].at) >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    let mut got = Vec::new();
    for r in server.accepted() {
        assert_eq!(r.path, "/alerts");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.header("idempotency-key").is_some());
        let sig = r.header("x-trailwatch-signature").unwrap();
        let (ts, v1) = sig
            .strip_prefix("t=")
            .and_then(|s| s.split_once(",v1="))
            .unwrap();
        assert_eq!(r.header("x-trailwatch-timestamp"), Some(ts));
        let mut signed = format!("{ts}.").into_bytes();
        signed.extend_from_slice(&r.body);
        assert_eq!(v1, hmac_hex(key.as_bytes(), &signed), "signature verifies");
        let batch = r.json();
        let batch = batch.as_array().unwrap();
        assert!(batch.len() <= 7);
        for item in batch {
            assert_eq!(item["delivery_id"], item["alert_id"]);
            assert!(
                item.get("event").is_none(),
                "native format without include_event"
            );
            got.push(item["alert_id"].as_str().unwrap().to_string());
        }
    }
    assert_once_in_order(&got, &want);
}

#[test]
fn splunk_hec_batches_ocsf_events_retries_busy_and_waits_for_indexer_acks() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let t = Tmp::new();
    let acks = AtomicU64::new(0);
    let polls = AtomicU64::new(0);
    let server = Server::start_with(move |r| {
        if r.path == "/services/collector/ack" {
            // Every ack is pending on its first poll, then indexed.
            let id = r.json()["acks"][0].as_u64().unwrap();
            let first = polls.fetch_add(1, Ordering::SeqCst) % 2 == 0;
            (200, format!("{{\"acks\":{{\"{id}\":{}}}}}", !first))
        } else {
            let id = acks.fetch_add(1, Ordering::SeqCst);
            (
                200,
                format!("{{\"text\":\"Success\",\"code\":0,\"ackId\":{id}}}"),
            )
        }
    });
    server.script([Fault::status(
        503,
        "{\"text\":\"Server is busy\",\"code\":9}",
    )]);
    let cfg = config(
        &t,
        "h.toml",
        &format!(
            "[[sinks]]\nname = \"splunk\"\ntype = \"splunk_hec\"\nurl = \"{}\"\ntoken_file = \"{}\"\nformat = \"ocsf\"\nindex = \"security\"\nack = true\nbatch = 10\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"splunk\"]\n",
            server.url(""),
            t.write("hec-token", "00000000-1111-2222-3333-444444444444\n").display()
        ),
    );
    let want = expected(&cfg, "siem");
    deliver(&cfg, &[], &[]);
    let reqs = server.requests();
    assert_eq!(reqs[0].status, 503, "busy first");
    let mut got = Vec::new();
    let mut channel = None;
    for r in reqs.iter().filter(|r| r.status == 200) {
        assert_eq!(
            r.header("authorization"),
            Some("Splunk 00000000-1111-2222-3333-444444444444")
        );
        let ch = r.header("x-splunk-request-channel").unwrap().to_string();
        assert_eq!(ch.len(), 36, "a UUID-shaped channel");
        assert_eq!(channel.get_or_insert(ch.clone()), &ch, "one channel");
        if r.path != "/services/collector/event" {
            continue;
        }
        let text = String::from_utf8(r.body.clone()).unwrap();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(events.len() <= 10);
        for e in events {
            assert_eq!(e["index"], "security");
            assert_eq!(e["sourcetype"], "ocsf:detection_finding");
            assert_eq!(e["event"]["class_uid"], 2004);
            assert!(e["time"].as_i64().is_some());
            assert!(
                e["event"]["evidences"][0]["data"]["eventID"].is_string(),
                "the CloudTrail event is the evidence"
            );
            got.push(e["fields"]["alert_id"].as_str().unwrap().to_string());
        }
    }
    let ack_polls = reqs
        .iter()
        .filter(|r| r.path == "/services/collector/ack")
        .count();
    let posts = reqs
        .iter()
        .filter(|r| r.path == "/services/collector/event" && r.status == 200)
        .count();
    assert_eq!(ack_polls, 2 * posts, "each batch waited for its ack");
    assert_once_in_order(&got, &want);
}

#[test]
fn slack_gets_block_kit_paced_per_webhook_with_retry_after() {
    let t = Tmp::new();
    let server = Server::start();
    server.script([Fault::status(429, "rate_limited").retry_after(1)]);
    let cfg = config(
        &t,
        "s.toml",
        "[[sinks]]\nname = \"secops\"\ntype = \"slack\"\nwebhook_url_env = \"TW_SLACK\"\nmin_interval = \"150ms\"\n\n[[routes]]\nstream = \"notify\"\nsinks = [\"secops\"]\nmin_severity = \"medium\"\n",
    );
    let want = expected(&cfg, "notify");
    let url = server.url("/services/T000/B000/XXXXSECRET");
    let out = deliver(&cfg, &[("TW_SLACK", &url)], &[]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("XXXXSECRET"));
    let reqs = server.requests();
    assert_eq!(reqs[0].status, 429);
    assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(950));
    // Paced at 150 ms (unpaced requests would be a millisecond or two apart); the server's
    // clock reads each request when it arrives, so allow it scheduling jitter.
    for pair in reqs.windows(2) {
        assert!(
            pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(100),
            "at most one message per min_interval"
        );
    }
    let span = reqs.last().unwrap().at.duration_since(reqs[1].at);
    assert!(
        span >= Duration::from_millis(150) * (reqs.len() as u32 - 2) - Duration::from_millis(50),
        "on average no faster than min_interval: {span:?} for {} messages",
        reqs.len() - 1
    );
    let mut got = Vec::new();
    for r in server.accepted() {
        let m = r.json();
        assert!(m["text"].as_str().unwrap().starts_with('['));
        let att = &m["attachments"][0];
        assert!(att["color"].as_str().unwrap().starts_with('#'));
        let blocks = att["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        let context = blocks.last().unwrap()["elements"][0]["text"]
            .as_str()
            .unwrap();
        got.push(context.split('`').nth(1).unwrap().to_string());
    }
    // The context line carries the delivery id; for alerts it is the alert id.
    let want_alerts: Vec<&String> = want.iter().collect();
    assert_eq!(got.len(), want_alerts.len());
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), got.len());
}

#[test]
fn a_slow_sink_does_not_hold_the_others_and_its_backlog_is_spooled_then_replayed() {
    let t = Tmp::new();
    let slow = Server::start_with(|_| {
        std::thread::sleep(Duration::from_secs(2));
        (200, "ok".into())
    });
    let fast = Server::start();
    let cfg = config(
        &t,
        "two.toml",
        &format!(
            "accept_within = \"300ms\"\n\n[[sinks]]\nname = \"slow\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = 5\n\n[[sinks]]\nname = \"fast\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = 5\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"slow\", \"fast\"]\n",
            slow.url("/"),
            fast.url("/")
        ),
    );
    let want = expected(&cfg, "siem");
    let started = Instant::now();
    let out = deliver(&cfg, &[], &["--drain-timeout", "0s", "--allow-incomplete"]);
    let took = started.elapsed();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("items still spooled at exit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(12),
        "the stream kept moving ({took:?}); the slow sink needs ~2 s for each of its {} batches",
        want.len().div_ceil(5)
    );
    assert_once_in_order(&fast.webhook_alert_ids(), &want);
    let status = trailwatch(
        &["spool", "status", "--config", &cfg.display().to_string()],
        &[],
    );
    let table = String::from_utf8_lossy(&status.stdout).to_string();
    let spooled: usize = table
        .lines()
        .find(|l| l.starts_with("slow"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(spooled > 0, "the slow sink's backlog was spooled:\n{table}");
    // `spool replay` delivers the rest, in order, none twice.
    let out = trailwatch(
        &["spool", "replay", "--config", &cfg.display().to_string()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_once_in_order(&slow.webhook_alert_ids(), &want);
    let status = trailwatch(
        &["spool", "status", "--config", &cfg.display().to_string()],
        &[],
    );
    assert!(String::from_utf8_lossy(&status.stdout)
        .lines()
        .skip(1)
        .all(|l| l.split_whitespace().nth(1) == Some("0")));
}

#[test]
fn a_sink_that_is_down_then_back_gets_everything_once() {
    let t = Tmp::new();
    let server = Server::start();
    server.down();
    let cfg = config(
        &t,
        "down.toml",
        &format!(
            "accept_within = \"1s\"\n\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = 4\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            server.url("/in")
        ),
    );
    let want = expected(&cfg, "siem");
    let cfg_s = cfg.display().to_string();
    let up_later = std::thread::spawn({
        let port = server.port;
        move || {
            std::thread::sleep(Duration::from_secs(3));
            port
        }
    });
    // Down for the first 3 s of a 60 s drain: refused, spooled, then delivered from the spool.
    let handle =
        std::thread::spawn(move || deliver(Path::new(&cfg_s), &[], &["--drain-timeout", "60s"]));
    up_later.join().unwrap();
    server.up();
    let out = handle.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stderr.contains("0 still spooled"), "{stderr}");
    let got = server.webhook_alert_ids();
    assert_once_in_order(&got, &want);
}

#[test]
fn a_rejected_item_goes_to_the_rejected_file_the_rest_are_delivered_and_the_run_says_so() {
    let t = Tmp::new();
    let server = Server::start();
    // The first batch is refused as a whole (400), then one item of it on its own.
    server.script([
        Fault::status(400, "invalid_payload"),
        Fault::status(400, "invalid_payload"),
    ]);
    let cfg = config(
        &t,
        "rej.toml",
        &format!(
            "[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = 3\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            server.url("/")
        ),
    );
    let want = expected(&cfg, "siem");
    // A refused item is a run that did less than asked: exit 3 unless accepted.
    let out = deliver(&cfg, &[], &["--allow-incomplete"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INCOMPLETE: 1 items a destination refused (in the sink's rejected file)"),
        "{stderr}"
    );
    let rejected = std::fs::read_to_string(t.path("state/rejected/hook.jsonl")).unwrap();
    let lines: Vec<Value> = rejected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "only the one item: {rejected}");
    assert_eq!(lines[0]["sink"], "hook");
    assert!(lines[0]["reason"].as_str().unwrap().contains("400"));
    assert_eq!(lines[0]["item"]["alert_id"], want[0].as_str());
    let got = server.webhook_alert_ids();
    assert_once_in_order(&got, &want[1..]);
}

#[test]
fn validate_names_bad_sinks_and_routes_and_never_reads_secrets_from_the_config() {
    let t = Tmp::new();
    let cfg = config(
        &t,
        "bad.toml",
        "[[sinks]]\nname = \"slack\"\ntype = \"slack\"\nwebhook_url = \"https://hooks.slack.com/services/T/B/SECRET\"\n\n[[sinks]]\nname = \"siem\"\ntype = \"splunk_hec\"\nurl = \"splunk:8088\"\ntoken_env = \"TW_NOPE\"\npath = \"x\"\n\n[[sinks]]\nname = \"x\"\ntype = \"carrier-pigeon\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"siem\", \"nope\"]\naccounts = [\"12345\"]\n",
    );
    let out = trailwatch(&["validate", "--config", &cfg.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for needle in [
        "sinks[0].webhook_url: secrets are not read from the config; use webhook_url_env or webhook_url_file",
        "sinks[1].url: \"splunk:8088\": expected an http:// or https:// URL",
        "sinks[1].path: unknown key for a splunk_hec sink",
        "sinks[2].type: \"carrier-pigeon\"",
        "routes[0].sinks[1]: no sink is named \"nope\"",
        "routes[0].accounts[0]: \"12345\": expected a 12-digit account id",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(!err.contains("SECRET"), "a secret is never echoed");

    // A good config: a missing secret is a warning for validate, an error at start-up.
    let cfg = config(
        &t,
        "good.toml",
        "[[sinks]]\nname = \"siem\"\ntype = \"splunk_hec\"\nurl = \"https://splunk.example.com:8088\"\ntoken_env = \"TW_UNSET_TOKEN\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"siem\"]\nmin_severity = \"critical\"\n",
    );
    let out = trailwatch(&["validate", "--config", &cfg.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(0));
    let err =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment variable TW_UNSET_TOKEN is not set"),
        "{err}"
    );
    assert!(err.contains("no route takes the notify stream"), "{err}");
    assert!(
        err.contains(
            "siem stream: high alerts of rule \"unapproved-region\" are taken by no route"
        ),
        "{err}"
    );
    let input = sample().display().to_string();
    let out = trailwatch(
        &[
            "replay",
            "--deliver",
            "--config",
            &cfg.display().to_string(),
            &input,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("sinks[0].token_env: environment variable TW_UNSET_TOKEN is not set"));
}

/// `trailwatch run` with a webhook that is down: alerts are spooled (and acknowledged, so
/// the stream moves on); `kill -9`; the webhook comes back; after a restart every spooled
/// alert is delivered exactly once.
#[test]
fn kill_9_with_alerts_spooled_then_restart_delivers_each_once() {
    use common::emu::*;
    let k = start_kinesalite();
    let t = Tmp::new();
    let server = Server::start();
    server.down();
    let cfg = t.write(
        "run.toml",
        format!(
            "{POLICY}\n[source.kinesis]\nstream = \"spooled\"\npoll_interval = \"100ms\"\n\n[checkpoint]\npath = \"{}\"\ninterval = \"300ms\"\n\n[delivery]\nstate_dir = \"{}\"\naccept_within = \"500ms\"\nbackoff_initial = \"50ms\"\nbackoff_max = \"500ms\"\n\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = 3\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            t.path("state/cp.json").display(),
            t.path("state").display(),
            server.url("/in")
        ),
    );
    let recs = stratus();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "spooled", 2));
    rt.block_on(put(&c, "spooled", &recs, 0));
    let want: BTreeSet<String> = expected(&cfg, &t, &recs);
    let depth = || -> usize {
        let out = trailwatch(
            &["spool", "status", "--config", &cfg.display().to_string()],
            &[],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("hook"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let mut run = Consumer::start(&cfg, k.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while depth() < want.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} spooled",
            depth(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run.child.kill().unwrap(); // SIGKILL
    run.child.wait().unwrap();
    assert!(server.accepted().is_empty());

    server.up();
    let mport = free_port();
    let maddr = format!("127.0.0.1:{mport}");
    let run = Consumer::start_with(&cfg, k.port, &["--metrics-addr", &maddr]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.webhook_alert_ids().len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} delivered",
            server.webhook_alert_ids().len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500)); // more polls: nothing else may come
    let (status, body) = http_get(mport, "/metrics");
    assert_eq!(status, 200);
    for m in [
        format!("trailwatch_sink_sent_total{{sink=\"hook\"}} {}", want.len()),
        "trailwatch_sink_spool_depth{sink=\"hook\"} 0".to_string(),
        "trailwatch_sink_spool_oldest_age_seconds{sink=\"hook\"}".to_string(),
        "trailwatch_sink_request_seconds_bucket{sink=\"hook\"".to_string(),
    ] {
        assert!(body.contains(&m), "/metrics lacks {m}:\n{body}");
    }
    let (code, _) = run.stop();
    assert_eq!(code, 0);
    let got = server.webhook_alert_ids();
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "no loss"
    );
    assert_eq!(got.len(), want.len(), "none twice");
    assert_eq!(depth(), 0, "the spool is empty");
}

#[test]
fn spool_purge_needs_a_sink_name_and_drops_only_that_spool() {
    let t = Tmp::new();
    let server = Server::start();
    server.down();
    let cfg = config(
        &t,
        "purge.toml",
        &format!(
            "accept_within = \"200ms\"\n\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\n[[sinks]]\nname = \"file\"\ntype = \"file\"\npath = \"{}\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\", \"file\"]\n",
            server.url("/"),
            t.path("feed.jsonl").display()
        ),
    );
    let want = expected(&cfg, "siem");
    deliver(&cfg, &[], &["--drain-timeout", "0s", "--allow-incomplete"]);
    let cfg_s = cfg.display().to_string();
    let depth = |sink: &str| -> usize {
        let out = trailwatch(&["spool", "status", "--config", &cfg_s], &[]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.split_whitespace().next() == Some(sink))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    assert_eq!(
        depth("hook"),
        want.len(),
        "everything for the dead webhook is spooled"
    );
    assert_eq!(depth("file"), 0, "the file sink was not held up");
    assert_eq!(
        std::fs::read_to_string(t.path("feed.jsonl"))
            .unwrap()
            .lines()
            .count(),
        want.len()
    );
    let out = trailwatch(&["spool", "purge", "--config", &cfg_s], &[]);
    assert_eq!(out.status.code(), Some(2), "purge names a sink or --all");
    let out = trailwatch(
        &["spool", "purge", "--config", &cfg_s, "--sink", "hook"],
        &[],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("hook: {} items dropped", want.len())));
    assert_eq!(depth("hook"), 0);
    server.up();
    let out = trailwatch(&["spool", "replay", "--config", &cfg_s], &[]);
    assert!(out.status.success());
    assert!(server.accepted().is_empty(), "purged items are never sent");
}

/// A request that gets no answer within the sink's timeout is retried with the same
/// `Idempotency-Key` and the same `delivery_id`s, so the receiver can drop the repeat if the
/// first one did land (at-least-once, made idempotent).
#[test]
fn a_timed_out_request_is_retried_with_the_same_idempotency_key() {
    let t = Tmp::new();
    let server = Server::start();
    server.script([Fault::slow(Duration::from_millis(1500))]);
    let cfg = config(
        &t,
        "timeout.toml",
        &format!(
            "accept_within = \"30s\"\n\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = 100\ntimeout = \"400ms\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            server.url("/")
        ),
    );
    let want = expected(&cfg, "siem");
    assert!(want.len() <= 100, "one batch");
    deliver(&cfg, &[], &[]);
    std::thread::sleep(Duration::from_millis(1500)); // the slow answer is recorded late
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "the timed-out request and its retry");
    let key = |r: &common::http::Request| r.header("idempotency-key").unwrap().to_string();
    assert_eq!(key(&reqs[0]), key(&reqs[1]));
    let ids = |r: &common::http::Request| -> Vec<String> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["delivery_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&reqs[0]), ids(&reqs[1]));
    assert_eq!(ids(&reqs[1]), want);
}

/// The figures of `trailwatch deliver: …` (issue 27, case 8).
fn deliver_figures(stderr: &str) -> Vec<u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("trailwatch deliver: "))
        .unwrap_or_else(|| panic!("no deliver line in {stderr}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

/// Issue 27, case 8: `replay --deliver`'s summary adds up (items = routed + unrouted; per sink
/// routed = delivered + spooled + rejected + skipped), its delivered count is what the webhook
/// received, and items still spooled at the drain timeout make the run incomplete (exit 3,
/// 0 with --allow-incomplete). Failed before: "N items routed to the sinks" counted every item
/// raised (the notify items no route takes too), and the run exited 0 with items spooled.
#[test]
fn the_deliver_summary_adds_up_and_items_left_spooled_are_incomplete() {
    let t = Tmp::new();
    let server = Server::start();
    // Only the siem stream is routed: the notify items match no route.
    let cfg = config(
        &t,
        "count.toml",
        &format!(
            "[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nbatch = 4\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            server.url("/in")
        ),
    );
    let (siem, notify) = (
        expected(&cfg, "siem").len() as u64,
        expected(&cfg, "notify").len() as u64,
    );
    assert!(siem > 0 && notify > 0, "{siem} {notify}");
    let out = deliver(&cfg, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let f = deliver_figures(&stderr);
    // items, routed, unrouted; hook: queued = delivered + spooled + rejected + skipped; left
    let (items, routed, unrouted) = (f[0], f[1], f[2]);
    let (queued, delivered, spooled, rejected, skipped) = (f[3], f[4], f[5], f[6], f[7]);
    assert_eq!(items, routed + unrouted, "{stderr}");
    assert_eq!((routed, unrouted), (siem, notify), "{stderr}");
    assert_eq!(queued, delivered + spooled + rejected + skipped, "{stderr}");
    assert_eq!(
        delivered,
        server.webhook_alert_ids().len() as u64,
        "{stderr}"
    );
    assert_eq!(delivered, siem, "{stderr}");
    assert!(!stderr.contains("INCOMPLETE"), "{stderr}");
    // The sink down and no time to drain: what is spooled is said, and the exit is 3.
    let server2 = Server::start();
    server2.down();
    let cfg2 = config(
        &t,
        "down.toml",
        &format!(
            "accept_within = \"200ms\"\n\n[[sinks]]\nname = \"down\"\ntype = \"webhook\"\nurl = \"{}\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"down\"]\n",
            server2.url("/in")
        ),
    );
    let input = sample().display().to_string();
    let cfg2 = cfg2.display().to_string();
    let args = [
        "replay",
        "--deliver",
        "--drain-timeout",
        "0s",
        "--config",
        &cfg2,
        &input,
    ];
    let out = trailwatch(&args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let f = deliver_figures(&stderr);
    assert_eq!(f[3], f[5], "every routed item spooled: {stderr}");
    assert!(
        stderr.contains(&format!("INCOMPLETE: {siem} items still spooled at exit")),
        "{stderr}"
    );
    let mut args = args.to_vec();
    args.push("--allow-incomplete");
    let out = trailwatch(&args, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 28, item 6: a webhook or Slack URL read from a secret that is not an absolute
/// http(s) URL is named (by its key, never its value) by validate, and the sink does not start
/// (exit 2), instead of every delivery failing as "retryable" and spooling for ever.
#[test]
fn a_secret_url_that_is_not_a_url_is_refused_at_start_without_its_value() {
    let t = Tmp::new();
    let cfg = config(
        &t,
        "badurl.toml",
        "[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl_env = \"TW_HOOK_URL\"\n\n[[sinks]]\nname = \"chat\"\ntype = \"slack\"\nwebhook_url_env = \"TW_SLACK_URL\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n\n[[routes]]\nstream = \"notify\"\nsinks = [\"chat\"]\n",
    );
    let env = [
        ("TW_HOOK_URL", "htp//bad url?token=SECRET1"),
        (
            "TW_SLACK_URL",
            "https://hooks.example.com/services/T/B/SECRET2",
        ),
    ];
    let show = |o: &Output| {
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
    };
    let out = trailwatch(&["validate", "--config", &cfg.display().to_string()], &env);
    let text = show(&out);
    assert!(
        text.contains("sinks[0].url_env: the secret is not an absolute http:// or https:// URL"),
        "{text}"
    );
    assert!(!text.contains("sinks[1]"), "the Slack URL is fine: {text}");
    assert!(!text.contains("SECRET"), "a secret is never echoed: {text}");
    let input = sample().display().to_string();
    let cfg_s = cfg.display().to_string();
    let out = trailwatch(&["replay", "--deliver", "--config", &cfg_s, &input], &env);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("sinks[0].url_env: the secret is not an absolute http"),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "a secret is never echoed: {text}");
}
