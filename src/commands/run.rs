//! `trailwatch run`: consume the Kinesis stream continuously. Readers (one per shard) hand
//! batches to this task, which passes them to the engine (decode, evaluate, shape) and submits
//! what they raised to the output; only once that is accepted (written and flushed without
//! `[[sinks]]`, else delivered or spooled) does the shard's position move past those records.
//! Positions and the engine's snapshot are written together, atomically, every
//! `checkpoint.interval` and at shutdown (SIGTERM/SIGINT: stop polling, drain, flush,
//! checkpoint, exit 0).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use trailwatch::build::{self, OutputChoice};
use trailwatch::clock::now_secs;
use trailwatch::config::Config;
use trailwatch::decode::Position;
use trailwatch::engine::{Data, Engine, Record, Refused};
use trailwatch::source::kinesis::{self, Batch};
use trailwatch::source::leases;
use trailwatch::state::{ShardCheckpoint, StateFile};

use super::live::{self, Live};
use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
    /// Append the SIEM feed to this file instead of stdout. After a crash, the alerts written
    /// since the last checkpoint are read back from it, so none is written twice.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Append one JSON line per unreadable record to this file.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// Serve Prometheus metrics on /metrics, and /healthz and /readyz, at this address.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Longest a graceful shutdown may take before exiting anyway.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    shutdown_deadline: Duration,
    /// This worker's name in the lease table (`[checkpoint] kind = "dynamodb"`); default
    /// host:pid:random.
    #[arg(long, value_name = "ID")]
    worker_id: Option<String>,
    /// Forget this shard's position in the state file before starting (it is then read from
    /// `start`, or from its beginning for a child of a reshard): for a position Kinesis
    /// refuses. Repeat for several shards.
    #[arg(long, value_name = "SHARD_ID")]
    reset_shard: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if config.kinesis.is_none() {
        eprintln!(
            "trailwatch: {}: no [source.kinesis] table: nothing to run",
            args.config.display()
        );
        return Ok(exit::bad_config());
    }
    if config.delivery.is_configured() && args.output.is_some() {
        eprintln!(
            "trailwatch: --output is for runs without [[sinks]]; configure a file sink instead"
        );
        return Ok(exit::bad_config());
    }
    let rt = super::runtime()?;
    rt.block_on(consume(args, config))?;
    Ok(exit::ok())
}

/// Acceptances in flight: each moves its shard's position once it resolves.
type Inflight = JoinSet<Result<(), Refused>>;

fn refused(r: Refused) -> anyhow::Error {
    anyhow::anyhow!(
        "alerts could neither be delivered nor spooled ({}): stopping without a checkpoint (they are read again at restart)",
        r.reason
    )
}

