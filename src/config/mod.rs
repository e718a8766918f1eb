//! The TOML configuration: its schema (serde structs with `deny_unknown_fields`), loading
//! that reports every problem at once, and the build step that turns it into runtime parts.
//!
//! Loading happens once, at start-up. Each section and each table entry (an account, an OU,
//! an exemption) is read on its own, so one typo does not hide the next; then
//! [`validate`] checks meaning (regions, references, dates) and collects every finding.

pub mod backfill;
mod collector;
pub mod console;
pub mod delivery;
mod delivery_read;
pub mod first_seen;
pub mod health;
mod key_path;
pub mod organization;
pub mod principal;
mod rules;
mod schema;
mod sequences;
mod shaping;
pub mod sigma;
mod sink_values;
mod sinks;
mod sinks_incident;
mod source;

pub use shaping::{KeyField, ShapingSettings};
pub use source::{
    Checkpoint, Consumer, FirehoseSource, KinesisSettings, KinesisSource, LambdaSource, Start,
};
mod validate;
mod value_de;

pub use rules::{Rule, RuleTest, TestInput, BYPASS_RULE, DRIFT_RULE, REGION_RULE};
pub use sequences::{Expected, Sequence, SequenceStep};

use std::fmt;
use std::path::Path;

pub use collector::{parse_date, parse_duration};
pub use schema::*;

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
    /// The top-level keys and tables the file has (`policy`, `source`, …): a reload checks
    /// that it is a whole config, not an empty or partial one.
    pub tables: std::collections::BTreeSet<String>,
}

