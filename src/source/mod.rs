//! Sources of records. A source reads records, hands them to [`crate::decode`], and moves on
//! (replay), answers (Firehose, Lambda) or checkpoints (Kinesis) only once every alert from
//! them is delivered or spooled.

pub mod connections;
pub mod firehose;
pub mod kinesis;
pub mod lambda;
pub mod leases;
pub mod replay;

/// An error and its sources on one line (the AWS SDK's Display is only the top of the chain).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        message.push_str(": ");
        message.push_str(&s.to_string());
        src = s.source();
    }
    message
}
