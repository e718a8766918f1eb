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

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::destination::Destination;
use super::error::{Class, SendError};
use super::spool::Spool;
use crate::item::Item;
use crate::sink::route::Router;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Longest an item waits for direct delivery before it is spooled instead.
    pub accept_within: Duration,
}

struct Job {
    items: Vec<Arc<Item>>,
    enqueued: Instant,
    done: oneshot::Sender<()>,
}

struct Worker {
    name: String,
    target: Destination,
    spool: Spool,
    rejected: PathBuf,
    s: WorkerSettings,
    rx: mpsc::Receiver<Job>,
    last_send: Option<Instant>,
    /// Spool draining: the next try, the attempt count, send one at a time (isolating a
    /// rejected item in a batch).
    next_try: Instant,
    attempt: u32,
    isolate: bool,
    last_broken_log: Option<Instant>,
}

impl Worker {
    fn gauges(&self) {
        metrics::gauge!("trailwatch_sink_spool_depth", "sink" => self.name.clone())
            .set(self.spool.len() as f64);
        let age = self
            .spool
            .oldest_millis()
            .map(|t| crate::clock::now_millis().saturating_sub(t) as f64 / 1000.0)
            .unwrap_or(0.0);
        metrics::gauge!("trailwatch_sink_spool_oldest_age_seconds", "sink" => self.name.clone())
            .set(age);
    }

    /// Writes items to the spool (fsync'd). Failing to spool is the one thing that cannot be
    /// accepted: the items stay unacknowledged (the source does not checkpoint them).
    fn spool_items(&mut self, items: &[Arc<Item>]) -> bool {
        let payloads: Vec<Vec<u8>> = items.iter().map(|i| i.to_spool()).collect();
        match self.spool.append(&payloads, crate::clock::now_millis()) {
            Ok(()) => {
                metrics::counter!("trailwatch_sink_spooled_total", "sink" => self.name.clone())
                    .increment(items.len() as u64);
                self.gauges();
                true
            }
            Err(e) => {
                tracing::error!(sink = %self.name, error = %e, "cannot write the spool: these alerts are not acknowledged");
                false
            }
        }
    }

