//! The Kinesis consumer: shard discovery, one reader task per shard (shared-throughput
//! GetRecords here, or enhanced fan-out in [`super::efo`]), parents read to SHARD_END before
//! their children, backoff on throttling, recovery from expired iterators. Readers hand [`Batch`]es to one processing task and wait before
//! reading on: each batch carries its [`Ack`], what acknowledging it means, and the road
//! applies it once every alert from those records is accepted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::shard::{
    api, asked_from, backoff, check_gap, pause, records_of, refresh_facts, Facts, ShardInfo,
};
pub use super::shard::{Batch, KinesisError};
use crate::health::gap::{self, Gap};
pub use crate::state::positions::{Ack, Positions};
use crate::state::ShardCheckpoint;

pub use crate::config::{KinesisSettings as Settings, Start};

async fn list_shards(client: &Client, stream: &str) -> Result<Vec<ShardInfo>, KinesisError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = client.list_shards();
        // StreamName and NextToken cannot be sent together.
        let req = match &token {
            Some(t) => req.next_token(t),
            None if stream.starts_with("arn:") => req.stream_arn(stream),
            None => req.stream_name(stream),
        };
        let resp = req.send().await.map_err(|e| api("ListShards", e))?;
        for s in resp.shards() {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_string)
                .collect();
            out.push(ShardInfo {
                id: s.shard_id().to_string(),
                parents,
            });
        }
        match resp.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// The longest a GetShardIterator or GetRecords call may take: a connection the other end
/// stopped answering must not stall the shard (or shutdown) for ever.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `call` within [`CALL_TIMEOUT`]: `None` on shutdown (nothing was acknowledged, so nothing
/// is lost by dropping it), `Some(Err)` when it took too long.
async fn bounded<T>(
    call: impl std::future::Future<Output = T>,
    shutdown: &CancellationToken,
) -> Option<Result<T, KinesisError>> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        r = tokio::time::timeout(CALL_TIMEOUT, call) => Some(r.map_err(|_| KinesisError::Api {
            op: "Kinesis",
            message: format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
        })),
    }
}

/// Failed GetShardIterator calls at a saved position before that is an ERROR (and every
/// this many after).
const ITERATOR_TRIES: u32 = 5;

async fn iterator(
    client: &Client,
    s: &Settings,
    shard: &ShardInfo,
    cp: Option<&ShardCheckpoint>,
) -> Result<Option<String>, KinesisError> {
    let req = client.get_shard_iterator().shard_id(&shard.id);
    let req = if s.stream.starts_with("arn:") {
        req.stream_arn(&s.stream)
    } else {
        req.stream_name(&s.stream)
    };
    let req = match (cp.and_then(|c| c.sequence_number.as_deref()), s.start) {
        // Inside an aggregate: read that record again; the done sub-records are skipped.
        (Some(seq), _) if cp.is_some_and(|c| c.sub_sequence.is_some()) => req
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(seq),
        (Some(seq), _) => req
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(seq),
        // A child of a reshard is read from its start whatever `start` says: nothing is skipped.
        (None, _) if !shard.parents.is_empty() => {
            req.shard_iterator_type(ShardIteratorType::TrimHorizon)
        }
        (None, Start::TrimHorizon) => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        (None, Start::Latest) => req.shard_iterator_type(ShardIteratorType::Latest),
        (None, Start::AtTimestamp(t)) => req
            .shard_iterator_type(ShardIteratorType::AtTimestamp)
            .timestamp(aws_sdk_kinesis::primitives::DateTime::from_secs(t)),
    };
    let resp = req.send().await.map_err(|e| api("GetShardIterator", e))?;
    Ok(resp.shard_iterator().map(str::to_string))
}

