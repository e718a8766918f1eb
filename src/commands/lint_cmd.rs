//! `trailwatch lint`: findings on one pattern, or on every rule filter and the read-prefix
//! policy of a config. Exit 2 for an invalid pattern, 1 for error findings, else 0.

use std::path::PathBuf;
use std::process::ExitCode;

use trailwatch::filter::lint::{lint, Finding, Level, Render};

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
        match read_sample(&files, sample) {
            Ok(s) => {
                println!("sample: {} records", s.records);
                findings.extend(trailwatch::rules::sigma::sample::findings(
                    &files,
                    &Default::default(),
                    &s,
                ));
            }
            Err(code) => return Ok(code),
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

/// Reads `--sample` inputs (any form replay reads) into what the sample findings need; an
/// input that cannot be read, or records that cannot be, stop the lint (exit 3): findings on
/// part of a sample would be said as if of all of it.
fn read_sample(
    files: &[PathBuf],
    inputs: &[String],
) -> Result<trailwatch::rules::sigma::sample::Sample, ExitCode> {
    use trailwatch::decode::{DeadLetter, Decoder, Limits, Position, Visit};
    use trailwatch::event::Event;
    use trailwatch::rules::sigma::sample::Sample;
    use trailwatch::source::replay::{self, Reader};
    struct Observe(Sample, u64);
    impl Visit for Observe {
        fn event(&mut self, ev: Event<'_>, pos: &Position) {
            match serde_json::from_str::<serde_json::Value>(ev.raw) {
                Ok(v) => self.0.observe(&v),
                // Decoded, but not a JSON value as a whole: as unreadable as a dead letter.
                Err(e) => self.dead_letter(DeadLetter::new(
                    pos,
                    ev.raw.as_bytes(),
                    format!("JSON: {e}"),
                )),
            }
        }
        fn dead_letter(&mut self, dead: DeadLetter) {
            self.1 += 1;
            eprintln!(
                "trailwatch lint: unreadable sample record at {} {}: {}",
                dead.input, dead.path, dead.reason
            );
        }
    }
    let loaded = trailwatch::rules::sigma::load_files(files, &Default::default());
    let mut seen = Observe(Sample::new(loaded.rules), 0);
    let reader = Reader {
        decoder: Decoder::new(Limits::default()),
        max_document_bytes: 1 << 30,
    };
    let (expanded, _, errors) = replay::expand(inputs);
    let mut unread = errors.len();
    for (name, e) in &errors {
        eprintln!("trailwatch lint: cannot read sample {name}: {e}");
    }
    for input in &expanded {
        let read = replay::open(input).and_then(|r| reader.read(&input.name(), r, &mut seen));
        if let Err(e) = read {
            eprintln!("trailwatch lint: cannot read sample {}: {e}", input.name());
            unread += 1;
        }
    }
    if unread > 0 || seen.1 > 0 {
        eprintln!(
            "trailwatch lint: INCOMPLETE: the sample was not read whole ({unread} inputs unread, {} records unreadable)",
            seen.1
        );
        return Err(exit::incomplete());
    }
    Ok(seen.0)
}
