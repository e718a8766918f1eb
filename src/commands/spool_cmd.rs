//! `trailwatch spool status|replay|purge --config F`: what the sinks' spools hold, deliver it
//! now, or drop it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use trailwatch::config::Config;
use trailwatch::sink::spool::Spool;

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Per sink: items waiting, the oldest one's age, bytes on disk, corrupt tails.
    Status {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Starts the sinks and waits until their spools are delivered (or the timeout).
    Replay {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Drops what a sink's spool holds (never delivered). Name the sink, or `--all`.
    Purge {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, conflicts_with = "all")]
        sink: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

fn spool_dir(config: &Config, sink: &str) -> PathBuf {
    trailwatch::sink::spool::dir(&config.delivery.settings.state_dir, sink)
}

/// Items waiting in every sink's spool.
fn depth(config: &Config) -> anyhow::Result<usize> {
    trailwatch::sink::build::spooled(&config.delivery).context("reading the spools")
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = match &args.action {
        Action::Status { config }
        | Action::Replay { config, .. }
        | Action::Purge { config, .. } => config.clone(),
    };
    let config = match load_config(&path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if !config.delivery.is_configured() {
        eprintln!(
            "trailwatch: {}: no [[sinks]]: there is no spool",
            path.display()
        );
        return Ok(exit::bad_config());
    }
    match args.action {
        Action::Status { .. } => {
            println!(
                "{:<24} {:>8} {:>12} {:>12}  corrupt",
                "sink", "items", "oldest", "bytes"
            );
            let now = trailwatch::clock::now_millis();
            for s in &config.delivery.sinks {
                let sp = Spool::inspect(&spool_dir(&config, &s.name))
                    .with_context(|| format!("reading the spool of {}", s.name))?;
                let age = sp
                    .oldest_millis()
                    .map(|t| {
                        humantime::format_duration(Duration::from_secs(
                            now.saturating_sub(t) / 1000,
                        ))
                        .to_string()
                    })
                    .unwrap_or_else(|| "-".into());
                let mut corrupt: Vec<String> = sp
                    .corrupt
                    .iter()
                    .map(|c| {
                        format!(
                            "{} at {}: {} ({} bytes skipped, copied to {})",
                            c.segment.display(),
                            c.offset,
                            c.reason,
                            c.bytes,
                            c.quarantine.display()
                        )
                    })
                    .collect();
                if let Some(why) = &sp.cursor_problem {
                    corrupt.push(format!("cursor: {why} (read from the oldest segment)"));
                }
                println!(
                    "{:<24} {:>8} {:>12} {:>12}  {}",
                    s.name,
                    sp.len(),
                    age,
                    sp.disk_bytes(),
                    if corrupt.is_empty() {
                        "-".to_string()
                    } else {
                        corrupt.join("; ")
                    }
                );
            }
            Ok(exit::ok())
        }
        Action::Replay { timeout, .. } => {
            let before = depth(&config)?;
            let rt = super::runtime()?;
            let left = rt.block_on(async {
                let dispatcher =
                    trailwatch::sink::build::dispatcher(&config.delivery, &config.policy.ous)
                        .await?
                        .context("no sinks")?;
                let deadline = Instant::now() + timeout;
                let mut left = depth(&config)?;
                while left > 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    left = depth(&config)?;
                }
                dispatcher.close().await;
                anyhow::Ok(left)
            })?;
            eprintln!(
                "trailwatch spool replay: {} of {before} items delivered; {left} still spooled",
                before.saturating_sub(left)
            );
            Ok(if left == 0 {
                exit::ok()
            } else {
                exit::nothing_read()
            })
        }
        Action::Purge { sink, all, .. } => {
            if sink.is_none() && !all {
                eprintln!("trailwatch spool purge: name a sink with --sink NAME, or pass --all");
                return Ok(exit::bad_config());
            }
            let mut dropped = 0;
            for s in &config.delivery.sinks {
                if sink.as_ref().is_some_and(|n| *n != s.name) {
                    continue;
                }
                let mut sp = Spool::open(
                    &spool_dir(&config, &s.name),
                    config.delivery.settings.spool_segment_bytes,
                )
                .with_context(|| format!("opening the spool of {}", s.name))?;
                let n = sp.purge()?;
                eprintln!("trailwatch spool purge: {}: {n} items dropped", s.name);
                dropped += n;
            }
            if let Some(n) = &sink {
                if !config.delivery.sinks.iter().any(|s| s.name == *n) {
                    eprintln!("trailwatch spool purge: no sink is named {n:?}");
                    return Ok(exit::bad_config());
                }
            }
            let _ = dropped;
            Ok(exit::ok())
        }
    }
}
