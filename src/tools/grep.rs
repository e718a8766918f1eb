//! `trailwatch match`: grep with a filter pattern or a Sigma rule: every decoded event (or,
//! with `--raw`, every line as a log message) that matches is written out.

use std::io::{self, BufReader, Write};

use crate::decode::{DeadLetter, Limits, Position, Visit};
use crate::event::Event;
use crate::filter::Pattern;
use crate::source::replay::Input;

/// What to grep with.
pub enum What {
    Pattern(Pattern),
    Sigma(Vec<crate::rules::sigma::Rule>),
}

/// Writes what matches to `out`, counting matches and unreadable records; stops writing at
/// the first output error (kept in `error`).
pub struct Grep<'p, W: Write> {
    what: &'p What,
    pub out: W,
    pub matched: u64,
    pub dead_letters: u64,
    pub error: Option<io::Error>,
}

impl<'p, W: Write> Grep<'p, W> {
    pub fn new(what: &'p What, out: W) -> Self {
        Grep {
            what,
            out,
            matched: 0,
            dead_letters: 0,
            error: None,
        }
    }

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

/// `--raw`: each line verbatim, as CloudWatch Logs sees a message (a gzip'd file is unpacked
/// as a stream); a line over `max_document_bytes` is a dead letter, not a reason to stop.
pub fn raw_lines<W: Write>(
    input: &Input,
    raw: Box<dyn io::Read + Send>,
    what: &What,
    grep: &mut Grep<'_, W>,
) -> io::Result<()> {
    use crate::source::replay::{read_line_capped, Line};
    let reader: Box<dyn io::Read> = match input {
        Input::File(p) if p.extension().is_some_and(|e| e == "gz") => {
            Box::new(crate::decode::gzip::reader(raw, usize::MAX))
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