/// Reads one shard until it ends or shutdown; every batch waits for its ack.
async fn read_shard(
    client: Client,
    s: Settings,
    shard: ShardInfo,
    positions: Positions,
    facts: Facts,
    tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
) -> Result<String, KinesisError> {
    let mut it: Option<String> = None;
    let mut attempt = 0u32;
    let mut skip: Option<(String, u64)> = None;
    // The position reading (re)started from, until the gap before it is checked.
    let mut unchecked: Option<i64> = None;
    loop {
        if shutdown.is_cancelled() {
            return Ok(shard.id);
        }
        if it.is_none() {
            let cp = positions.get(&shard.id);
            let call = iterator(&client, &s, &shard, cp.as_ref());
            let Some(answer) = bounded(call, &shutdown).await else {
                return Ok(shard.id);
            };
            match answer.and_then(|r| r) {
                Ok(Some(i)) => {
                    it = Some(i);
                    unchecked = asked_from(&s, &shard, cp.as_ref());
                    skip = cp.and_then(|c| Some((c.sequence_number?, c.sub_sequence?)));
                }
                Ok(None) => return Ok(shard.id),
                Err(e) => {
                    attempt += 1;
                    metrics::counter!(crate::metric::KINESIS_ITERATOR_ERRORS_TOTAL).increment(1);
                    let saved = cp.as_ref().and_then(|c| c.sequence_number.clone());
                    match saved {
                        // Refused again and again at a saved position: say what to do.
                        Some(seq) if attempt % ITERATOR_TRIES == 0 => tracing::error!(
                            shard = %shard.id, position = %seq, attempts = attempt, error = %e,
                            "Kinesis keeps refusing to read this shard from its saved position: the shard is not read. If the position is unusable (another stream's, edited by hand), restart with `trailwatch run --reset-shard {}` (a file checkpoint) or delete the shard's entry from the state file or lease table",
                            shard.id
                        ),
                        _ => {
                            tracing::warn!(shard = %shard.id, error = %e, "cannot get a shard iterator; retrying")
                        }
                    }
                    pause(backoff(attempt), &shutdown).await;
                    continue;
                }
            }
        }
        let Some(current) = it.clone() else { continue };
        let call = client
            .get_records()
            .shard_iterator(current)
            .limit(s.max_records)
            .send();
        let Some(answer) = bounded(call, &shutdown).await else {
            return Ok(shard.id);
        };
        let answer = match answer {
            Ok(a) => a,
            Err(late) => {
                attempt += 1;
                metrics::counter!(crate::metric::GETRECORDS_ERRORS_TOTAL, "kind" => "timeout")
                    .increment(1);
                tracing::warn!(shard = %shard.id, error = %late, "GetRecords did not answer; retrying");
                it = None;
                pause(backoff(attempt), &shutdown).await;
                continue;
            }
        };
        let resp = match answer {
            Ok(r) => {
                attempt = 0;
                r
            }
            Err(e) => {
                let svc = e.as_service_error();
                let kind = svc
                    .and_then(|e| e.meta().code())
                    .unwrap_or("transport")
                    .to_string();
                metrics::counter!(crate::metric::GETRECORDS_ERRORS_TOTAL, "kind" => kind)
                    .increment(1);
                if svc.is_some_and(|e| e.is_expired_iterator_exception()) {
                    tracing::info!(shard = %shard.id, "iterator expired; resuming from the checkpoint");
                    it = None;
                    continue;
                }
                let throttled = svc.is_some_and(|e| {
                    e.is_provisioned_throughput_exceeded_exception()
                        || e.is_kms_throttling_exception()
                });
                attempt += 1;
                let wait = backoff(attempt);
                if throttled {
                    tracing::info!(shard = %shard.id, wait_ms = wait.as_millis() as u64, "throttled; backing off");
                } else {
                    tracing::warn!(shard = %shard.id, error = %api("GetRecords", e), "GetRecords failed; retrying");
                    it = None;
                }
                pause(wait, &shutdown).await;
                continue;
            }
        };
        let (records, arrivals) = records_of(resp.records());
        let shard_end = resp.next_shard_iterator().is_none();
        let mut found = None;
        if let Some(asked) = unchecked {
            let caught_up = shard_end || resp.millis_behind_latest() == Some(0);
            if let Some(g) = check_gap(&s, &shard.id, asked, &facts, &arrivals, caught_up) {
                unchecked = None;
                found = g;
            }
        }
        if let Some(ms) = resp.millis_behind_latest() {
            metrics::gauge!(crate::metric::MILLIS_BEHIND_LATEST, "shard" => shard.id.clone())
                .set(ms as f64);
        }
        let empty = records.is_empty();
        if !records.is_empty() || shard_end || found.is_some() {
            let (resume, resumed) = oneshot::channel();
            let ack = Ack {
                shard: shard.id.clone(),
                sequence_number: records.last().map(|(seq, _)| seq.clone()),
                sub_sequence: None,
                shard_end,
                arrived: arrivals.last().copied(),
            };
            let batch = Batch {
                records,
                ack,
                millis_behind: resp.millis_behind_latest(),
                skip: skip.take(),
                resume,
                gap: found,
            };
            if tx.send(batch).await.is_err() || !resumed.await.unwrap_or(false) {
                return Ok(shard.id); // the road stopped, or the lease is gone
            }
        }
        if shard_end {
            return Ok(shard.id);
        }
        it = resp.next_shard_iterator().map(str::to_string);
        // At most 5 GetRecords a second per shard; the poll interval when there was nothing.
        let wait = if empty {
            s.poll_interval
        } else {
            Duration::from_millis(200)
        };
        pause(wait, &shutdown).await;
    }
}

