//! The delivery side: the routing table ([`route`]), one worker per `[[sinks]]` entry with a
//! bounded queue, retries, a durable spool and a delivered-ids journal ([`deliver`],
//! `worker`, [`spool`], [`journal`]), the destinations'
//! protocols ([`destination`]: file and stdout, Splunk HEC, webhooks, Slack, SNS), the one
//! error classifier ([`error`]), and building all of it from `[delivery]`, `[[sinks]]` and
//! `[[routes]]` ([`build`]). Sinks never know sources: they meet only in the engine's
//! acceptance.

pub mod build;
pub mod deliver;
pub mod destination;
pub mod error;
pub mod journal;
pub mod route;
pub mod spool;
pub mod tally;
mod worker;
