//! `trailwatch run`: consume the Kinesis stream continuously. Readers (one per shard) hand
//! batches to this task, which decodes, evaluates and writes the SIEM feed (stdout), flushes,
//! then acknowledges: only then may the shard's checkpoint move past those records. Positions
//! and the dedup state are written together, atomically, every `checkpoint.interval` and at
//! shutdown (SIGTERM/SIGINT: stop polling, drain, flush, checkpoint, exit 0).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use std::time::Duration;
use tokio::task::JoinSet;

use anyhow::Context;
use trailwatch::config::Config;
use trailwatch::decode::{Decoder, Position};
use trailwatch::event::parse_utc_secs;
use trailwatch::pipeline::collect::Collect;
use trailwatch::pipeline::Pipeline;
use trailwatch::shaping::Shaper;
use trailwatch::sink::deliver::Dispatcher;
use trailwatch::sink::item::{due, items};
use trailwatch::sink::{report_dead_letter, JsonLines};
use trailwatch::source::checkpoint::{FileCheckpoints, ShardCheckpoint};
use trailwatch::source::kinesis::{self, Batch};
use trailwatch::source::leases;

use super::{exit, load_config, wall_clock};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
    /// Append the SIEM feed to this file instead of stdout. After a crash, the alerts written
    /// since the last checkpoint are read back from it, so none is written twice.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
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
    let rt = super::runtime()?;
    rt.block_on(consume(
        &args.config,
        config,
        args.output,
        args.metrics_addr,
        args.shutdown_deadline,
        args.worker_id,
    ))?;
    Ok(exit::ok())
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Reads back the alert ids written to `path` after `from` bytes; cuts a torn last line.
fn written_since(path: &std::path::Path, from: u64) -> anyhow::Result<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let len = f.metadata()?.len();
    if len < from {
        tracing::warn!(output = %path.display(), "the output file is shorter than the checkpoint says; not reading it back");
        return Ok(Vec::new());
    }
    f.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < tail.len() {
        tracing::warn!(output = %path.display(), bytes = tail.len() - complete, "cutting a torn last line");
        f.set_len(from + complete as u64)?;
    }
    Ok(tail[..complete]
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| v["alert_id"].as_str().map(str::to_string))
        .collect())
}

