//! `trailwatch replay`: the replay road ([`trailwatch::road::replay`]); its summary on
//! stderr, its shortfall as the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use trailwatch::build::BuildError;
use trailwatch::engine::Streams;
use trailwatch::road::replay::{self, Options};
use trailwatch::road::RoadError;

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    /// Config file (TOML).
    #[arg(long, short)]
    config: PathBuf,
    /// Append one JSON line per unreadable record to this file.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// Add the original CloudTrail record to each alert (`event`).
    #[arg(long)]
    include_event: bool,
    /// Which stream to print: every alert (`siem`), what people receive after aggregation,
    /// rate limits and digests (`notify`), or both, each line tagged with `"stream"`.
    #[arg(long, value_enum, default_value_t = StreamChoice::Siem)]
    stream: StreamChoice,
    /// Send both streams through the configured `[[routes]]` and `[[sinks]]` (to rehearse a
    /// deployment end to end) instead of printing; exits once every item is delivered or
    /// spooled.
    #[arg(long)]
    deliver: bool,
    /// With `--deliver`: how long to keep delivering what was spooled (a sink that was slow
    /// or down) before exiting; what is left stays spooled for the next start.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "deliver")]
    drain_timeout: std::time::Duration,
    /// `json`: one JSON object per line, as raised; `text`: every alert on one line, grouped
    /// by rule (the headline rule first, then by severity), for a person.
    #[arg(long, value_enum, default_value_t = Format::Json, conflicts_with_all = ["stream", "deliver"])]
    format: Format,
    /// Exit 0 even when the run is incomplete (records not evaluated, inputs unread, items
    /// left spooled): it is still reported in the summary.
    #[arg(long)]
    allow_incomplete: bool,
    /// Files, directories (recursively) or `-` for stdin; plain or gzip'd.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    Json,
    Text,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StreamChoice {
    Siem,
    Notify,
    Both,
}

impl StreamChoice {
    fn streams(self) -> Streams {
        Streams {
            siem: self != StreamChoice::Notify,
            notify: self != StreamChoice::Siem,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let file = args.config.display();
    if args.deliver && !config.delivery.is_configured() {
        eprintln!("trailwatch: {file}: --deliver needs [[sinks]] and [[routes]] in the config");
        return Ok(exit::bad_config());
    }
    let rt = super::runtime()?;
    let options = Options {
        dead_letter: args.dead_letter,
        include_event: args.include_event,
        streams: args.stream.streams(),
        deliver: args.deliver,
        drain_timeout: args.drain_timeout,
        progress: true,
        text: args.format == Format::Text,
    };
    let mut summary = match replay::run(&config, &args.inputs, options, &rt) {
        Ok(s) => s,
        Err(RoadError::Build {
            source: e @ (BuildError::Sinks(_) | BuildError::NoSinks),
            ..
        }) => {
            eprintln!("trailwatch: {file}: {e}");
            return Ok(exit::bad_config());
        }
        Err(e) => return Err(e.into()),
    };
    for problem in &summary.unread {
        eprintln!("trailwatch: {problem}");
    }
    print!("{}", trailwatch::render::report::text(&summary.alerts));
    for line in summary.lines() {
        eprintln!("{line}");
    }
    if let Some(e) = summary.output_error.take() {
        return Err(anyhow::Error::new(e).context("writing output"));
    }
    if summary.nothing_read() {
        eprintln!("trailwatch replay: nothing could be read");
        return Ok(exit::nothing_read());
    }
    Ok(exit::after(
        "replay",
        &summary.shortfall(),
        args.allow_incomplete,
    ))
}
