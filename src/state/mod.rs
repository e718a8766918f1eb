//! The state file: where each shard was read to, and the engine's snapshot (shaping windows
//! and budgets, how much of the output file is covered, the organization, feed health), in
//! one local JSON file written atomically (write, fsync, rename, fsync the directory), so that
//! a restart neither re-reads nor re-alerts. The dedup ids live beside it in an append-only
//! log ([`id_log`]) that each checkpoint extends by the ids added since the last one. `run`
//! keys it by stream; `serve` keeps only the engine's part.

pub mod backfill;
pub mod id_log;
pub mod positions;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pipeline::PipelineSnapshot;

/// Where a shard has been read to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCheckpoint {
    /// The last record whose alerts were delivered.
    pub sequence_number: Option<String>,
    /// KPL sub-record within it; `None` when the whole record is done.
    pub sub_sequence: Option<u64>,
    /// The shard was read to its end (SHARD_END): its children may start.
    pub finished: bool,
    /// When the last record arrived in the stream (`ApproximateArrivalTimestamp`, seconds):
    /// a restart compares it with what the stream still holds (`feed-gap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived: Option<i64>,
}

/// What the engine saves and restores: taken only when every alert of everything evaluated
/// is accepted, so it never remembers an event whose alerts could still be lost.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EngineSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineSnapshot>,
    /// The notify stream's shaping state (windows, digests, rate-limit budgets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shaping: Option<crate::shaping::Snapshot>,
    /// Bytes of the output file the state covers: alerts written after it are read back on
    /// restart so they are not written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len: Option<u64>,
    /// The organization as last read (with `[organization]`): a restart starts from it when
    /// AWS Organizations cannot be read, and compares the next read against it for drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<SavedOrganization>,
    /// The feed-health watch (`[health]`): silences in progress, rhythms, lag windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Snapshot>,
    /// Archive events being read for a gap (backfill), on their own event time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past: Option<PastSnapshot>,
}

/// The backfill's own shaping and health watch, on the archive's event time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PastSnapshot {
    /// The latest event time read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shaping: Option<crate::shaping::Snapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Snapshot>,
}

/// The last tree read from AWS Organizations and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOrganization {
    /// Seconds since the epoch.
    pub read_at: i64,
    pub tree: crate::org::tree::Tree,
}

