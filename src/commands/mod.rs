//! The binary's commands. Library errors become messages and exit codes here.

pub mod explain;
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
