//! Sources of records. A source reads records, hands them to [`crate::decode`], and moves on
//! (replay), answers (Firehose, Lambda) or checkpoints (Kinesis) only once every alert from
//! them is delivered or spooled.

pub mod connections;
pub mod efo;
pub mod firehose;
pub mod kinesis;
pub mod leases;
pub mod replay;
mod shard;
