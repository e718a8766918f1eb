//! The tools around the rules, each the library part of a command that reads events without
//! a road's engine: [`explain`] (why an event alerts, or why not), [`grep`] (`match`),
//! [`rule_tests`] (`test`), [`lint`] (beyond the pattern and Sigma linters), [`validate`]
//! (the config against the organization).

pub mod explain;
pub mod explain_first_seen;
pub mod grep;
pub mod lint;
pub mod rule_tests;
pub mod validate;
