//! The binary's commands: flags parsed, the library called (a road of [`trailwatch::road`]
//! for `run`, `serve`, `lambda`, `replay`, `backtest`, `baseline seed`; the tools `validate`, `explain`,
//! `lint`, `match`, `test`, `spool`, `health`, `org`), and its result mapped to messages and
//! an exit code. Commands do not import each other; what they share is in this file.

pub mod backtest;
pub mod baseline;
pub mod explain;
pub mod health;
pub mod lambda_cmd;
pub mod lint_cmd;
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
        ExitCode::from(shortfall.settle(command, allow_incomplete))
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
    trailwatch::metrics_server::spawn(addr, ready)
        .ok_or_else(|| anyhow::anyhow!("installing the metrics recorder"))
}

pub use trailwatch::road::stop_signal as shutdown_signal;

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
