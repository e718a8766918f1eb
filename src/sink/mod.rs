//! Where alerts and dead letters go: JSON lines to any writer (stdout, a file), and the
//! delivery side of `[[sinks]]`: the items delivered, the durable spool.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::alert::Alert;
use crate::decode::DeadLetter;

pub mod build;
pub mod deliver;
pub mod error;
pub mod item;
pub mod spool;
pub mod target;

/// Receives alerts, one at a time, in order.
pub trait AlertSink {
    fn send(&mut self, alert: &Alert) -> io::Result<()>;
    /// Makes everything sent so far durable or delivered.
    fn flush(&mut self) -> io::Result<()>;
}

/// One JSON object per line.
pub struct JsonLines<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(w: W) -> Self {
        JsonLines {
            out: BufWriter::with_capacity(256 << 10, w),
        }
    }

    pub fn write<T: Serialize>(&mut self, item: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, item)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> AlertSink for JsonLines<W> {
    fn send(&mut self, alert: &Alert) -> io::Result<()> {
        self.write(alert)
    }
    fn flush(&mut self) -> io::Result<()> {
        JsonLines::flush(self)
    }
}

/// Counts and logs a dead letter (with its position and first bytes) for the live sources.
pub fn report_dead_letter(dead: &DeadLetter) {
    metrics::counter!("trailwatch_dead_letters_total").increment(1);
    tracing::warn!(
        input = %dead.input,
        sequence_number = dead.sequence_number.as_deref(),
        path = %dead.path,
        reason = %dead.reason,
        head_base64 = %dead.head_base64,
        "dead letter"
    );
}

/// The dead-letter file: appends one JSON line per unreadable record.
pub struct DeadLetterFile {
    out: JsonLines<File>,
}

impl DeadLetterFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(DeadLetterFile {
            out: JsonLines::new(f),
        })
    }

    pub fn write(&mut self, dead: &DeadLetter) -> io::Result<()> {
        self.out.write(dead)
    }

    /// Flushes and fsyncs: dead letters are the record of what was not processed.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.out.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_object_per_line() {
        let mut buf = Vec::new();
        {
            let mut s = JsonLines::new(&mut buf);
            s.write(&serde_json::json!({"a": 1})).unwrap();
            s.write(&serde_json::json!({"b": "x\ny"})).unwrap();
            s.flush().unwrap();
        }
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":\"x\\ny\"}\n");
    }

    #[test]
    fn dead_letter_file_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dl.jsonl");
        let pos = crate::decode::Position::new("in.json");
        for _ in 0..2 {
            let mut f = DeadLetterFile::open(&path).unwrap();
            f.write(&DeadLetter::new(&pos, b"xyz", "bad")).unwrap();
            f.sync().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["reason"], "bad");
        assert_eq!(v["head_base64"], "eHl6");
    }
}
