//! Backfill: the window of a `feed-gap`, read from the organization trail's archive
//! (`[backfill] source`) and fed into the live engine on the same road. Dedup by event id keeps
//! an event that is both in the archive and in the stream to one alert. The live stream keeps
//! flowing: one archive object at a time is handed to the road, which takes stream batches
//! first. An object's events count once its alerts are accepted; what a job has read is saved
//! with the checkpoint, so a crash during backfill resumes it. When a job is done, a second
//! `feed-gap` alert says the window is filled, and with how many events and alerts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::archive::Scope;
use crate::config::backfill::Backfill;
use crate::road::backtest::sources::{self, From};
pub use crate::state::backfill::{Job, Jobs};

/// What the reader hands the road.
pub enum Piece {
    /// One archive object's bytes, to evaluate within the job's window; `done` gets whether
    /// its alerts were accepted.
    Object {
        gap_alert: String,
        name: String,
        bytes: Vec<u8>,
        since: i64,
        until: i64,
        done: oneshot::Sender<bool>,
    },
    /// Every object of the job was read: the road raises the `filled` alert and drops the job
    /// once that is accepted.
    Finished {
        gap_alert: String,
        done: oneshot::Sender<bool>,
    },
}

/// Tries to fetch an object three times.
async fn fetch(from: &From) -> Result<Vec<u8>, String> {
    let mut last = String::new();
    for attempt in 0..3u32 {
        let got = match from {
            From::S3(s3, key) => s3.get(key).await,
            From::File(p) => tokio::fs::read(p).await.map_err(|e| e.to_string()),
            From::Stdin => Err("stdin is not an archive".into()),
        };
        match got {
            Ok(b) => return Ok(b),
            Err(e) => last = e,
        }
        tokio::time::sleep(crate::backoff::delay(
            Duration::from_millis(200),
            Duration::from_secs(5),
            attempt + 1,
        ))
        .await;
    }
    Err(last)
}

/// Reads the jobs' windows from the archive, one object at a time, until `stop`.
pub async fn reader(
    b: Backfill,
    jobs: Jobs,
    wake: Arc<tokio::sync::Notify>,
    tx: mpsc::Sender<Piece>,
    stop: CancellationToken,
) {
    loop {
        let Some(job) = jobs.first() else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = wake.notified() => continue,
            }
        };
        tracing::warn!(gap = %job.gap_alert, since = %crate::event::format_utc_secs(job.since), until = %crate::event::format_utc_secs(job.until), source = %b.source, "backfill: reading the gap's window from the archive");
        let scope = Scope {
            since: Some(job.since),
            until: Some(job.until),
            ..Scope::default()
        };
        let today = time::OffsetDateTime::now_utc().date();
        let listed = sources::list(std::slice::from_ref(&b.source), &scope, today).await;
        for f in listed.unlisted {
            tracing::error!(gap = %job.gap_alert, prefix = %f.key, error = %f.error, "backfill: cannot list part of the archive");
            metrics::counter!(crate::metric::BACKFILL_UNREAD_TOTAL).increment(1);
            jobs.unread(&job.gap_alert, f.key, f.error);
        }
        for obj in listed.objects {
            if stop.is_cancelled() {
                return;
            }
            if job.done.contains(&obj.name) {
                continue;
            }
            let bytes = match fetch(&obj.from).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(gap = %job.gap_alert, object = %obj.name, error = %e, "backfill: cannot read an archive object");
                    metrics::counter!(crate::metric::BACKFILL_UNREAD_TOTAL).increment(1);
                    jobs.unread(&job.gap_alert, obj.name, e);
                    continue;
                }
            };
            let (done, accepted) = oneshot::channel();
            let piece = Piece::Object {
                gap_alert: job.gap_alert.clone(),
                name: obj.name,
                bytes,
                since: job.since,
                until: job.until,
                done,
            };
            if tx.send(piece).await.is_err() || !accepted.await.unwrap_or(false) {
                return; // the road stopped, or refused: resumed at the next start
            }
        }
        let (done, accepted) = oneshot::channel();
        let finished = Piece::Finished {
            gap_alert: job.gap_alert.clone(),
            done,
        };
        if tx.send(finished).await.is_err() || !accepted.await.unwrap_or(false) {
            return;
        }
    }
}

/// With several workers (a lease table): renews this worker's claims while their windows are
/// read, and takes over the claims of workers that stopped renewing theirs (a worker that
/// died during backfill, whose progress is in its own state file): the window is read again
/// here, from its start. Every `every` until `stop`.
pub async fn keep_claims(
    table: crate::source::leases::LeaseWriter,
    jobs: Jobs,
    wake: Arc<tokio::sync::Notify>,
    every: Duration,
    expiry: Duration,
    stop: CancellationToken,
) {
    let claims = table.table();
    let expiry_secs = i64::try_from(expiry.as_secs()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        for job in jobs.all() {
            match claims.renew_backfill(&job.gap_alert).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(gap = %job.gap_alert, "backfill: this worker's claim was taken over (it did not renew it in time); both read the window")
                }
                Err(e) => {
                    tracing::warn!(gap = %job.gap_alert, error = %e, "backfill: cannot renew the claim")
                }
            }
        }
        let orphans = match claims.orphan_backfills(expiry_secs).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "backfill: cannot read the claims in the lease table");
                continue;
            }
        };
        for o in orphans {
            let job: Job = match serde_json::from_str(&o.job) {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(gap = %o.gap_alert, error = %e, "backfill: a claim's window cannot be read; not taken over");
                    continue;
                }
            };
            match claims.take_backfill(&o).await {
                Ok(true) => {
                    tracing::warn!(gap = %o.gap_alert, previous = %o.claimed_by, "backfill: took over a window whose worker stopped renewing its claim; reading it from its start");
                    metrics::counter!(crate::metric::BACKFILL_TAKEN_OVER_TOTAL).increment(1);
                    if jobs.add(job.restarted()) {
                        wake.notify_one();
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(gap = %o.gap_alert, error = %e, "backfill: cannot take the claim over")
                }
            }
        }
    }
}
