//! `trailwatch run`: the Kinesis road ([`trailwatch::road::kinesis`]) until SIGTERM or SIGINT
//! (stop polling, drain, flush, checkpoint, exit 0).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use trailwatch::road::kinesis::{self, Options};

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
    /// Append the SIEM feed to this file instead of stdout. After a crash, the alerts written
    /// since the last checkpoint are read back from it, so none is written twice.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Append one JSON line per unreadable record to this file.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// Serve Prometheus metrics on /metrics, and /healthz and /readyz, at this address.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Longest a graceful shutdown may take before exiting anyway.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    shutdown_deadline: Duration,
    /// This worker's name in the lease table (`[checkpoint] kind = "dynamodb"`); default
    /// host:pid:random.
    #[arg(long, value_name = "ID")]
    worker_id: Option<String>,
    /// Forget this shard's position in the state file before starting (it is then read from
    /// `start`, or from its beginning for a child of a reshard): for a position Kinesis
    /// refuses. Repeat for several shards.
    #[arg(long, value_name = "SHARD_ID")]
    reset_shard: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let Some(source) = config.kinesis.clone() else {
        eprintln!(
            "trailwatch: {}: no [source.kinesis] table: nothing to run",
            args.config.display()
        );
        return Ok(exit::bad_config());
    };
    if config.delivery.is_configured() && args.output.is_some() {
        eprintln!(
            "trailwatch: --output is for runs without [[sinks]]; configure a file sink instead"
        );
        return Ok(exit::bad_config());
    }
    let rt = super::runtime()?;
    rt.block_on(async move {
        // First: a SIGTERM during start-up (reading the organization, say) is a clean stop too.
        let stop = super::shutdown_signal();
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(addr) = args.metrics_addr {
            super::serve_metrics(addr, ready.clone())?;
        }
        let options = Options {
            config_file: args.config,
            output: args.output,
            dead_letter: args.dead_letter,
            shutdown_deadline: args.shutdown_deadline,
            worker_id: args.worker_id,
            reset_shard: args.reset_shard,
            ready,
        };
        kinesis::run(config, source, options, stop).await?;
        Ok(exit::ok())
    })
}