/// Reads and validates a config file. `today` (days since the epoch) decides which
/// exemptions are reported as expired.
///
/// `env:NAME` reads the TOML text from the environment variable `NAME` (containers whose
/// config comes from a parameter store).
pub fn load(path: &Path, today_secs: i64) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    if let Some(var) = file.strip_prefix("env:") {
        let text = std::env::var(var).map_err(|_| ConfigError {
            problems: vec![Problem {
                level: Level::Error,
                file: file.clone(),
                key: String::new(),
                message: format!("the environment variable {var} is not set"),
            }],
        })?;
        return load_str(&text, &file, today_secs);
    }
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
        Some((config, tables)) if errors.is_empty() => Ok(Loaded {
            config,
            warnings,
            tables,
        }),
        _ => Err(ConfigError {
            problems: errors.into_iter().chain(warnings).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_bounds_out_of_range_are_errors_with_their_keys() {
        let text = "[policy]\napproved_regions = [\"us-east-1\"]\n\
                    [identity]\nmax_sessions = 0\nmax_session_duration = \"1m\"\n";
        let e = load_str(text, "t.toml", 0).unwrap_err();
        let all: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
        let all = all.join("\n");
        assert!(
            all.contains("identity.max_sessions: must be at least 1"),
            "{all}"
        );
        assert!(
            all.contains("identity.max_session_duration: \"1m\" is out of range; expected a duration from 15m"),
            "{all}"
        );
        let ok = "[policy]\napproved_regions = [\"us-east-1\"]\n[identity]\nmax_sessions = 5\n";
        let c = load_str(ok, "t.toml", 0).unwrap().config;
        assert_eq!(c.dedup.identity.max_sessions, 5);
        assert_eq!(c.dedup.identity.max_session_duration_secs, 12 * 3600);
    }

    #[test]
    fn routes_know_the_organization_rules_only_with_the_organization() {
        let base = "[policy]\napproved_regions = [\"us-east-1\"]\n\n[[sinks]]\nname = \"out\"\ntype = \"file\"\npath = \"a.jsonl\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"out\"]\n\n[[routes]]\nstream = \"notify\"\nsinks = [\"out\"]\nrules = [\"scp-bypass\", \"org-policy-drift\"]\n";
        let unknown = |text: &str| -> Vec<String> {
            let loaded = load_str(text, "t.toml", 0).unwrap();
            loaded
                .warnings
                .iter()
                .map(|w| w.to_string())
                .filter(|w| w.contains("no rule is named"))
                .collect()
        };
        assert_eq!(
            unknown(base).len(),
            2,
            "without [organization] they are never raised"
        );
        let with_org = format!("{base}\n[organization]\nsource = \"aws\"\n");
        assert!(unknown(&with_org).is_empty(), "{:?}", unknown(&with_org));
        // Nor may a custom rule take their ids.
        let custom = format!("{with_org}\n[[rules]]\nid = \"org-policy-drift\"\ntitle = \"t\"\nfilter = \"{{ $.eventName = X }}\"\n");
        let err = load_str(&custom, "t.toml", 0).unwrap_err().to_string();
        assert!(
            err.contains(
                "not a built-in rule (unapproved-region, scp-bypass, org-policy-drift, feed-silent"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_example_file_loads_with_its_documented_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trailwatch.toml");
        let loaded = load(&path, 0).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = &loaded.config;
        // The example spells out every default: they must equal the built-in ones.
        assert_eq!(c.policy.top.read_prefixes, schema::default_read_prefixes());
        assert_eq!(c.policy.global_services, GlobalServices::default());
        assert_eq!(c.dedup, Dedup::default());
        assert_eq!(c.decode, Decode::default());
        assert_eq!(c.shaping, ShapingSettings::default());
        assert_eq!(c.checkpoint, Checkpoint::default());
        assert_eq!(c.delivery.settings, delivery::DeliverySettings::default());
        assert!(!c.delivery.is_configured());
        assert_eq!(c.sequences.len(), 2);
        assert_eq!(c.sequences[0].steps.len(), 5);
        assert_eq!(c.sequences[0].steps[4].at, 48);
        assert_eq!(
            c.policy.accounts["111122223333"].ou.as_deref(),
            Some("ou-ab12-prodeu")
        );
        assert_eq!(c.policy.exempt.len(), 3);
        assert_eq!(c.baseline, first_seen::Baseline::default());
        let fs: Vec<_> = c.first_seen.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(
            fs,
            [
                "first-seen:region-for-principal",
                "first-seen:region-for-account"
            ]
        );
        // The first rule spells out the defaults the second takes.
        let (a, b) = (&c.first_seen[0], &c.first_seen[1]);
        assert_eq!(
            (a.learn_for, a.forget_after, a.activity_only, a.severity),
            (b.learn_for, b.forget_after, b.activity_only, b.severity)
        );
        assert_eq!((a.learn_for, a.forget_after), (14 * 86_400, 90 * 86_400));
    }

    /// Issue 32: `[[first_seen]]` and `[baseline]`, every problem at once by its key.
    #[test]
    fn first_seen_rules_are_checked_by_key() {
        let text = "[[first_seen]]\nname = \"Bad Name\"\nkey = [\"principal\", \"regoin\"]\nvalue = [\"region\", \"event_name\"]\nlearn_for = \"2y\"\n\
                    [[first_seen]]\nname = \"ok\"\nkey = []\nvalue = [\"requestParameters.instanceType\"]\nforget_after = \"soon\"\n\
                    [[first_seen]]\nname = \"ok\"\nkey = [\"identity.origin\"]\nvalue = [\"region\"]\n\
                    [baseline]\nmax_pairs = 0\n\
                    [runbooks]\n\"first-seen:nope\" = \"https://wiki/x\"\n\"first-seen:ok\" = \"https://wiki/ok\"\n";
        let msg = load_str(text, "f.toml", 0).unwrap_err().to_string();
        for want in [
            "first_seen[0].name: \"Bad Name\": expected lowercase letters",
            "first_seen[0].key[1]: \"regoin\": expected principal, account, region",
            "first_seen[0].value: expected at most 3 fields",
            "first_seen[0].learn_for: \"2y\" is out of range",
            "first_seen[1].key: expected at least one field",
            "first_seen[1].forget_after:",
            "first_seen[2].name: \"ok\" is the name of an earlier",
            "baseline.max_pairs: 0 is out of range",
            "runbooks.\"first-seen:nope\": no [[first_seen]] rule is named \"nope\"",
        ] {
            assert!(msg.contains(want), "{want}\n{msg}");
        }
        assert!(
            !msg.contains("first-seen:ok"),
            "a configured rule takes a runbook: {msg}"
        );
    }

    #[test]
    fn the_example_health_section_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trailwatch.toml");
        let text = std::fs::read_to_string(path).unwrap();
        // The commented section, uncommented.
        let section: String = text
            .lines()
            .skip_while(|l| *l != "# [health]")
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches("# ").trim_start_matches('#')))
            .collect();
        assert!(section.starts_with("[health]\n"), "{section}");
        let with_org = format!("{section}\n[organization]\nsource = \"aws\"\n");
        let loaded = load_str(&with_org, "t.toml", 0).unwrap();
        assert_eq!(loaded.config.health, Some(health::Health::default()));
    }

    #[test]
    fn health_problems_are_reported_with_their_keys() {
        let err = load_str(
            "[health]\nsilent_after = \"soon\"\nexpected = \"organization\"\nfeed_fraction = 2.0\nlearn_events = 1\nsilent_factor = 0.5\nmax_keys = 0\nlag = \"1m\"\n",
            "t.toml",
            0,
        )
        .unwrap_err()
        .to_string();
        for key in [
            "health.lag",
            "health.silent_after",
            "health.expected",
            "health.feed_fraction",
            "health.learn_events",
            "health.silent_factor",
            "health.max_keys",
        ] {
            assert!(err.contains(key), "{key} not in:\n{err}");
        }
        assert!(err.contains("needs [organization]"), "{err}");
        // Absent: no watch; present and empty: the defaults.
        assert_eq!(load_str("", "t.toml", 0).unwrap().config.health, None);
        let empty = load_str("[health]\n", "t.toml", 0).unwrap().config;
        assert_eq!(empty.health, Some(health::Health::default()));
    }

    #[test]
    fn the_production_config_in_deploy_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config/trailwatch.toml");
        let loaded = load(&path, 0).unwrap();
        // Only the secrets the deployment provides are missing here.
        assert!(
            loaded.warnings.iter().all(|w| w
                .message
                .contains("is not set (needed when the sink starts)")),
            "{:?}",
            loaded.warnings
        );
        let c = &loaded.config;
        assert_eq!(
            c.checkpoint.leases.as_ref().map(|l| l.table.as_str()),
            Some("trailwatch-leases")
        );
        // The table part 3 creates (its BaselineTableName default).
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/cloudformation/3-trailwatch-ecs.yaml"),
        )
        .unwrap();
        let table = c.baseline.table.as_deref().unwrap();
        assert!(
            template.contains(&format!(
                "BaselineTableName:\n    Type: String\n    Default: {table}\n"
            )),
            "{table}"
        );
        assert_eq!(c.first_seen.len(), 2);
        assert_eq!(
            c.kinesis.as_ref().unwrap().settings.stream,
            "org-cloudtrail"
        );
        let names: Vec<&str> = c.delivery.sinks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["splunk", "secops-slack", "pager"]);
        assert_eq!(c.delivery.routes.len(), 4);
        assert!(
            c.delivery.needs_event(),
            "OCSF carries the record as evidence"
        );
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let loaded = load_str("", "empty.toml", 0).unwrap();
        assert_eq!(loaded.config.dedup, Dedup::default());
        // ... with a warning that no region is approved.
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].key, "policy.approved_regions");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
[policy]
approved_regions = ["us-east-1", "eu-nrth-1", "aws-global"]
colour = "blue"

