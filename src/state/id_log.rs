//! The dedup ids of the state file, kept beside it in an append-only log so a checkpoint
//! writes only the ids added since the last one (not the whole window: 2 M ids were 67 MB of
//! JSON rewritten every interval).
//!
//! `FILE.ids.GEN` holds frames: `b"TWID"`, the entry count (u32 LE), the xxh3-64 of the
//! payload (u64 LE), then `count` entries of 17 bytes (kind: 0 event id, 1 alert id; the key,
//! u64 LE; the time first seen, i64 LE). A checkpoint appends one frame and fsyncs, then the
//! state file (written atomically) records the generation and the length that is valid; bytes
//! past it (a torn append, a checkpoint whose state file was never written) are cut before the
//! next append. When the log holds much more than the live ids (expired ones accumulate), the
//! next checkpoint writes a new generation with only the live ids, switches the state file to
//! it, then removes the old one. A damaged frame within the valid length is detected by its
//! checksum: the ids before it are kept, the damage is reported.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"TWID";
const HEADER: usize = 16;
const ENTRY: usize = 17;

/// Which log the state file points at, and how much of it is valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRef {
    pub generation: u64,
    pub len: u64,
    /// Entries in the valid part (live and expired).
    pub entries: u64,
}

/// An id and when it was first seen, for the event-id (`false`) or alert-id (`true`) set.
pub type Entry = (bool, u64, i64);

pub fn path_of(state: &Path, generation: u64) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".ids.{generation}"));
    state.with_file_name(name)
}

