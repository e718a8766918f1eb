//! What both ways of reading a shard share (shared-throughput polling in [`super::kinesis`],
//! enhanced fan-out in [`super::efo`]): the [`Batch`] a reader hands on and its
//! acknowledgement, the errors, the shard's description, the stream's facts and the gap check
//! at the start of a reading, backoff and pausing.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::health::gap::{self, Gap, StreamFacts};
use crate::state::positions::Ack;
use crate::state::ShardCheckpoint;

use crate::config::{KinesisSettings as Settings, Start};

/// Records read from one shard: what acknowledging them means, and the reader waiting to
/// read on.
pub struct Batch {
    /// (sequence number, data)
    pub records: Vec<(String, Vec<u8>)>,
    /// The shard, its last record, and whether the shard ended with these records.
    pub ack: Ack,
    /// MillisBehindLatest from GetRecords.
    pub millis_behind: Option<i64>,
    /// The shard resumed inside a KPL aggregate: in the record with this sequence number,
    /// sub-records up to this index were done before and are skipped.
    pub skip: Option<(String, u64)>,
    /// Sent `true` once the batch is acknowledged: the reader reads on; `false` (or dropped):
    /// the reader stops (the lease is someone else's, or the road stopped).
    pub resume: oneshot::Sender<bool>,
    /// The stream could not give what this shard's reading asked for (`feed-gap`): found
    /// when reading started or resumed, told with the first batch after it.
    pub gap: Option<Gap>,
}

impl Batch {
    pub fn shard(&self) -> &str {
        &self.ack.shard
    }
}

/// A response's records as a batch takes them ((sequence number, data), in order) and when
/// each arrived in the stream (seconds), for the gap check and the checkpoint.
pub(super) fn records_of(
    records: &[aws_sdk_kinesis::types::Record],
) -> (Vec<(String, Vec<u8>)>, Vec<i64>) {
    let data = records
        .iter()
        .map(|r| (r.sequence_number().to_string(), r.data().as_ref().to_vec()))
        .collect();
    let arrivals = records
        .iter()
        .filter_map(|r| r.approximate_arrival_timestamp().map(|t| t.secs()))
        .collect();
    (data, arrivals)
}

#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    #[error("Kinesis {op}: {message}")]
    Api { op: &'static str, message: String },
}

pub(super) fn api<E, R>(op: &'static str, e: aws_sdk_kinesis::error::SdkError<E, R>) -> KinesisError
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    KinesisError::Api {
        op,
        message: crate::aws::describe(&e),
    }
}

#[derive(Debug, Clone)]
pub(super) struct ShardInfo {
    pub id: String,
    pub parents: Vec<String>,
}

/// The stream's retention and creation time (DescribeStreamSummary), for gap detection.
pub(super) async fn stream_facts(
    client: &Client,
    stream: &str,
) -> Result<StreamFacts, KinesisError> {
    let req = client.describe_stream_summary();
    let req = match stream.starts_with("arn:") {
        true => req.stream_arn(stream),
        false => req.stream_name(stream),
    };
    let resp = req
        .send()
        .await
        .map_err(|e| api("DescribeStreamSummary", e))?;
    let d = resp.stream_description_summary();
    Ok(StreamFacts {
        retention_secs: d.map_or(24, |d| d.retention_period_hours()) as i64 * 3_600,
        created: d.map(|d| d.stream_creation_timestamp().secs()),
    })
}

/// What the stream can give, shared by the readers: `None` until (or while it cannot be)
/// read; then gaps cannot be told, and that is counted.
pub(super) type Facts = Arc<std::sync::Mutex<Option<StreamFacts>>>;

/// Reads the stream's facts into `facts`; says once when they cannot be read.
pub(super) async fn refresh_facts(client: &Client, stream: &str, facts: &Facts) {
    match stream_facts(client, stream).await {
        Ok(f) => {
            *facts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(f);
        }
        Err(e) => {
            metrics::counter!(crate::metric::FEED_GAP_CHECKS_TOTAL, "result" => "unknown")
                .increment(1);
            tracing::warn!(error = %e, "cannot read the stream's retention and creation time: a gap before a shard's position cannot be told until it is read")
        }
    }
}

/// The time a shard's reading asks to start from, for gap detection: the checkpointed
/// record's arrival, or `at_timestamp` for a shard read from `start`; `None` when there is
/// nothing to compare (`trim_horizon`, `latest`, a child of a reshard, a checkpoint saved
/// without its time: counted as unknown).
pub(super) fn asked_from(
    s: &Settings,
    shard: &ShardInfo,
    cp: Option<&ShardCheckpoint>,
) -> Option<i64> {
    match cp {
        Some(c) if c.sequence_number.is_some() => {
            if c.arrived.is_none() {
                metrics::counter!(crate::metric::FEED_GAP_CHECKS_TOTAL, "result" => "unknown")
                    .increment(1);
            }
            c.arrived
        }
        _ if !shard.parents.is_empty() => None,
        _ => match s.start {
            Start::AtTimestamp(t) => Some(t),
            _ => None,
        },
    }
}

/// The gap before a shard's first records, once they (or the shard's present) are known.
pub(super) fn check_gap(
    s: &Settings,
    shard: &str,
    asked: i64,
    facts: &Facts,
    arrivals: &[i64],
    caught_up: bool,
) -> Option<Option<Gap>> {
    let f = (*facts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))?;
    if arrivals.is_empty() && !caught_up {
        return None; // not yet known: look again at the next response
    }
    let now = crate::clock::now_secs();
    let found = gap::detect(Some(asked), &f, now, arrivals.first().copied());
    let result = if found.is_some() { "gap" } else { "none" };
    metrics::counter!(crate::metric::FEED_GAP_CHECKS_TOTAL, "result" => result).increment(1);
    Some(found.map(|(from, to, cause)| {
        let span = match (arrivals.first(), arrivals.last()) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        };
        Gap {
            stream: s.stream.clone(),
            shard: shard.to_string(),
            from,
            to,
            cause,
            estimated_records: gap::estimate(arrivals.len(), span, to - from),
        }
    }))
}

/// Exponential backoff with full jitter, from 200 ms to 10 s.
pub(super) fn backoff(attempt: u32) -> Duration {
    crate::backoff::delay(
        Duration::from_millis(200),
        Duration::from_secs(10),
        attempt + 1,
    )
}

pub(super) async fn pause(d: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.cancelled() => {}
    }
}
