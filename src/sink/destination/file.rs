//! `file` and `stdout`: JSON lines, the one alert writer (sinks of these types, and the
//! engine's default output when no `[[sinks]]` are configured). A file rotates by size and by
//! age (the current file is renamed `<stem>-<UTC time>.<ext>` and a new one started) and is
//! fsync'd after each batch unless `fsync = "never"`: an item counts as delivered once it is
//! on disk. stdout is flushed after each batch.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Format, Outcome};
use crate::item::Item;
use crate::sink::error::SendError;

pub struct FileSink {
    /// None: stdout.
    path: Option<PathBuf>,
    file: Option<File>,
    opened: SystemTime,
    written: u64,
    pub format: Format,
    pub include_event: bool,
    pub rotate_bytes: Option<u64>,
    pub rotate_every: Option<Duration>,
    pub fsync: bool,
    /// Start each line with `"stream": "siem"|"notify"` (`replay --stream both`).
    pub tag_stream: bool,
}

/// A line of a tagged writer: the item with its stream's name first.
#[derive(serde::Serialize)]
struct Tagged<'a, T: serde::Serialize> {
    stream: &'static str,
    #[serde(flatten)]
    item: &'a T,
}

impl FileSink {
    pub fn stdout(format: Format, include_event: bool) -> Self {
        FileSink {
            path: None,
            file: None,
            opened: SystemTime::now(),
            written: 0,
            format,
            include_event,
            rotate_bytes: None,
            rotate_every: None,
            fsync: false,
            tag_stream: false,
        }
    }

    pub fn file(path: &Path, format: Format, include_event: bool) -> Self {
        FileSink {
            path: Some(path.to_path_buf()),
            ..FileSink::stdout(format, include_event)
        }
    }

    pub fn is_stdout(&self) -> bool {
        self.path.is_none()
    }

    fn rotated_name(path: &Path, now: SystemTime) -> PathBuf {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let stamp = crate::event::format_utc_secs(secs).replace([':', '-'], "");
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("alerts");
        let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("jsonl");
        let mut candidate = path.with_file_name(format!("{stem}-{stamp}.{ext}"));
        let mut n = 1;
        while candidate.exists() {
            candidate = path.with_file_name(format!("{stem}-{stamp}-{n}.{ext}"));
            n += 1;
        }
        candidate
    }

    fn open(&mut self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let now = SystemTime::now();
        if let Some(f) = &self.file {
            let too_big = self.rotate_bytes.is_some_and(|b| self.written >= b);
            let too_old = self
                .rotate_every
                .is_some_and(|e| now.duration_since(self.opened).unwrap_or_default() >= e);
            if !(too_big || too_old) {
                return Ok(());
            }
            f.sync_all()?;
            self.file = None;
            if self.written > 0 {
                fs::rename(path, Self::rotated_name(path, now))?;
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        self.written = f.metadata()?.len();
        self.opened = now;
        self.file = Some(f);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.open()?;
        match &mut self.file {
            Some(f) => {
                f.write_all(buf)?;
                if self.fsync {
                    f.sync_data()?;
                }
                self.written += buf.len() as u64;
                Ok(())
            }
            None => {
                let mut out = io::stdout().lock();
                out.write_all(buf)?;
                out.flush()
            }
        }
    }

    /// The path written to (`None`: stdout).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// One line: native items are serialized straight from the alert (fields in their
    /// order); only a native item whose record must be left out goes through a JSON value.
    fn line(&self, item: &Item, buf: &mut Vec<u8>) -> serde_json::Result<()> {
        fn put<T: serde::Serialize>(
            buf: &mut Vec<u8>,
            stream: Option<&'static str>,
            item: &T,
        ) -> serde_json::Result<()> {
            match stream {
                Some(stream) => serde_json::to_writer(buf, &Tagged { stream, item }),
                None => serde_json::to_writer(buf, item),
            }
        }
        let stream = self.tag_stream.then(|| item.stream().as_str());
        let direct =
            self.format == Format::Native && (self.include_event || item.alert().event.is_none());
        match (direct, item) {
            (true, Item::Siem(a)) => put(buf, stream, a)?,
            (true, Item::Notify(n)) => put(buf, stream, n)?,
            (false, _) => put(
                buf,
                stream,
                &super::render(self.format, item, self.include_event),
            )?,
        }
        buf.push(b'\n');
        Ok(())
    }

    /// Writes the items (and flushes stdout, or fsyncs a file unless `fsync` is off).
    pub fn write(&mut self, items: &[Arc<Item>]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(items.len() * 1024);
        for item in items {
            self.line(item, &mut buf)?;
        }
        self.write_all(&buf)
    }

    pub fn send(&mut self, items: &[Arc<Item>]) -> Outcome {
        match self.write(items) {
            Ok(()) => Outcome::all(items.len()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Outcome::none(SendError::rejected(
                format!("cannot serialize an item: {e}"),
            )),
            // A full disk or a vanished directory may come back.
            Err(e) => Outcome::none(SendError::retry(format!("writing: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::items;

    #[test]
    fn rotates_by_size_and_keeps_every_line() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("siem.jsonl");
        let mut f = FileSink::file(&path, Format::Native, false);
        f.rotate_bytes = Some(1500);
        let all: Vec<Arc<Item>> = items().into_iter().map(|(_, i)| Arc::new(i)).collect();
        let mut sent = 0;
        for _ in 0..4 {
            for i in &all {
                assert_eq!(f.send(std::slice::from_ref(i)).delivered, 1);
                sent += 1;
            }
        }
        let files: Vec<PathBuf> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(files.len() > 2, "rotated: {files:?}");
        assert!(
            files.iter().any(|p| p == &path),
            "the current file keeps its name"
        );
        let lines: usize = files
            .iter()
            .map(|p| fs::read_to_string(p).unwrap().lines().count())
            .sum();
        assert_eq!(lines, sent, "no line lost across rotations");
        for p in &files {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with("siem"), "{name}");
            for l in fs::read_to_string(p).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v.get("event").is_none(), "include_event is off");
            }
        }
    }

    #[test]
    fn rotates_by_age() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("feed.jsonl");
        let mut f = FileSink::file(&path, Format::Native, false);
        f.rotate_every = Some(Duration::from_millis(20));
        let (_, item) = items().remove(0);
        let item = Arc::new(item);
        for _ in 0..3 {
            assert_eq!(f.send(std::slice::from_ref(&item)).delivered, 1);
            std::thread::sleep(Duration::from_millis(40));
        }
        let n = fs::read_dir(d.path()).unwrap().count();
        assert_eq!(n, 3, "one file per period, none overwritten");
    }

    #[test]
    fn an_unwritable_path_is_a_retryable_failure() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("blocker"), b"a file, not a directory").unwrap();
        let mut f = FileSink::file(&d.path().join("blocker/siem.jsonl"), Format::Ocsf, false);
        let all: Vec<Arc<Item>> = items().into_iter().map(|(_, i)| Arc::new(i)).collect();
        let out = f.send(&all);
        assert_eq!(out.delivered, 0);
        assert!(matches!(
            out.error.unwrap().class,
            crate::sink::error::Class::Retry { .. }
        ));
    }
}
