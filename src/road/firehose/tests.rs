//! The Firehose road without the binary or a socket: a request's acceptance mapped to its
//! HTTP status, by calling the handler on an engine whose in-memory sink accepts, fails or
//! cannot be spooled to.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;

use super::*;
use crate::config::load_str;
use crate::engine::tests::{break_spool, lines, mend_spool, with_memory, NOW};
use crate::sink::destination::memory::{Memory, Mode};

const KEY: &str = "test-key";

fn source(request_timeout: &str) -> FirehoseSource {
    let text = format!(
        "[policy]\napproved_regions = [\"us-east-1\"]\n\
         [source.firehose]\nlisten = \"127.0.0.1:0\"\naccess_keys_env = \"UNUSED\"\n\
         request_timeout = \"{request_timeout}\"\n"
    );
    load_str(&text, "firehose.toml", 0)
        .unwrap()
        .config
        .firehose
        .unwrap()
}

fn app(engine: Engine, request_timeout: &str) -> Arc<App> {
    Arc::new(App::new(
        engine,
        source(request_timeout),
        Keys::parse(KEY),
        1 << 24,
        Arc::default(),
    ))
}

/// A Firehose delivery of the fixture's records under `request_id`.
fn request(request_id: &str, key: &str) -> (HeaderMap, Body) {
    let records: Vec<serde_json::Value> = lines()
        .iter()
        .map(|l| serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(l)}))
        .collect();
    let body =
        serde_json::json!({"requestId": request_id, "timestamp": NOW * 1000, "records": records});
    let mut h = HeaderMap::new();
    h.insert("x-amz-firehose-request-id", request_id.parse().unwrap());
    h.insert("x-amz-firehose-access-key", key.parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    (h, Body::from(body.to_string()))
}

async fn post(app: &Arc<App>, request_id: &str, key: &str) -> u16 {
    let (h, b) = request(request_id, key);
    ingest(State(app.clone()), h, b).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_200_only_once_its_alerts_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Fail);
    let app = app(
        with_memory(dir.path(), &mem, Duration::from_secs(30), NOW),
        "300ms",
    );
    assert_eq!(post(&app, "r1", "wrong-key").await, 401);
    assert!(mem.ids().is_empty(), "a stranger's records were read");
    // The sink fails and nothing is spooled yet: not 200 within the request's time.
    assert_eq!(post(&app, "r1", KEY).await, 503);
    assert!(mem.ids().is_empty());
    // The same request again while its delivery goes on: still not done.
    assert_eq!(post(&app, "r1", KEY).await, 503);
    mem.set(Mode::Accept);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut status = 0;
    while tokio::time::Instant::now() < deadline {
        status = post(&app, "r1", KEY).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the retry after delivery");
    assert!(!mem.ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_alerts_cannot_be_spooled_is_answered_500_and_its_retry_submits_them_again()
{
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Stall);
    let engine = with_memory(dir.path(), &mem, Duration::from_millis(100), NOW);
    let spool = break_spool(dir.path());
    let app = app(engine, "5s");
    assert_eq!(post(&app, "r2", KEY).await, 500);
    // The disk is back, the sink too: the retry (same request id) delivers the same alerts,
    // though dedup already saw the events.
    mend_spool(&spool);
    mem.set(Mode::Accept);
    assert_eq!(post(&app, "r2", KEY).await, 200);
    let delivered = mem.ids();
    let mut want = crate::engine::tests::expected_ids(&lines());
    let mut got = delivered.clone();
    want.sort();
    got.sort();
    got.dedup();
    assert_eq!(got, want, "every alert of the request, after the retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_already_delivered_is_answered_200_without_alerting_again() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Accept);
    let app = app(
        with_memory(dir.path(), &mem, Duration::from_secs(30), NOW),
        "5s",
    );
    assert_eq!(post(&app, "r3", KEY).await, 200);
    let first = mem.ids().len();
    assert!(first > 0);
    assert_eq!(post(&app, "r3", KEY).await, 200);
    assert_eq!(mem.ids().len(), first, "the retry alerted again");
}
