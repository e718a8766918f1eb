//! The durable spool of one sink: an append-only, checksummed, fsync'd segment log, drained in
//! order once the sink is back.
//!
//! Directory `<state_dir>/spool/<sink>/`: segments `00000000000000000001.seg`, … (records
//! framed by [`frame`]: a marker, a checksum over length, time and payload), `cursor` (the
//! segment and offset of the first record not yet delivered, with its own checksum, written
//! atomically) and `quarantine/` (damaged bytes, copied out, never cut away).
//!
//! - An append is all or nothing: a failed write (a full disk) truncates what it wrote, so the
//!   segment is as it was, and the caller gets the error (nothing is acknowledged). Segments
//!   roll at `segment_bytes`, inside a batch too.
//! - On open every segment from the cursor on is scanned. Damage costs only the records it
//!   touches: the reader finds the next record by its marker, copies the bad bytes to
//!   `quarantine/<segment>-<offset>.bad` and reports them ([`Corruption`]). A head segment that
//!   ends in damage is sealed: appends go to a new one.
//! - A cursor that fails its checksum is reported ([`Spool::cursor_problem`]) and reading
//!   starts at the oldest segment; the sink's delivered-ids journal keeps that from repeating.
//!   Segments wholly before a good cursor are deleted.

pub mod frame;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decode::inflate::crc32;
use frame::Frame;

/// The one place that says where a sink's spool lives: `<state_dir>/spool/<sink>/`.
pub fn dir(state_dir: &Path, sink: &str) -> PathBuf {
    state_dir.join("spool").join(sink)
}

