//! `trailwatch lint`: findings on one pattern, or on every rule filter and the read-prefix
//! policy of a config. Exit 2 for an invalid pattern, 1 for error findings, else 0.

use std::path::PathBuf;
use std::process::ExitCode;

use trailwatch::filter::lint::{lint, Finding, Level, Render};
use trailwatch::tools::lint::SampleRead;

use super::{exit, load_config};

#[derive(clap::Args)]
#[group(skip)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(false))]
pub struct Args {
    /// A filter pattern to lint.
    #[arg(long, short, group = "what")]
    pattern: Option<String>,
    /// A config: lints every rule's filter and the policy's read prefixes.
    #[arg(long, short, group = "what")]
    config: Option<PathBuf>,
    /// A Sigma rule file or a folder of them: fields, modifiers, conditions.
    #[arg(long, group = "what")]
    sigma: Option<PathBuf>,
    /// With --sigma: real records (any form `replay` reads) to check the rules against:
    /// fields that never occur, fields that are only arrays or objects where a rule compares
    /// text, JSON-string fields a quoted value cannot match, rules that match nothing.
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "sigma")]
    sample: Vec<String>,
}

fn print(findings: &[Finding], pattern: &str, origin: &str) {
    for f in findings {
        println!("{}\n", Render(f, pattern, origin));
    }
}

/// `lint --sigma PATH`: exit 2 when a rule does not load, 1 for error findings, else 0.
fn lint_sigma(path: &std::path::Path, sample: &[String]) -> anyhow::Result<ExitCode> {
    use trailwatch::rules::sigma::lint::lint_files;
    let mut files = Vec::new();
    if path.is_dir() {
        trailwatch::config::sigma::rule_files(path, &mut files)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    } else {
        files.push(path.to_path_buf());
    }
    let (mut findings, rules) = lint_files(&files, &Default::default());
    if !sample.is_empty() {
        let say = |line: &str| eprintln!("{line}");
        match trailwatch::tools::lint::read_sample(&files, sample, &say) {
            SampleRead::Whole(s) => {
                println!("sample: {} records", s.records);
                findings.extend(trailwatch::rules::sigma::sample::findings(
                    &files,
                    &Default::default(),
                    &s,
                ));
            }
            SampleRead::Part { unread, unreadable } => {
                eprintln!("trailwatch lint: INCOMPLETE: the sample was not read whole ({unread} inputs unread, {unreadable} records unreadable)");
                return Ok(exit::incomplete());
            }
        }
    }
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
        return lint_sigma(path, &args.sample);
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
    for w in trailwatch::tools::lint::read_prefixes(&top.read_prefixes, &top.read_prefix_exceptions)
    {
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
