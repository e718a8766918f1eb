//! `trailwatch lambda`: the Lambda road ([`trailwatch::road::lambda`]) under the AWS Lambda
//! runtime, as the handler of a Kinesis event source mapping or a Firehose data
//! transformation. The config comes from `TRAILWATCH_CONFIG` (the TOML text) or a file
//! (`--config`, default `$LAMBDA_TASK_ROOT/trailwatch.toml`: packaged with the function).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    /// Config file; `TRAILWATCH_CONFIG` (TOML text) takes precedence.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = if std::env::var_os("TRAILWATCH_CONFIG").is_some() {
        PathBuf::from("env:TRAILWATCH_CONFIG")
    } else {
        args.config.unwrap_or_else(|| {
            PathBuf::from(std::env::var("LAMBDA_TASK_ROOT").unwrap_or_else(|_| ".".into()))
                .join("trailwatch.toml")
        })
    };
    let config = match load_config(&path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    super::runtime()?.block_on(trailwatch::road::lambda::run(&config))?;
    Ok(exit::ok())
}
