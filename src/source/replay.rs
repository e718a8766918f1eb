//! The replay source: files, directories (recursively) and stdin, plain or gzip'd.
//!
//! Each input is streamed. JSON lines are decoded line by line, so one bad line costs one
//! dead letter and memory stays flat however long the input, plain or gzip'd: a line is
//! capped at `max_document_bytes` (and, inflated from gzip, at `max_decompressed_bytes`),
//! never the input as a whole. An input whose first line is not
//! a complete JSON value (a pretty-printed S3 log file or dump), or that is binary (a KPL
//! aggregate), is read whole, up to `max_document_bytes`, and decoded as one document.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::decode::{gzip, kpl, DeadLetter, Decoder, Position, Visit};

/// One input to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// A file's size now (none for stdin, or a file that cannot be read).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Stdin => None,
        }
    }
}

/// Expands arguments into inputs: `-` is stdin, directories are walked recursively in name
/// order, skipping hidden entries and CloudTrail digest files (`/CloudTrail-Digest/`).
/// Returns the inputs, the digest files skipped, and the arguments that could not be read.
pub fn expand(args: &[String]) -> (Vec<Input>, usize, Vec<(String, io::Error)>) {
    let (mut inputs, mut digests, mut errors) = (Vec::new(), 0, Vec::new());
    for arg in args {
        if arg == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let path = PathBuf::from(arg);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, &mut inputs, &mut digests, &mut errors),
            Ok(_) => inputs.push(Input::File(path)),
            Err(e) => errors.push((arg.clone(), e)),
        }
    }
    (inputs, digests, errors)
}

fn is_digest(path: &Path) -> bool {
    path.components()
        .any(|c| c.as_os_str() == "CloudTrail-Digest")
        || path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("_CloudTrail-Digest_"))
}

fn walk(
    dir: &Path,
    out: &mut Vec<Input>,
    digests: &mut usize,
    errors: &mut Vec<(String, io::Error)>,
) {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) => return errors.push((dir.display().to_string(), e)),
    };
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            if is_digest(&path) {
                *digests += count_files(&path);
                continue;
            }
            walk(&path, out, digests, errors);
        } else if is_digest(&path) {
            *digests += 1;
        } else {
            out.push(Input::File(path));
        }
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
                .sum()
        })
        .unwrap_or(0)
}

/// Opens an input as a byte stream (the caller wraps it, e.g. for progress).
pub fn open(input: &Input) -> io::Result<Box<dyn Read + Send>> {
    Ok(match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::File(p) => Box::new(File::open(p)?),
    })
}

/// Counts from reading one input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    /// Lines (JSON lines) or documents decoded.
    pub units: u64,
}

/// Reads inputs and hands every record to a decoder.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    pub decoder: Decoder,
    pub max_document_bytes: usize,
}

/// The most bytes one line or one document may take, and the config key that sets it.
#[derive(Debug, Clone, Copy)]
struct Cap {
    bytes: usize,
    key: &'static str,
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes ({})", self.bytes, self.key)
    }
}

/// What [`read_line_capped`] read.
pub enum Line {
    Eof,
    Complete,
    /// A line of this many bytes, over the cap: skipped to its end.
    TooLong(usize),
}

/// Reads up to and excluding the next `\n` into `buf`; a line over `cap` is skipped to its end.
pub fn read_line_capped(r: &mut dyn BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<Line> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (any, total > cap) {
                (false, _) => Line::Eof,
                (true, true) => Line::TooLong(total),
                (true, false) => Line::Complete,
            });
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        total += take;
        if total <= cap {
            buf.extend_from_slice(&chunk[..take]);
        }
        r.consume(take + usize::from(done));
        if done {
            return Ok(if total > cap {
                Line::TooLong(total)
            } else {
                Line::Complete
            });
        }
    }
}

/// Is this text a JSON value that stops early (a pretty-printed document's first line)?
fn is_incomplete_json(line: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<serde::de::IgnoredAny>(line),
        Err(e) if e.is_eof()
    )
}

/// A first line that is not a whole JSON value, followed by one that is: JSON lines with a
/// damaged first line, not a pretty-printed document (whose second line is never whole).
fn looks_like_json_lines_with_bad_first_line(buf: &[u8]) -> bool {
    let mut lines = buf
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    let (Some(first), Some(second)) = (lines.next(), lines.next()) else {
        return false;
    };
    let whole = |l: &[u8]| serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok();
    !whole(first) && second.starts_with(b"{") && whole(second)
}

