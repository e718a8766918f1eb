//! Enhanced fan-out: the shard's records pushed to this registered consumer over
//! SubscribeToShard (its own 2 MB/s per shard, about 70 ms from PutRecord in AWS) instead of
//! polled with GetRecords. The same [`Batch`]es, acknowledgements, checkpoints, leases, KPL
//! and gap rules as polling: each event's records are one batch, and the next event is read
//! only once that batch is acknowledged. A subscription lasts at most 5 minutes; the reader
//! subscribes again from the last event's continuation sequence number, and at the shard's
//! end (no continuation, child shards) the shard is finished.

use aws_sdk_kinesis::types::{
    ConsumerStatus, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use aws_sdk_kinesis::Client;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::shard::{
    api, asked_from, backoff, check_gap, pause, records_of, Batch, Facts, KinesisError, ShardInfo,
};
use crate::config::{KinesisSettings as Settings, Start};
use crate::state::positions::{Ack, Positions};
use crate::state::ShardCheckpoint;

/// The stream's ARN (SubscribeToShard's consumers are registered on the ARN).
async fn stream_arn(client: &Client, stream: &str) -> Result<String, KinesisError> {
    if stream.starts_with("arn:") {
        return Ok(stream.to_string());
    }
    let resp = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| api("DescribeStreamSummary", e))?;
    Ok(resp
        .stream_description_summary()
        .map(|d| d.stream_arn().to_string())
        .unwrap_or_default())
}

