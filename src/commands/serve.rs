//! `trailwatch serve`: the Firehose road ([`trailwatch::road::firehose`]) until SIGTERM or
//! SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use trailwatch::build::BuildError;
use trailwatch::road::{firehose, RoadError};
use trailwatch::source::firehose::Keys;

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
    /// Serve Prometheus metrics on /metrics, and /healthz and /readyz, at this address (a
    /// separate listener).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Append one JSON line per unreadable record to this file.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// Longest a graceful shutdown may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    shutdown_deadline: Duration,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let file = args.config.display().to_string();
    let Some(source) = config.firehose.clone() else {
        eprintln!("trailwatch: {file}: no [source.firehose] table: nothing to serve");
        return Ok(exit::bad_config());
    };
    let keys = match source.access_keys.as_ref().map(|k| k.resolve()) {
        Some(Ok(text)) => Keys::parse(&text),
        Some(Err(why)) => {
            eprintln!("trailwatch: {file}: {why}");
            return Ok(exit::bad_config());
        }
        None => return Ok(exit::bad_config()),
    };
    if keys.is_empty() {
        eprintln!("trailwatch: {file}: no access key configured");
        return Ok(exit::bad_config());
    }
    let rt = super::runtime()?;
    rt.block_on(async move {
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(addr) = args.metrics_addr {
            super::serve_metrics(addr, ready.clone())?;
        }
        // A SIGTERM during start-up (reading the organization, say) is a clean stop too.
        let stop = super::shutdown_signal();
        let options = firehose::Options {
            config_file: args.config,
            dead_letter: args.dead_letter,
            shutdown_deadline: args.shutdown_deadline,
            ready,
        };
        match firehose::run(config, source, keys, options, stop).await {
            Ok(()) => Ok(exit::ok()),
            Err(RoadError::Build {
                source: e @ BuildError::Sinks(_),
                ..
            }) => {
                eprintln!("trailwatch: {file}: {e}");
                Ok(exit::bad_config())
            }
            Err(e) => Err(e.into()),
        }
    })
}
