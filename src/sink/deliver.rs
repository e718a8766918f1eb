//! Delivery: the router hands each item to its sinks; each sink has a worker with a bounded
//! queue that sends in batches, in order, one request at a time.
//!
//! An item is *accepted*, and the source may checkpoint, once it is delivered, or written to
//! the sink's spool (fsync'd), or written to the sink's rejected file (it can never be
//! delivered). A worker sends directly while its spool is empty: retryable failures are
//! retried with backoff and jitter, but an item waits at most `accept_within` before it is
//! spooled, so a slow or dead sink never holds the stream (or the other sinks) for longer.
//! While the spool holds anything, new items go behind it, and the worker drains it in order
//! with backoff, honouring `Retry-After`; a worker that starts with a spool drains it first.
//! On shutdown, whatever is queued is spooled.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::destination::Destination;
use super::journal::Journal;
use super::spool::Spool;
pub use super::worker::WorkerSettings;
use super::worker::{Job, Worker};
use crate::item::Item;
use crate::sink::route::Router;
use crate::sink::tally::{self, SinkTally, Tally};

/// Logs and counts what opening a spool found damaged.
fn report_damage(sink: &str, spool: &Spool) {
    for c in &spool.corrupt {
        if c.new {
            metrics::counter!(crate::metric::SINK_SPOOL_CORRUPT_TOTAL, "sink" => sink.to_string())
                .increment(1);
            metrics::counter!(crate::metric::SINK_SPOOL_CORRUPT_BYTES_TOTAL, "sink" => sink.to_string())
                .increment(c.bytes);
            tracing::error!(sink, segment = %c.segment.display(), offset = c.offset, bytes = c.bytes, reason = %c.reason, quarantine = %c.quarantine.display(), "damaged spool bytes quarantined: the records there are lost, the rest are delivered");
        } else {
            tracing::warn!(sink, segment = %c.segment.display(), offset = c.offset, bytes = c.bytes, quarantine = %c.quarantine.display(), "damaged spool bytes (quarantined before) skipped");
        }
    }
    if let Some(why) = &spool.cursor_problem {
        metrics::counter!(crate::metric::SINK_SPOOL_CURSOR_INVALID_TOTAL, "sink" => sink.to_string())
            .increment(1);
        tracing::error!(sink, reason = %why, "the spool cursor is damaged: reading from the oldest segment, skipping what the delivered-ids journal knows was delivered");
    }
}

/// A sink as the dispatcher sees it.
pub struct SinkHandle {
    pub name: String,
    tx: mpsc::Sender<Job>,
}

/// Resolves once every item of a submission is accepted by every sink it was routed to;
/// `false` if a sink could not accept (its spool failed, or it stopped).
pub struct Accepted(Vec<oneshot::Receiver<()>>);

impl Accepted {
    pub async fn wait(self) -> bool {
        let mut ok = true;
        for r in self.0 {
            ok &= r.await.is_ok();
        }
        ok
    }
}

pub struct Dispatcher {
    router: Router,
    tally: Arc<Tally>,
    sinks: Vec<SinkHandle>,
    stop: CancellationToken,
    workers: TaskTracker,
    /// The alert ids of the siem items that were in the spools at start (taken once).
    spooled_at_start: Vec<String>,
}

/// What a sink is built from.
pub struct SinkParts {
    pub name: String,
    pub target: Destination,
    pub queue: usize,
    pub settings: WorkerSettings,
}

