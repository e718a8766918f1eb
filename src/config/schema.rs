//! The configuration schema. Every struct denies unknown keys; defaults are the documented
//! ones (see `examples/trailwatch.toml`, which a test loads).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Alert severity, ordered from `info` to `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub policy: Policy,
    /// `[organization]`: accounts, OUs and SCPs from AWS Organizations.
    pub organization: Option<super::organization::Organization>,
    /// `sigma_rules` and `sigma_placeholders`.
    pub sigma: super::sigma::Sigma,
    /// `[health]`: watch the feed for silent, missing and lagging accounts.
    pub health: Option<super::health::Health>,
    pub dedup: Dedup,
    pub decode: Decode,
    /// Custom filter-pattern rules (`[[rules]]` and `include_rules`).
    pub rules: Vec<super::rules::Rule>,
    /// `[[sequences]]`: shaping tests for `trailwatch test`.
    pub sequences: Vec<super::sequences::Sequence>,
    /// `[source.kinesis]`: what `trailwatch run` consumes.
    pub kinesis: Option<super::source::KinesisSource>,
    /// `[source.firehose]`: what `trailwatch serve` listens on.
    pub firehose: Option<super::source::FirehoseSource>,
    /// `[source.lambda]`: Lambda mode.
    pub lambda: super::source::LambdaSource,
    /// `[checkpoint]`.
    pub checkpoint: super::source::Checkpoint,
    /// `[shaping]`: how the notify stream is shaped (rules may override).
    pub shaping: super::shaping::ShapingSettings,
    /// `[delivery]`, `[[sinks]]`, `[[routes]]`.
    pub delivery: super::delivery::Delivery,
    /// `[runbooks]`: where to look next, by built-in or Sigma rule (`sigma:<file stem>`).
    pub runbooks: std::collections::BTreeMap<String, String>,
    /// `[console]`: how the console link opens the member account from the security account.
    pub console: super::console::Console,
    /// `[backfill]`: where `run` reads a `feed-gap`'s window from.
    pub backfill: Option<super::backfill::Backfill>,
    /// `[[first_seen]]`: a known key with a value it never showed.
    pub first_seen: Vec<super::first_seen::FirstSeenRule>,
    /// `[baseline]`: the first-seen pairs' bound.
    pub baseline: super::first_seen::Baseline,
}

/// `[policy]`: the `unapproved-region` rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyTop {
    /// Organization default: regions where activity is approved for every account.
    #[serde(default)]
    pub approved_regions: Vec<String>,
    /// When `readOnly` is absent, event names starting with one of these are reads.
    #[serde(default = "default_read_prefixes")]
    pub read_prefixes: Vec<String>,
    /// Event names that are activity although they start with a read prefix.
    #[serde(default = "default_read_prefix_exceptions")]
    pub read_prefix_exceptions: Vec<String>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Severity of failed calls (`errorCode` set).
    #[serde(default = "default_failed_severity")]
    pub failed_call_severity: Severity,
    /// Set false to ignore failed calls entirely.
    #[serde(default = "yes")]
    pub alert_on_failed_calls: bool,
}

/// `[policy]` with its tables read entry by entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub top: PolicyTop,
    pub ous: BTreeMap<String, Ou>,
    pub accounts: BTreeMap<String, Account>,
    pub exempt: Vec<Exempt>,
    pub global_services: GlobalServices,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            top: PolicyTop {
                approved_regions: Vec::new(),
                read_prefixes: default_read_prefixes(),
                read_prefix_exceptions: default_read_prefix_exceptions(),
                severity: default_severity(),
                failed_call_severity: default_failed_severity(),
                alert_on_failed_calls: true,
            },
            ous: BTreeMap::new(),
            accounts: BTreeMap::new(),
            exempt: Vec::new(),
            global_services: GlobalServices::default(),
        }
    }
}

/// `[policy.ous."ou-…"]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ou {
    pub name: Option<String>,
    /// Parent OU, whose regions this OU inherits.
    pub parent: Option<String>,
    /// Replaces the inherited list.
    pub approved_regions: Option<Vec<String>>,
    /// Adds to the inherited (or replaced) list.
    #[serde(default)]
    pub extra_regions: Vec<String>,
    /// Member accounts (alternative to `ou = …` on each account).
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// `[policy.accounts."111122223333"]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: Option<String>,
    pub ou: Option<String>,
    pub approved_regions: Option<Vec<String>>,
    #[serde(default)]
    pub extra_regions: Vec<String>,
}

/// One string or a list of strings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `[[policy.exempt]]`: every key given must match (globs with `*` and `?`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exempt {
    pub principal: Option<OneOrMany>,
    pub event_source: Option<OneOrMany>,
    pub event_name: Option<OneOrMany>,
    pub account: Option<OneOrMany>,
    pub region: Option<OneOrMany>,
    /// Who is behind the event (`identity.origin`, known once the stream showed how its
    /// session began): `arn:aws:iam::*:user/deploy-bot`, `identitycenter:alice@corp.example`.
    pub origin: Option<OneOrMany>,
    /// Why: shown in `explain` and required.
    #[serde(default)]
    pub reason: String,
    /// `YYYY-MM-DD` (end of that day, UTC) or an RFC 3339 time; absent means permanent.
    pub expires: Option<String>,
}

