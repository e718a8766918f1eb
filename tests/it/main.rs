//! The integration tests, one binary (each test file a module): the crate and the AWS SDK are
//! linked once instead of once per file. Run one file's tests with `cargo test --test it cli::`.

// Tests read back whole files and gunzip what the code under test wrote (clippy.toml's rules
// are for the code that reads inputs).
#![allow(clippy::disallowed_methods)]

mod common;

mod archive_walk;
mod backfill;
mod backtest;
mod cli;
mod delivery;
mod deploy;
mod deploy_stacks;
mod efo;
mod faults;
mod filter_cli;
mod first_seen;
mod gap;
mod health;
mod identity;
mod image;
mod incident;
mod kinesis;
mod lambda;
mod leases;
mod one_message;
mod org;
mod prometheus;
mod roads;
mod runbooks;
mod serve;
mod shaping_cli;
mod sigma;
mod sigma_oracle;
mod sns;