impl Dispatcher {
    /// Opens each sink's spool under `state_dir` and starts its worker. The alert ids of the
    /// siem items already spooled are read first, before any worker drains them
    /// ([`Dispatcher::take_spooled_alert_ids`]).
    pub fn start(
        router: Router,
        parts: Vec<SinkParts>,
        state_dir: &std::path::Path,
        segment_bytes: u64,
        delivered_ids: usize,
    ) -> std::io::Result<Dispatcher> {
        let stop = CancellationToken::new();
        let workers = TaskTracker::new();
        let mut sinks = Vec::new();
        let mut spooled_at_start = Vec::new();
        let mut tallies = Vec::new();
        for p in parts {
            let dir = super::spool::dir(state_dir, &p.name);
            let spool = Spool::open(&dir, segment_bytes)?;
            report_damage(&p.name, &spool);
            let journal = Journal::open(&dir.join("delivered.ids"), delivered_ids)?;
            if journal.damaged > 0 {
                tracing::error!(sink = %p.name, entries = journal.damaged, "damaged delivered-ids journal entries skipped: those deliveries could repeat");
            }
            if !spool.is_empty() {
                tracing::info!(sink = %p.name, spooled = spool.len(), "delivering the spool first");
                for payload in spool.peek(spool.len())? {
                    if let Ok(Item::Siem(a)) = Item::from_spool(&payload) {
                        spooled_at_start.push(a.alert_id);
                    }
                }
            }
            let (tx, rx) = mpsc::channel(p.queue.max(1));
            let tally = Arc::new(SinkTally::default());
            tallies.push((p.name.clone(), tally.clone()));
            let worker = Worker::new(
                tally,
                p.name.clone(),
                p.target,
                spool,
                journal,
                super::spool::rejected_file(state_dir, &p.name),
                p.settings,
                rx,
            );
            workers.spawn(worker.run(stop.clone()));
            sinks.push(SinkHandle { name: p.name, tx });
        }
        workers.close();
        Ok(Dispatcher {
            router,
            tally: Arc::new(Tally {
                sinks: tallies,
                ..Tally::default()
            }),
            sinks,
            stop,
            workers,
            spooled_at_start,
        })
    }

    /// The alert ids of the siem items that were spooled when the sinks started: after a
    /// crash, records read again must not raise them a second time.
    pub fn take_spooled_alert_ids(&mut self) -> Vec<String> {
        std::mem::take(&mut self.spooled_at_start)
    }

    pub fn sink_names(&self) -> Vec<&str> {
        self.sinks.iter().map(|s| s.name.as_str()).collect()
    }

    /// Routes the items and queues them on their sinks (waiting for queue room: the one
    /// back-pressure on the source). Items no route takes are counted.
    pub async fn submit(&self, items: &[Arc<Item>]) -> Accepted {
        let mut per_sink: Vec<Vec<Arc<Item>>> = vec![Vec::new(); self.sinks.len()];
        let mut targets = Vec::new();
        tally::add(&self.tally.items, items.len());
        for item in items {
            targets.clear();
            self.router.targets(item, &mut targets);
            if targets.is_empty() {
                tally::add(&self.tally.unrouted, 1);
                metrics::counter!(crate::metric::UNROUTED_TOTAL, "stream" => item.stream().as_str())
                    .increment(1);
                continue;
            }
            tally::add(&self.tally.routed, 1);
            for &t in &targets {
                per_sink[t].push(item.clone());
            }
        }
        for (items, (_, t)) in per_sink.iter().zip(&self.tally.sinks) {
            tally::add(&t.queued, items.len());
        }
        let mut waits = Vec::new();
        for (sink, items) in self.sinks.iter().zip(per_sink) {
            if items.is_empty() {
                continue;
            }
            let (done, wait) = oneshot::channel();
            let job = Job {
                items,
                enqueued: Instant::now(),
                done,
            };
            if sink.tx.send(job).await.is_ok() {
                waits.push(wait);
            } else {
                // The worker is gone: never accepted.
                let (_, never) = oneshot::channel();
                waits.push(never);
            }
        }
        Accepted(waits)
    }

    /// What delivery did so far (read it after [`Dispatcher::close`] for the final counts).
    pub fn tally(&self) -> Arc<Tally> {
        self.tally.clone()
    }

    /// Stops the workers: what is queued is spooled for the next start.
    pub async fn close(self) {
        self.stop.cancel();
        drop(self.sinks);
        self.workers.wait().await;
    }
}
