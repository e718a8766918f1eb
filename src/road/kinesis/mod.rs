//! The Kinesis road (`trailwatch run`): the stream consumed continuously. Readers (one per
//! shard, [`crate::source::kinesis`]) hand batches to this loop, which passes them to the
//! engine and submits what they raised; only once that is accepted (written and flushed
//! without `[[sinks]]`, else delivered or spooled) does the [`Checkpointer`] move the shard's
//! position past those records ([`acknowledge`]). Positions and the engine's snapshot are
//! written together, atomically, every `checkpoint.interval` and at shutdown (stop polling,
//! drain, flush, checkpoint).

mod checkpoint;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use checkpoint::{Checkpointer, Committed};

use super::live;
use super::RoadError;
use crate::build::OutputChoice;
use crate::clock::now_secs;
use crate::config::{Config, KinesisSource};
use crate::decode::Position;
use crate::engine::{Data, Engine, Record, Refused};
use crate::org::watch::Nudge;
use crate::source::kinesis::{self, Batch, Positions};
use crate::source::leases;
use crate::state::StateFile;

/// What `run` was asked besides the config.
pub struct Options {
    /// The config file, for messages and SIGHUP.
    pub config_file: PathBuf,
    /// The SIEM feed appended to this file instead of stdout (no `[[sinks]]`).
    pub output: Option<PathBuf>,
    pub dead_letter: Option<PathBuf>,
    pub shutdown_deadline: Duration,
    /// This worker's name in the lease table; default host:pid:random.
    pub worker_id: Option<String>,
    /// Shards whose saved position is forgotten before starting.
    pub reset_shard: Vec<String>,
    /// Set once the shards are being read (`/readyz`).
    pub ready: Arc<AtomicBool>,
}

/// Acceptances in flight: each moves its shard's position once it resolves.
type Inflight = JoinSet<Result<(), Refused>>;

fn refused(r: Refused) -> RoadError {
    RoadError::Refused(r.reason)
}

/// Consumes the stream until `stop`, then drains what is in flight and writes the last
/// checkpoint (within `shutdown_deadline`).
pub async fn run(
    config: Config,
    source: KinesisSource,
    o: Options,
    stop: CancellationToken,
) -> Result<(), RoadError> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &source.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    let sdk = loader.load().await;
    let client = aws_sdk_kinesis::Client::new(&sdk);
    let mut state = StateFile::open(&config.checkpoint.path, &source.settings.stream)?;
    if !state.existed {
        tracing::warn!(path = %config.checkpoint.path.display(), start = ?source.settings.start, "no state file: every shard starts from `start` (a first run, or a state file that was removed)");
    }
    for shard in &o.reset_shard {
        match state.state.shards.remove(shard) {
            Some(cp) => {
                tracing::warn!(shard, position = ?cp.sequence_number, "--reset-shard: the shard's position is forgotten; it is read from `start`");
                state.save()?;
            }
            None => tracing::warn!(
                shard,
                "--reset-shard: the state file has no position for this shard"
            ),
        }
    }
    let output = OutputChoice::configured(&config, o.output.clone());
    let started = live::start(
        &o.config_file,
        &config,
        &mut state,
        output,
        o.dead_letter.clone(),
        &stop,
    )
    .await?;
    let Some(live::Started {
        engine,
        mut live,
        drift,
    }) = started
    else {
        return Ok(());
    };
    let nudge = live.nudge();
    let mut inflight = Inflight::new();
    if let Some(drift) = drift {
        inflight.spawn(engine.submit(drift).await.wait());
    }
    // With leases, positions come from the lease table as leases are taken.
    let (ownership, checkpointer) = match &config.checkpoint.leases {
        None => (
            kinesis::Ownership::All,
            Checkpointer::file(Positions::new(state.state.shards.clone())),
        ),
        Some(l) => {
            let me = o
                .worker_id
                .clone()
                .unwrap_or_else(leases::default_worker_id);
            tracing::info!(worker = %me, table = %l.table, "sharing the stream through a lease table");
            let table = leases::LeaseTable::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                &l.table,
                &source.settings.stream,
                &me,
            );
            let coordinator = leases::Coordinator::new(table, &me, l.lease_duration);
            coordinator.ensure_table().await?;
            let writer = coordinator.writer();
            state.state.shards.clear();
            (
                kinesis::Ownership::Leases(coordinator),
                Checkpointer::leased(Positions::default(), writer),
            )
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(16);
    let mut consumer = tokio::spawn(kinesis::consume(
        client,
        source.settings.clone(),
        ownership,
        checkpointer.positions().clone(),
        tx,
        stop.clone(),
        o.ready.clone(),
    ));
    let mut tick = tokio::time::interval(config.checkpoint.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shaping_tick = tokio::time::interval(Duration::from_secs(1));
    shaping_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut saver = Saver {
        state,
        checkpointer: checkpointer.clone(),
    };
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                let shard_end = batch.ack.shard_end;
                inflight.spawn(acknowledge(&engine, batch, &checkpointer, &nudge).await);
                if shard_end {
                    saver.save(&engine, &mut inflight).await?;
                }
            }
            _ = shaping_tick.tick() => {
                let due = engine.tick(now_secs());
                if !due.is_empty() {
                    inflight.spawn(engine.submit(due).await.wait());
                }
            }
            Some(res) = inflight.join_next(), if !inflight.is_empty() => res?.map_err(refused)?,
            _ = tick.tick() => saver.save(&engine, &mut inflight).await?,
            drift = live.next(&engine) => {
                if let Some(drift) = drift {
                    inflight.spawn(engine.submit(drift).await.wait());
                }
            }
            done = &mut consumer => {
                // The consumer ended (shutdown, or a fatal error); its readers have stopped.
                match done? {
                    Ok(()) => break,
                    Err(e) => {
                        saver.save(&engine, &mut inflight).await?;
                        return Err(e.into());
                    }
                }
            }
        }
    }
    tokio::time::timeout(o.shutdown_deadline, saver.save(&engine, &mut inflight))
        .await
        .map_err(|_| RoadError::Deadline)??;
    engine.shutdown().await;
    Ok(())
}

