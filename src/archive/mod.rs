//! The CloudTrail archive (`backtest`'s source): the organization-trail key layout, the
//! pruned listing plan, and the two stores it lists, S3 and a local directory.

pub mod layout;
pub mod local;
#[cfg(test)]
mod local_tests;
pub mod plan;
pub mod s3;
pub mod walk;
#[cfg(test)]
mod walk_tests;

pub use plan::{Lister, Listing, Object, Planned, Scope};
pub use walk::{walk, Walking, Window};
