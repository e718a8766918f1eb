//! `trailwatch match`: grep with a filter pattern or a Sigma rule. Prints each matching event
//! (or message), exits 0 when something matched, 1 when nothing did, 2 when the pattern or the
//! rule is invalid.

use std::io::{self, BufReader, Write};
use std::process::ExitCode;

use trailwatch::decode::{DeadLetter, Decoder, Limits, Position, Visit};
use trailwatch::event::Event;
use trailwatch::filter::Pattern;
use trailwatch::shortfall::Shortfall;
use trailwatch::source::replay::{self, Input, Reader};

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

/// What to grep with.
enum What {
    Pattern(Pattern),
    Sigma(Vec<trailwatch::rules::sigma::Rule>),
}

struct Grep<'p, W: Write> {
    what: &'p What,
    out: W,
    matched: u64,
    dead_letters: u64,
    error: Option<io::Error>,
}

impl<W: Write> Grep<'_, W> {
    fn emit(&mut self, text: &str) {
        self.matched += 1;
        if self.error.is_none() {
            if let Err(e) = writeln!(self.out, "{text}") {
                self.error = Some(e);
            }
        }
    }
}

impl<W: Write> Visit for Grep<'_, W> {
    fn event(&mut self, ev: Event<'_>, _pos: &Position) {
        let hit = match self.what {
            What::Pattern(Pattern::Json(p)) => {
                serde_json::from_str(ev.raw).is_ok_and(|v| p.matches_value(&v))
            }
            What::Pattern(other) => other.matches_text(ev.raw),
            What::Sigma(rules) => serde_json::from_str::<serde_json::Value>(ev.raw)
                .is_ok_and(|v| rules.iter().any(|r| r.matches(&v))),
        };
        if hit {
            self.emit(ev.raw);
        }
    }
    fn dead_letter(&mut self, dead: DeadLetter) {
        self.dead_letters += 1;
        tracing::warn!(input = %dead.input, line = dead.line, path = %dead.path, reason = %dead.reason, "unreadable record");
    }
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
    let mut grep = Grep {
        what: &what,
        out: io::BufWriter::new(stdout.lock()),
        matched: 0,
        dead_letters: 0,
        error: None,
    };
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

/// `--raw`: each line verbatim, as CloudWatch Logs sees a message (a gzip'd file is unpacked
/// as a stream); a line over `max_document_bytes` is a dead letter, not a reason to stop.
fn raw_lines<W: Write>(
    input: &Input,
    raw: Box<dyn io::Read + Send>,
    what: &What,
    grep: &mut Grep<'_, W>,
) -> io::Result<()> {
    use trailwatch::source::replay::{read_line_capped, Line};
    let reader: Box<dyn io::Read> = match input {
        Input::File(p) if p.extension().is_some_and(|e| e == "gz") => {
            Box::new(trailwatch::decode::gzip::reader(raw, usize::MAX))
        }
        _ => raw,
    };
    let cap = Limits::default().max_decompressed_bytes;
    let mut r = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        match read_line_capped(&mut r, &mut buf, cap)? {
            Line::Eof => return Ok(()),
            Line::TooLong(n) => {
                grep.dead_letters += 1;
                eprintln!(
                    "trailwatch: {}:{line_no}: line of {n} bytes exceeds {cap} bytes: not matched",
                    input.name()
                );
            }
            Line::Complete => {
                let Ok(line) = std::str::from_utf8(&buf) else {
                    grep.dead_letters += 1;
                    eprintln!(
                        "trailwatch: {}:{line_no}: not UTF-8: not matched",
                        input.name()
                    );
                    continue;
                };
                let line = line.strip_suffix('\r').unwrap_or(line);
                if matches!(what, What::Pattern(p) if p.matches_message(line)) {
                    grep.emit(line);
                }
            }
        }
    }
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
