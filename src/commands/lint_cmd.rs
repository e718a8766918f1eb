//! `trailwatch lint`: findings on one pattern, or on every rule filter and the read-prefix
//! policy of a config. Exit 2 for an invalid pattern, 1 for error findings, else 0.

use std::path::PathBuf;
use std::process::ExitCode;

use trailwatch::filter::lint::{lint, Finding, Level, Render};

use super::{exit, load_config};

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Args {
    /// A filter pattern to lint.
    #[arg(long, short)]
    pattern: Option<String>,
    /// A config: lints every rule's filter and the policy's read prefixes.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// A Sigma rule file or a folder of them: fields, modifiers, conditions.
    #[arg(long)]
    sigma: Option<PathBuf>,
}

fn print(findings: &[Finding], pattern: &str, origin: &str) {
    for f in findings {
        println!("{}\n", Render(f, pattern, origin));
    }
}

/// Read prefixes that exempt security-relevant calls (the policy's own classifier).
fn lint_read_prefixes(prefixes: &[String], exceptions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in prefixes {
        let risky = match p.as_str() {
            "Assume" => Some("AssumeRole* (credential issuance)"),
            "Get" if !exceptions.iter().any(|e| e == "GetSessionToken") => {
                Some("GetSessionToken and GetFederationToken (credential issuance); add them to read_prefix_exceptions")
            }
            _ => None,
        };
        if let Some(what) = risky {
            out.push(format!(
                "warning[TW013-read-prefix-policy]: read prefix {p:?} treats {what} as read-only when a record has no readOnly\n  --> policy.read_prefixes"
            ));
        }
    }
    out
}

/// `lint --sigma PATH`: exit 2 when a rule does not load, 1 for error findings, else 0.
fn lint_sigma(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    use trailwatch::rules::sigma::lint::lint_files;
    let mut files = Vec::new();
    if path.is_dir() {
        trailwatch::config::sigma::rule_files(path, &mut files)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    } else {
        files.push(path.to_path_buf());
    }
    let (findings, rules) = lint_files(&files, &Default::default());
    for f in &findings {
        println!("{f}\n");
    }
    let loads = [
        trailwatch::rules::sigma::BROKEN,
        trailwatch::rules::sigma::NO_SELECTION,
        trailwatch::rules::sigma::UNSUPPORTED,
    ];
    let not_loaded = findings.iter().filter(|f| loads.contains(&f.code)).count();
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    println!(
        "{} findings ({errors} errors) in {rules} rules of {} files; {not_loaded} rules not loaded",
        findings.len(),
        files.len()
    );
    Ok(if not_loaded > 0 {
        exit::bad_config()
    } else if errors > 0 {
        exit::nothing_read()
    } else {
        exit::ok()
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.sigma {
        return lint_sigma(path);
    }
    if let Some(pattern) = args.pattern {
        let findings = lint(&pattern);
        print(&findings, &pattern, "pattern");
        let invalid = findings.iter().any(|f| f.code == "TW000-syntax");
        let errors = findings.iter().filter(|f| f.level == Level::Error).count();
        println!("{} findings ({errors} errors)", findings.len());
        return Ok(if invalid {
            exit::bad_config()
        } else if errors > 0 {
            exit::nothing_read()
        } else {
            exit::ok()
        });
    }
    let Some(path) = args.config else {
        return Ok(exit::bad_config());
    };
    let config = match load_config(&path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let (mut total, mut errors) = (0, 0);
    for rule in &config.rules {
        let findings = lint(&rule.filter);
        total += findings.len();
        errors += findings.iter().filter(|f| f.level == Level::Error).count();
        print(
            &findings,
            &rule.filter,
            &format!("{}: rule {}", rule.file, rule.id),
        );
    }
    let top = &config.policy.top;
    for w in lint_read_prefixes(&top.read_prefixes, &top.read_prefix_exceptions) {
        total += 1;
        println!("{w}\n");
    }
    println!(
        "{total} findings ({errors} errors) in {} rules",
        config.rules.len()
    );
    Ok(if errors > 0 {
        exit::nothing_read()
    } else {
        exit::ok()
    })
}