/// The whole state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub stream: String,
    pub shards: BTreeMap<String, ShardCheckpoint>,
    #[serde(flatten)]
    pub engine: EngineSnapshot,
    /// Where the dedup ids are ([`id_log`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<id_log::LogRef>,
    /// `feed-gap` windows still to be read from the archive, and what each has read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backfill: Vec<backfill::Job>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("state file {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("state file {path} is for stream {found:?}, not {expected:?}")]
    OtherStream {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

pub struct StateFile {
    path: PathBuf,
    pub state: State,
    /// The file was there when opened (a missing one starts every shard from `start`).
    pub existed: bool,
    /// The id marks and ids held of the last snapshot saved (`None`: the next save writes
    /// every id, a new generation of the log).
    saved: Option<Saved>,
    /// The xxh3 of the JSON last written: an unchanged file is not written again.
    last_json: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Saved {
    marks: (u64, u64),
    held: usize,
}

/// What one save wrote, for the metrics and the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes of the JSON state file (0: unchanged, not written).
    pub json_bytes: u64,
    /// Bytes appended to the id log, or of the new generation when it was rewritten.
    pub id_bytes: u64,
    pub rewritten: bool,
}

impl StateFile {
    /// Opens (or starts) the state file for `stream`.
    pub fn open(path: &Path, stream: &str) -> Result<Self, StateError> {
        let io_err = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        // The state file trailwatch wrote itself (small JSON).
        #[allow(clippy::disallowed_methods)]
        let mut state = match fs::read(path) {
            Ok(bytes) => {
                let state: State =
                    serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                        path: path.to_path_buf(),
                        source,
                    })?;
                if state.stream != stream {
                    return Err(StateError::OtherStream {
                        path: path.to_path_buf(),
                        found: state.stream,
                        expected: stream.to_string(),
                    });
                }
                state
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(StateFile {
                    path: path.to_path_buf(),
                    state: State {
                        stream: stream.to_string(),
                        ..State::default()
                    },
                    existed: false,
                    saved: None,
                    last_json: None,
                })
            }
            Err(e) => return Err(io_err(e)),
        };
        if let Some(at) = state.ids {
            let read = id_log::read(path, at).map_err(io_err)?;
            if let Some(offset) = read.damaged_at {
                tracing::error!(
                    log = %id_log::path_of(path, at.generation).display(),
                    offset,
                    ids_read = read.entries.len(),
                    ids_expected = at.entries,
                    "the state's id log is damaged: the ids before the damage are kept; events of the rest may alert again"
                );
                metrics::counter!(crate::metric::STATE_IDS_DAMAGED_TOTAL).increment(1);
            }
            let (events, alerts) = latest_first_seen(read.entries);
            let p = state
                .engine
                .pipeline
                .get_or_insert_with(|| PipelineSnapshot {
                    event_ids: Vec::new(),
                    alert_ids: Vec::new(),
                    marks: None,
                    delta: false,
                    held: (0, 0),
                    correlation: Default::default(),
                    sessions: Vec::new(),
                    first_seen: Vec::new(),
                });
            p.event_ids = events;
            p.alert_ids = alerts;
        }
        Ok(StateFile {
            path: path.to_path_buf(),
            state,
            existed: true,
            saved: None,
            last_json: None,
        })
    }

    /// The id marks the next snapshot should start from (those of the last one saved), or
    /// `None` when it must hold every id: nothing saved yet by this process, or a log holding
    /// more than twice the live ids (expired ones pile up), which the save then rewrites.
    pub fn since(&self) -> Option<(u64, u64)> {
        let saved = self.saved?;
        let logged = self.state.ids.map_or(0, |r| r.entries);
        (logged <= 2 * saved.held as u64 + 100_000).then_some(saved.marks)
    }

    /// Writes the state: the ids of the snapshot to the id log (appended, or a new generation
    /// for a whole snapshot), then the JSON atomically, pointing at the log's new valid
    /// length. A crash leaves the old state or the new one, never a mix. Nothing changed:
    /// nothing written.
    pub fn save(&mut self) -> Result<Written, StateError> {
        let io_err = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let mut written = Written::default();
        let pipeline = self.state.engine.pipeline.as_mut();
        let Some(p) = pipeline else {
            return self.write_json(&mut written).map(|()| written);
        };
        let entries: Vec<id_log::Entry> = p
            .event_ids
            .iter()
            .map(|&(k, t)| (false, k, t))
            .chain(p.alert_ids.iter().map(|&(k, t)| (true, k, t)))
            .collect();
        let (delta, marks, held) = (p.delta, p.marks, p.held.0 + p.held.1);
        let before = self.state.ids;
        let log = match delta {
            true => id_log::append(&self.path, before.unwrap_or_default(), &entries),
            false => {
                let generation = before.map_or(1, |a| a.generation + 1);
                id_log::rewrite(&self.path, generation, &entries)
            }
        }
        .map_err(io_err)?;
        written.rewritten = !delta;
        written.id_bytes = match delta {
            true => log.len - before.map_or(0, |a| a.len),
            false => log.len,
        };
        self.state.ids = Some(log);
        if let Err(e) = self.write_json(&mut written) {
            // The log's new part is not pointed at: the next save cuts and rewrites it.
            self.state.ids = before;
            return Err(e);
        }
        if !delta {
            id_log::remove_others(&self.path, log.generation);
        }
        if let Some(marks) = marks {
            self.saved = Some(Saved { marks, held });
        }
        Ok(written)
    }
}

impl StateFile {
    /// The JSON, atomically, unless it is what was written last.
    fn write_json(&mut self, written: &mut Written) -> Result<(), StateError> {
        let io_err = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let mut bytes = serde_json::to_vec(&self.state).map_err(|e| io_err(e.into()))?;
        bytes.push(b'\n');
        let sum = xxhash_rust::xxh3::xxh3_64(&bytes);
        if self.last_json != Some(sum) {
            crate::atomic_file::write(&self.path, &bytes).map_err(io_err)?;
            written.json_bytes = bytes.len() as u64;
            self.last_json = Some(sum);
        }
        Ok(())
    }
}

/// An id and when it was first seen.
type Held = (u64, i64);