/// Who decides which shards this worker reads.
pub enum Ownership {
    /// This worker reads every shard (file checkpoints).
    All,
    /// Shards are split between workers through a DynamoDB lease table.
    Leases(super::leases::Coordinator),
}

/// Discovers shards and runs a reader for each shard this worker should read: with
/// [`Ownership::All`], every shard whose parents are finished (or gone from the stream); with
/// leases, what the coordinator says. Returns when shutdown is signalled and the readers have
/// stopped (and, with leases, the leases are released).
pub async fn consume(
    client: Client,
    s: Settings,
    mut ownership: Ownership,
    positions: Positions,
    tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
    ready: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), KinesisError> {
    let mut readers: JoinSet<Result<String, KinesisError>> = JoinSet::new();
    let mut stops: HashMap<String, CancellationToken> = HashMap::new();
    let mut handing: HashMap<String, String> = HashMap::new();
    let mut known: HashMap<String, ShardInfo> = HashMap::new();
    let mut first = true;
    let mut discover_at = tokio::time::Instant::now();
    let facts: Facts = Arc::default();
    // Enhanced fan-out: the consumer, registered (or found) once.
    let consumer = match &s.consumer {
        crate::config::Consumer::Polling => None,
        crate::config::Consumer::Efo { name } => {
            Some(super::efo::register(&client, &s.stream, name).await?)
        }
    };
    // Zero from the start, so that the first gap is an increase an alerting rule sees.
    for cause in [
        gap::Cause::BeforeCreation,
        gap::Cause::PastRetention,
        gap::Cause::ShardGone,
    ] {
        metrics::counter!(crate::metric::FEED_GAPS_TOTAL, "cause" => cause.as_str()).increment(0);
    }
    // Shards told gone (`feed-gap`), until their acknowledgement marks them finished.
    let mut told_gone: HashSet<String> = HashSet::new();
    let period = match &ownership {
        Ownership::All => s.discovery_interval,
        Ownership::Leases(c) => c.renew_every.min(s.discovery_interval),
    };
    loop {
        if tokio::time::Instant::now() >= discover_at {
            match list_shards(&client, &s.stream).await {
                Ok(shards) => {
                    known = shards.into_iter().map(|sh| (sh.id.clone(), sh)).collect();
                    refresh_facts(&client, &s.stream, &facts).await;
                    if matches!(ownership, Ownership::All) {
                        let gone = Gone {
                            known: &known,
                            reading: &stops,
                            mine: None,
                        };
                        tell_gone(&s, gone, &positions, &facts, &tx, &mut told_gone);
                    }
                }
                Err(e) if first => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "shard discovery failed; keeping the known shards")
                }
            }
            discover_at = tokio::time::Instant::now() + s.discovery_interval;
        }
        let want: Option<HashSet<String>> = match &mut ownership {
            Ownership::All => Some(readable(&known, &positions)),
            Ownership::Leases(c) => {
                let parents = known
                    .values()
                    .map(|sh| (sh.id.clone(), sh.parents.clone()))
                    .collect();
                match c.tick(&parents, &positions).await {
                    Ok(t) => {
                        handing.extend(t.hand_over);
                        // A leased shard that left the stream unfinished: told by its owner.
                        let gone = Gone {
                            known: &known,
                            reading: &stops,
                            mine: Some(&t.read),
                        };
                        tell_gone(&s, gone, &positions, &facts, &tx, &mut told_gone);
                        Some(t.read)
                    }
                    Err(e) if first => {
                        return Err(KinesisError::Api {
                            op: "lease table",
                            message: e.to_string(),
                        })
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lease table round failed; keeping the current shards");
                        None
                    }
                }
            }
        };
        first = false;
        ready.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(want) = want {
            for (id, stop) in &stops {
                if !want.contains(id) {
                    stop.cancel();
                }
            }
            let idle: Vec<(String, String)> = handing
                .iter()
                .filter(|(id, _)| !stops.contains_key(*id))
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect();
            for (id, to) in idle {
                handing.remove(&id);
                if let Ownership::Leases(c) = &mut ownership {
                    c.hand_over(&id, &to).await;
                }
            }
            let mut ids: Vec<&String> = want.iter().filter(|id| !stops.contains_key(*id)).collect();
            ids.sort();
            for id in ids {
                let Some(sh) = known.get(id) else { continue };
                tracing::info!(shard = %id, "reading shard");
                let stop = shutdown.child_token();
                stops.insert(id.clone(), stop.clone());
                match &consumer {
                    None => readers.spawn(read_shard(
                        client.clone(),
                        s.clone(),
                        sh.clone(),
                        positions.clone(),
                        facts.clone(),
                        tx.clone(),
                        stop,
                    )),
                    Some(arn) => readers.spawn(super::efo::read_shard(
                        client.clone(),
                        s.clone(),
                        sh.clone(),
                        positions.clone(),
                        facts.clone(),
                        arn.clone(),
                        tx.clone(),
                        stop,
                    )),
                };
            }
            metrics::gauge!(crate::metric::SHARDS_OWNED).set(stops.len() as f64);
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
            Some(done) = readers.join_next(), if !readers.is_empty() => {
                match done {
                    Ok(Ok(id)) => {
                        stops.remove(&id);
                        if let Some(to) = handing.remove(&id) {
                            if let Ownership::Leases(c) = &mut ownership {
                                c.hand_over(&id, &to).await;
                            }
                        }
                        metrics::gauge!(crate::metric::SHARDS_OWNED).set(stops.len() as f64);
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "shard reader failed"),
                    Err(e) => tracing::error!(error = %e, "shard reader panicked"),
                }
                // A shard may have ended: look for its children now.
                discover_at = tokio::time::Instant::now();
            }
        }
    }
    for stop in stops.values() {
        stop.cancel();
    }
    while readers.join_next().await.is_some() {}
    if let Ownership::Leases(c) = &ownership {
        c.release_all().await;
    }
    Ok(())
}

