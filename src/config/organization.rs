//! `[organization]`: read the accounts, OUs and SCPs from AWS Organizations (issue 13).

use std::time::Duration;

use serde::Deserialize;
use toml::{Table, Value};

use super::collector::Collector;

/// Where the organization is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// An IAM role in the management (or delegated-admin) account, assumed first.
    pub role_arn: Option<String>,
    /// How often the tree and the SCPs are read again.
    pub refresh: Duration,
    /// An account's approved regions are its effective SCP region allow-list.
    pub regions_from_scps: bool,
    /// After the stream carries a change to the organization, wait this long, then read it
    /// again (more changes in the meantime share the read).
    pub change_delay: Duration,
    /// With no tree saved, how long `run` and `serve` wait at start for the first read
    /// before judging on the config policy (what they judge then is judged again once the
    /// organization is read).
    pub first_read_timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    source: String,
    role_arn: Option<String>,
    #[serde(default = "default_refresh")]
    refresh: String,
    #[serde(default = "default_true")]
    regions_from_scps: bool,
    #[serde(default = "default_change_delay")]
    change_delay: String,
    #[serde(default = "default_first_read_timeout")]
    first_read_timeout: String,
}

fn default_first_read_timeout() -> String {
    "2m".into()
}

fn default_change_delay() -> String {
    "5s".into()
}

fn default_refresh() -> String {
    "15m".into()
}

fn default_true() -> bool {
    true
}

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("role/")
}

/// Reads `[organization]`; `None` when the table is absent (or unreadable, reported).
pub(super) fn read(c: &mut Collector, table: Option<Table>) -> Option<Organization> {
    let raw: Raw = c.read("organization", Value::Table(table?))?;
    if raw.source != "aws" {
        c.error(
            "organization.source",
            format!("{:?}: expected \"aws\" (AWS Organizations)", raw.source),
        );
    }
    if let Some(arn) = &raw.role_arn {
        if !is_role_arn(arn) {
            c.error(
                "organization.role_arn",
                format!("{arn:?}: expected an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME"),
            );
        }
    }
    let refresh = match humantime::parse_duration(&raw.refresh) {
        Ok(d) if d >= Duration::from_secs(1) => {
            if d < Duration::from_secs(60) {
                c.warn(
                    "organization.refresh",
                    "below 1m: a large organization takes more than that to read, and Organizations throttles (1m or more is expected in production)",
                );
            }
            d
        }
        Ok(_) => {
            c.error("organization.refresh", "expected at least 1s");
            Duration::from_secs(60)
        }
        Err(e) => {
            c.error(
                "organization.refresh",
                format!(
                    "{:?} is not a duration ({e}); expected e.g. \"15m\"",
                    raw.refresh
                ),
            );
            Duration::from_secs(900)
        }
    };
    let change_delay = match humantime::parse_duration(&raw.change_delay) {
        Ok(d) if d <= Duration::from_secs(3600) => d,
        Ok(_) => {
            c.error("organization.change_delay", "expected at most 1h");
            Duration::from_secs(5)
        }
        Err(e) => {
            c.error(
                "organization.change_delay",
                format!(
                    "{:?} is not a duration ({e}); expected e.g. \"5s\"",
                    raw.change_delay
                ),
            );
            Duration::from_secs(5)
        }
    };
    let first_read_timeout = match humantime::parse_duration(&raw.first_read_timeout) {
        Ok(d) if d <= Duration::from_secs(3600) => d,
        Ok(_) => {
            c.error("organization.first_read_timeout", "expected at most 1h");
            Duration::from_secs(120)
        }
        Err(e) => {
            c.error(
                "organization.first_read_timeout",
                format!(
                    "{:?} is not a duration ({e}); expected e.g. \"2m\"",
                    raw.first_read_timeout
                ),
            );
            Duration::from_secs(120)
        }
    };
    Some(Organization {
        role_arn: raw.role_arn,
        refresh,
        regions_from_scps: raw.regions_from_scps,
        change_delay,
        first_read_timeout,
    })
}
