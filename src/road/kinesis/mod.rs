//! The Kinesis road (`trailwatch run`): the stream consumed continuously. Readers (one per
//! shard, [`crate::source::kinesis`]) hand batches to this loop, which passes them to the
//! engine and submits what they raised; only once that is accepted (written and flushed
//! without `[[sinks]]`, else delivered or spooled) does the [`Checkpointer`] move the shard's
//! position past those records ([`acknowledge`]). Positions and the engine's snapshot are
//! written together, atomically, every `checkpoint.interval` and at shutdown (stop polling,
//! drain, flush, checkpoint).

mod backfill;
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
    let (ownership, checkpointer, claims) = match &config.checkpoint.leases {
        None => (
            kinesis::Ownership::All,
            Checkpointer::file(Positions::new(state.state.shards.clone())),
            None,
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
                Checkpointer::leased(Positions::default(), writer.clone()),
                Some(writer),
            )
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(16);
    // Backfill: feed-gap windows read from the archive, one object at a time, behind the
    // stream's batches.
    let saved_jobs = std::mem::take(&mut state.state.backfill);
    let backfill = match config.backfill.clone() {
        Some(b) => Some(Backfilling {
            jobs: backfill::Jobs::new(saved_jobs),
            wake: Arc::new(tokio::sync::Notify::new()),
            config: b,
            claims: claims.clone(),
        }),
        None => {
            if !saved_jobs.is_empty() {
                tracing::error!(jobs = saved_jobs.len(), "the state file holds feed-gap windows to backfill, but the config has no [backfill]: they are dropped, and their events stay unread");
            }
            None
        }
    };
    let (ptx, mut prx) = tokio::sync::mpsc::channel::<backfill::Piece>(1);
    let mut pieces_open = backfill.is_some();
    if let (Some(b), Some(l)) = (&backfill, &config.checkpoint.leases) {
        if let Some(c) = &b.claims {
            tokio::spawn(backfill::keep_claims(
                c.clone(),
                b.jobs.clone(),
                b.wake.clone(),
                l.lease_duration / 3,
                l.lease_duration * 2,
                stop.clone(),
            ));
        }
    }
    if let Some(b) = &backfill {
        tokio::spawn(backfill::reader(
            b.config.clone(),
            b.jobs.clone(),
            b.wake.clone(),
            ptx,
            stop.clone(),
        ));
    } else {
        drop(ptx);
    }
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
        jobs: backfill.as_ref().map(|b| b.jobs.clone()),
    };
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                let shard_end = batch.ack.shard_end;
                inflight.spawn(acknowledge(&engine, batch, &checkpointer, &nudge, backfill.as_ref()).await);
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
            // The archive only while no stream batch waits: the stream goes first.
            piece = prx.recv(), if pieces_open && rx.is_empty() => match (piece, &backfill) {
                (Some(piece), Some(b)) => {
                    inflight.spawn(take_piece(&engine, b, piece).await);
                }
                _ => pieces_open = false,
            },
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
    backfill: Option<&Backfilling>,
) -> impl Future<Output = Result<(), Refused>> {
    // Live: dedup, shaping and exemptions run on arrival time.
    let now = now_secs();
    let shard = batch.shard();
    // A gap before these records: said before them, and acknowledged with them; with
    // `[backfill]`, its window is read from the archive (the job is saved with the checkpoint
    // that moves past the gap).
    let gap = match &batch.gap {
        Some(g) => {
            let alert = gap_alert(g);
            if let Some(b) = backfill {
                b.take(&alert.alert_id, g).await;
            }
            Some(engine.submit(engine.raise_found(vec![alert], now)).await)
        }
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

/// `[backfill]` on this road: its settings, the jobs, and the reader's wake-up.
pub struct Backfilling {
    pub config: crate::config::backfill::Backfill,
    pub jobs: backfill::Jobs,
    pub wake: Arc<tokio::sync::Notify>,
    /// With leases: the table where one worker claims a window (the others leave it).
    pub claims: Option<leases::LeaseWriter>,
}

impl Backfilling {
    /// Takes a gap's window as a job, unless another worker claimed it in the lease table;
    /// a claim that cannot be written is taken (a window read twice costs reads, not alerts:
    /// dedup and the alert ids hold within each worker).
    async fn take(&self, alert_id: &str, g: &crate::health::gap::Gap) {
        let job = backfill::Job::new(alert_id.to_string(), g.clone(), &self.config);
        if let Some(c) = &self.claims {
            let window = serde_json::to_string(&job).unwrap_or_default();
            match c.table().claim_backfill(alert_id, &window).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(
                        gap = alert_id,
                        "backfill: another worker claimed this window"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(gap = alert_id, error = %e, "backfill: cannot claim the window in the lease table; reading it anyway")
                }
            }
        }
        if self.jobs.add(job) {
            self.wake.notify_one();
        }
    }
}

type Accepting = std::pin::Pin<Box<dyn Future<Output = Result<(), Refused>> + Send>>;

/// One piece from the archive reader: an object's events through the engine (counted for
/// its job once accepted), or a finished job's `filled` alert (the job dropped once accepted).
async fn take_piece(engine: &Engine, b: &Backfilling, piece: backfill::Piece) -> Accepting {
    let now = now_secs();
    let jobs = b.jobs.clone();
    match piece {
        backfill::Piece::Object {
            gap_alert,
            name,
            bytes,
            since,
            until,
            done,
        } => {
            let ev = engine.evaluate_archive(&name, &bytes, since, until, now);
            let (events, alerts) = (ev.counts.events, ev.counts.alerts);
            let accepted = engine.submit(ev.pending).await;
            Box::pin(async move {
                let r = accepted.wait().await;
                if r.is_ok() {
                    jobs.read(&gap_alert, &name, events, alerts);
                    metrics::counter!(crate::metric::BACKFILL_OBJECTS_TOTAL).increment(1);
                    metrics::counter!(crate::metric::BACKFILL_EVENTS_TOTAL).increment(events);
                }
                let _ = done.send(r.is_ok());
                r
            })
        }
        backfill::Piece::Finished { gap_alert, done } => {
            let Some(job) = jobs.get(&gap_alert) else {
                let _ = done.send(true);
                return Box::pin(async { Ok(()) });
            };
            let alert = crate::health::gap::filled_alert(
                &job.gap,
                job.events,
                job.alerts,
                job.unread.len(),
                job.not_read_secs,
            );
            tracing::warn!(gap = %gap_alert, events = job.events, alerts = job.alerts, unread = job.unread.len(), "backfill: the gap's window was read from the archive");
            let accepted = engine.submit(engine.finish_past(vec![alert], now)).await;
            let claims = b.claims.clone();
            Box::pin(async move {
                let r = accepted.wait().await;
                if r.is_ok() {
                    jobs.finish(&gap_alert);
                    if let Some(c) = claims {
                        if let Err(e) = c.table().fill_backfill(&gap_alert).await {
                            tracing::warn!(gap = %gap_alert, error = %e, "backfill: cannot mark the claim filled; another worker may read the window again");
                        }
                    }
                }
                let _ = done.send(r.is_ok());
                r
            })
        }
    }
}

/// Writes the state file once every acceptance in flight has resolved.
struct Saver {
    state: StateFile,
    checkpointer: Checkpointer,
    /// With `[backfill]`: the jobs, saved with the positions.
    jobs: Option<backfill::Jobs>,
}

impl Saver {
    async fn save(&mut self, engine: &Engine, inflight: &mut Inflight) -> Result<(), RoadError> {
        // The snapshot may only cover events whose alerts were accepted.
        while let Some(res) = inflight.join_next().await {
            res?.map_err(refused)?;
        }
        if let Some(j) = &self.jobs {
            self.state.state.backfill = j.all();
            metrics::gauge!(crate::metric::BACKFILL_JOBS)
                .set(self.state.state.backfill.len() as f64);
        }
        self.checkpointer.save(&mut self.state, engine)?;
        Ok(())
    }
}
