//! `trailwatch explain`: for each event in a file (any envelope), every fact the rules look
//! at, then the decision ([`trailwatch::tools::explain`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use trailwatch::decode::Decoder;
use trailwatch::source::replay::{self, Input, Reader};
use trailwatch::tools::explain::Explainer;

use super::{exit, load_config};
use trailwatch::clock::now_secs;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
    /// The event: a file in any form replay reads (or `-` for stdin).
    #[arg(long, short)]
    event: String,
    /// Time the exemptions are judged at: `now` (default), `event` (the event's own time,
    /// as replay does), or an RFC 3339 time.
    #[arg(long, default_value = "now")]
    at: String,
    /// Exit 0 although some records could not be read (they are still listed).
    #[arg(long)]
    allow_incomplete: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let at = match args.at.as_str() {
        "now" => Some(now_secs()),
        "event" => None,
        t => match trailwatch::config::parse_date(t) {
            Ok(secs) => Some(secs),
            Err(why) => {
                eprintln!("trailwatch: --at: {why}");
                return Ok(exit::bad_config());
            }
        },
    };
    // With [organization], the organization as it is now (the config policy if unreadable).
    let tree = match &config.organization {
        Some(o) => super::runtime()?.block_on(trailwatch::org::load(o)),
        None => None,
    };
    let policy = trailwatch::build::region_policy(&config, tree.as_ref());
    let mut ex = Explainer::new(&policy, &config, tree.as_ref(), at);
    // The same reading as replay: gzip, JSON lines or documents, any envelope.
    let reader = Reader {
        decoder: Decoder::new((&config.decode).into()),
        max_document_bytes: config.decode.max_document_bytes,
    };
    let input = if args.event == "-" {
        Input::Stdin
    } else {
        Input::File(args.event.clone().into())
    };
    let raw = replay::open(&input).with_context(|| format!("cannot read {}", args.event))?;
    reader.read(&args.event, raw, &mut ex)?;
    print!("{}", ex.text);
    if ex.events == 0 {
        return Ok(exit::nothing_read());
    }
    let shortfall = trailwatch::shortfall::Shortfall {
        dead_letters: ex.dead_letters,
        ..Default::default()
    };
    Ok(exit::after("explain", &shortfall, args.allow_incomplete))
}