    fn reject(&mut self, item: &Item, why: &SendError) {
        metrics::counter!("trailwatch_sink_rejected_total", "sink" => self.name.clone())
            .increment(1);
        tracing::error!(sink = %self.name, alert_id = %item.id(), reason = %why, "the destination rejected an alert; written to the rejected file");
        let line = serde_json::json!({
            "time": crate::event::format_utc_secs(crate::clock::now_secs()),
            "sink": self.name,
            "reason": why.message,
            "item": item.native(),
        });
        let written = (|| -> std::io::Result<()> {
            if let Some(dir) = self.rejected.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.rejected)?;
            writeln!(f, "{line}")?;
            f.sync_data()
        })();
        if let Err(e) = written {
            tracing::error!(sink = %self.name, error = %e, path = %self.rejected.display(), "cannot write the rejected file");
        }
    }

    async fn pace(&mut self) {
        if let (Some(min), Some(last)) = (self.target.min_interval(), self.last_send) {
            let next = last + min;
            if next > Instant::now() {
                tokio::time::sleep_until(next.into()).await;
            }
        }
        self.last_send = Some(Instant::now());
    }

    async fn send(&mut self, batch: &[Arc<Item>], limit: Duration) -> super::destination::Outcome {
        self.pace().await;
        let started = Instant::now();
        let out = match tokio::time::timeout(limit, self.target.send(batch)).await {
            Ok(o) => o,
            Err(_) => super::destination::Outcome::none(SendError::retry(format!(
                "no answer within {limit:?}"
            ))),
        };
        if out.delivered > 0 {
            metrics::counter!("trailwatch_sink_sent_total", "sink" => self.name.clone())
                .increment(out.delivered as u64);
            metrics::histogram!("trailwatch_sink_request_seconds", "sink" => self.name.clone())
                .record(started.elapsed().as_secs_f64());
        }
        if let Some(e) = &out.error {
            metrics::counter!("trailwatch_sink_failures_total", "sink" => self.name.clone(), "kind" => e.kind())
                .increment(1);
        }
        out
    }

    fn log_failure(&mut self, e: &SendError, spooled: bool) {
        match e.class {
            Class::Broken => {
                let quiet = self
                    .last_broken_log
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                if !quiet {
                    tracing::error!(sink = %self.name, error = %e, "the destination refuses us (credentials, permissions, a revoked webhook?): alerts are kept in the spool until it is fixed");
                    self.last_broken_log = Some(Instant::now());
                }
            }
            _ if spooled => {
                tracing::warn!(sink = %self.name, error = %e, "delivery failing; spooling")
            }
            _ => tracing::info!(sink = %self.name, error = %e, "delivery failed; retrying"),
        }
    }

    /// Direct delivery of the jobs in hand (the spool is empty). Returns whether every item
    /// was accepted (delivered, spooled or rejected).
    async fn direct(&mut self, jobs: &[Job], shutdown: &CancellationToken) -> bool {
        let oldest = jobs
            .iter()
            .map(|j| j.enqueued)
            .min()
            .unwrap_or_else(Instant::now);
        let deadline = oldest + self.s.accept_within;
        let mut rest: Vec<Arc<Item>> = jobs.iter().flat_map(|j| j.items.iter().cloned()).collect();
        let mut attempt = 0u32;
        let mut isolate = false;
        while !rest.is_empty() {
            let now = Instant::now();
            if now >= deadline || shutdown.is_cancelled() {
                return self.spool_items(&rest);
            }
            let n = if isolate { 1 } else { self.target.max_batch() }.min(rest.len());
            // A request once started runs to its timeout: cutting it short at the deadline
            // could deliver it and still spool it (a repeat).
            let out = self.send(&rest[..n], self.s.timeout).await;
            rest.drain(..out.delivered.min(n));
            let Some(e) = out.error else {
                attempt = 0;
                continue;
            };
            match e.class {
                Class::Rejected if n == 1 || out.delivered + 1 == n => {
                    let bad = rest.remove(0);
                    self.reject(&bad, &e);
                }
                Class::Rejected => isolate = true,
                Class::Broken => {
                    self.log_failure(&e, true);
                    self.attempt = 1;
                    self.next_try = Instant::now() + self.backoff(1, None);
                    return self.spool_items(&rest);
                }
                Class::Retry { after } => {
                    attempt += 1;
                    metrics::counter!("trailwatch_sink_retries_total", "sink" => self.name.clone())
                        .increment(1);
                    let wait = self.backoff(attempt, after);
                    if attempt >= self.s.max_attempts || Instant::now() + wait >= deadline {
                        self.log_failure(&e, true);
                        self.attempt = attempt;
                        self.next_try = Instant::now() + wait;
                        return self.spool_items(&rest);
                    }
                    self.log_failure(&e, false);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        true
    }

    fn backoff(&self, attempt: u32, after: Option<Duration>) -> Duration {
        let b = crate::backoff::delay(self.s.backoff_initial, self.s.backoff_max, attempt);
        after.map_or(b, |a| a.max(b))
    }

    /// One try at the head of the spool.
    async fn drain_once(&mut self) {
        let n = if self.isolate {
            1
        } else {
            self.target.max_batch()
        };
        let payloads = match self.spool.peek(n) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(sink = %self.name, error = %e, "cannot read the spool");
                self.next_try = Instant::now() + self.s.backoff_max;
                return;
            }
        };
        let mut items = Vec::with_capacity(payloads.len());
        for p in &payloads {
            match Item::from_spool(p) {
                Ok(i) => items.push(Arc::new(i)),
                Err(e) => {
                    // Checksummed, so this is a format from another version: never retried.
                    tracing::error!(sink = %self.name, error = %e, "an unreadable spool record is dropped");
                    break;
                }
            }
        }
        if items.is_empty() {
            if let Err(e) = self.spool.commit(1) {
                tracing::error!(sink = %self.name, error = %e, "cannot move the spool cursor");
            }
            return;
        }
        let out = self.send(&items, self.s.timeout).await;
        let mut done = out.delivered.min(items.len());
        match out.error {
            None => {
                self.attempt = 0;
                self.isolate = false;
            }
            Some(e) => match e.class {
                Class::Rejected if items.len() == 1 || done + 1 == items.len() => {
                    self.reject(&items[done], &e);
                    done += 1;
                    self.isolate = false;
                }
                Class::Rejected => self.isolate = true,
                _ => {
                    self.attempt += 1;
                    let after = match e.class {
                        Class::Retry { after } => after,
                        _ => None,
                    };
                    self.log_failure(&e, true);
                    self.next_try = Instant::now() + self.backoff(self.attempt, after);
                }
            },
        }
        if done > 0 {
            if let Err(e) = self.spool.commit(done) {
                tracing::error!(sink = %self.name, error = %e, "cannot move the spool cursor");
            }
            if self.spool.is_empty() {
                tracing::info!(sink = %self.name, "spool drained: delivering directly again");
            }
        }
        self.gauges();
    }

    async fn run(mut self, shutdown: CancellationToken) {
        self.gauges();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if self.spool.is_empty() {
                let first = tokio::select! {
                    j = self.rx.recv() => j,
                    _ = shutdown.cancelled() => None,
                };
                let Some(first) = first else { break };
                let mut jobs = vec![first];
                let mut count = jobs[0].items.len();
                while count < self.target.max_batch() * 10 {
                    match self.rx.try_recv() {
                        Ok(j) => {
                            count += j.items.len();
                            jobs.push(j);
                        }
                        Err(_) => break,
                    }
                }
                if self.direct(&jobs, &shutdown).await {
                    for j in jobs {
                        metrics::histogram!("trailwatch_sink_accept_seconds", "sink" => self.name.clone())
                            .record(j.enqueued.elapsed().as_secs_f64());
                        let _ = j.done.send(());
                    }
                }
            } else {
                let wake = tokio::time::Instant::from_std(self.next_try);
                tokio::select! {
                    j = self.rx.recv() => match j {
                        Some(j) => {
                            if self.spool_items(&j.items) {
                                let _ = j.done.send(());
                            }
                        }
                        None => break,
                    },
                    _ = tokio::time::sleep_until(wake) => self.drain_once().await,
                    _ = shutdown.cancelled() => {}
                }
            }
        }
        // Shutdown: keep what is queued for the next start.
        self.rx.close();
        while let Some(j) = self.rx.recv().await {
            if self.spool_items(&j.items) {
                let _ = j.done.send(());
            }
        }
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
    ) -> std::io::Result<Dispatcher> {
        let stop = CancellationToken::new();
        let workers = TaskTracker::new();
        let mut sinks = Vec::new();
        let mut spooled_at_start = Vec::new();
        for p in parts {
            let spool = Spool::open(&super::spool::dir(state_dir, &p.name), segment_bytes)?;
            for c in &spool.corrupt {
                metrics::counter!("trailwatch_sink_spool_corrupt_total", "sink" => p.name.clone())
                    .increment(1);
                tracing::error!(sink = %p.name, segment = %c.segment.display(), offset = c.offset, skipped_bytes = c.skipped_bytes, reason = %c.reason, "corrupt spool tail skipped");
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
            let worker = Worker {
                name: p.name.clone(),
                target: p.target,
                spool,
                rejected: super::spool::rejected_file(state_dir, &p.name),
                s: p.settings,
                rx,
                last_send: None,
                next_try: Instant::now(),
                attempt: 0,
                isolate: false,
                last_broken_log: None,
            };
            workers.spawn(worker.run(stop.clone()));
            sinks.push(SinkHandle { name: p.name, tx });
        }
        workers.close();
        Ok(Dispatcher {
            router,
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
        for item in items {
            targets.clear();
            self.router.targets(item, &mut targets);
            if targets.is_empty() {
                metrics::counter!("trailwatch_unrouted_total", "stream" => item.stream().as_str())
                    .increment(1);
                continue;
            }
            for &t in &targets {
                per_sink[t].push(item.clone());
            }
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

    /// Stops the workers: what is queued is spooled for the next start.
    pub async fn close(self) {
        self.stop.cancel();
        drop(self.sinks);
        self.workers.wait().await;
    }
}
