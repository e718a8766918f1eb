//! A sink's delivered-ids journal: the ids of the items it delivered, so that records read
//! again after a crash (everything after the last checkpoint) are not delivered twice.
//!
//! File `<state_dir>/spool/<sink>/delivered.ids`: fixed 20-byte entries, `id: u128 LE |
//! crc32(id): u32 LE` (an id of 32 hex digits is its value; any other id its xxh3-128). Each
//! delivered request's ids are written (`write(2)`) before the next request is sent, so a
//! process crash (`kill -9`) loses none: the one possible repeat is the request in flight.
//! They are fsync'd in batches (every [`SYNC_EVERY`] ids or [`SYNC_INTERVAL`]), so a power cut
//! can forget the last batch. The journal remembers the last `cap` ids and is compacted
//! (rewritten atomically) when the file holds twice as many; a damaged entry is skipped.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::decode::inflate::crc32;

const ENTRY: usize = 20;
pub const SYNC_EVERY: usize = 512;
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The journal's key for an item id.
pub fn key(id: &str) -> u128 {
    if id.len() == 32 {
        if let Ok(v) = u128::from_str_radix(id, 16) {
            return v;
        }
    }
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

fn entry(k: u128) -> [u8; ENTRY] {
    let mut e = [0; ENTRY];
    e[..16].copy_from_slice(&k.to_le_bytes());
    let crc = crc32(&e[..16]);
    e[16..].copy_from_slice(&crc.to_le_bytes());
    e
}

pub struct Journal {
    path: PathBuf,
    file: File,
    ids: HashSet<u128>,
    order: VecDeque<u128>,
    cap: usize,
    /// Entries in the file.
    on_disk: usize,
    unsynced: usize,
    last_sync: Instant,
    /// Damaged entries skipped at open.
    pub damaged: usize,
}

impl Journal {
    pub fn open(path: &Path, cap: usize) -> io::Result<Journal> {
        let cap = cap.max(1);
        // A file trailwatch wrote itself (bounded: compacted).
        #[allow(clippy::disallowed_methods)]
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut order = VecDeque::new();
        let mut damaged = 0;
        for e in bytes.chunks(ENTRY) {
            let ok = e.len() == ENTRY && crc32(&e[..16]).to_le_bytes() == e[16..];
            match e[..16.min(e.len())].try_into() {
                Ok(k) if ok => order.push_back(u128::from_le_bytes(k)),
                _ => damaged += 1,
            }
        }
        while order.len() > cap {
            order.pop_front();
        }
        let on_disk = bytes.len() / ENTRY;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
            ids: order.iter().copied().collect(),
            order,
            cap,
            on_disk,
            unsynced: 0,
            last_sync: Instant::now(),
            damaged,
        };
        if damaged > 0 || bytes.len() % ENTRY != 0 || on_disk > 2 * cap {
            j.compact()?;
        }
        Ok(j)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(&key(id))
    }

    /// Remembers delivered ids: written at once, fsync'd in batches.
    pub fn record<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> io::Result<()> {
        let mut buf = Vec::new();
        for id in ids {
            let k = key(id);
            if !self.ids.insert(k) {
                continue;
            }
            self.order.push_back(k);
            buf.extend_from_slice(&entry(k));
            if self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
        if buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&buf)?;
        let n = buf.len() / ENTRY;
        self.on_disk += n;
        self.unsynced += n;
        if self.on_disk > 2 * self.cap {
            return self.compact();
        }
        if self.unsynced >= SYNC_EVERY || self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes what is written durable.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced > 0 {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Rewrites the file with the ids remembered (atomically, fsync'd).
    fn compact(&mut self) -> io::Result<()> {
        let mut buf = Vec::with_capacity(self.order.len() * ENTRY);
        for k in &self.order {
            buf.extend_from_slice(&entry(*k));
        }
        crate::atomic_file::write(&self.path, &buf)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.on_disk = self.order.len();
        self.unsynced = 0;
        self.last_sync = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read back what the code wrote
mod tests {
    use super::*;

    fn id(i: u32) -> String {
        format!("{:032x}", u128::from(i) * 7919)
    }

    #[test]
    fn delivered_ids_survive_reopen_without_fsync_and_others_are_unknown() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("delivered.ids");
        let mut j = Journal::open(&p, 100).unwrap();
        let ids: Vec<String> = (0..10).map(id).collect();
        j.record(ids.iter().map(String::as_str)).unwrap();
        j.record(["not-hex-id"]).unwrap();
        // Dropped without sync: a process crash keeps what write(2) wrote.
        drop(j);
        let j = Journal::open(&p, 100).unwrap();
        assert!(ids.iter().all(|i| j.contains(i)));
        assert!(j.contains("not-hex-id"));
        assert!(!j.contains(&id(11)));
        assert_eq!(j.len(), 11);
        assert_eq!(fs::metadata(&p).unwrap().len(), 11 * ENTRY as u64);
    }

    #[test]
    fn it_is_bounded_and_compacted_keeping_the_newest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("delivered.ids");
        let mut j = Journal::open(&p, 50).unwrap();
        for i in 0..500 {
            j.record([id(i).as_str()]).unwrap();
            assert!(j.len() <= 50);
            assert!(fs::metadata(&p).unwrap().len() <= 100 * ENTRY as u64 + ENTRY as u64);
        }
        drop(j);
        let j = Journal::open(&p, 50).unwrap();
        assert_eq!(j.len(), 50);
        assert!((450..500).all(|i| j.contains(&id(i))));
        assert!(!j.contains(&id(449)));
    }

    #[test]
    fn damaged_and_torn_entries_are_skipped_and_the_rest_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("delivered.ids");
        let mut j = Journal::open(&p, 100).unwrap();
        j.record(
            (0..5)
                .map(id)
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )
        .unwrap();
        drop(j);
        let mut bytes = fs::read(&p).unwrap();
        bytes[2 * ENTRY + 3] ^= 0x40;
        bytes.extend_from_slice(&[1, 2, 3]);
        fs::write(&p, &bytes).unwrap();
        let j = Journal::open(&p, 100).unwrap();
        assert_eq!(j.damaged, 2);
        assert_eq!(
            (0..5).map(|i| j.contains(&id(i))).collect::<Vec<_>>(),
            [true, true, false, true, true]
        );
        assert_eq!(
            fs::metadata(&p).unwrap().len(),
            4 * ENTRY as u64,
            "compacted"
        );
    }
}
