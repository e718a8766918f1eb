//! A sink's worker: it sends in batches, in order, one request at a time; spools what cannot
//! be delivered within `accept_within` and drains the spool in the background; journals what
//! it delivered so that a crash repeats at most the request in flight.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::destination::Destination;
use super::error::{Class, SendError};
use super::journal::{Journal, SYNC_INTERVAL};
use super::spool::Spool;
use crate::item::Item;
use crate::readiness::Condition;
use crate::sink::tally::{self, SinkTally};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Longest an item waits for direct delivery before it is spooled instead.
    pub accept_within: Duration,
}

pub(super) struct Job {
    pub items: Vec<Arc<Item>>,
    pub enqueued: Instant,
    pub done: oneshot::Sender<()>,
}

pub(super) struct Worker {
    tally: Arc<SinkTally>,
    name: String,
    target: Destination,
    spool: Spool,
    journal: Journal,
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
    last_journal_error: Option<Instant>,
}

/// Whether a repeated error is due for logging again (at most once a minute).
fn once_a_minute(last: &mut Option<Instant>) -> bool {
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

fn gauges(name: &str, spool: &Spool) {
    metrics::gauge!(crate::metric::SINK_SPOOL_DEPTH, "sink" => name.to_string())
        .set(spool.len() as f64);
    let age = spool
        .oldest_millis()
        .map(|t| crate::clock::now_millis().saturating_sub(t) as f64 / 1000.0)
        .unwrap_or(0.0);
    metrics::gauge!(crate::metric::SINK_SPOOL_OLDEST_AGE_SECONDS, "sink" => name.to_string())
        .set(age);
}

/// Writes items to the spool (fsync'd). Failing to spool is the one thing that cannot be
/// accepted: the items stay unacknowledged (the source does not checkpoint them, serve does
/// not answer 200).
/// Makes sure the spool is where it says it is before it is used: a directory removed under
/// the worker is made again with what the open segment still holds (logged, counted).
fn relink(name: &str, spool: &mut Spool) {
    match spool.ensure_linked() {
        Ok(None) => {}
        Ok(Some(r)) => {
            metrics::counter!(crate::metric::SINK_SPOOL_RELINKED_TOTAL, "sink" => name.to_string())
                .increment(1);
            metrics::counter!(crate::metric::SINK_SPOOL_LOST_TOTAL, "sink" => name.to_string())
                .increment(r.lost);
            tracing::error!(sink = %name, recovered = r.recovered, lost = r.lost, "the spool was removed while in use: made again, with the records the open segment still held (lost: those of other segments)");
        }
        Err(e) => {
            tracing::error!(sink = %name, error = %e, "the spool was removed while in use and cannot be made again: new items are not acknowledged")
        }
    }
}

fn spool_items(tally: &SinkTally, name: &str, spool: &mut Spool, items: &[Arc<Item>]) -> bool {
    relink(name, spool);
    let payloads: Vec<Vec<u8>> = items.iter().map(|i| i.to_spool()).collect();
    match spool.append(&payloads, crate::clock::now_millis()) {
        Ok(()) => {
            crate::readiness::set(name, Condition::SpoolUnwritable, None);
            metrics::counter!(crate::metric::SINK_SPOOLED_TOTAL, "sink" => name.to_string())
                .increment(items.len() as u64);
            tally::add(&tally.spooled, items.len());
            gauges(name, spool);
            true
        }
        Err(e) => {
            metrics::counter!(crate::metric::SINK_SPOOL_WRITE_ERRORS_TOTAL, "sink" => name.to_string())
                .increment(1);
            tally::add(&tally.not_accepted, items.len());
            crate::readiness::set(name, Condition::SpoolUnwritable, Some(e.to_string()));
            tracing::error!(sink = %name, error = %e, items = items.len(), "cannot write the spool: these alerts are not acknowledged (the source keeps them)");
            false
        }
    }
}

/// Spools a job that arrived while the spool is not empty and acknowledges it.
fn spool_job(tally: &SinkTally, name: &str, spool: &mut Spool, j: Job) {
    if spool_items(tally, name, spool, &j.items) {
        metrics::histogram!(crate::metric::SINK_ACCEPT_SECONDS, "sink" => name.to_string())
            .record(j.enqueued.elapsed().as_secs_f64());
        let _ = j.done.send(());
    }
}

/// One request, bounded by `limit`, counted.
async fn send(
    target: &mut Destination,
    name: &str,
    batch: &[Arc<Item>],
    limit: Duration,
) -> super::destination::Outcome {
    let started = Instant::now();
    let out = match tokio::time::timeout(limit, target.send(batch)).await {
        Ok(o) => o,
        Err(_) => super::destination::Outcome::none(SendError::retry(format!(
            "no answer within {limit:?}"
        ))),
    };
    match &out.error {
        Some(e) if e.class == Class::Broken => {
            crate::readiness::set(name, Condition::Broken, Some(e.to_string()))
        }
        None => crate::readiness::set(name, Condition::Broken, None),
        Some(_) => {}
    }
    if out.delivered > 0 {
        metrics::counter!(crate::metric::SINK_SENT_TOTAL, "sink" => name.to_string())
            .increment(out.delivered as u64);
        metrics::histogram!(crate::metric::SINK_REQUEST_SECONDS, "sink" => name.to_string())
            .record(started.elapsed().as_secs_f64());
    }
    if let Some(e) = &out.error {
        metrics::counter!(crate::metric::SINK_FAILURES_TOTAL, "sink" => name.to_string(), "kind" => e.kind())
            .increment(1);
    }
    out
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        tally: Arc<SinkTally>,
        name: String,
        target: Destination,
        spool: Spool,
        journal: Journal,
        rejected: PathBuf,
        s: WorkerSettings,
        rx: mpsc::Receiver<Job>,
    ) -> Worker {
        Worker {
            tally,
            name,
            target,
            spool,
            journal,
            rejected,
            s,
            rx,
            last_send: None,
            next_try: Instant::now(),
            attempt: 0,
            isolate: false,
            last_broken_log: None,
            last_journal_error: None,
        }
    }

    fn reject(&mut self, item: &Item, why: &SendError) {
        metrics::counter!(crate::metric::SINK_REJECTED_TOTAL, "sink" => self.name.clone())
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
        self.remember(std::slice::from_ref(&item.id()));
    }

    /// Journals delivered (or rejected) ids before the next request goes out.
    fn remember(&mut self, ids: &[String]) {
        if let Err(e) = self.journal.record(ids.iter().map(String::as_str)) {
            metrics::counter!(crate::metric::SINK_JOURNAL_ERRORS_TOTAL, "sink" => self.name.clone())
                .increment(1);
            if once_a_minute(&mut self.last_journal_error) {
                tracing::error!(sink = %self.name, error = %e, "cannot write the delivered-ids journal: a crash now could repeat these deliveries");
            }
        }
    }

    /// Drops items the journal knows were delivered (records read again after a crash).
    fn skip_delivered(&self, items: &mut Vec<Arc<Item>>) {
        if self.journal.is_empty() {
            return;
        }
        let before = items.len();
        items.retain(|i| !self.journal.contains(&i.id()));
        let skipped = before - items.len();
        tally::add(&self.tally.repeats_skipped, skipped);
        if skipped > 0 {
            metrics::counter!(crate::metric::SINK_REPEATS_SKIPPED_TOTAL, "sink" => self.name.clone())
                .increment(skipped as u64);
            tracing::info!(sink = %self.name, skipped, "items already delivered before a restart are not sent again");
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

    /// Sends one request and journals what it delivered.
    async fn send_now(&mut self, batch: &[Arc<Item>]) -> super::destination::Outcome {
        self.pace().await;
        let out = send(&mut self.target, &self.name, batch, self.s.timeout).await;
        self.delivered(batch, out.delivered);
        out
    }

    fn delivered(&mut self, batch: &[Arc<Item>], n: usize) {
        if n > 0 {
            let ids: Vec<String> = batch[..n.min(batch.len())].iter().map(|i| i.id()).collect();
            self.remember(&ids);
        }
    }

    fn log_failure(&mut self, e: &SendError, spooled: bool) {
        match e.class {
            Class::Broken => {
                if once_a_minute(&mut self.last_broken_log) {
                    tracing::error!(sink = %self.name, error = %e, "the destination refuses us (credentials, permissions, a revoked webhook?): alerts are kept in the spool until it is fixed");
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
        self.skip_delivered(&mut rest);
        let mut attempt = 0u32;
        let mut isolate = false;
        while !rest.is_empty() {
            let now = Instant::now();
            if now >= deadline || shutdown.is_cancelled() {
                return spool_items(&self.tally, &self.name, &mut self.spool, &rest);
            }
            let n = if isolate { 1 } else { self.target.max_batch() }.min(rest.len());
            // A request once started runs to its timeout: cutting it short at the deadline
            // could deliver it and still spool it (a repeat).
            let out = self.send_now(&rest[..n]).await;
            tally::add(&self.tally.delivered, out.delivered.min(n));
            rest.drain(..out.delivered.min(n));
            let Some(e) = out.error else {
                attempt = 0;
                continue;
            };
            match after_failure(e.class, n, out.delivered) {
                Next::RejectHead => {
                    let bad = rest.remove(0);
                    self.reject(&bad, &e);
                    tally::add(&self.tally.rejected, 1);
                }
                Next::Isolate => isolate = true,
                Next::Broken => {
                    self.log_failure(&e, true);
                    self.attempt = 1;
                    self.next_try = Instant::now() + self.backoff(1, None);
                    return spool_items(&self.tally, &self.name, &mut self.spool, &rest);
                }
                Next::Retry { after } => {
                    attempt += 1;
                    metrics::counter!(crate::metric::SINK_RETRIES_TOTAL, "sink" => self.name.clone())
                        .increment(1);
                    let wait = self.backoff(attempt, after);
                    if attempt >= self.s.max_attempts || Instant::now() + wait >= deadline {
                        self.log_failure(&e, true);
                        self.attempt = attempt;
                        self.next_try = Instant::now() + wait;
                        return spool_items(&self.tally, &self.name, &mut self.spool, &rest);
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

    fn commit(&mut self, n: usize) {
        if let Err(e) = self.spool.commit(n) {
            tracing::error!(sink = %self.name, error = %e, "cannot move the spool cursor");
        }
    }

    /// The head of the spool, up to a batch: the items to send and how many records they
    /// span. Records the journal knows were delivered are committed here, unsent.
    fn spool_head(&mut self) -> Option<Vec<Arc<Item>>> {
        relink(&self.name, &mut self.spool);
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
                return None;
            }
        };
        let mut items = Vec::with_capacity(payloads.len());
        let (mut skip, mut repeats) = (0, 0);
        for p in &payloads {
            match Item::from_spool(p) {
                Ok(i) if self.journal.contains(&i.id()) => {
                    if !items.is_empty() {
                        break;
                    }
                    skip += 1;
                    repeats += 1;
                }
                Ok(i) => items.push(Arc::new(i)),
                Err(e) => {
                    if !items.is_empty() {
                        break;
                    }
                    // Checksummed, so this is a format from another version: never retried.
                    metrics::counter!(crate::metric::SINK_SPOOL_UNREADABLE_TOTAL, "sink" => self.name.clone())
                        .increment(1);
                    tracing::error!(sink = %self.name, error = %e, "an unreadable spool record is dropped");
                    skip += 1;
                }
            }
        }
        if skip > 0 {
            metrics::counter!(crate::metric::SINK_REPEATS_SKIPPED_TOTAL, "sink" => self.name.clone())
                .increment(repeats as u64);
            tally::add(&self.tally.drain_skipped, repeats);
            self.commit(skip);
            self.next_try = Instant::now();
            return None;
        }
        Some(items)
    }

    /// One try at the head of the spool. While the request is out, new items go straight
    /// behind it in the spool and are acknowledged (a slow sink never holds the source).
    async fn drain_once(&mut self) {
        let Some(items) = self.spool_head() else {
            gauges(&self.name, &self.spool);
            return;
        };
        if items.is_empty() {
            return;
        }
        self.pace().await;
        let out = {
            let request = send(&mut self.target, &self.name, &items, self.s.timeout);
            tokio::pin!(request);
            let mut intake = true;
            loop {
                tokio::select! {
                    out = &mut request => break out,
                    j = self.rx.recv(), if intake => match j {
                        Some(j) => spool_job(&self.tally, &self.name, &mut self.spool, j),
                        None => intake = false,
                    },
                }
            }
        };
        self.delivered(&items, out.delivered);
        let mut done = out.delivered.min(items.len());
        tally::add(&self.tally.drained, done);
        match out.error {
            None => {
                self.attempt = 0;
                self.isolate = false;
            }
            Some(e) => match after_failure(e.class, items.len(), done) {
                Next::RejectHead => {
                    self.reject(&items[done], &e);
                    tally::add(&self.tally.drain_rejected, 1);
                    done += 1;
                    self.isolate = false;
                }
                Next::Isolate => self.isolate = true,
                next => {
                    self.attempt += 1;
                    let after = match next {
                        Next::Retry { after } => after,
                        _ => None,
                    };
                    self.log_failure(&e, true);
                    self.next_try = Instant::now() + self.backoff(self.attempt, after);
                }
            },
        }
        if done > 0 {
            self.commit(done);
            if self.spool.is_empty() {
                tracing::info!(sink = %self.name, "spool drained: delivering directly again");
            }
        }
        gauges(&self.name, &self.spool);
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        gauges(&self.name, &self.spool);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if self.spool.is_empty() {
                let first = tokio::select! {
                    j = self.rx.recv() => j,
                    _ = shutdown.cancelled() => None,
                    _ = tokio::time::sleep(SYNC_INTERVAL) => {
                        let _ = self.journal.sync();
                        continue;
                    }
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
                        metrics::histogram!(crate::metric::SINK_ACCEPT_SECONDS, "sink" => self.name.clone())
                            .record(j.enqueued.elapsed().as_secs_f64());
                        let _ = j.done.send(());
                    }
                }
            } else {
                let wake = tokio::time::Instant::from_std(self.next_try);
                tokio::select! {
                    j = self.rx.recv() => match j {
                        Some(j) => spool_job(&self.tally, &self.name, &mut self.spool, j),
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
            spool_job(&self.tally, &self.name, &mut self.spool, j);
        }
        if let Err(e) = self.journal.sync() {
            tracing::error!(sink = %self.name, error = %e, "cannot sync the delivered-ids journal");
        }
    }
}

/// What a worker does after a request of `sent` items delivered the first `delivered` and
/// then failed: the one rule for direct delivery and for draining the spool.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The first undelivered item alone was refused: it goes to the rejected file.
    RejectHead,
    /// Several items and one was refused: send one at a time to find it.
    Isolate,
    /// Never retryable (401, 403, 404, 410): the sink is broken until a later try works.
    Broken,
    /// Try again after a backoff (at least `after`, when the sink said so).
    Retry { after: Option<Duration> },
}

fn after_failure(class: Class, sent: usize, delivered: usize) -> Next {
    match class {
        Class::Rejected if sent == 1 || delivered + 1 == sent => Next::RejectHead,
        Class::Rejected => Next::Isolate,
        Class::Broken => Next::Broken,
        Class::Retry { after } => Next::Retry { after },
    }
}

#[cfg(test)]
mod after_failure_tests {
    use super::*;

    #[test]
    fn a_refusal_rejects_the_head_only_when_it_is_the_one_item_left_else_isolates() {
        assert_eq!(after_failure(Class::Rejected, 1, 0), Next::RejectHead);
        // Four delivered of five: the fifth was refused.
        assert_eq!(after_failure(Class::Rejected, 5, 4), Next::RejectHead);
        assert_eq!(after_failure(Class::Rejected, 5, 2), Next::Isolate);
        assert_eq!(after_failure(Class::Broken, 5, 0), Next::Broken);
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            after_failure(Class::Retry { after }, 5, 0),
            Next::Retry { after }
        );
    }
}
