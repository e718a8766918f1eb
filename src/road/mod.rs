//! The roads: the ways records reach the engine, each a loop, a server or a walk around the
//! one [`crate::engine::Engine`], mapping its acceptance to what its caller understands.
//!
//! | road | records come from | acceptance becomes |
//! |---|---|---|
//! | [`kinesis`] (`run`) | GetRecords, one reader per shard | the shard's position ([`kinesis::Checkpointer`]) |
//! | [`firehose`] (`serve`) | Firehose HTTP endpoint requests | the HTTP status |
//! | [`lambda`] | Kinesis or Firehose Lambda events | batch item failures, transformation results |
//! | [`replay`] | files, directories, stdin | the summary and the exit code |
//! | [`backtest`] | the CloudTrail archive (S3 or local) | the report |
//!
//! The live roads (kinesis, firehose) share [`live`]: the organization read at start-up, its
//! watch, and SIGHUP. The binary's commands only parse flags, call a road and map its result
//! to an exit code.

pub mod backtest;
pub mod firehose;
pub mod kinesis;
pub mod lambda;
pub mod live;
pub mod replay;
pub mod seed;

use std::path::PathBuf;

use crate::state::{StateError, StateFile, Written};

/// Why a road stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum RoadError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Kinesis(#[from] crate::source::kinesis::KinesisError),
    #[error(transparent)]
    Lease(#[from] crate::source::leases::LeaseError),
    #[error("starting the output of {file}: {source}")]
    Build {
        file: PathBuf,
        source: crate::build::BuildError,
    },
    /// Alerts neither delivered nor spooled: no checkpoint may cover their records.
    #[error("alerts could neither be delivered nor spooled ({0}): stopping without a checkpoint (they are read again at restart)")]
    Refused(String),
    #[error("alerts were lost (see the log): stopping without a checkpoint (they are read again at restart)")]
    Lost,
    #[error("the final checkpoint did not finish within the shutdown deadline")]
    Deadline,
    #[error("a task of the road failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("lambda runtime: {0}")]
    Runtime(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// `baseline seed`: nothing to seed, or nowhere to put it.
    #[error("{0}")]
    Seed(String),
}

/// An engine for a road that ends (replay, backtest): on event time, nothing restored, the
/// organization as it is now when `[organization]` is set.
pub fn offline_engine(
    config: &crate::config::Config,
    output: crate::build::OutputChoice,
    include_event: bool,
    dead_letter: Option<PathBuf>,
    rt: &tokio::runtime::Runtime,
) -> Result<crate::engine::Engine, RoadError> {
    let organization = match &config.organization {
        Some(org) => rt.block_on(crate::org::load(org)),
        None => None,
    };
    let options = crate::build::Options {
        output,
        include_event,
        clock: crate::engine::ClockMode::EventTime,
        dead_letter,
        restore: None,
        organization,
        now: crate::clock::now_secs(),
    };
    rt.block_on(crate::build::engine(config, options))
        .map_err(|source| RoadError::Build {
            file: PathBuf::from("the configuration"),
            source,
        })
}

/// Saves the state file and records what it cost: `trailwatch_checkpoint_seconds`,
/// `trailwatch_checkpoint_bytes_total{file}`, `_id_log_rewrites_total`, and the time of the
/// last success.
pub fn save_state(state: &mut StateFile) -> Result<Written, StateError> {
    let started = std::time::Instant::now();
    let written = state.save()?;
    metrics::histogram!(crate::metric::CHECKPOINT_SECONDS).record(started.elapsed().as_secs_f64());
    metrics::counter!(crate::metric::CHECKPOINT_BYTES_TOTAL, "file" => "state")
        .increment(written.json_bytes);
    metrics::counter!(crate::metric::CHECKPOINT_BYTES_TOTAL, "file" => "ids")
        .increment(written.id_bytes);
    if written.rewritten {
        metrics::counter!(crate::metric::CHECKPOINT_ID_LOG_REWRITES_TOTAL).increment(1);
    }
    metrics::gauge!(crate::metric::CHECKPOINT_LAST_SUCCESS_TIMESTAMP_SECONDS)
        .set(crate::clock::now_secs() as f64);
    Ok(written)
}

/// A token cancelled at the first SIGTERM or SIGINT (a task on the current runtime).
pub fn stop_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                },
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down: finishing what is in flight");
        cancel.cancel();
    });
    token
}
