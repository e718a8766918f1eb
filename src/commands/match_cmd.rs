//! `trailwatch match`: grep with a filter pattern or a Sigma rule ([`trailwatch::tools::grep`]).
//! Prints each matching event (or message), exits 0 when something matched, 1 when nothing
//! did, 2 when the pattern or the rule is invalid.

use std::io::{self, Write};
use std::process::ExitCode;

use trailwatch::decode::{Decoder, Limits};
use trailwatch::filter::Pattern;
use trailwatch::shortfall::Shortfall;
use trailwatch::source::replay::{self, Reader};
use trailwatch::tools::grep::{raw_lines, Grep, What};

use super::exit;

#[derive(clap::Args)]
pub struct Args {
    /// The CloudWatch Logs filter pattern.
    #[arg(
        long,
        short,
        required_unless_present = "sigma",
        conflicts_with = "sigma"
    )]
    pattern: Option<String>,
    /// A Sigma rule file instead (every CloudTrail rule in it; an event matching any is printed).
    #[arg(long, value_name = "RULE.yml", conflicts_with = "raw")]
    sigma: Option<std::path::PathBuf>,
    /// Take each line as one log message, verbatim (term and space-delimited patterns need it).
    #[arg(long)]
    raw: bool,
    /// Exit as if complete (0 matched, 1 not) although records were not evaluated or
    /// inputs not read (still reported on stderr).
    #[arg(long)]
    allow_incomplete: bool,
    /// Inputs in any form `replay` reads (default: stdin).
    #[arg(value_name = "FILE")]
    inputs: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let what = match (&args.pattern, &args.sigma) {
        (_, Some(path)) => match sigma_rules(path) {
            Some(rules) => What::Sigma(rules),
            None => return Ok(exit::bad_config()),
        },
        (Some(p), None) => match Pattern::parse(p) {
            Ok(p) => What::Pattern(p),
            Err(e) => {
                eprintln!("trailwatch: invalid filter pattern: {e}");
                return Ok(exit::bad_config());
            }
        },
        (None, None) => {
            eprintln!("trailwatch match: give --pattern or --sigma");
            return Ok(exit::bad_config());
        }
    };
    let inputs: Vec<String> = if args.inputs.is_empty() {
        vec!["-".into()]
    } else {
        args.inputs
    };
    let stdout = io::stdout();
    let mut grep = Grep::new(&what, io::BufWriter::new(stdout.lock()));
    let (expanded, _, errors) = replay::expand(&inputs);
    let mut unread = errors.len() as u64;
    for (name, e) in &errors {
        eprintln!("trailwatch: cannot read {name}: {e}");
    }
    for input in &expanded {
        let raw = match replay::open(input) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("trailwatch: cannot read {}: {e}", input.name());
                unread += 1;
                continue;
            }
        };
        if args.raw {
            if let Err(e) = raw_lines(input, raw, &what, &mut grep) {
                eprintln!("trailwatch: error reading {}: {e}", input.name());
                unread += 1;
            }
        } else {
            let reader = Reader {
                decoder: Decoder::new(Limits::default()),
                max_document_bytes: 1 << 30,
            };
            reader.read(&input.name(), raw, &mut grep)?;
        }
        if grep.error.is_some() {
            break;
        }
    }
    grep.out.flush().ok();
    if let Some(e) = grep.error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    let shortfall = Shortfall {
        dead_letters: grep.dead_letters,
        unread_inputs: unread,
        ..Shortfall::default()
    };
    let code = exit::after("match", &shortfall, args.allow_incomplete);
    if code != exit::ok() {
        return Ok(code);
    }
    Ok(if grep.matched > 0 {
        exit::ok()
    } else {
        exit::nothing_read()
    })
}

/// The CloudTrail rules of a Sigma file; `None` (reported) when it holds none or a broken one.
fn sigma_rules(path: &std::path::Path) -> Option<Vec<trailwatch::rules::sigma::Rule>> {
    let l = trailwatch::rules::sigma::load_files(&[path.to_path_buf()], &Default::default());
    for s in &l.skipped {
        eprintln!("trailwatch: skipped: {s}");
    }
    for e in &l.errors {
        eprintln!("trailwatch: {e}");
    }
    if !l.errors.is_empty() {
        return None;
    }
    if l.rules.is_empty() {
        eprintln!(
            "trailwatch: {}: no CloudTrail rule to match with",
            path.display()
        );
        return None;
    }
    if let Some(r) = l.rules.iter().find(|r| r.correlation.is_some()) {
        eprintln!(
            "trailwatch: {}: {} ({}) is a correlation rule: it counts events over time, which `match` does not; run it with `sigma_rules` in `trailwatch replay`",
            path.display(),
            r.rule,
            r.title
        );
        return None;
    }
    Some(l.rules)
}
