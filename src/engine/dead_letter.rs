//! Dead letters, reported once for every road: counted (`trailwatch_dead_letters_total`),
//! logged with their position and reason, and appended to the dead-letter file when one is
//! configured.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::decode::DeadLetter;

/// Counts and logs a dead letter with its position, its reason and its first bytes.
pub fn report(dead: &DeadLetter) {
    metrics::counter!(crate::metric::DEAD_LETTERS_TOTAL).increment(1);
    tracing::warn!(
        input = %dead.input,
        line = dead.line,
        path = %dead.path,
        sequence_number = dead.sequence_number.as_deref(),
        reason = %dead.reason,
        head_base64 = %dead.head_base64,
        "dead letter"
    );
}

/// The dead-letter file: one JSON line per unreadable record, appended.
pub struct DeadLetterFile {
    out: BufWriter<File>,
}

impl DeadLetterFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(DeadLetterFile {
            out: BufWriter::with_capacity(64 << 10, f),
        })
    }

    pub fn write(&mut self, dead: &DeadLetter) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, dead)?;
        self.out.write_all(b"\n")
    }

    /// Flushes and fsyncs: dead letters are the record of what was not processed.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_appends_one_json_line_per_dead_letter() {
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
