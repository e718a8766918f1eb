//! Where the engine's items go: the configured sinks (a [`Dispatcher`]), or, when there are
//! no `[[sinks]]`, the default writer: the same JSON-lines [`FileSink`] that `file` and
//! `stdout` sinks use, on stdout or the `--output` file, written and flushed before a
//! submission is accepted.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::item::{Item, Stream};
use crate::sink::deliver::Dispatcher;
use crate::sink::destination::file::FileSink;
use crate::sink::destination::Format;

pub enum Output {
    Sinks(Dispatcher),
    Writer(Writer),
    /// The caller takes the items from each [`super::Pending`] before submitting it
    /// (`backtest`, which reports on them): a submission is accepted at once.
    Caller,
}

/// Which streams the default writer prints; with both, each line carries `"stream"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    pub siem: bool,
    pub notify: bool,
}

impl Streams {
    pub const SIEM: Streams = Streams {
        siem: true,
        notify: false,
    };

    fn takes(self, s: Stream) -> bool {
        match s {
            Stream::Siem => self.siem,
            Stream::Notify => self.notify,
        }
    }
}

pub struct Writer {
    sink: Mutex<FileSink>,
    streams: Streams,
}

impl Writer {
    /// Native JSON lines on stdout.
    pub fn stdout(streams: Streams, include_event: bool) -> Writer {
        let mut sink = FileSink::stdout(Format::Native, include_event);
        sink.tag_stream = streams.siem && streams.notify;
        Writer {
            sink: Mutex::new(sink),
            streams,
        }
    }

    /// The siem stream appended to a file (not fsync'd: it survives `kill -9`, and the
    /// state file records how much of it a snapshot covers).
    pub fn file(path: &Path, include_event: bool) -> Writer {
        let mut sink = FileSink::file(path, Format::Native, include_event);
        sink.fsync = false;
        Writer {
            sink: Mutex::new(sink),
            streams: Streams::SIEM,
        }
    }

    /// The output file (`None`: stdout).
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().path().map(Path::to_path_buf)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileSink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write(&self, items: &[Arc<Item>]) -> io::Result<()> {
        let mut sink = self.lock();
        if items.iter().all(|i| self.streams.takes(i.stream())) {
            return sink.write(items);
        }
        let taken: Vec<Arc<Item>> = items
            .iter()
            .filter(|i| self.streams.takes(i.stream()))
            .cloned()
            .collect();
        if taken.is_empty() {
            return Ok(());
        }
        sink.write(&taken)
    }

    /// Bytes in the output file (everything written is in it: writes are not buffered here).
    pub(super) fn written_len(&self) -> Option<u64> {
        let sink = self.lock();
        std::fs::metadata(sink.path()?).ok().map(|m| m.len())
    }
}

/// Reads back the alert ids written to `path` after `from` bytes; cuts a torn last line.
pub(super) fn written_since(path: &Path, from: u64) -> io::Result<Vec<String>> {
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len < from {
        tracing::warn!(output = %path.display(), "the output file is shorter than the state says; not reading it back");
        return Ok(Vec::new());
    }
    f.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < tail.len() {
        tracing::warn!(output = %path.display(), bytes = tail.len() - complete, "cutting a torn last line");
        f.set_len(from + complete as u64)?;
    }
    Ok(tail[..complete]
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| v["alert_id"].as_str().map(str::to_string))
        .collect())
}
