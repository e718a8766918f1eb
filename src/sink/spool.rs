//! The durable spool of one sink: an append-only, checksummed, fsync'd segment log, drained in
//! order once the sink is back.
//!
//! Directory `<state_dir>/spool/<sink>/`: segments `00000000000000000001.seg`, … and `cursor`
//! (JSON: the segment and byte offset of the first record not yet delivered, written
//! atomically). A record is `len: u32 LE | crc32(ts ‖ payload): u32 LE | ts_millis: u64 LE |
//! payload`. On open every segment from the cursor on is scanned: a record that is truncated,
//! implausibly long or fails its checksum ends that segment's readable part; it is reported
//! (`corrupt`), skipped, and the last segment is cut there so appends continue cleanly.
//! Segments wholly before the cursor are deleted.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decode::inflate::crc32;

/// The one place that says where a sink's spool lives: `<state_dir>/spool/<sink>/`.
pub fn dir(state_dir: &Path, sink: &str) -> PathBuf {
    state_dir.join("spool").join(sink)
}

/// Where a sink's rejected items go: `<state_dir>/rejected/<sink>.jsonl`.
pub fn rejected_file(state_dir: &Path, sink: &str) -> PathBuf {
    state_dir.join("rejected").join(format!("{sink}.jsonl"))
}

const HEADER: usize = 16;
/// A larger length is corruption, not an alert.
const MAX_RECORD: u32 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    segment: u64,
    offset: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    segment: u64,
    offset: u64,
    len: u32,
    ts_millis: u64,
}

/// What opening found wrong (reported by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub segment: PathBuf,
    pub offset: u64,
    pub reason: String,
    /// Bytes skipped from there to the end of the segment.
    pub skipped_bytes: u64,
}

pub struct Spool {
    dir: PathBuf,
    segment_bytes: u64,
    entries: VecDeque<Entry>,
    /// The segment appended to, and its length.
    head: u64,
    head_len: u64,
    writer: Option<File>,
    pub corrupt: Vec<Corruption>,
}

