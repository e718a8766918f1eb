//! `trailwatch org`: the organization as AWS Organizations has it, one row per account: its
//! name, OU path, approved regions and where they came from (the SCPs that restrict it, or
//! the config policy by real OU membership), and the SCP statements not understood.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use trailwatch::org::{fetch, tree::Tree};
use trailwatch::rules::policy::RegionPolicy;

use super::{exit, load_config};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// One account's row.
pub struct Row {
    pub account: String,
    pub name: String,
    pub status: String,
    pub ou_path: String,
    pub approved: Vec<String>,
    pub source: String,
    pub not_understood: Vec<String>,
}

/// Every account of the tree, with its approved regions.
pub fn rows(tree: &Tree, policy: &RegionPolicy, regions_from_scps: bool) -> Vec<Row> {
    tree.accounts
        .iter()
        .map(|(id, a)| {
            let eff = tree.effective(id);
            let (approved, source) = match eff.allowed_regions() {
                Some(list) if regions_from_scps => (list, eff.source()),
                _ => {
                    let p = policy.for_member(id, &tree.ou_path(id));
                    let why = match tree.is_management(id) {
                        true => " (management account: SCPs do not apply)",
                        false => "",
                    };
                    (p.approved, format!("config:{}{why}", p.level))
                }
            };
            Row {
                account: id.clone(),
                name: a.name.clone(),
                status: a.status.clone(),
                ou_path: tree.ou_path_names(id),
                approved,
                source,
                not_understood: eff
                    .not_understood
                    .iter()
                    .map(|(target, n)| {
                        format!(
                            "{} at {target} ({}): {}",
                            n.policy,
                            n.sid.as_deref().unwrap_or("-"),
                            n.why
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let Some(org) = config.organization.clone() else {
        eprintln!(
            "trailwatch: {}: no [organization] table: nothing to read",
            args.config.display()
        );
        return Ok(exit::bad_config());
    };
    let rt = super::runtime()?;
    let read = rt.block_on(async {
        let client = fetch::client(org.role_arn.as_deref()).await;
        fetch::fetch(&client).await
    });
    let (tree, stats) = match read {
        Ok(t) => t,
        Err(e) => {
            eprintln!("trailwatch: cannot read the organization: {e}");
            return Ok(exit::bad_config());
        }
    };
    let policy = RegionPolicy::build(&config.policy);
    let rows = rows(&tree, &policy, org.regions_from_scps);
    match args.format {
        Format::Json => {
            for r in &rows {
                println!(
                    "{}",
                    json!({
                        "account": r.account,
                        "name": r.name,
                        "status": r.status,
                        "ou_path": r.ou_path,
                        "approved_regions": r.approved,
                        "source": r.source,
                        "not_understood": r.not_understood,
                    })
                );
            }
        }
        Format::Table => {
            println!(
                "{:<14} {:<24} {:<10} {:<28} {:<40} source",
                "account", "name", "status", "ou_path", "approved_regions"
            );
            for r in &rows {
                println!(
                    "{:<14} {:<24} {:<10} {:<28} {:<40} {}",
                    r.account,
                    r.name,
                    r.status,
                    r.ou_path,
                    r.approved.join(","),
                    r.source
                );
                for n in &r.not_understood {
                    println!("{:<14} not understood: {n}", "");
                }
            }
        }
    }
    eprintln!(
        "trailwatch org: {} accounts, {} OUs, {} SCPs; {} API calls in {:.2} s",
        tree.accounts.len(),
        tree.ous.len(),
        tree.policies.len(),
        stats.calls,
        stats.elapsed.as_secs_f64()
    );
    Ok(exit::ok())
}
