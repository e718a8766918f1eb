//! Sources of records. A source reads records, hands them to [`crate::decode`], and moves on
//! (replay), answers (Firehose, Lambda) or checkpoints (Kinesis) only once every alert from
//! them is delivered or spooled.

pub mod checkpoint;
pub mod kinesis;
pub mod metrics_server;
pub mod replay;