/// One batch through the engine. The returned future resolves once every item it raised is
/// accepted; then the checkpointer commits the batch's [`crate::state::positions::Ack`] and
/// the shard's reader is told whether to read on. Refused: nothing moves, the reader waits.
pub async fn acknowledge(
    engine: &Engine,
    batch: Batch,
    checkpointer: &Checkpointer,
    nudge: &Nudge,
) -> impl Future<Output = Result<(), Refused>> {
    // Live: dedup, shaping and exemptions run on arrival time.
    let now = now_secs();
    let shard = batch.shard();
    // A gap before these records: said before them, and acknowledged with them.
    let gap = match &batch.gap {
        Some(g) => Some(
            engine
                .submit(engine.raise_found(vec![gap_alert(g)], now))
                .await,
        ),
        None => None,
    };
    let records = batch.records.iter().map(|(seq, data)| {
        let mut position = Position::new(shard.to_string());
        position.sequence_number = Some(seq.clone());
        Record {
            position,
            data: Data::Bytes(data),
        }
    });
    let mut evaluated = engine.evaluate(records, batch.skip.clone(), now);
    if let Some(change) = evaluated.org_change.take() {
        nudge.send(change);
    }
    let c = evaluated.counts;
    tracing::debug!(
        shard,
        records = batch.records.len(),
        events = c.events,
        dead_letters = c.dead_letters,
        alerts = c.alerts,
        millis_behind = batch.millis_behind,
        "batch"
    );
    metrics::counter!(crate::metric::RECORDS_TOTAL, "shard" => shard.to_string())
        .increment(batch.records.len() as u64);
    if batch.ack.shard_end {
        tracing::info!(shard, "shard finished (SHARD_END)");
    }
    let accepted = engine.submit(evaluated.pending).await;
    let checkpointer = checkpointer.clone();
    let (ack, resume) = (batch.ack, batch.resume);
    async move {
        if let Some(g) = gap {
            g.wait().await?;
        }
        accepted.wait().await?;
        let committed = checkpointer.commit(&ack).await;
        let _ = resume.send(committed.reads_on());
        Ok(())
    }
}

/// The `feed-gap` alert for a gap a reader found, said in the log and the metrics.
fn gap_alert(g: &crate::health::gap::Gap) -> crate::alert::Alert {
    tracing::error!(
        stream = %g.stream, shard = %g.shard, cause = g.cause.as_str(),
        from = %crate::event::format_utc_secs(g.from), to = %crate::event::format_utc_secs(g.to),
        estimated_records = g.estimated_records,
        "feed-gap: the stream no longer holds records this shard's reading asked for; they were not evaluated"
    );
    metrics::counter!(crate::metric::FEED_GAPS_TOTAL, "cause" => g.cause.as_str()).increment(1);
    metrics::counter!(crate::metric::FEED_GAP_SECONDS_TOTAL)
        .increment((g.to - g.from).max(0) as u64);
    crate::health::gap::alert(g, crate::alert::Severity::High)
}

/// Writes the state file once every acceptance in flight has resolved.
struct Saver {
    state: StateFile,
    checkpointer: Checkpointer,
}

impl Saver {
    async fn save(&mut self, engine: &Engine, inflight: &mut Inflight) -> Result<(), RoadError> {
        // The snapshot may only cover events whose alerts were accepted.
        while let Some(res) = inflight.join_next().await {
            res?.map_err(refused)?;
        }
        self.checkpointer.save(&mut self.state, engine)?;
        Ok(())
    }
}
