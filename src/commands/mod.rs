//! The binary's commands. Library errors become messages and exit codes here.

pub mod explain;
pub mod health;
pub mod lambda_cmd;
pub mod lint_cmd;
pub mod match_cmd;
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
    /// Ran (possibly with dead letters).
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
        trailwatch::source::metrics_server::install().context("installing the metrics recorder")?;
    tokio::spawn(async move {
        if let Err(e) = trailwatch::source::metrics_server::serve(addr, handle, ready).await {
            tracing::error!(%addr, error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

/// Wall-clock seconds since the epoch.
pub fn wall_clock() -> i64 {
    trailwatch::event::now_secs()
}

/// Loads the config, printing warnings; on errors prints them all and returns the exit code.
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    match config::load(path, wall_clock()) {
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
