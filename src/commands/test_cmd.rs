//! `trailwatch test`: runs the config's own tests ([`trailwatch::tools::rule_tests`]) and prints a
//! table; non-zero exit on any failure.

use std::path::PathBuf;
use std::process::ExitCode;

use trailwatch::tools::rule_tests::{self, Row};

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let (a, b, c, d) = Row::HEADER;
    println!("{a:<6} {b:<40} {c:<56} {d:<6} DETAIL");
    let out = rule_tests::run(&config);
    for row in &out.rows {
        println!("{}", row.line());
    }
    println!(
        "{} passed, {} failed, {} rules, {} without tests{}",
        out.passed,
        out.failed,
        out.rules,
        out.untested.len(),
        if out.untested.is_empty() {
            String::new()
        } else {
            format!(": {}", out.untested.join(", "))
        }
    );
    Ok(if out.failed == 0 {
        exit::ok()
    } else {
        exit::nothing_read()
    })
}
