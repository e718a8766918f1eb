//! The state file: where each shard was read to, and the engine's snapshot (dedup ids,
//! shaping windows and budgets, how much of the output file is covered), in one local file
//! written atomically (write, fsync, rename, fsync the directory), so that a restart neither
//! re-reads nor re-alerts. `run` keys it by stream; `serve` keeps only the engine's part.

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
}

impl StateFile {
    /// Opens (or starts) the state file for `stream`.
    pub fn open(path: &Path, stream: &str) -> Result<Self, StateError> {
        let io_err = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let state = match fs::read(path) {
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
                })
            }
            Err(e) => return Err(io_err(e)),
        };
        Ok(StateFile {
            path: path.to_path_buf(),
            state,
            existed: true,
        })
    }

    /// Writes the state atomically: a crash leaves the old file or the new one, never a mix.
    pub fn save(&self) -> Result<(), StateError> {
        let io_err = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let mut bytes = serde_json::to_vec(&self.state).map_err(|e| io_err(e.into()))?;
        bytes.push(b'\n');
        crate::atomic_file::write(&self.path, &bytes).map_err(io_err)?;
        Ok(())
    }
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
}
