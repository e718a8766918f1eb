//! The organization as AWS Organizations knows it (issue 13): its SCPs read for region intent
//! (`scp.rs`), each account's effective restriction across root, OUs and account
//! (`effective.rs`), and a CloudTrail event's IAM action as SCPs name it (`actions.rs`).

pub mod actions;
pub mod effective;
pub mod scp;