fn frame(entries: &[Entry]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(entries.len() * ENTRY);
    for &(alert, key, at) in entries {
        payload.push(u8::from(alert));
        payload.extend_from_slice(&key.to_le_bytes());
        payload.extend_from_slice(&at.to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Frames of at most this many entries (a frame's count is a u32, and a damaged frame then
/// costs at most this many ids).
const FRAME_ENTRIES: usize = 65_536;

fn frames(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY + HEADER);
    for chunk in entries.chunks(FRAME_ENTRIES) {
        out.extend_from_slice(&frame(chunk));
    }
    out
}

/// Appends `entries` to the log `at` points to (cut to its valid length first), fsyncs, and
/// gives the new reference. Nothing to append: nothing written.
pub fn append(state: &Path, at: LogRef, entries: &[Entry]) -> io::Result<LogRef> {
    if entries.is_empty() {
        return Ok(at);
    }
    let path = path_of(state, at.generation);
    make_dir(state)?;
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)?;
    let new_file = f.metadata()?.len() == 0 && at.len == 0;
    f.set_len(at.len)?;
    f.seek(SeekFrom::Start(at.len))?;
    let bytes = frames(entries);
    f.write_all(&bytes)?;
    f.sync_data()?;
    if new_file {
        sync_dir(state)?;
    }
    Ok(LogRef {
        generation: at.generation,
        len: at.len + bytes.len() as u64,
        entries: at.entries + entries.len() as u64,
    })
}

/// Writes a new generation holding only `entries` (fsync'd, directory too); the caller then
/// points the state file at it and removes the old one ([`remove_others`]).
pub fn rewrite(state: &Path, generation: u64, entries: &[Entry]) -> io::Result<LogRef> {
    let path = path_of(state, generation);
    make_dir(state)?;
    let bytes = frames(entries);
    {
        let mut f = File::create(&path)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    sync_dir(state)?;
    Ok(LogRef {
        generation,
        len: bytes.len() as u64,
        entries: entries.len() as u64,
    })
}

/// Removes every generation of the log but `keep` (left by a compaction or a crash).
pub fn remove_others(state: &Path, keep: u64) {
    let (Some(dir), Some(name)) = (state.parent(), state.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.ids.", name.to_string_lossy());
    let Ok(list) = fs::read_dir(dir) else { return };
    for e in list.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if let Some(g) = n.strip_prefix(&prefix).and_then(|g| g.parse::<u64>().ok()) {
            if g != keep {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

fn make_dir(state: &Path) -> io::Result<()> {
    match state.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => fs::create_dir_all(d),
        None => Ok(()),
    }
}

fn sync_dir(state: &Path) -> io::Result<()> {
    let dir = state
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// What reading the log found.
#[derive(Debug, Default)]
pub struct Contents {
    pub entries: Vec<Entry>,
    /// Where the first damaged frame starts, when one was found within the valid length:
    /// the entries from there on are lost.
    pub damaged_at: Option<u64>,
}

/// Reads the valid part of the log `at` points to. A missing or short file reads as damaged
/// where it ends.
pub fn read(state: &Path, at: LogRef) -> io::Result<Contents> {
    let mut out = Contents::default();
    if at.len == 0 {
        return Ok(out);
    }
    let mut bytes = Vec::new();
    match File::open(path_of(state, at.generation)) {
        Ok(f) => {
            f.take(at.len).read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            out.damaged_at = Some(0);
            return Ok(out);
        }
        Err(e) => return Err(e),
    }
    let mut pos = 0usize;
    while pos < at.len as usize {
        let Some(head) = bytes.get(pos..pos + HEADER) else {
            out.damaged_at = Some(pos as u64);
            break;
        };
        let count = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let sum = u64::from_le_bytes(head[8..16].try_into().unwrap_or([0; 8]));
        let end = pos + HEADER + count * ENTRY;
        let payload = bytes.get(pos + HEADER..end);
        match payload {
            Some(p) if &head[..4] == MAGIC && xxhash_rust::xxh3::xxh3_64(p) == sum => {
                for e in p.chunks_exact(ENTRY) {
                    let key = u64::from_le_bytes(e[1..9].try_into().unwrap_or([0; 8]));
                    let at = i64::from_le_bytes(e[9..17].try_into().unwrap_or([0; 8]));
                    out.entries.push((e[0] == 1, key, at));
                }
                pos = end;
            }
            _ => {
                out.damaged_at = Some(pos as u64);
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read back what the code wrote
mod tests {
    use super::*;

    #[test]
    fn appends_read_back_and_a_torn_or_damaged_tail_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cp.json");
        let a = append(&state, LogRef::default(), &[(false, 1, 10), (true, 2, 20)]).unwrap();
        let b = append(&state, a, &[(false, 3, 30)]).unwrap();
        assert_eq!(b.entries, 3);
        assert_eq!(b.len, (HEADER * 2 + ENTRY * 3) as u64);
        let r = read(&state, b).unwrap();
        assert_eq!(r.entries, [(false, 1, 10), (true, 2, 20), (false, 3, 30)]);
        assert_eq!(r.damaged_at, None);
        // A checkpoint whose state file was never written: its frame is past the valid
        // length, ignored, and cut by the next append.
        let _ = append(&state, b, &[(false, 99, 99)]).unwrap();
        assert_eq!(read(&state, b).unwrap().entries.len(), 3);
        let c = append(&state, b, &[(false, 4, 40)]).unwrap();
        let r = read(&state, c).unwrap();
        assert_eq!(r.entries.last(), Some(&(false, 4, 40)));
        assert_eq!(r.entries.len(), 4);
        // A flipped byte in the second frame: the first frame's ids are kept.
        let path = path_of(&state, 0);
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER * 2 + ENTRY * 2 + 3] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let r = read(&state, c).unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.damaged_at, Some((HEADER + ENTRY * 2) as u64));
        // Cut short (a lost tail): damaged where it ends.
        fs::write(&path, &bytes[..HEADER + ENTRY]).unwrap();
        let r = read(&state, c).unwrap();
        assert!(r.entries.is_empty());
        assert_eq!(r.damaged_at, Some(0));
    }

    #[test]
    fn a_rewrite_is_a_new_generation_and_the_others_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cp.json");
        let a = append(&state, LogRef::default(), &[(false, 1, 10), (false, 2, 20)]).unwrap();
        let b = rewrite(&state, 1, &[(false, 2, 20)]).unwrap();
        assert!(path_of(&state, 0).exists());
        remove_others(&state, b.generation);
        assert!(!path_of(&state, 0).exists());
        assert_eq!(read(&state, b).unwrap().entries, [(false, 2, 20)]);
        assert_eq!(read(&state, a).unwrap().damaged_at, Some(0));
    }
}