[policy.ous."ou-x"]
approved_regions = ["us-east-1a"]

[policy.accounts."111122223333"]
ou = "ou-missing"
nmae = "typo"

[policy.accounts."1234"]
name = "short"

[[policy.exempt]]
principal = "arn:aws:iam::*:role/X"

[[policy.exempt]]
reason = "nothing to match"
expires = "tomorrow"

[dedup]
event_ttl = "forever"
max_clock_skew = "2s"

[sinks]
"#;
        let err = load_str(text, "bad.toml", 0).unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        // Unknown keys in a section and in an entry are found in the same pass.
        assert!(keys.contains(&"policy.colour"), "{keys:?}");
        assert!(
            keys.contains(&"policy.accounts.\"111122223333\".nmae"),
            "{keys:?}"
        );
        assert!(keys.contains(&"sinks"), "{keys:?}");
        let msg = err.to_string();
        assert!(msg.contains("unknown field `colour`"), "{msg}");
        assert!(msg.contains("unknown field `nmae`"), "{msg}");
        assert!(msg.starts_with("error: bad.toml: "), "{msg}");
        // The meaning checks report in the same pass.
        for want in [
            "policy.approved_regions[1]: region \"eu-nrth-1\"",
            "did you mean \"eu-north-1\"",
            "policy.approved_regions[2]: region \"aws-global\"",
            "policy.ous.ou-x.approved_regions[0]: region \"us-east-1a\" is an availability zone",
            "policy.accounts.\"111122223333\".ou: unknown OU \"ou-missing\"",
            "policy.accounts.\"1234\": \"1234\" is not an account id",
            "policy.exempt[0].reason: missing",
            "policy.exempt[1]: matches nothing",
            "policy.exempt[1].expires: \"tomorrow\" is not a date",
            "dedup.event_ttl: \"forever\" is not a duration",
            "dedup.max_clock_skew: \"2s\" is out of range; expected a duration from 1m to 7d",
        ] {
            assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
        }
    }

    /// Issue 31: `[backfill]`, every problem by key; defaults when only the source is given.
    #[test]
    fn backfill_needs_an_archive_and_bounded_durations() {
        let ok = load_str(
            "[backfill]\nsource = \"s3://trail/AWSLogs/\"\n",
            "b.toml",
            0,
        )
        .unwrap();
        let b = ok.config.backfill.unwrap();
        assert_eq!(b.delivery_delay, std::time::Duration::from_secs(900));
        assert_eq!(b.max_window, std::time::Duration::from_secs(7 * 86_400));
        let msg = load_str(
            "[backfill]\nsource = \"https://bucket/\"\ndelivery_delay = \"2d\"\nmax_window = \"soon\"\n",
            "b.toml",
            0,
        )
        .unwrap_err()
        .to_string();
        for want in [
            "backfill.source: \"https://bucket/\": expected s3://bucket/prefix/ or a local directory",
            "backfill.delivery_delay: \"2d\" is out of range",
            "backfill.max_window: \"soon\" is not a duration",
        ] {
            assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
        }
        let msg = load_str("[backfill]\nsource = \"s3:///x\"\n", "b.toml", 0)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("expected s3://bucket/prefix/"), "{msg}");
    }

    /// Issue 30: the incident tools' sinks and `[console]`, every problem at once by key.
    #[test]
    fn incident_sinks_and_the_console_link_report_every_problem_by_key() {
        let text = r#"
[policy]
approved_regions = ["us-east-1"]

[console]
link = "identity-center"
start_url = "http://portal.example.com/start"

[[sinks]]
name = "pd"
type = "pagerduty"
routing_key = "R0UT1NGKEY"

[[sinks]]
name = "og"
type = "opsgenie"
url = "api.opsgenie.com"

[[sinks]]
name = "hub"
type = "securityhub"
account_id = "1234"
finding_account = "mine"

[[sinks]]
name = "teams"
type = "teams"
webhook_url_env = "TW_TEAMS"
min_interval = "0s"
colour = "red"
"#;
        let err = load_str(text, "bad.toml", 0).unwrap_err();
        let msg = err.to_string();
        for want in [
            "console.start_url: \"http://portal.example.com/start\": expected an https:// URL",
            "console.role: expected the permission set to sign in with",
            "sinks[0].routing_key: secrets are not read from the config; use routing_key_env or routing_key_file",
            "sinks[0].routing_key_env: expected routing_key_env (an environment variable name) or routing_key_file",
            "sinks[1].url: \"api.opsgenie.com\": expected an http:// or https:// URL",
            "sinks[1].api_key_env: expected api_key_env",
            "sinks[2].account_id: \"1234\": expected a 12-digit account id",
            "sinks[2].finding_account: \"mine\": expected \"caller\" or \"alert\"",
            "sinks[3].min_interval: must be longer than 0s",
            "sinks[3].colour: unknown key for a teams sink; expected one of webhook_url_env, webhook_url_file, min_interval",
        ] {
            assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
        }
        assert!(
            !msg.contains("R0UT1NGKEY"),
            "a secret is never echoed: {msg}"
        );
        let ok = load_str(
            "[console]\nlink = \"direct\"\nrole = \"SecurityAudit\"\n",
            "c.toml",
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(
            ok.contains("console.role: used only with link = \"identity-center\""),
            "{ok}"
        );
    }

    #[test]
    fn shaping_settings_and_rule_overrides() {
        let text = r#"
[shaping]
group_by = ["rule", "region"]
window = "5m"
rate_limit = { burst = 2 }

[[rules]]
id = "root"
filter = '{ $.userIdentity.type = "Root" }'
shaping = { window = "1m", rate_limit = { per = ["account"], per_minute = 10 } }
"#;
        let c = load_str(text, "s.toml", 0).unwrap().config;
        assert_eq!(c.shaping.window_secs, 300);
        assert_eq!(c.shaping.burst, 2);
        assert_eq!(
            c.shaping.per_minute, 1,
            "untouched keys keep their defaults"
        );
        let root = c.rules[0].shaping.as_ref().unwrap();
        assert_eq!(root.window_secs, 60);
        assert_eq!(root.burst, 2, "a rule's override starts from [shaping]");
        assert_eq!(root.per_minute, 10);
        assert_eq!(root.limit_per, [KeyField::Account]);
        let bad = load_str(
            "[shaping]\nwindow = \"0s\"\ngroup_by = [\"colour\"]\nrate_limit = { burst = 0 }\n",
            "b.toml",
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("shaping.group_by[0]: expected one of `rule`")
                && bad.contains("found string \"colour\""),
            "{bad}"
        );
        let bad = load_str(
            "[shaping]\nwindow = \"0s\"\nrate_limit = { burst = 0 }\n",
            "b.toml",
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("shaping.window: must be longer than 0s"),
            "{bad}"
        );
        assert!(
            bad.contains("shaping.rate_limit.burst: must be at least 1"),
            "{bad}"
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err =
            load_str("[policy]\napproved_regions = [\"us-east-1\"\n", "s.toml", 0).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(
            err.problems[0].key.starts_with("line 3, column 1"),
            "{:?}",
            err.problems[0]
        );
        assert!(err.problems[0].message.starts_with("TOML syntax"));
    }

    #[test]
    fn expired_exemptions_warn_but_load() {
        let text = "[policy]\napproved_regions = [\"us-east-1\"]\n[[policy.exempt]]\nevent_name = \"X\"\nreason = \"r\"\nexpires = \"2020-01-01\"\n";
        let now = parse_date("2026-11-26").unwrap();
        let loaded = load_str(text, "e.toml", now).unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].message.contains("expired on 2020-01-01"));
        assert!(load_str(text, "e.toml", 0).unwrap().warnings.is_empty());
    }

    #[test]
    fn ou_cycles_and_double_membership_are_errors() {
        let text = r#"
[policy]
approved_regions = ["us-east-1"]
[policy.ous."ou-a"]
parent = "ou-b"
accounts = ["111122223333"]
[policy.ous."ou-b"]
parent = "ou-a"
accounts = ["111122223333"]
"#;
        let msg = load_str(text, "c.toml", 0).unwrap_err().to_string();
        assert!(
            msg.contains("policy.ous.ou-a.parent: OU parents form a cycle"),
            "{msg}"
        );
        assert!(msg.contains("also a member of OU \"ou-a\""), "{msg}");
    }
}

