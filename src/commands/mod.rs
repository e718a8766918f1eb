//! The binary's commands: one adapter per road (`run`, `serve`, `lambda`, `replay`, `backtest`) around
//! the library's engine, and the tools (`validate`, `explain`, `lint`, `match`, `test`,
//! `spool`, `health`). Library errors become messages and exit codes here. Commands do not
//! import each other; what they share is in this file, and in `live.rs` for the live roads.

pub mod backtest;
pub mod explain;
pub mod health;
pub mod lambda_cmd;
pub mod lint_cmd;
mod live;
pub mod match_cmd;
pub mod org;
pub mod replay;
pub mod run;
pub mod serve;
pub mod spool_cmd;
pub mod test_cmd;
pub mod validate;

use std::path::Path;
use std::process::ExitCode;

use trailwatch::config::{self, Config};

/// Exit codes.
pub mod exit {
    use std::process::ExitCode;
    /// Ran, and did all it was asked.
    pub fn ok() -> ExitCode {
        ExitCode::SUCCESS
    }
    /// Nothing could be read (or output failed).
    pub fn nothing_read() -> ExitCode {
        ExitCode::from(1)
    }
    /// Bad arguments or config.
    pub fn bad_config() -> ExitCode {
        ExitCode::from(2)
    }
    /// Ran, but did less than asked (something cut, skipped or unread): see
    /// `trailwatch::shortfall`.
    pub fn incomplete() -> ExitCode {
        ExitCode::from(trailwatch::shortfall::INCOMPLETE_EXIT)
    }
    /// Prints the shortfall's summary line (when there is one), counts and logs it, and gives the exit code of a
    /// run that did otherwise succeed: 0 when complete or accepted, else [`incomplete`].
    pub fn after(
        command: &'static str,
        shortfall: &trailwatch::shortfall::Shortfall,
        allow_incomplete: bool,
    ) -> ExitCode {
        if !shortfall.is_complete() {
            eprintln!("{}", shortfall.line(command, allow_incomplete));
        }
        shortfall.record(command);
        // Alerts lost (neither delivered nor spooled) are never accepted by the flag.
        if shortfall.is_complete() || (allow_incomplete && shortfall.not_accepted == 0) {
            ok()
        } else {
            incomplete()
        }
    }
}

/// The runtime of the commands that do I/O: two worker threads (the machine this is sized
/// for has two cores; the pipeline itself runs on one).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Serves /metrics, /healthz and /readyz on `addr` (a task on the current runtime).
pub fn serve_metrics(
    addr: std::net::SocketAddr,
    ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let handle =
        trailwatch::metrics_server::install().context("installing the metrics recorder")?;
    tokio::spawn(async move {
        if let Err(e) = trailwatch::metrics_server::serve(addr, handle, ready).await {
            tracing::error!(%addr, error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

/// A token cancelled at the first SIGTERM or SIGINT (a task on the current runtime).
/// Saves the state file and records what it cost: `trailwatch_checkpoint_seconds`,
/// `trailwatch_checkpoint_bytes_total{file}`, `_id_log_rewrites_total`, and the time of the
/// last success.
pub fn record_checkpoint(
    save: impl FnOnce() -> Result<trailwatch::state::Written, trailwatch::state::StateError>,
) -> Result<trailwatch::state::Written, trailwatch::state::StateError> {
    let started = std::time::Instant::now();
    let written = save()?;
    metrics::histogram!("trailwatch_checkpoint_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("trailwatch_checkpoint_bytes_total", "file" => "state")
        .increment(written.json_bytes);
    metrics::counter!("trailwatch_checkpoint_bytes_total", "file" => "ids")
        .increment(written.id_bytes);
    if written.rewritten {
        metrics::counter!("trailwatch_checkpoint_id_log_rewrites_total").increment(1);
    }
    metrics::gauge!("trailwatch_checkpoint_last_success_timestamp_seconds")
        .set(trailwatch::clock::now_secs() as f64);
    Ok(written)
}

pub fn shutdown_signal() -> tokio_util::sync::CancellationToken {
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

/// Loads the config, printing warnings; on errors prints them all and returns the exit code.
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    match config::load(path, trailwatch::clock::now_secs()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            Ok(loaded.config)
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("trailwatch: the configuration has errors; nothing was run");
            Err(exit::bad_config())
        }
    }
}
