//! The organization as AWS Organizations knows it (issue 13): its SCPs read for region intent
//! (`scp.rs`), each account's effective restriction across root, OUs and account
//! (`effective.rs`), a CloudTrail event's IAM action as SCPs name it (`actions.rs`), the tree
//! as read (`tree.rs`) and the reading itself (`fetch.rs`).

pub mod actions;
pub mod effective;
pub mod fetch;
pub mod scp;
pub mod tree;