/// The log's entries as the event-id and alert-id sets: an id logged more than once (seen
/// again after it expired) keeps its latest time, in the order of its latest entry.
fn latest_first_seen(entries: Vec<id_log::Entry>) -> (Vec<Held>, Vec<Held>) {
    let mut seen: std::collections::HashSet<(bool, u64)> = Default::default();
    let (mut events, mut alerts) = (Vec::new(), Vec::new());
    for (alert, k, t) in entries.into_iter().rev() {
        if seen.insert((alert, k)) {
            match alert {
                false => events.push((k, t)),
                true => alerts.push((k, t)),
            }
        }
    }
    events.reverse();
    alerts.reverse();
    (events, alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/cp.json");
        let mut cp = StateFile::open(&path, "s").unwrap();
        assert!(cp.state.shards.is_empty());
        cp.state.shards.insert(
            "shardId-000000000000".into(),
            ShardCheckpoint {
                sequence_number: Some("4959".into()),
                sub_sequence: None,
                finished: true,
                arrived: None,
            },
        );
        cp.save().unwrap();
        assert!(!path.with_extension("tmp").exists());
        let again = StateFile::open(&path, "s").unwrap();
        assert_eq!(again.state.shards, cp.state.shards);
        assert!(matches!(
            StateFile::open(&path, "other"),
            Err(StateError::OtherStream { .. })
        ));
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            StateFile::open(&path, "s"),
            Err(StateError::Corrupt { .. })
        ));
    }

    fn snapshot(
        events: &[(u64, i64)],
        marks: (u64, u64),
        delta: bool,
        held: usize,
    ) -> EngineSnapshot {
        EngineSnapshot {
            pipeline: Some(PipelineSnapshot {
                event_ids: events.to_vec(),
                alert_ids: if delta { Vec::new() } else { vec![(7, 1)] },
                marks: Some(marks),
                delta,
                held: (held, 1),
                correlation: Default::default(),
                sessions: Vec::new(),
                first_seen: Vec::new(),
            }),
            ..EngineSnapshot::default()
        }
    }

    /// A checkpoint writes the ids added since the last one, nothing when nothing changed,
    /// and a restart reads them all back; a save that never reached the JSON is not seen.
    #[test]
    fn checkpoints_append_only_new_ids_and_a_restart_reads_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let mut cp = StateFile::open(&path, "s").unwrap();
        assert_eq!(cp.since(), None, "nothing saved yet: a whole snapshot");
        let first: Vec<(u64, i64)> = (0..1000).map(|i| (i, 100 + i as i64)).collect();
        cp.state.engine = snapshot(&first, (1000, 1), false, 1000);
        let w = cp.save().unwrap();
        assert!(w.rewritten);
        assert_eq!(w.id_bytes, (16 + 17 * 1001) as u64);
        assert_eq!(cp.since(), Some((1000, 1)));
        // Ten new ids: 10 entries appended, the JSON rewritten (it points further).
        let more: Vec<(u64, i64)> = (1000..1010).map(|i| (i, 2000)).collect();
        cp.state.engine = snapshot(&more, (1010, 1), true, 1010);
        let w = cp.save().unwrap();
        assert!(!w.rewritten);
        assert_eq!(w.id_bytes, (16 + 17 * 10) as u64);
        assert!(w.json_bytes > 0 && w.json_bytes < 200, "{w:?}");
        // Nothing new: nothing written.
        cp.state.engine = snapshot(&[], (1010, 1), true, 1010);
        assert_eq!(cp.save().unwrap(), Written::default());
        // A restart: every id, in order, the alert id too.
        let again = StateFile::open(&path, "s").unwrap();
        let p = again.state.engine.pipeline.as_ref().unwrap();
        assert_eq!(p.event_ids.len(), 1010);
        assert_eq!(p.event_ids[..1000], first[..]);
        assert_eq!(p.event_ids[1009], (1009, 2000));
        assert_eq!(p.alert_ids, [(7, 1)]);
        // An append whose JSON was never written (a crash between them): not read back, and
        // cut by the next save.
        let at = again.state.ids.unwrap();
        id_log::append(&path, at, &[(false, 5555, 1)]).unwrap();
        let mut again = StateFile::open(&path, "s").unwrap();
        let p = again.state.engine.pipeline.as_ref().unwrap();
        assert!(!p.event_ids.iter().any(|e| e.0 == 5555));
        again.state.engine = snapshot(&[], (0, 0), false, 1010);
        let w = again.save().unwrap();
        assert!(w.rewritten, "a new process writes a whole snapshot first");
        assert!(
            !id_log::path_of(&path, 1).exists(),
            "the old generation is removed"
        );
        assert!(id_log::path_of(&path, 2).exists());
    }

    #[test]
    fn an_id_logged_twice_keeps_its_latest_time() {
        let (events, alerts) = latest_first_seen(vec![
            (false, 1, 10),
            (false, 2, 20),
            (true, 1, 5),
            (false, 1, 30),
        ]);
        assert_eq!(events, [(2, 20), (1, 30)]);
        assert_eq!(alerts, [(1, 5)]);
    }
}
