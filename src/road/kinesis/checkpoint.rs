//! The one place that moves a shard's position: an acknowledged batch's [`Ack`] applied to
//! the [`Positions`] the readers start from, and, with a lease table, written to the shard's
//! lease (conditioned on this worker still owning it). The state file takes the positions at
//! each save ([`Checkpointer::save`]); with leases it keeps only the engine's snapshot.

use crate::engine::Engine;
use crate::source::leases::LeaseWriter;
use crate::state::positions::{Ack, Positions};
use crate::state::{ShardCheckpoint, StateFile, Written};

use super::super::RoadError;

/// Where positions are kept: the state file (one worker reads every shard), or a lease
/// table shared by several workers.
#[derive(Clone)]
pub struct Checkpointer {
    positions: Positions,
    leases: Option<LeaseWriter>,
}

/// What committing an acknowledgement came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    /// The position moved (and, with leases, is in the lease table).
    Moved(ShardCheckpoint),
    /// The lease is another worker's now: this worker stops reading the shard.
    LeaseLost,
    /// The position moved here but the lease table could not be written: the next batch's
    /// commit carries it.
    NotWritten(ShardCheckpoint),
}

impl Committed {
    /// Whether the shard's reader reads on.
    pub fn reads_on(&self) -> bool {
        !matches!(self, Committed::LeaseLost)
    }
}

impl Checkpointer {
    /// Positions saved in the state file, from where it left them.
    pub fn file(positions: Positions) -> Checkpointer {
        Checkpointer {
            positions,
            leases: None,
        }
    }

    /// Positions in a lease table (taken leases bring theirs into `positions`).
    pub fn leased(positions: Positions, writer: LeaseWriter) -> Checkpointer {
        Checkpointer {
            positions,
            leases: Some(writer),
        }
    }

    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Moves the shard past an acknowledged batch. Call only once every alert from its
    /// records is accepted.
    pub async fn commit(&self, ack: &Ack) -> Committed {
        let moved = self.positions.apply(ack);
        let Some(writer) = &self.leases else {
            return Committed::Moved(moved);
        };
        match writer.write(&ack.shard, &moved).await {
            Ok(true) => Committed::Moved(moved),
            Ok(false) => Committed::LeaseLost,
            Err(e) => {
                metrics::counter!(crate::metric::CHECKPOINT_ERRORS_TOTAL).increment(1);
                tracing::warn!(shard = %ack.shard, error = %e, "lease checkpoint failed; the next batch carries it");
                Committed::NotWritten(moved)
            }
        }
    }

    /// Writes the state file: the positions (unless they live in a lease table) and the
    /// engine's snapshot, which may only cover events whose alerts were accepted: the caller
    /// waits for every acceptance first.
    pub fn save(&self, state: &mut StateFile, engine: &Engine) -> Result<Written, RoadError> {
        let snapshot = engine
            .snapshot_since(state.since())
            .ok_or(RoadError::Lost)?;
        if self.leases.is_none() {
            state.state.shards = self.positions.all();
        }
        state.state.engine = snapshot;
        Ok(super::super::save_state(state)?)
    }
}