impl Reader {
    /// Reads one input to its end. I/O errors end the input (the caller reports them);
    /// unreadable records become dead letters and reading goes on.
    pub fn read<'r>(
        &self,
        name: &str,
        raw: impl Read + 'r,
        v: &mut impl Visit,
    ) -> io::Result<ReadStats> {
        let mut stats = ReadStats::default();
        let mut pos = Position::new(name);
        if let Err(e) = self.read_inner(raw, &mut pos, v, &mut stats) {
            // Unreadable input (corrupt gzip, I/O error): a dead letter where it stopped.
            stats.units += 1;
            v.dead_letter(DeadLetter::new(&pos, &[], format!("read error: {e}")));
        }
        Ok(stats)
    }

    fn read_inner<'r>(
        &self,
        raw: impl Read + 'r,
        pos: &mut Position,
        v: &mut impl Visit,
        stats: &mut ReadStats,
    ) -> io::Result<()> {
        let mut r: Box<dyn BufRead + 'r> = Box::new(BufReader::with_capacity(256 << 10, raw));
        // The cap on one line or one document. A gzip'd input is streamed whole (its length
        // is not bounded: a line reader holds one line); the gzip-bomb guard bounds each line
        // or document it inflates to.
        let mut cap = Cap {
            bytes: self.max_document_bytes,
            key: "decode.max_document_bytes",
        };
        if gzip::is_gzip(r.fill_buf()?) {
            r = Box::new(BufReader::with_capacity(
                256 << 10,
                gzip::reader(r, usize::MAX),
            ));
            let inflated = self.decoder.limits.max_decompressed_bytes;
            if inflated < cap.bytes {
                cap = Cap {
                    bytes: inflated,
                    key: "decode.max_decompressed_bytes",
                };
            }
        }
        let head = r.fill_buf()?;
        let binary = head.starts_with(&kpl::MAGIC) || gzip::is_gzip(head);
        let mut buf = Vec::new();
        if binary {
            return self.document(r, buf, 1, cap, pos, v, stats);
        }
        let mut line_no = 0u64;
        let mut first = true;
        loop {
            line_no += 1;
            pos.line = Some(line_no);
            let line = match read_line_capped(&mut *r, &mut buf, cap.bytes) {
                Ok(line) => line,
                Err(e) => {
                    // A corrupt gzip stream (or a failing disk) ends this input here.
                    stats.units += 1;
                    v.dead_letter(DeadLetter::new(pos, &buf, format!("read error: {e}")));
                    break;
                }
            };
            match line {
                Line::Eof => break,
                Line::TooLong(n) => {
                    stats.units += 1;
                    let why = format!("line of {n} bytes exceeds {cap}");
                    v.dead_letter(DeadLetter::new(pos, &buf, why));
                    first = false;
                }
                Line::Complete => {
                    let text = buf.trim_ascii();
                    if text.is_empty() {
                        continue;
                    }
                    if first && text.first() != Some(&b'{') && text.first() != Some(&b'[') {
                        // Not JSON lines: decode the input as one document (it will say why).
                        buf.push(b'\n');
                        return self.document(r, buf, line_no, cap, pos, v, stats);
                    }
                    if first && is_incomplete_json(text) {
                        buf.push(b'\n');
                        return self.document(r, buf, line_no, cap, pos, v, stats);
                    }
                    first = false;
                    stats.units += 1;
                    self.decoder.decode(text, pos, v);
                }
            }
        }
        Ok(())
    }

    /// Reads the rest of the input into `buf` (capped) and decodes the JSON values in it.
    #[allow(clippy::too_many_arguments)]
    fn document(
        &self,
        mut r: Box<dyn BufRead + '_>,
        mut buf: Vec<u8>,
        first_line: u64,
        cap: Cap,
        pos: &mut Position,
        v: &mut impl Visit,
        stats: &mut ReadStats,
    ) -> io::Result<()> {
        pos.line = Some(first_line);
        let room = cap.bytes.saturating_add(1).saturating_sub(buf.len()) as u64;
        (&mut r).take(room).read_to_end(&mut buf)?;
        if buf.len() > cap.bytes {
            stats.units += 1;
            let why = format!("document exceeds {cap}");
            v.dead_letter(DeadLetter::new(pos, &buf, why));
            return Ok(());
        }
        if looks_like_json_lines_with_bad_first_line(&buf) {
            // JSON lines whose first line is damaged: one dead letter, then the rest.
            for (i, line) in buf.split(|&b| b == b'\n').enumerate() {
                let line = line.trim_ascii();
                if !line.is_empty() {
                    pos.line = Some(first_line + i as u64);
                    stats.units += 1;
                    self.decoder.decode(line, pos, v);
                }
            }
            return Ok(());
        }
        // The decoder reads concatenated values itself (each one's path says `values[n]`).
        stats.units += 1;
        self.decoder.decode(&buf, pos, v);
        Ok(())
    }
}