#[cfg(test)]
mod reference_tests {
    use std::path::Path;

    /// `section.key = value` for every key the example file shows, set or commented out.
    fn example_keys() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("examples/trailwatch.toml")).unwrap();
        let (mut section, mut out) = (String::new(), Vec::new());
        for line in text.lines() {
            let l = line.trim_start_matches("# ").trim();
            if l.starts_with('[') && l.ends_with(']') && !l.contains('"') {
                section = l.trim_matches(|c| c == '[' || c == ']').to_string();
                continue;
            }
            if l.starts_with('[') {
                section = "(instance)".into();
                continue;
            }
            let Some((key, value)) = l.split_once(" = ") else {
                continue;
            };
            if section == "(instance)"
                || section.starts_with("policy.")
                || section == "sequences"
                || section.starts_with("sinks")
                || section.starts_with("routes")
                || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                continue;
            }
            let value = value
                .split("  #")
                .next()
                .unwrap_or(value)
                .trim()
                .to_string();
            let full = match section.as_str() {
                "" => key.to_string(),
                s => format!("{s}.{key}"),
            };
            out.push((full, value));
        }
        out
    }

    fn mib(n: u64) -> Option<String> {
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= size && n % size == 0 {
                return Some(format!("{} {unit}", n / size));
            }
        }
        None
    }

    /// A place in a probe document: a key, or the first element of an array of tables.
    #[derive(Clone, Debug)]
    enum Seg {
        Key(String),
        Elem,
    }

    fn render(path: &[Seg]) -> String {
        let mut out = String::new();
        for s in path {
            match s {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Elem => out.push_str("[0]"),
            }
        }
        out
    }

    /// The key as the reference writes it: `*` for any map key, `[]` for any element.
    fn name(path: &[Seg]) -> String {
        render(path)
            .replace(super::collector::probe::KEY, "*")
            .replace("[0]", "[]")
    }

    /// `base` with `leaf` at `path` (tables and arrays made on the way, what was there
    /// replaced).
    fn with(base: &toml::Table, path: &[Seg], leaf: toml::Value) -> toml::Table {
        fn put(v: &mut toml::Value, path: &[Seg], leaf: toml::Value) {
            let Some((first, rest)) = path.split_first() else {
                *v = leaf;
                return;
            };
            match first {
                Seg::Key(k) => {
                    if !v.is_table() {
                        *v = toml::Value::Table(toml::Table::new());
                    }
                    if let Some(t) = v.as_table_mut() {
                        let slot = t
                            .entry(k.clone())
                            .or_insert(toml::Value::Table(toml::Table::new()));
                        put(slot, rest, leaf);
                    }
                }
                Seg::Elem => {
                    let mut first = match v.as_array().and_then(|a| a.first()) {
                        Some(e) => e.clone(),
                        None => toml::Value::Table(toml::Table::new()),
                    };
                    put(&mut first, rest, leaf);
                    *v = toml::Value::Array(vec![first]);
                }
            }
        }
        let mut v = toml::Value::Table(base.clone());
        put(&mut v, path, leaf);
        match v {
            toml::Value::Table(t) => t,
            _ => toml::Table::new(),
        }
    }

    /// The keys of the table the config's types expect at `at` (a table that refused the
    /// probe key there), when one did.
    fn keys_at(doc: toml::Table, at: &str) -> Option<&'static [&'static str]> {
        use super::collector::probe;
        probe::take();
        let _ = super::load_str(&doc.to_string(), "probe.toml", 0);
        let inner = format!("{at}.{}", probe::KEY);
        // A rule's key path names its id: `rules[0] (probe).tests[0]`.
        let plain = |here: &str| match here.split_once(" (") {
            Some((a, b)) => format!("{a}{}", b.split_once(')').map_or("", |(_, r)| r)),
            None => here.to_string(),
        };
        probe::take()
            .into_iter()
            .find(|(here, a)| a.is_ok() && (plain(here) == at || plain(here) == inner))
            .and_then(|(_, a)| a.ok())
    }

    /// Every key the config's types take under `path`, by asking them: a table given the key
    /// `__probe__` answers, through serde, with the keys it takes; a value that is not a
    /// table is tried as an array of tables, then as a map of tables.
    fn explore(base: &toml::Table, path: Vec<Seg>, out: &mut std::collections::BTreeSet<String>) {
        use super::collector::probe::KEY;
        if path.len() > 8 {
            return;
        }
        let probe = || toml::Value::Table(toml::Table::from_iter([(KEY.to_string(), 0.into())]));
        let mut elem = path.clone();
        elem.push(Seg::Elem);
        let mut entry = path.clone();
        entry.push(Seg::Key(KEY.into()));
        let found = keys_at(with(base, &path, probe()), &render(&path))
            .map(|k| (path.clone(), k))
            .or_else(|| {
                let doc = with(base, &path, toml::Value::Array(vec![probe()]));
                keys_at(doc, &render(&elem)).map(|k| (elem.clone(), k))
            })
            .or_else(|| {
                let doc = with(base, &entry, probe());
                keys_at(doc, &render(&entry)).map(|k| (entry.clone(), k))
            });
        let Some((at, keys)) = found else { return };
        for k in keys {
            let mut child = at.clone();
            child.push(Seg::Key(k.to_string()));
            out.insert(name(&child));
            explore(base, child, out);
        }
    }

    /// Every key of the config's types, found by probing them on the example file; the
    /// tables the config splits by hand before its types read them are the starting points.
    fn struct_keys() -> std::collections::BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("examples/trailwatch.toml")).unwrap();
        let mut base: toml::Table = toml::from_str(&text).unwrap();
        // A rule whose own keys read, so that what is read by hand inside it is reached.
        let rule = "id = \"probe\"\nfilter = '{ $.eventName = \"X\" }'\n";
        let rule: toml::Table = toml::from_str(rule).unwrap();
        base.insert("rules".into(), toml::Value::Array(vec![rule.into()]));
        let mut out = std::collections::BTreeSet::new();
        let split_by_hand = [
            "policy.global_services",
            "policy.ous",
            "policy.accounts",
            "policy.exempt",
            "source.kinesis",
            "source.firehose",
            "source.lambda",
            "rules[].tests",
            "rules[].shaping",
        ];
        let tops = super::collector::TOP_LEVEL
            .iter()
            .filter(|t| **t != "source");
        for start in tops.chain(split_by_hand.iter()) {
            let mut path = Vec::new();
            for k in start.split('.') {
                match k.strip_suffix("[]") {
                    Some(k) => path.extend([Seg::Key(k.into()), Seg::Elem]),
                    None => path.push(Seg::Key(k.into())),
                }
            }
            explore(&base, path, &mut out);
        }
        out
    }

    /// Whether a text names `leaf` as a key: `` `leaf` ``, `leaf =`, or `` `[[….leaf]]` ``.
    fn names(text: &str, leaf: &str) -> bool {
        text.contains(&format!("`{leaf}`"))
            || text.contains(&format!("{leaf} ="))
            || text.contains(&format!(".{leaf}]]`"))
    }

    /// Whether a reference row documents `key` (`a.b.c`, `a.*.c`, `a[].c`): a row for the
    /// key itself, or a row for one of its tables (or one of theirs) that names it. A rule's
    /// `shaping` takes the keys of `[shaping]`.
    fn documented(rows: &[String], key: &str) -> bool {
        if let Some(rest) = key.strip_prefix("rules[].shaping.") {
            return documented(rows, &format!("shaping.{rest}"));
        }
        let leaf = key.rsplit('.').next().unwrap_or(key);
        let first_path = |row: &str| -> String {
            let cell = row.split(" | ").next().unwrap_or("");
            let inner = cell.split('`').nth(1).unwrap_or("");
            let path = inner.trim_start_matches("[[").trim_end_matches("]]");
            let path = match inner.starts_with("[[") {
                true => format!("{path}[]"),
                false => path.to_string(),
            };
            // `policy.ous."ou-…"`: any key of the map.
            match path.split_once(".\"") {
                Some((map, _)) => format!("{map}.*"),
                None => path,
            }
        };
        let mut tables = Vec::new();
        let mut at = key;
        while let Some((parent, _)) = at.rsplit_once('.') {
            tables.push(parent);
            at = parent;
        }
        rows.iter().any(|row| {
            let p = first_path(row);
            // `delivery.backoff_initial` / `backoff_max`: a row of several keys of one table.
            let sibling = p.rsplit_once('.').map(|(pp, _)| pp) == tables.first().copied();
            p == key || ((tables.contains(&p.as_str()) || sibling) && names(row, leaf))
        })
    }

    /// docs/CONFIG.md names every key the config's types take (found by asking the types,
    /// not the example file); `[[sinks]]` and `[[routes]]` keys are in
    /// docs/shaping-and-delivery.md, each sink type's from the list its reader checks.
    #[test]
    fn the_config_reference_names_every_key_of_the_config_types() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(root.join("docs/CONFIG.md")).unwrap();
        let delivery = std::fs::read_to_string(root.join("docs/shaping-and-delivery.md")).unwrap();
        let rows: Vec<String> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(str::to_string)
            .collect();
        let keys = struct_keys();
        assert!(keys.len() > 100, "{keys:?}");
        for must in [
            "source.kinesis.poll_interval",
            "policy.ous.*.parent",
            "rules[].tests[].expect",
        ] {
            assert!(keys.contains(must), "{must} not found: {keys:?}");
        }
        let mut missing: Vec<String> = keys
            .iter()
            .filter(
                |k| match k.starts_with("sinks") || k.starts_with("routes") {
                    true => !names(&delivery, k.rsplit('.').next().unwrap_or(k)),
                    false => !documented(&rows, k),
                },
            )
            .cloned()
            .collect();
        for kind in ["stdout", "file", "splunk_hec", "webhook", "slack", "sns"] {
            let own = super::sinks::keys_for(kind).unwrap_or_default();
            for k in own.iter().chain(super::sinks::COMMON) {
                if !names(&delivery, k) {
                    missing.push(format!("sinks[] ({kind}).{k}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys of the config types that docs/CONFIG.md (or shaping-and-delivery.md) does not name:\n{}",
            missing.join("\n")
        );
    }

    /// docs/CONFIG.md has a row for every key the example file shows, and its default cell
    /// says the example's value (which another test holds equal to the code's default).
    #[test]
    fn the_config_reference_has_every_key_with_the_default_of_the_code() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(root.join("docs/CONFIG.md")).unwrap();
        let rows: Vec<(String, String)> = doc
            .lines()
            .filter(|l| l.starts_with("| `") || l.starts_with("| ["))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split(" | ").collect();
                Some((cells.first()?.to_string(), cells.get(1)?.to_string()))
            })
            .collect();
        let keys = example_keys();
        assert!(keys.len() > 45, "{keys:?}");
        let mut problems = Vec::new();
        for (full, value) in &keys {
            let (section, key) = full.rsplit_once('.').unwrap_or(("", full));
            let row = rows.iter().find(|(k, _)| {
                k.contains(&format!("`{full}`"))
                    || (!section.is_empty()
                        && k.contains(&format!("`{section}."))
                        && k.contains(&format!("`{key}`")))
            });
            let Some((_, default)) = row else {
                problems.push(format!("{full}: no row"));
                continue;
            };
            // A key without a default (required, or optional and absent): the example shows
            // an example value, and the reference says so.
            let no_default = ["(required", "none", "`[]` (warns)", "the SDK's"]
                .iter()
                .any(|w| default.trim_start_matches(' ').starts_with(w));
            if no_default || full == "include_rules" {
                continue;
            }
            let sized = value.parse::<u64>().ok().and_then(mib);
            let says = default.contains(value.as_str())
                || sized.is_some_and(|m| default.contains(&m))
                || (value == "[]" && default.contains("[]"));
            if !says {
                problems.push(format!(
                    "{full}: the example says {value}, the reference {default}"
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "docs/CONFIG.md:\n{}",
            problems.join("\n")
        );
    }
}
