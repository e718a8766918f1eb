//! The TOML configuration: its schema (serde structs with `deny_unknown_fields`), loading
//! that reports every problem at once, and the build step that turns it into runtime parts.
//!
//! Loading happens once, at start-up. Each section and each table entry (an account, an OU,
//! an exemption) is read on its own, so one typo does not hide the next; then
//! [`validate`] checks meaning (regions, references, dates) and collects every finding.

mod schema;
mod validate;

use std::fmt;
use std::path::Path;

pub use schema::*;
pub use validate::{parse_date, parse_duration};

/// How bad a finding is: errors stop start-up, warnings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warning,
    Error,
}

/// One configuration finding: file, key path, what is wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub level: Level,
    pub file: String,
    /// Dotted key path, e.g. `policy.accounts."111122223333".extra_regions[1]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Error => "error",
        };
        if self.key.is_empty() {
            write!(f, "{level}: {}: {}", self.file, self.message)
        } else {
            write!(f, "{level}: {}: {}: {}", self.file, self.key, self.message)
        }
    }
}

/// The configuration could not be used; every problem found is listed.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loaded, validated configuration and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Problem>,
}

/// Reads and validates a config file. `today` (days since the epoch) decides which
/// exemptions are reported as expired.
pub fn load(path: &Path, today_secs: i64) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![Problem {
            level: Level::Error,
            file: file.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    load_str(&text, &file, today_secs)
}

/// Like [`load`], from text; `file` names it in messages.
pub fn load_str(text: &str, file: &str, today_secs: i64) -> Result<Loaded, ConfigError> {
    let (config, mut problems) = validate::parse(text, file, today_secs);
    problems.sort_by_key(|p| std::cmp::Reverse(p.level));
    let (errors, warnings): (Vec<_>, Vec<_>) =
        problems.into_iter().partition(|p| p.level == Level::Error);
    match config {
        Some(config) if errors.is_empty() => Ok(Loaded { config, warnings }),
        _ => Err(ConfigError {
            problems: errors.into_iter().chain(warnings).collect(),
        }),
    }
}
