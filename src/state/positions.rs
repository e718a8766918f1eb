//! Where each shard of a stream has been read to, while the process runs: the readers start
//! from it, the lease coordinator fills it as leases are taken, and one place moves it
//! forward, the Kinesis road's `Checkpointer`, by applying an [`Ack`]: what acknowledging a
//! batch means once every alert from it is accepted.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::ShardCheckpoint;

/// What acknowledging a batch means: its shard is done up to this record (and, inside a KPL
/// aggregate, up to this sub-record), and with `shard_end` the shard is finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub shard: String,
    /// The batch's last record; `None` for an empty batch (a shard end with no records).
    pub sequence_number: Option<String>,
    /// `None` when the whole record is done.
    pub sub_sequence: Option<u64>,
    pub shard_end: bool,
    /// When the last record arrived in the stream, seconds.
    pub arrived: Option<i64>,
}

/// Positions by shard id, shared by the readers, the lease coordinator and the checkpointer.
#[derive(Debug, Clone, Default)]
pub struct Positions(Arc<Mutex<BTreeMap<String, ShardCheckpoint>>>);

impl Positions {
    pub fn new(start: BTreeMap<String, ShardCheckpoint>) -> Positions {
        Positions(Arc::new(Mutex::new(start)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ShardCheckpoint>> {
        // The map is whole after every operation below: a panic elsewhere cannot leave it
        // half-changed, so a poisoned lock still holds good data.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where to start reading `shard`.
    pub fn get(&self, shard: &str) -> Option<ShardCheckpoint> {
        self.lock().get(shard).cloned()
    }

    /// Shards read to their end.
    pub fn finished(&self) -> HashSet<String> {
        self.lock()
            .iter()
            .filter(|(_, c)| c.finished)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every position, for the state file.
    pub fn all(&self) -> BTreeMap<String, ShardCheckpoint> {
        self.lock().clone()
    }

    /// A lease taken: its checkpoint is where this worker starts the shard.
    pub fn adopt(&self, shard: &str, cp: ShardCheckpoint) {
        self.lock().insert(shard.to_string(), cp);
    }

    /// Moves the shard past an acknowledged batch; gives the new position. Only ever forward
    /// within a shard's read: batches of one shard are acknowledged in order (a reader waits
    /// for each batch's acknowledgement before reading on).
    pub fn apply(&self, ack: &Ack) -> ShardCheckpoint {
        let mut map = self.lock();
        let entry = map.entry(ack.shard.clone()).or_insert(ShardCheckpoint {
            sequence_number: None,
            sub_sequence: None,
            finished: false,
            arrived: None,
        });
        if ack.sequence_number.is_some() {
            entry.sequence_number = ack.sequence_number.clone();
            entry.sub_sequence = ack.sub_sequence;
            entry.arrived = ack.arrived.or(entry.arrived);
        }
        entry.finished |= ack.shard_end;
        entry.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(shard: &str, seq: Option<&str>, end: bool) -> Ack {
        Ack {
            shard: shard.into(),
            sequence_number: seq.map(str::to_string),
            sub_sequence: None,
            shard_end: end,
            arrived: None,
        }
    }

    #[test]
    fn an_ack_moves_its_shard_only_and_an_empty_shard_end_keeps_the_last_record() {
        let p = Positions::default();
        p.apply(&ack("a", Some("10"), false));
        p.apply(&ack("b", Some("7"), false));
        let a = p.apply(&ack("a", None, true));
        assert_eq!(a.sequence_number.as_deref(), Some("10"));
        assert!(a.finished);
        assert_eq!(
            p.get("b").and_then(|c| c.sequence_number).as_deref(),
            Some("7")
        );
        assert_eq!(p.finished(), HashSet::from(["a".to_string()]));
    }

    #[test]
    fn a_whole_record_clears_the_sub_record_of_a_resumed_aggregate() {
        let p = Positions::new(BTreeMap::from([(
            "a".to_string(),
            ShardCheckpoint {
                sequence_number: Some("5".into()),
                sub_sequence: Some(3),
                finished: false,
                arrived: None,
            },
        )]));
        let moved = p.apply(&ack("a", Some("9"), false));
        assert_eq!(moved.sub_sequence, None);
        assert_eq!(moved.sequence_number.as_deref(), Some("9"));
    }
}