/// `[policy.global_services]`: services that record in one region whatever region is used.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalServices {
    #[serde(default = "default_global_sources")]
    pub event_sources: Vec<String>,
    #[serde(default)]
    pub extra_event_sources: Vec<String>,
    /// Regions where global services record (one per partition).
    #[serde(default = "default_global_regions")]
    pub recorded_in: Vec<String>,
}

impl Default for GlobalServices {
    fn default() -> Self {
        GlobalServices {
            event_sources: default_global_sources(),
            extra_event_sources: Vec::new(),
            recorded_in: default_global_regions(),
        }
    }
}

/// `[dedup]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupRaw {
    #[serde(default = "default_ttl")]
    pub event_ttl: String,
    #[serde(default = "default_max_ids")]
    pub max_event_ids: usize,
    #[serde(default = "default_max_clock_skew")]
    pub max_clock_skew: String,
}

/// `[dedup]`, parsed (with `[identity]`: what the pipeline remembers of the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dedup {
    pub event_ttl_secs: i64,
    pub max_event_ids: usize,
    /// How far ahead an event time is trusted for state: of arrival on the live roads (later
    /// times are clamped for the health watch and correlation windows), of the event clock in
    /// `replay` and `backtest` (a longer jump waits for a second event).
    pub max_clock_skew_secs: i64,
    pub identity: IdentitySettings,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup {
            event_ttl_secs: 2 * 3600,
            max_event_ids: default_max_ids(),
            max_clock_skew_secs: 15 * 60,
            identity: IdentitySettings::default(),
        }
    }
}

/// `[identity]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRaw {
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    #[serde(default = "default_max_session_duration")]
    pub max_session_duration: String,
}

fn default_max_sessions() -> usize {
    100_000
}

fn default_max_session_duration() -> String {
    "12h".into()
}

/// `[identity]`: the access keys issued in the stream, remembered to say who is behind a
/// role session ([`crate::identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentitySettings {
    /// Issued keys held at most (the one expiring first makes room).
    pub max_sessions: usize,
    /// The longest an issued key is held: the longest a session can last.
    pub max_session_duration_secs: i64,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            max_sessions: default_max_sessions(),
            max_session_duration_secs: 12 * 3600,
        }
    }
}

/// `[decode]`: input limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decode {
    #[serde(default = "default_max_decompressed")]
    pub max_decompressed_bytes: usize,
    #[serde(default = "default_max_event")]
    pub max_event_bytes: usize,
    /// Largest single JSON document or line read by `replay`.
    #[serde(default = "default_max_document")]
    pub max_document_bytes: usize,
    /// Threads that decode and judge a large batch, input or archive object at once; 0 is
    /// the cores available.
    #[serde(default)]
    pub threads: usize,
}

impl Default for Decode {
    fn default() -> Self {
        Decode {
            max_decompressed_bytes: default_max_decompressed(),
            max_event_bytes: default_max_event(),
            max_document_bytes: default_max_document(),
            threads: 0,
        }
    }
}

fn yes() -> bool {
    true
}
fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
pub fn default_read_prefixes() -> Vec<String> {
    strings(&[
        "Describe", "Get", "List", "Head", "BatchGet", "Lookup", "Search",
    ])
}
pub fn default_read_prefix_exceptions() -> Vec<String> {
    // STS issues credentials with these: they change state (EventBridge treats them so too).
    strings(&["GetFederationToken", "GetSessionToken"])
}
fn default_severity() -> Severity {
    Severity::High
}
fn default_failed_severity() -> Severity {
    Severity::Medium
}
/// Services whose events CloudTrail records in the partition's global region.
pub fn default_global_sources() -> Vec<String> {
    strings(&[
        "iam.amazonaws.com",
        "sts.amazonaws.com",
        "signin.amazonaws.com",
        "organizations.amazonaws.com",
        "cloudfront.amazonaws.com",
        "route53.amazonaws.com",
        "route53domains.amazonaws.com",
        "support.amazonaws.com",
        "health.amazonaws.com",
        "account.amazonaws.com",
        "billing.amazonaws.com",
        "billingconsole.amazonaws.com",
        "ce.amazonaws.com",
        "budgets.amazonaws.com",
    ])
}
fn default_global_regions() -> Vec<String> {
    strings(&["us-east-1", "us-gov-west-1", "cn-north-1"])
}
fn default_ttl() -> String {
    "2h".into()
}
fn default_max_clock_skew() -> String {
    "15m".to_string()
}
fn default_max_ids() -> usize {
    2_000_000
}
fn default_max_decompressed() -> usize {
    128 << 20
}
fn default_max_event() -> usize {
    1 << 20
}
fn default_max_document() -> usize {
    1 << 30
}
