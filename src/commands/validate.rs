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
            let org_warnings = match &loaded.config.organization {
                Some(org) => match membership(path, org, &policy)? {
                    Ok(w) => w,
                    Err(code) => return Ok(code),
                },
                None => 0,
            };
            let s = &loaded.config.sigma;
            let sigma = trailwatch::rules::sigma::load_files(&s.files, &s.placeholders);
            for skipped in &sigma.skipped {
                println!("skipped: {skipped}");
            }
            for e in &sigma.errors {
                println!("error: {e}");
            }
            if !sigma.errors.is_empty() {
                println!(
                    "{}: {} Sigma rule files cannot be loaded (the other {} rules would run)",
                    path.display(),
                    sigma.errors.len(),
                    sigma.rules.len()
                );
                return Ok(exit::bad_config());
            }
            let p = &loaded.config.policy;
            println!(
                "{}: ok ({} warnings): {} accounts, {} OUs, {} exemptions, {} custom rules with {} tests, {} Sigma rules ({} of them correlations, {} skipped), organization default {}",
                path.display(),
                loaded.warnings.len() + org_warnings,
                policy.accounts.len(),
                p.ous.len(),
                p.exempt.len(),
                loaded.config.rules.len(),
                loaded.config.rules.iter().map(|r| r.tests.len()).sum::<usize>(),
                sigma.rules.len(),
                sigma.rules.iter().filter(|r| r.correlation.is_some()).count(),
                sigma.skipped.len(),
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

/// With `[organization]`: reads it (exit 2 with the API error when it cannot), and warns for
/// every account whose `ou` the config sets (on the account or in an OU's `accounts`) where
/// AWS Organizations puts it elsewhere, or which it does not know. Gives the warnings printed.
fn membership(
    path: &Path,
    org: &trailwatch::config::organization::Organization,
    policy: &RegionPolicy,
) -> anyhow::Result<Result<usize, ExitCode>> {
    use trailwatch::org::fetch;
    let rt = super::runtime()?;
    let read = rt.block_on(async {
        let client = fetch::client(org.role_arn.as_deref()).await;
        fetch::fetch(&client).await
    });
    let tree = match read {
        Ok((tree, _)) => tree,
        Err(e) => {
            println!(
                "error: {}: organization: cannot read the organization: {e}",
                path.display()
            );
            return Ok(Err(exit::bad_config()));
        }
    };
    let warnings = trailwatch::tools::validate::misplaced(&tree, policy);
    for w in &warnings {
        println!("warning: {}: {w}", path.display());
    }
    println!(
        "{}: organization: {} accounts, {} OUs, {} SCPs",
        path.display(),
        tree.accounts.len(),
        tree.ous.len(),
        tree.policies.len()
    );
    Ok(Ok(warnings.len()))
}