/// Where a sink's rejected items go: `<state_dir>/rejected/<sink>.jsonl`.
pub fn rejected_file(state_dir: &Path, sink: &str) -> PathBuf {
    state_dir.join("rejected").join(format!("{sink}.jsonl"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    segment: u64,
    offset: u64,
    /// crc32 of `"<segment>:<offset>"`; absent in cursors written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<u32>,
}

impl Cursor {
    const START: Cursor = Cursor {
        segment: 0,
        offset: 0,
        check: None,
    };

    fn at(segment: u64, offset: u64) -> Cursor {
        Cursor {
            segment,
            offset,
            check: Some(crc32(format!("{segment}:{offset}").as_bytes())),
        }
    }

    /// Reads the cursor file: `Err` says why it cannot be trusted.
    fn read(path: &Path) -> io::Result<Result<Cursor, String>> {
        // A file trailwatch wrote itself (the cursor).
        #[allow(clippy::disallowed_methods)]
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(Cursor::START)),
            Err(e) => return Err(e),
        };
        Ok(match serde_json::from_slice::<Cursor>(&bytes) {
            Err(e) => Err(format!("unreadable: {e}")),
            Ok(c)
                if c.check
                    .is_some_and(|k| Cursor::at(c.segment, c.offset).check != Some(k)) =>
            {
                Err("checksum mismatch".into())
            }
            Ok(c) => Ok(c),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    segment: u64,
    frame: Frame,
}

/// Damaged bytes found on open (reported by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub segment: PathBuf,
    pub offset: u64,
    pub reason: String,
    /// Bytes from `offset` to the next readable record (or the end of the segment).
    pub bytes: u64,
    /// Where they were copied (on open; `inspect` copies nothing).
    pub quarantine: PathBuf,
    /// False when an earlier open already quarantined (and reported) them.
    pub new: bool,
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
    /// Why the cursor was not trusted (reading started at the oldest segment).
    pub cursor_problem: Option<String>,
    /// Test-only write-failing layer: bytes that may still be written before ENOSPC.
    #[cfg(test)]
    pub(crate) fail_after: Option<u64>,
}

/// What [`Spool::ensure_linked`] did after finding the spool removed under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relinked {
    /// Records read back through the open head segment and written anew.
    pub recovered: u64,
    /// Records of removed segments that nothing could read back.
    pub lost: u64,
}

/// Whether the open file `f` is the file at `path` (same device and inode).
fn same_file(f: &File, path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = f.metadata()?;
        Ok(match fs::metadata(path) {
            Ok(at) => at.dev() == open.dev() && at.ino() == open.ino(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = f;
        Ok(path.exists())
    }
}

fn seg_name(n: u64) -> String {
    format!("{n:020}.seg")
}

impl Spool {
    fn empty(dir: &Path, segment_bytes: u64) -> Spool {
        Spool {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(4096),
            entries: VecDeque::new(),
            head: 1,
            head_len: 0,
            writer: None,
            corrupt: Vec::new(),
            cursor_problem: None,
            #[cfg(test)]
            fail_after: None,
        }
    }

    /// Opens (or creates) the spool in `dir`, scanning what is left to deliver; deletes
    /// delivered segments and quarantines damage.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        Spool::scan_dir(dir, segment_bytes, true)
    }

    /// Reads what is left to deliver without changing anything (`spool status`); an absent
    /// directory is an empty spool.
    pub fn inspect(dir: &Path) -> io::Result<Spool> {
        if !dir.exists() {
            return Ok(Spool::empty(dir, 4096));
        }
        Spool::scan_dir(dir, 4096, false)
    }

    fn scan_dir(dir: &Path, segment_bytes: u64, repair: bool) -> io::Result<Spool> {
        let mut spool = Spool::empty(dir, segment_bytes);
        let cursor = match Cursor::read(&dir.join("cursor"))? {
            Ok(c) => c,
            Err(why) => {
                spool.cursor_problem = Some(why);
                Cursor::START
            }
        };
        let mut segments = spool.segments()?;
        segments.sort_unstable();
        spool.head = segments.last().copied().unwrap_or(1).max(cursor.segment);
        let mut sealed = false;
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
            let (len, clean_end) = spool.scan(seg, &path, from, repair)?;
            if seg == spool.head {
                spool.head_len = len;
                sealed = !clean_end;
            }
        }
        if sealed {
            spool.head += 1;
            spool.head_len = 0;
        }
        Ok(spool)
    }

    /// Reads the records of one segment from `from`, resynchronising after damage. Returns
    /// the segment's length and whether it ends in a readable, current-format record.
    fn scan(&mut self, seg: u64, path: &Path, from: u64, repair: bool) -> io::Result<(u64, bool)> {
        // A segment trailwatch wrote itself (bounded by the segment size).
        #[allow(clippy::disallowed_methods)]
        let bytes = fs::read(path)?;
        let legacy = frame::is_legacy(&bytes);
        // Appending here would put records where the cursor says they were delivered.
        let cut_before_cursor = from > bytes.len() as u64;
        if cut_before_cursor {
            self.damaged(
                path,
                seg,
                bytes.len(),
                &[],
                "segment ends before the cursor",
                repair,
            );
        }
        let mut off = from.min(bytes.len() as u64) as usize;
        let mut clean_end = !legacy && !cut_before_cursor;
        while off < bytes.len() {
            match frame::parse_at(&bytes, off, legacy) {
                Ok(f) => {
                    self.entries.push_back(Entry {
                        segment: seg,
                        frame: f,
                    });
                    off = f.end() as usize;
                }
                Err(reason) => {
                    let next = if legacy {
                        None
                    } else {
                        frame::next_good(&bytes, off + 1)
                    };
                    let end = next.unwrap_or(bytes.len());
                    self.damaged(path, seg, off, &bytes[off..end], reason, repair);
                    clean_end = next.is_some();
                    off = end;
                }
            }
        }
        Ok((bytes.len() as u64, clean_end))
    }

    fn damaged(
        &mut self,
        path: &Path,
        seg: u64,
        off: usize,
        bad: &[u8],
        reason: &str,
        repair: bool,
    ) {
        let quarantine = self
            .dir
            .join("quarantine")
            .join(format!("{seg:020}-{off}.bad"));
        let new = repair && !quarantine.exists();
        if new {
            if let Err(e) = crate::atomic_file::write(&quarantine, bad) {
                // The records around it are still delivered; only the copy is missing.
                tracing::error!(quarantine = %quarantine.display(), error = %e, "cannot copy damaged spool bytes out");
            }
        }
        self.corrupt.push(Corruption {
            segment: path.to_path_buf(),
            offset: off as u64,
            reason: reason.to_string(),
            bytes: bad.len() as u64,
            quarantine,
            new,
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the oldest undelivered record was spooled (ms since the epoch).
    pub fn oldest_millis(&self) -> Option<u64> {
        self.entries.front().map(|e| e.frame.ts_millis)
    }

    /// Appends records and fsyncs them: once this returns they survive a crash. All or
    /// nothing: on an error the segments are as they were.
    pub fn append(&mut self, payloads: &[Vec<u8>], now_millis: u64) -> io::Result<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        let (head, len) = (self.head, self.head_len);
        let mut added = Vec::with_capacity(payloads.len());
        match self.write_records(payloads, now_millis, &mut added) {
            Ok(()) => {
                self.entries.extend(added);
                Ok(())
            }
            Err(e) => {
                self.undo(head, len);
                Err(e)
            }
        }
    }

    fn write_records(
        &mut self,
        payloads: &[Vec<u8>],
        now_millis: u64,
        added: &mut Vec<Entry>,
    ) -> io::Result<()> {
        if self.writer.is_none() {
            self.open_head()?;
        }
        let mut buf = Vec::new();
        for p in payloads {
            let size = (frame::HEADER + p.len()) as u64;
            let used = self.head_len + buf.len() as u64;
            if used > 0 && used + size > self.segment_bytes {
                self.write_buf(&mut buf)?;
                self.writer = None;
                self.head += 1;
                self.open_head()?;
            }
            let start = buf.len() as u64;
            frame::encode(&mut buf, p, now_millis)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
            added.push(Entry {
                segment: self.head,
                frame: Frame {
                    offset: self.head_len + start,
                    header: frame::HEADER as u8,
                    len: p.len() as u32,
                    ts_millis: now_millis,
                },
            });
        }
        self.write_buf(&mut buf)
    }

    fn open_head(&mut self) -> io::Result<()> {
        let path = self.dir.join(seg_name(self.head));
        let created = !path.exists();
        // Read too: if the segment is unlinked under us, its records are read back through
        // this descriptor (see `ensure_linked`).
        let f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        if created {
            File::open(&self.dir)?.sync_all()?;
        }
        self.head_len = f.metadata()?.len();
        self.writer = Some(f);
        Ok(())
    }

    fn write_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some(w) = self.writer.as_mut() else {
            return Err(io::Error::other("spool segment not open"));
        };
        #[cfg(test)]
        if let Some(room) = self.fail_after.as_mut() {
            if (buf.len() as u64) > *room {
                let part = *room as usize;
                *room = 0;
                w.write_all(&buf[..part])?;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "No space left on device (test layer)",
                ));
            }
            *room -= buf.len() as u64;
        }
        w.write_all(buf)?;
        w.sync_data()?;
        self.head_len += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    /// Puts the segments back as they were before a failed append: removes segments it
    /// created and truncates the one it started in. If even that fails, the segment is
    /// sealed (its torn tail is quarantined on the next open) and appends go to a new one.
    fn undo(&mut self, head: u64, len: u64) {
        self.writer = None;
        for seg in head + 1..=self.head {
            let _ = fs::remove_file(self.dir.join(seg_name(seg)));
        }
        let path = self.dir.join(seg_name(head));
        let cut = OpenOptions::new().write(true).open(&path).and_then(|f| {
            f.set_len(len)?;
            f.sync_all()
        });
        match cut {
            Ok(()) => {
                self.head = head;
                self.head_len = len;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.head = head;
                self.head_len = 0;
            }
            Err(e) => {
                tracing::error!(segment = %path.display(), error = %e, "cannot truncate a failed spool append: the segment is sealed");
                self.head = self.head.max(head) + 1;
                self.head_len = 0;
            }
        }
    }

    /// Checks that the spool is still where it says it is: its directory there, and the head
    /// segment it appends to still linked at its path (the same file). When an operator (or a
    /// tmp reaper) removed them, appends would go to an unlinked file and be lost: instead the
    /// directory is made again, the records of the head segment are read back through the open
    /// descriptor and written to a new segment, and a fresh cursor points at the first record.
    /// Records of other segments that are gone are dropped from the spool (counted in
    /// [`Relinked::lost`]). `None` when all is in place.
    pub fn ensure_linked(&mut self) -> io::Result<Option<Relinked>> {
        let head_path = self.dir.join(seg_name(self.head));
        let oldest_gone = self
            .entries
            .front()
            .is_some_and(|e| !self.dir.join(seg_name(e.segment)).exists());
        let unlinked = oldest_gone
            || match &self.writer {
                Some(w) => !same_file(w, &head_path)?,
                None => !self.dir.is_dir(),
            };
        if !unlinked {
            return Ok(None);
        }
        // What the open descriptor still holds: the head segment's records.
        let mut kept: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut lost = 0u64;
        if let Some(w) = self.writer.as_mut() {
            for e in self.entries.iter().filter(|e| e.segment == self.head) {
                w.seek(SeekFrom::Start(e.frame.offset + u64::from(e.frame.header)))?;
                let mut p = vec![0; e.frame.len as usize];
                w.read_exact(&mut p)?;
                kept.push((p, e.frame.ts_millis));
            }
        }
        let through_fd = self.writer.is_some();
        let mut older = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| !(through_fd && e.segment == self.head))
        {
            match self.dir.join(seg_name(e.segment)).exists() {
                true => older.push(*e),
                false => lost += 1,
            }
        }
        fs::create_dir_all(&self.dir)?;
        if let Some(parent) = self.dir.parent() {
            File::open(parent)?.sync_all()?;
        }
        self.writer = None;
        self.entries = older.into();
        self.head += 1;
        self.head_len = 0;
        let recovered = kept.len() as u64;
        // Each with its own time (the oldest-item age stays true).
        for (p, ts) in kept {
            self.append(std::slice::from_ref(&p), ts)?;
        }
        let cursor = match self.entries.front() {
            Some(e) => Cursor::at(e.segment, e.frame.offset),
            None => Cursor::at(self.head, 0),
        };
        let text = serde_json::to_vec(&cursor).map_err(io::Error::other)?;
        crate::atomic_file::write(&self.dir.join("cursor"), &text)?;
        Ok(Some(Relinked { recovered, lost }))
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
            f.seek(SeekFrom::Start(e.frame.offset + u64::from(e.frame.header)))?;
            let mut p = vec![0; e.frame.len as usize];
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
            Some(e) => Cursor::at(e.segment, e.frame.offset),
            None => Cursor::at(last.segment, last.frame.end()),
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