async fn consume(args: Args, config: Config) -> anyhow::Result<()> {
    // First: a SIGTERM during start-up (reading the organization, say) is a clean stop too.
    let stop = super::shutdown_signal();
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = args.metrics_addr {
        super::serve_metrics(addr, ready.clone())?;
    }
    let source = config.kinesis.clone().context("no [source.kinesis]")?;
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
    for shard in &args.reset_shard {
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
    let saved = state.state.engine.organization.clone();
    let first = live::first_read(&config, saved.as_ref(), &stop).await;
    if matches!(first, live::FirstRead::Stopped) {
        return Ok(());
    }
    let organization = first.read().or(saved.as_ref()).map(|s| s.tree.clone());
    let engine = build::engine(
        &config,
        build::Options {
            dead_letter: args.dead_letter.clone(),
            organization,
            // Moved, not copied: the next save overwrites it.
            restore: Some(std::mem::take(&mut state.state.engine)),
            ..build::Options::live(
                OutputChoice::configured(&config, args.output.clone()),
                now_secs(),
            )
        },
    )
    .await
    .with_context(|| format!("starting the output of {}", args.config.display()))?;
    if first.failed() && saved.is_none() {
        engine.judge_provisionally();
    }
    let mut live = Live::start(args.config.clone(), config.clone(), first.failed());
    let nudge = live.nudge();
    let mut inflight = Inflight::new();
    if let live::FirstRead::Read(f) = first {
        let update = trailwatch::org::watch::Update {
            tree: f.tree,
            read_at: f.read_at,
            trigger: None,
        };
        let drift = live.apply(&engine, update);
        inflight.spawn(engine.submit(drift).await.wait());
    }
    // With leases, positions come from the lease table as leases are taken.
    let (ownership, checkpointer) = match &config.checkpoint.leases {
        None => (kinesis::Ownership::All, None),
        Some(l) => {
            let me = args
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
            let checkpointer = coordinator.checkpointer();
            state.state.shards.clear();
            (kinesis::Ownership::Leases(coordinator), Some(checkpointer))
        }
    };
    let positions: kinesis::Positions = Arc::new(Mutex::new(state.state.shards.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(16);
    let mut consumer = tokio::spawn(kinesis::consume(
        client,
        source.settings.clone(),
        ownership,
        positions.clone(),
        tx,
        stop.clone(),
        ready,
    ));
    let mut tick = tokio::time::interval(config.checkpoint.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shaping_tick = tokio::time::interval(Duration::from_secs(1));
    shaping_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut saver = Saver {
        state,
        leased: checkpointer.is_some(),
    };
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                let shard_end = batch.shard_end;
                let accepted = process(&engine, batch, &positions, &checkpointer, &nudge).await;
                inflight.spawn(accepted);
                if shard_end {
                    saver.save(&engine, &positions, &mut inflight).await?;
                }
            }
            _ = shaping_tick.tick() => {
                let due = engine.tick(now_secs());
                if !due.is_empty() {
                    let accepted = engine.submit(due).await;
                    inflight.spawn(accepted.wait());
                }
            }
            Some(res) = inflight.join_next(), if !inflight.is_empty() => {
                res.context("an acceptance task failed")?.map_err(refused)?;
            }
            _ = tick.tick() => saver.save(&engine, &positions, &mut inflight).await?,
            drift = live.next(&engine) => {
                if let Some(drift) = drift {
                    inflight.spawn(engine.submit(drift).await.wait());
                }
            }
            done = &mut consumer => {
                // The consumer ended (shutdown, or a fatal error); its readers have stopped.
                match done {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => { saver.save(&engine, &positions, &mut inflight).await?; return Err(e.into()); }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    tokio::time::timeout(
        args.shutdown_deadline,
        saver.save(&engine, &positions, &mut inflight),
    )
    .await
    .context("the final checkpoint did not finish within the shutdown deadline")??;
    engine.shutdown().await;
    Ok(())
}

/// One batch through the engine; the returned future resolves once its items are accepted,
/// then moves the shard's position (and, with leases, writes the lease checkpoint).
async fn process(
    engine: &Engine,
    batch: Batch,
    positions: &kinesis::Positions,
    checkpointer: &Option<leases::Checkpointer>,
    nudge: &trailwatch::org::watch::Nudge,
) -> impl std::future::Future<Output = Result<(), Refused>> {
    // Live: dedup, shaping and exemptions run on arrival time.
    let now = now_secs();
    let records = batch.records.iter().map(|(seq, data)| {
        let mut position = Position::new(batch.shard.clone());
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
    tracing::debug!(shard = %batch.shard, records = batch.records.len(), events = c.events, dead_letters = c.dead_letters, alerts = c.alerts, millis_behind = batch.millis_behind, "batch");
    metrics::counter!("trailwatch_records_total", "shard" => batch.shard.clone())
        .increment(batch.records.len() as u64);
    if batch.shard_end {
        tracing::info!(shard = %batch.shard, "shard finished (SHARD_END)");
    }
    let done = Done {
        positions: positions.clone(),
        last: batch.records.last().map(|(seq, _)| seq.clone()),
        shard: batch.shard,
        shard_end: batch.shard_end,
        checkpointer: checkpointer.clone(),
        ack: batch.ack,
    };
    let accepted = engine.submit(evaluated.pending).await;
    async move {
        accepted.wait().await?;
        let moved = done.advance();
        done.acknowledge(moved).await;
        Ok(())
    }
}

/// A processed batch, to be acknowledged once its alerts are accepted.
struct Done {
    positions: kinesis::Positions,
    shard: String,
    last: Option<String>,
    shard_end: bool,
    checkpointer: Option<leases::Checkpointer>,
    ack: tokio::sync::oneshot::Sender<()>,
}

impl Done {
    /// Moves the shard's position past the batch.
    fn advance(&self) -> Option<ShardCheckpoint> {
        let mut pos = self.positions.lock().ok()?;
        let entry = pos.entry(self.shard.clone()).or_insert(ShardCheckpoint {
            sequence_number: None,
            sub_sequence: None,
            finished: false,
        });
        if self.last.is_some() {
            entry.sequence_number = self.last.clone();
            entry.sub_sequence = None;
        }
        entry.finished |= self.shard_end;
        Some(entry.clone())
    }

    /// With leases the checkpoint is written before the reader goes on; the reader stops if
    /// the lease turned out to be someone else's.
    async fn acknowledge(self, moved: Option<ShardCheckpoint>) {
        match (self.checkpointer, moved) {
            (Some(c), Some(moved)) => match c.write(&self.shard, &moved).await {
                Ok(true) => {
                    let _ = self.ack.send(());
                }
                Ok(false) => {}
                Err(e) => {
                    metrics::counter!("trailwatch_checkpoint_errors_total").increment(1);
                    tracing::warn!(shard = %self.shard, error = %e, "lease checkpoint failed; the next batch carries it");
                    let _ = self.ack.send(());
                }
            },
            _ => {
                let _ = self.ack.send(());
            }
        }
    }
}

/// Writes the state file: positions (file kind) and the engine's snapshot.
struct Saver {
    state: StateFile,
    leased: bool,
}

impl Saver {
    async fn save(
        &mut self,
        engine: &Engine,
        positions: &kinesis::Positions,
        inflight: &mut Inflight,
    ) -> anyhow::Result<()> {
        // The snapshot may only cover events whose alerts were accepted.
        while let Some(res) = inflight.join_next().await {
            res.context("an acceptance task failed")?.map_err(refused)?;
        }
        let snapshot = engine.snapshot_since(self.state.since()).context(
            "alerts were lost (see the log): stopping without a checkpoint (they are read again at restart)",
        )?;
        // With leases the positions live in the lease table; the file keeps the rest.
        if !self.leased {
            let shards: BTreeMap<String, ShardCheckpoint> =
                positions.lock().map(|p| p.clone()).unwrap_or_default();
            self.state.state.shards = shards;
        }
        self.state.state.engine = snapshot;
        super::record_checkpoint(|| self.state.save())?;
        Ok(())
    }
}