/// Registers the consumer `name` on the stream (or finds it, registered before: the call is
/// idempotent across restarts and workers) and waits until it is ACTIVE; its ARN.
pub async fn register(client: &Client, stream: &str, name: &str) -> Result<String, KinesisError> {
    let arn = stream_arn(client, stream).await?;
    let consumer = match client
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name(name)
        .send()
        .await
    {
        Ok(r) => r.consumer().map(|c| c.consumer_arn().to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            None
        }
        Err(e) => return Err(api("RegisterStreamConsumer", e)),
    };
    for attempt in 0u32.. {
        let req = client.describe_stream_consumer();
        let req = match &consumer {
            Some(c) => req.consumer_arn(c),
            None => req.stream_arn(&arn).consumer_name(name),
        };
        let d = req
            .send()
            .await
            .map_err(|e| api("DescribeStreamConsumer", e))?;
        if let Some(c) = d.consumer_description() {
            if *c.consumer_status() == ConsumerStatus::Active {
                tracing::info!(consumer = %c.consumer_arn(), "enhanced fan-out consumer is active");
                return Ok(c.consumer_arn().to_string());
            }
        }
        if attempt >= 120 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Err(KinesisError::Api {
        op: "DescribeStreamConsumer",
        message: format!("consumer {name} did not become ACTIVE within 2 minutes"),
    })
}

/// Where a subscription starts: after the last event's continuation; else as polling would
/// (the checkpoint, a reshard's child from its start, or `start`).
fn starting_position(
    s: &Settings,
    shard: &ShardInfo,
    cp: Option<&ShardCheckpoint>,
    continuation: Option<&str>,
) -> Result<StartingPosition, KinesisError> {
    let b = StartingPosition::builder();
    let b = match (
        continuation,
        cp.and_then(|c| c.sequence_number.as_deref()),
        s.start,
    ) {
        (Some(seq), _, _) => b
            .r#type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(seq),
        (None, Some(seq), _) if cp.is_some_and(|c| c.sub_sequence.is_some()) => b
            .r#type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(seq),
        (None, Some(seq), _) => b
            .r#type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(seq),
        (None, None, _) if !shard.parents.is_empty() => b.r#type(ShardIteratorType::TrimHorizon),
        (None, None, Start::TrimHorizon) => b.r#type(ShardIteratorType::TrimHorizon),
        (None, None, Start::Latest) => b.r#type(ShardIteratorType::Latest),
        (None, None, Start::AtTimestamp(t)) => b
            .r#type(ShardIteratorType::AtTimestamp)
            .timestamp(aws_sdk_kinesis::primitives::DateTime::from_secs(t)),
    };
    b.build().map_err(|e| KinesisError::Api {
        op: "SubscribeToShard",
        message: e.to_string(),
    })
}

/// What one subscription ended with.
enum Ended {
    /// The shard is done, or the reader must stop (shutdown, the lease is gone).
    Stop,
    /// The subscription ended (its 5 minutes, or an error): subscribe again.
    Again,
}

/// Reads one shard through subscriptions until it ends or shutdown; every batch waits for
/// its acknowledgement before the next event is read.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_shard(
    client: Client,
    s: Settings,
    shard: ShardInfo,
    positions: Positions,
    facts: Facts,
    consumer: String,
    tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
) -> Result<String, KinesisError> {
    let mut continuation: Option<String> = None;
    let mut attempt = 0u32;
    loop {
        if shutdown.is_cancelled() {
            return Ok(shard.id);
        }
        let cp = positions.get(&shard.id);
        let mut reading = Reading {
            unchecked: None,
            skip: None,
        };
        if continuation.is_none() {
            reading.unchecked = asked_from(&s, &shard, cp.as_ref());
            reading.skip = cp
                .as_ref()
                .and_then(|c| Some((c.sequence_number.clone()?, c.sub_sequence?)));
        }
        let start = starting_position(&s, &shard, cp.as_ref(), continuation.as_deref())?;
        let call = client
            .subscribe_to_shard()
            .consumer_arn(&consumer)
            .shard_id(&shard.id)
            .starting_position(start)
            .send();
        // Shutdown does not wait for a subscription that is slow to open.
        let answer = tokio::select! {
            _ = shutdown.cancelled() => return Ok(shard.id),
            a = call => a,
        };
        let out = match answer {
            Ok(o) => o,
            Err(e) => {
                attempt += 1;
                let kind = e
                    .as_service_error()
                    .and_then(|x| aws_sdk_kinesis::error::ProvideErrorMetadata::code(x))
                    .unwrap_or("transport")
                    .to_string();
                metrics::counter!(crate::metric::KINESIS_SUBSCRIBE_ERRORS_TOTAL, "kind" => kind)
                    .increment(1);
                tracing::warn!(shard = %shard.id, error = %api("SubscribeToShard", e), "cannot subscribe to the shard; retrying");
                pause(backoff(attempt), &shutdown).await;
                continue;
            }
        };
        attempt = 0;
        metrics::counter!(crate::metric::KINESIS_SUBSCRIPTIONS_TOTAL).increment(1);
        let mut events = out.event_stream;
        let ended = loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break Ended::Stop,
                next = events.recv() => next,
            };
            let ev = match next {
                Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(ev))) => ev,
                Ok(Some(_)) => continue,
                Ok(None) => break Ended::Again,
                Err(e) => {
                    metrics::counter!(crate::metric::KINESIS_SUBSCRIBE_ERRORS_TOTAL, "kind" => "event_stream").increment(1);
                    tracing::warn!(shard = %shard.id, error = %crate::aws::describe(&e), "the subscription failed; subscribing again");
                    pause(backoff(1), &shutdown).await;
                    break Ended::Again;
                }
            };
            let (records, arrivals) = records_of(ev.records());
            // At the shard's end the event has no continuation and names the child shards.
            let shard_end =
                ev.continuation_sequence_number().is_empty() || !ev.child_shards().is_empty();
            let behind = ev.millis_behind_latest();
            metrics::gauge!(crate::metric::MILLIS_BEHIND_LATEST, "shard" => shard.id.clone())
                .set(behind as f64);
            let mut found = None;
            if let Some(asked) = reading.unchecked {
                let caught_up = shard_end || behind == 0;
                if let Some(g) = check_gap(&s, &shard.id, asked, &facts, &arrivals, caught_up) {
                    reading.unchecked = None;
                    found = g;
                }
            }
            if !records.is_empty() || shard_end || found.is_some() {
                let (resume, resumed) = oneshot::channel();
                let batch = Batch {
                    ack: Ack {
                        shard: shard.id.clone(),
                        sequence_number: records.last().map(|(seq, _)| seq.clone()),
                        sub_sequence: None,
                        shard_end,
                        arrived: arrivals.last().copied(),
                    },
                    records,
                    millis_behind: Some(behind),
                    skip: reading.skip.take(),
                    resume,
                    gap: found,
                };
                if tx.send(batch).await.is_err() || !resumed.await.unwrap_or(false) {
                    break Ended::Stop;
                }
            }
            if shard_end {
                break Ended::Stop;
            }
            continuation = Some(ev.continuation_sequence_number().to_string());
        };
        if matches!(ended, Ended::Stop) {
            return Ok(shard.id);
        }
    }
}

/// A reading's start: the gap not yet checked, and a KPL aggregate to resume inside.
struct Reading {
    unchecked: Option<i64>,
    skip: Option<(String, u64)>,
}