/// Which shards [`tell_gone`] may tell: not in `known` (the stream's), not being read (a
/// reader ends its own shard), and with leases only this worker's.
struct Gone<'a> {
    known: &'a HashMap<String, ShardInfo>,
    reading: &'a HashMap<String, CancellationToken>,
    mine: Option<&'a HashSet<String>>,
}

/// Shards of the checkpoint (or leases this worker holds) that are no longer in the stream
/// and were never read to their end: what they held after the checkpoint is gone. Each is
/// told once (`feed-gap`, a batch with no records whose acknowledgement marks the shard
/// finished; with leases, the finished lease is then deleted and its children are read).
fn tell_gone(
    s: &Settings,
    gone: Gone<'_>,
    positions: &Positions,
    facts: &Facts,
    tx: &mpsc::Sender<Batch>,
    told: &mut HashSet<String>,
) {
    let Some(f) = *facts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    else {
        return;
    };
    let now = crate::clock::now_secs();
    for (id, cp) in positions.all() {
        if cp.finished
            || gone.known.contains_key(&id)
            || gone.reading.contains_key(&id)
            || gone.mine.is_some_and(|m| !m.contains(&id))
            || !told.insert(id.clone())
        {
            continue;
        }
        let to = f.edge(now);
        let from = cp.arrived.unwrap_or(to).min(to);
        metrics::counter!(crate::metric::FEED_GAP_CHECKS_TOTAL, "result" => "gap").increment(1);
        let (resume, _resumed) = oneshot::channel();
        let batch = Batch {
            records: Vec::new(),
            ack: Ack {
                shard: id.clone(),
                sequence_number: None,
                sub_sequence: None,
                shard_end: true,
                arrived: None,
            },
            millis_behind: None,
            skip: None,
            resume,
            gap: Some(Gap {
                stream: s.stream.clone(),
                shard: id,
                from,
                to,
                cause: gap::Cause::ShardGone,
                estimated_records: None,
            }),
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(batch).await;
        });
    }
}

/// Shards whose parents are finished (or gone) and that are not finished themselves.
fn readable(known: &HashMap<String, ShardInfo>, positions: &Positions) -> HashSet<String> {
    let finished = positions.finished();
    known
        .values()
        .filter(|sh| !finished.contains(&sh.id))
        .filter(|sh| {
            sh.parents
                .iter()
                .all(|p| finished.contains(p) || !known.contains_key(p))
        })
        .map(|sh| sh.id.clone())
        .collect()
}