fn seg_name(n: u64) -> String {
    format!("{n:020}.seg")
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, scanning what is left to deliver; deletes
    /// delivered segments and cuts a corrupt tail.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        Spool::scan_dir(dir, segment_bytes, true)
    }

    /// Reads what is left to deliver without changing anything (`spool status`); an absent
    /// directory is an empty spool.
    pub fn inspect(dir: &Path) -> io::Result<Spool> {
        if !dir.exists() {
            return Ok(Spool {
                dir: dir.to_path_buf(),
                segment_bytes: 4096,
                entries: VecDeque::new(),
                head: 1,
                head_len: 0,
                writer: None,
                corrupt: Vec::new(),
            });
        }
        Spool::scan_dir(dir, 4096, false)
    }

    fn scan_dir(dir: &Path, segment_bytes: u64, repair: bool) -> io::Result<Spool> {
        let cursor: Cursor = match fs::read(dir.join("cursor")) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Cursor {
                segment: 0,
                offset: 0,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Cursor {
                segment: 0,
                offset: 0,
            },
            Err(e) => return Err(e),
        };
        let mut segments: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        segments.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(4096),
            entries: VecDeque::new(),
            head: segments.last().copied().unwrap_or(1).max(cursor.segment),
            head_len: 0,
            writer: None,
            corrupt: Vec::new(),
        };
        for &seg in &segments {
            let path = dir.join(seg_name(seg));
            if seg < cursor.segment {
                if repair {
                    fs::remove_file(&path)?;
                }
                continue;
            }
            let from = if seg == cursor.segment {
                cursor.offset
            } else {
                0
            };
            let good_end = spool.scan(seg, &path, from)?;
            if seg == spool.head && repair {
                let len = fs::metadata(&path)?.len();
                if good_end < len {
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(good_end)?;
                }
                spool.head_len = good_end;
            }
        }
        Ok(spool)
    }

    /// Reads the records of one segment from `from`; returns where the readable part ends.
    fn scan(&mut self, seg: u64, path: &Path, from: u64) -> io::Result<u64> {
        let bytes = fs::read(path)?;
        let mut off = from.min(bytes.len() as u64) as usize;
        while off < bytes.len() {
            let bad = |reason: &str| Corruption {
                segment: path.to_path_buf(),
                offset: off as u64,
                reason: reason.to_string(),
                skipped_bytes: (bytes.len() - off) as u64,
            };
            if bytes.len() - off < HEADER {
                self.corrupt.push(bad("truncated record header"));
                return Ok(off as u64);
            }
            let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap_or([0; 4]));
            let crc = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap_or([0; 4]));
            if len > MAX_RECORD {
                self.corrupt.push(bad("implausible record length"));
                return Ok(off as u64);
            }
            let end = off + HEADER + len as usize;
            if end > bytes.len() {
                self.corrupt.push(bad("truncated record"));
                return Ok(off as u64);
            }
            if crc32(&bytes[off + 8..end]) != crc {
                self.corrupt.push(bad("checksum mismatch"));
                return Ok(off as u64);
            }
            let ts = u64::from_le_bytes(bytes[off + 8..off + 16].try_into().unwrap_or([0; 8]));
            self.entries.push_back(Entry {
                segment: seg,
                offset: off as u64,
                len,
                ts_millis: ts,
            });
            off = end;
        }
        Ok(off as u64)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the oldest undelivered record was spooled (ms since the epoch).
    pub fn oldest_millis(&self) -> Option<u64> {
        self.entries.front().map(|e| e.ts_millis)
    }

    /// Appends records and fsyncs them: once this returns they survive a crash.
    pub fn append(&mut self, payloads: &[Vec<u8>], now_millis: u64) -> io::Result<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() || self.head_len >= self.segment_bytes {
            if self.writer.is_some() {
                self.head += 1;
                self.head_len = 0;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(seg_name(self.head)))?;
            File::open(&self.dir)?.sync_all()?;
            self.head_len = f.metadata()?.len();
            self.writer = Some(f);
        }
        let mut buf = Vec::new();
        let mut added = Vec::with_capacity(payloads.len());
        for p in payloads {
            let len = u32::try_from(p.len())
                .ok()
                .filter(|l| *l <= MAX_RECORD)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
            let start = buf.len();
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&[0; 4]);
            buf.extend_from_slice(&now_millis.to_le_bytes());
            buf.extend_from_slice(p);
            let crc = crc32(&buf[start + 8..]);
            buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            added.push(Entry {
                segment: self.head,
                offset: self.head_len + start as u64,
                len,
                ts_millis: now_millis,
            });
        }
        let Some(w) = self.writer.as_mut() else {
            return Err(io::Error::other("spool segment not open"));
        };
        w.write_all(&buf)?;
        w.sync_data()?;
        self.head_len += buf.len() as u64;
        self.entries.extend(added);
        Ok(())
    }

    /// The first `n` undelivered records, oldest first.
    pub fn peek(&self, n: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut open: Option<(u64, File)> = None;
        for e in self.entries.iter().take(n) {
            if open.as_ref().is_none_or(|(s, _)| *s != e.segment) {
                open = Some((e.segment, File::open(self.dir.join(seg_name(e.segment)))?));
            }
            let Some((_, f)) = open.as_mut() else { break };
            f.seek(SeekFrom::Start(e.offset + HEADER as u64))?;
            let mut p = vec![0; e.len as usize];
            f.read_exact(&mut p)?;
            out.push(p);
        }
        Ok(out)
    }

    /// Marks the first `n` records delivered: moves the cursor (atomically) and deletes
    /// segments left wholly behind it.
    pub fn commit(&mut self, n: usize) -> io::Result<()> {
        let n = n.min(self.entries.len());
        if n == 0 {
            return Ok(());
        }
        let last = self.entries[n - 1];
        self.entries.drain(..n);
        let cursor = match self.entries.front() {
            Some(e) => Cursor {
                segment: e.segment,
                offset: e.offset,
            },
            None => Cursor {
                segment: last.segment,
                offset: last.offset + HEADER as u64 + u64::from(last.len),
            },
        };
        let text = serde_json::to_vec(&cursor).map_err(io::Error::other)?;
        crate::atomic_file::write(&self.dir.join("cursor"), &text)?;
        for seg in self.segments()? {
            if seg < cursor.segment {
                fs::remove_file(self.dir.join(seg_name(seg)))?;
            }
        }
        Ok(())
    }

    /// Drops every undelivered record (operator's `spool purge`); returns how many.
    pub fn purge(&mut self) -> io::Result<usize> {
        let n = self.entries.len();
        self.commit(n)?;
        Ok(n)
    }

    fn segments(&self) -> io::Result<Vec<u64>> {
        Ok(fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .into_string()
                    .ok()?
                    .strip_suffix(".seg")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// Bytes on disk (all segments).
    pub fn disk_bytes(&self) -> u64 {
        self.segments()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| fs::metadata(self.dir.join(seg_name(*s))).ok())
            .map(|m| m.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        range.map(|i| format!("alert-{i}").into_bytes()).collect()
    }

    #[test]
    fn appended_records_survive_reopen_in_order_and_commit_moves_past_them() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 4096).unwrap();
        assert!(s.is_empty());
        s.append(&recs(0..3), 1000).unwrap();
        s.append(&recs(3..5), 2000).unwrap();
        drop(s);
        let mut s = Spool::open(d.path(), 4096).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s.oldest_millis(), Some(1000));
        assert_eq!(s.peek(2).unwrap(), recs(0..2));
        s.commit(2).unwrap();
        drop(s);
        let mut s = Spool::open(d.path(), 4096).unwrap();
        assert_eq!(s.peek(10).unwrap(), recs(2..5));
        s.commit(3).unwrap();
        assert!(s.is_empty());
        s.append(&recs(5..6), 3000).unwrap();
        drop(s);
        let s = Spool::open(d.path(), 4096).unwrap();
        assert_eq!(s.peek(10).unwrap(), recs(5..6));
        assert!(s.corrupt.is_empty());
    }

    #[test]
    fn segments_roll_and_delivered_ones_are_deleted() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 4096).unwrap();
        let big: Vec<Vec<u8>> = (0..40).map(|i| vec![b'a' + (i % 26) as u8; 500]).collect();
        for chunk in big.chunks(4) {
            s.append(chunk, 1).unwrap();
        }
        let segs = s.segments().unwrap().len();
        assert!(segs >= 4, "{segs} segments");
        s.commit(30).unwrap();
        assert!(s.segments().unwrap().len() < segs);
        drop(s);
        let s = Spool::open(d.path(), 4096).unwrap();
        assert_eq!(s.peek(100).unwrap(), big[30..].to_vec());
    }

    #[test]
    fn a_corrupt_or_torn_tail_is_reported_skipped_and_cut() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        s.append(&recs(0..4), 1).unwrap();
        drop(s);
        let seg = d.path().join(seg_name(1));
        let mut bytes = fs::read(&seg).unwrap();
        let good = bytes.len();
        // Flip a payload byte of the third record and tear a fifth one.
        let third = 2 * (HEADER + "alert-0".len()) + HEADER;
        bytes[third] ^= 0xff;
        bytes.extend_from_slice(&[7, 0, 0]);
        fs::write(&seg, &bytes).unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        assert_eq!(s.peek(10).unwrap(), recs(0..2));
        assert_eq!(s.corrupt.len(), 1);
        assert_eq!(s.corrupt[0].reason, "checksum mismatch");
        assert_eq!(
            s.corrupt[0].skipped_bytes as usize,
            good + 3 - third + HEADER
        );
        // Appends continue after the good part.
        s.append(&recs(9..10), 2).unwrap();
        drop(s);
        let s = Spool::open(d.path(), 1 << 20).unwrap();
        assert!(s.corrupt.is_empty(), "{:?}", s.corrupt);
        let mut want = recs(0..2);
        want.extend(recs(9..10));
        assert_eq!(s.peek(10).unwrap(), want);
    }

    #[test]
    fn garbage_never_panics() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join(seg_name(1)),
            b"\xff\xff\xff\xffnot a spool, not at all",
        )
        .unwrap();
        fs::write(d.path().join("cursor"), b"{broken").unwrap();
        let mut s = Spool::open(d.path(), 4096).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.corrupt[0].reason, "implausible record length");
        s.append(&recs(0..1), 1).unwrap();
        assert_eq!(s.peek(1).unwrap(), recs(0..1));
        assert_eq!(s.purge().unwrap(), 1);
        assert!(s.is_empty());
    }
}
