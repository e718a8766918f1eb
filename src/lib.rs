//! trailwatch: organization-wide CloudTrail in, alerts out, in seconds.
//!
//! Data flows one way:
//!
//! ```text
//! source ──records──► decode ──Event──► pipeline (dedup, rules) ──Alert──► sinks
//! ```
//!
//! - [`source`]: where records come from (`replay`: files, directories, stdin).
//! - [`decode`]: bytes → [`event::Event`]s, whatever the envelope; bad input → dead letters.
//! - [`pipeline`]: synchronous and clock-injected: dedup by eventID, then [`rules`].
//! - [`alert`]: the alert model and its JSON form (the SIEM feed); [`sink`]: where alerts go.
//! - [`config`]: the TOML file, validated once at start-up; [`regions`]: AWS region codes.

pub mod alert;
pub mod atomic_file;
pub mod backoff;
pub mod config;
pub mod decode;
pub mod event;
pub mod filter;
pub mod pipeline;
pub mod regions;
pub mod render;
pub mod route;
pub mod rules;
pub mod shaping;
pub mod sink;
pub mod source;
