//! `trailwatch validate`: every config problem at once, then a one-line summary.

use std::path::Path;
use std::process::ExitCode;

use trailwatch::config::{self, Level};
use trailwatch::rules::RegionPolicy;

use super::exit;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    match config::load(path, trailwatch::clock::now_secs()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("{w}");
            }
            let policy = RegionPolicy::build(&loaded.config.policy);
            let p = &loaded.config.policy;
            println!(
                "{}: ok ({} warnings): {} accounts, {} OUs, {} exemptions, {} custom rules with {} tests, organization default {}",
                path.display(),
                loaded.warnings.len(),
                policy.accounts.len(),
                p.ous.len(),
                p.exempt.len(),
                loaded.config.rules.len(),
                loaded.config.rules.iter().map(|r| r.tests.len()).sum::<usize>(),
                if policy.organization.approved.is_empty() {
                    "none".to_string()
                } else {
                    policy.organization.approved.join(", ")
                }
            );
            Ok(exit::ok())
        }
        Err(e) => {
            for p in &e.problems {
                println!("{p}");
            }
            let errors = e
                .problems
                .iter()
                .filter(|p| p.level == Level::Error)
                .count();
            println!("{}: {errors} errors", path.display());
            Ok(exit::bad_config())
        }
    }
}
