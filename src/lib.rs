//! trailwatch: organization-wide CloudTrail in, alerts out, in seconds.
//!
//! Data flows one way; acceptance flows back:
//!
//! ```text
//!  source ──records──► decode ──Event──► pipeline ──Alert──► shaping ──Item──► route ──► sinks
//!  kinesis, firehose,   envelopes,        dedup,      siem     notify            by stream,  file, stdout,
//!  lambda, replay       dead letters      rules       stream   stream            severity,   HEC, webhook,
//!                                                                                OU, region  Slack, SNS
//!     ◄──────── acceptance: every item delivered, spooled or rejected (or written) ────────┘
//! ```
//!
//! - [`source`]: where records come from: the Kinesis consumer (with DynamoDB
//!   [`source::leases`]), the Firehose HTTP endpoint protocol, Lambda events, replay files.
//! - [`engine`]: live processing, once for every road: [`decode`] → [`pipeline`] →
//!   [`shaping`] → the output ([`sink`], or the default writer), with counters, dead
//!   letters, the [`state`] snapshot and crash recovery. Roads (the binary's commands) are
//!   adapters that map the engine's acceptance to a checkpoint, an HTTP status, a Lambda
//!   response or an exit code.
//!   [`engine::parallel`] decodes and judges on several threads and admits in order.
//! - [`decode`]: bytes → [`event::Event`]s, whatever the envelope; bad input → dead letters.
//! - [`archive`]: the CloudTrail archive (S3 or a local copy) in the organization-trail
//!   layout, listed by pruned prefixes (`backtest`'s source); [`backtest`]: its report.
//! - [`pipeline`]: synchronous and clock-injected: dedup by eventID, then [`rules`].
//! - [`shaping`]: the notify stream people receive (aggregation, rate limits, digests).
//! - [`item`]: what is delivered (a siem alert or a notify item); [`render`]: every format.
//! - [`sink`]: routes, per-sink workers, the spool, the destinations.
//! - [`config`]: the TOML file's vocabulary, validated once at start-up; it imports no
//!   runtime module. [`build`] is the one place that turns a whole `Config` into an engine.
//!
//! Layers, each importing only from those before it: vocabulary ([`alert`], [`event`],
//! [`identity`], [`filter`], [`glob`], [`regions`], [`clock`]) → [`config`] → runtime (decode, rules,
//! pipeline, shaping, item, render, sink, source, state, engine) → [`build`] → the binary.

pub mod alert;
pub mod archive;
pub mod atomic_file;
pub mod aws;
pub mod backoff;
pub mod backtest;
pub mod build;
pub mod clock;
pub mod cloudtrail_fields;
pub mod config;
pub mod decode;
pub mod dynamo;
pub mod engine;
pub mod error_text;
pub mod event;
pub mod filter;
pub mod firstseen;
pub mod glob;
pub mod health;
pub mod identity;
pub mod item;
pub mod kleene;
pub mod metric;
pub mod metrics_server;
pub mod org;
pub mod pipeline;
pub mod readiness;
pub mod regions;
pub mod render;
pub mod road;
pub mod rules;
pub mod shaping;
pub mod shortfall;
pub mod sink;
pub mod source;
pub mod state;
pub mod tools;