async fn consume(
    config_path: &std::path::Path,
    config: Config,
    output: Option<PathBuf>,
    metrics_addr: Option<std::net::SocketAddr>,
    deadline: Duration,
    worker_id: Option<String>,
) -> anyhow::Result<()> {
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = metrics_addr {
        super::serve_metrics(addr, ready.clone())?;
    }
    let source = config.kinesis.clone().context("no [source.kinesis]")?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &source.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    let sdk = loader.load().await;
    let client = aws_sdk_kinesis::Client::new(&sdk);
    let mut cp = FileCheckpoints::open(&config.checkpoint.path, &source.settings.stream)?;
    let mut pipeline = Pipeline::new(&config, false);
    if let Some(snap) = &cp.state.pipeline {
        pipeline.restore(snap, &config);
    }
    // With leases, positions come from the lease table as leases are taken.
    let (ownership, checkpointer) = match &config.checkpoint.leases {
        None => (kinesis::Ownership::All, None),
        Some(l) => {
            let me = worker_id.unwrap_or_else(leases::default_worker_id);
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
            cp.state.shards.clear();
            (kinesis::Ownership::Leases(coordinator), Some(checkpointer))
        }
    };
    let positions: kinesis::Positions = Arc::new(Mutex::new(cp.state.shards.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(16);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer = tokio::spawn(kinesis::consume(
        client,
        source.settings.clone(),
        ownership,
        positions.clone(),
        tx,
        stopped,
        ready,
    ));
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: stop polling, drain, checkpoint");
        let _ = stop.send(true);
    });
    let decoder = Decoder::new(config.decode.limits());
    // Spooled after the last checkpoint (a crash): those records are read again, but their
    // alerts are already on their way. Read before the sinks start draining.
    if config.delivery.is_configured() {
        let spooled =
            trailwatch::sink::build::spooled_alert_ids(&config).context("reading the spools")?;
        if !spooled.is_empty() {
            tracing::info!(
                alerts = spooled.len(),
                "alerts waiting in the spools: not raising them again"
            );
        }
        for id in spooled {
            pipeline.remember_alert(&id, wall_clock());
        }
    }
    let dispatcher = trailwatch::sink::build::dispatcher(&config)
        .await
        .with_context(|| format!("starting the sinks of {}", config_path.display()))?;
    let mut out = match dispatcher {
        Some(dispatcher) => {
            if output.is_some() {
                anyhow::bail!(
                    "--output is for runs without [[sinks]]; configure a file sink instead"
                );
            }
            Out::Sinks {
                dispatcher,
                shaper: Box::new(Shaper::from_config_restoring(
                    &config,
                    cp.state.shaping.clone(),
                )),
                inflight: JoinSet::new(),
            }
        }
        None => {
            if let Some(path) = &output {
                let ids = written_since(path, cp.state.output_len.unwrap_or(0))?;
                if !ids.is_empty() {
                    tracing::info!(
                        alerts = ids.len(),
                        "alerts written after the last checkpoint: not writing them again"
                    );
                }
                for id in ids {
                    pipeline.remember_alert(&id, wall_clock());
                }
            }
            let sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .with_context(|| format!("opening {}", path.display()))?,
                ),
                None => Box::new(io::stdout()),
            };
            Out::Feed {
                out: JsonLines::new(sink),
                path: output.clone(),
            }
        }
    };
    let mut tick = tokio::time::interval(config.checkpoint.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shaping_tick = tokio::time::interval(Duration::from_secs(1));
    shaping_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut saver = Saver {
        cp,
        leased: checkpointer.is_some(),
    };
    let mut consumer = consumer;
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                // Live: dedup, shaping and exemptions run on arrival time.
                let now = wall_clock();
                let mut p = Collect::new(&mut pipeline, now).skipping(batch.skip.clone());
                let mut last = None;
                for (seq, data) in &batch.records {
                    let mut pos = Position::new(batch.shard.clone());
                    pos.sequence_number = Some(seq.clone());
                    decoder.decode(data, &mut pos, &mut p);
                    last = Some(seq.clone());
                }
                let (alerts, events, dead) = (std::mem::take(&mut p.alerts), p.events, std::mem::take(&mut p.dead));
                tracing::debug!(shard = %batch.shard, records = batch.records.len(), events, dead_letters = dead.len(), millis_behind = batch.millis_behind, "batch");
                metrics::counter!("trailwatch_records_total", "shard" => batch.shard.clone()).increment(batch.records.len() as u64);
                metrics::counter!("trailwatch_events_total").increment(events);
                dead.iter().for_each(report_dead_letter);
                for a in &alerts {
                    metrics::counter!("trailwatch_alerts_total", "rule" => a.rule.clone()).increment(1);
                    if let Some(t) = a.event_time.as_deref().and_then(parse_utc_secs) {
                        metrics::histogram!("trailwatch_event_to_alert_seconds").record((now - t).max(0) as f64);
                    }
                }
                let done = Done { positions: positions.clone(), shard: batch.shard, last, shard_end: batch.shard_end, checkpointer: checkpointer.clone(), ack: batch.ack };
                let mut save_now = false;
                match &mut out {
                    Out::Feed { out, .. } => {
                        // Delivered before acknowledged: write and flush the feed, then move
                        // the position.
                        for a in &alerts {
                            out.write(a).context("writing alerts")?;
                        }
                        out.flush().context("writing alerts")?;
                        if done.shard_end {
                            tracing::info!(shard = %done.shard, "shard finished (SHARD_END)");
                            save_now = true;
                        }
                        let moved = done.advance();
                        tokio::spawn(done.acknowledge(moved));
                    }
                    Out::Sinks { dispatcher, shaper, inflight } => {
                        let items = items(alerts, Some(shaper), now);
                        // Accepted (delivered or spooled) before acknowledged.
                        let accepted = dispatcher.submit(items).await;
                        inflight.spawn(async move {
                            if !accepted.wait().await {
                                return false;
                            }
                            let moved = done.advance();
                            done.acknowledge(moved).await;
                            true
                        });
                    }
                }
                if save_now {
                    saver.save(&pipeline, &positions, &mut out).await?;
                }
            }
            _ = shaping_tick.tick() => {
                if let Out::Sinks { dispatcher, shaper, inflight } = &mut out {
                    let notify = due(shaper, wall_clock());
                    let st = shaper.stats;
                    metrics::counter!("trailwatch_shaping_alerts_in_total").absolute(st.alerts_in);
                    metrics::counter!("trailwatch_notify_items_total").absolute(st.items_out);
                    metrics::counter!("trailwatch_shaping_suppressed_total").absolute(st.suppressed);
                    if !notify.is_empty() {
                        let accepted = dispatcher.submit(notify).await;
                        inflight.spawn(accepted.wait());
                    }
                }
            }
            Some(res) = join_next(&mut out) => {
                if !matches!(res, Ok(true)) {
                    anyhow::bail!("alerts could neither be delivered nor spooled: stopping without a checkpoint (they are read again at restart)");
                }
            }
            _ = tick.tick() => saver.save(&pipeline, &positions, &mut out).await?,
            done = &mut consumer => {
                // The consumer ended (shutdown, or a fatal error); its readers have stopped.
                match done {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => { saver.save(&pipeline, &positions, &mut out).await?; return Err(e.into()); }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    tokio::time::timeout(deadline, saver.save(&pipeline, &positions, &mut out))
        .await
        .context("the final checkpoint did not finish within the shutdown deadline")??;
    if let Out::Sinks { dispatcher, .. } = out {
        dispatcher.close().await;
    }
    signal.abort();
    Ok(())
}

/// Where alerts go: the built-in SIEM feed (stdout, or `--output`), written and flushed before
/// a batch is acknowledged; or the configured sinks, which must accept (deliver or spool)
/// every item of a batch before it is.
enum Out {
    Feed {
        out: JsonLines<Box<dyn Write>>,
        path: Option<PathBuf>,
    },
    Sinks {
        dispatcher: Dispatcher,
        shaper: Box<Shaper>,
        /// Batches (and shaping emissions) waiting for acceptance.
        inflight: JoinSet<bool>,
    },
}

/// The next finished acceptance, if any is in flight (pending forever otherwise).
async fn join_next(out: &mut Out) -> Option<Result<bool, tokio::task::JoinError>> {
    match out {
        Out::Sinks { inflight, .. } if !inflight.is_empty() => inflight.join_next().await,
        _ => std::future::pending().await,
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

/// Writes the checkpoint file: positions (file kind), the dedup and shaping state, and how
/// much of `--output` it covers.
struct Saver {
    cp: FileCheckpoints,
    leased: bool,
}

impl Saver {
    async fn save(
        &mut self,
        pipeline: &Pipeline,
        positions: &kinesis::Positions,
        out: &mut Out,
    ) -> anyhow::Result<()> {
        match out {
            // Everything written is flushed before the checkpoint records how much there is.
            Out::Feed { out, path } => {
                out.flush().context("writing alerts")?;
                self.cp.state.output_len = path
                    .as_ref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len());
            }
            // The dedup state may only cover events whose alerts were accepted.
            Out::Sinks {
                inflight, shaper, ..
            } => {
                while let Some(res) = inflight.join_next().await {
                    if !matches!(res, Ok(true)) {
                        anyhow::bail!("alerts could neither be delivered nor spooled: stopping without a checkpoint (they are read again at restart)");
                    }
                }
                self.cp.state.shaping = Some(shaper.snapshot());
            }
        }
        // With leases the positions live in the lease table; the file keeps the rest.
        if !self.leased {
            let shards: BTreeMap<String, ShardCheckpoint> =
                positions.lock().map(|p| p.clone()).unwrap_or_default();
            self.cp.state.shards = shards;
        }
        self.cp.state.pipeline = Some(pipeline.snapshot());
        self.cp.save()?;
        metrics::gauge!("trailwatch_checkpoint_last_success_timestamp_seconds")
            .set(wall_clock() as f64);
        Ok(())
    }
}
