//! `trailwatch lambda`: runs under the AWS Lambda runtime (`lambda_runtime`) as the handler of
//! a Kinesis event source mapping or a Firehose data transformation. The config comes from
//! `TRAILWATCH_CONFIG` (the TOML text) or a file (`--config`, default
//! `$LAMBDA_TASK_ROOT/trailwatch.toml`: packaged with the function).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use trailwatch::build::{self, OutputChoice};
use trailwatch::clock::now_secs;
use trailwatch::source::lambda::Lambda;

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
    let rt = super::runtime()?;
    rt.block_on(async move {
        let output = OutputChoice::configured(&config, None);
        let engine = build::engine(&config, build::Options::live(output, now_secs()))
            .await
            .context("starting the sinks")?;
        let drop_non_matching = config.lambda.drop_non_matching;
        let lambda = Arc::new(tokio::sync::Mutex::new(Lambda::new(
            engine,
            drop_non_matching,
        )));
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let lambda = lambda.clone();
            async move {
                lambda
                    .lock()
                    .await
                    .handle(event.payload)
                    .await
                    .map_err(|e| lambda_runtime::Error::from(e.to_string()))
            }
        }))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
    })?;
    Ok(exit::ok())
}
