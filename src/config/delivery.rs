//! `[delivery]`, `[[sinks]]` and `[[routes]]`: where the siem and notify streams go.
//!
//! Secrets (webhook URLs, tokens, HMAC keys) are never read from the config text: only the
//! name of an environment variable (`*_env`) or a file (`*_file`) holding them. They are
//! resolved when the sinks are built, so `validate` on a machine without them only warns.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Severity;

/// The two streams routes choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Siem,
    Notify,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Siem => "siem",
            Stream::Notify => "notify",
        }
    }
}

/// How SIEM-type sinks write an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Issue 2's alert fields (notify items add kind, counts and window).
    Native,
    /// OCSF 1.1.0 Detection Finding (class 2004).
    Ocsf,
}

/// `[delivery]`: defaults for every sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// The spool lives in `<state_dir>/spool/<sink>/`, rejected items in
    /// `<state_dir>/rejected/<sink>.jsonl`.
    pub state_dir: PathBuf,
    pub queue: usize,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub spool_segment_bytes: u64,
    /// How many delivered ids each sink's journal remembers (to skip after a crash).
    pub delivered_ids: usize,
    /// Longest an item waits for direct delivery before it is spooled (and acknowledged).
    pub accept_within: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            state_dir: "state".into(),
            queue: 10_000,
            timeout: Duration::from_secs(10),
            max_attempts: 3,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            spool_segment_bytes: 8 << 20,
            delivered_ids: 100_000,
            accept_within: Duration::from_secs(5),
        }
    }
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The config key that named it (for errors).
    pub key: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl SecretRef {
    /// The secret, or why not (naming the key and the variable or file, never a value).
    pub fn resolve(&self) -> Result<String, String> {
        self.read().map_err(|why| format!("{}: {why}", self.key))
    }

    pub(super) fn read(&self) -> Result<String, String> {
        let v = match &self.source {
            SecretSource::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        };
        let v = v.trim().to_string();
        if v.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(v)
    }

    /// Named at all (a missing `*_env`/`*_file` is reported where it is read).
    pub(super) fn named(&self) -> bool {
        match &self.source {
            SecretSource::Env(n) => !n.is_empty(),
            SecretSource::File(p) => !p.as_os_str().is_empty(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    Stdout,
    File {
        path: PathBuf,
        rotate_bytes: Option<u64>,
        rotate_every: Option<Duration>,
        fsync: bool,
    },
    SplunkHec {
        url: String,
        token: SecretRef,
        index: Option<String>,
        sourcetype: Option<String>,
        ack: Option<Duration>,
        batch: usize,
    },
    Webhook {
        url: UrlRef,
        hmac_key: Option<SecretRef>,
        batch: usize,
    },
    Slack {
        webhook_url: SecretRef,
        min_interval: Duration,
    },
    Sns {
        topic_arn: String,
        region: Option<String>,
        json_structure: bool,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        url: String,
        routing_key: SecretRef,
    },
    /// Opsgenie's Alert API.
    Opsgenie {
        url: String,
        api_key: SecretRef,
    },
    /// A Microsoft Teams Workflows webhook posting an Adaptive Card.
    Teams {
        webhook_url: SecretRef,
        min_interval: Duration,
    },
    /// AWS Security Hub: ASFF findings through BatchImportFindings.
    SecurityHub {
        /// The account trailwatch imports as (the default product ARN's account).
        account_id: String,
        region: Option<String>,
        finding_account: FindingAccount,
    },
}

/// Which account a Security Hub finding names as `AwsAccountId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingAccount {
    /// The account that imports it (`account_id`), the one AWS accepts for the default
    /// product ARN; the alert's account is a resource of the finding.
    Caller,
    /// The alert's account: what a member account's own Security Hub shows, accepted only
    /// when trailwatch imports as that account.
    Alert,
}

/// A URL given in the config, or (when it embeds a secret) by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRef {
    Plain(String),
    Secret(SecretRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    pub name: String,
    pub kind: SinkKind,
    pub format: Format,
    pub include_event: bool,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub queue: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub stream: Stream,
    /// Indexes into the sinks.
    pub sinks: Vec<usize>,
    pub min_severity: Option<Severity>,
    pub rules: Vec<String>,
    /// Account ids, and OUs (that OU and the OUs under it), as `accounts` names them.
    pub accounts: Vec<AccountRef>,
    pub regions: Vec<String>,
    /// Globs on who is behind the event (`identity.origin`): `arn:aws:iam::*:user/contractor-*`.
    pub origins: Vec<String>,
}

/// One entry of a route's `accounts`: a 12-digit account id, or `"ou:<ou id>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountRef {
    Account(String),
    Ou(String),
}

impl AccountRef {
    /// `"111122223333"` or `"ou:ou-ab12-prod"`; anything else is `None`.
    pub fn parse(s: &str) -> Option<AccountRef> {
        match s.strip_prefix("ou:") {
            Some(ou) if !ou.is_empty() => Some(AccountRef::Ou(ou.to_string())),
            Some(_) => None,
            None if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) => {
                Some(AccountRef::Account(s.to_string()))
            }
            None => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub settings: DeliverySettings,
    pub sinks: Vec<SinkSpec>,
    pub routes: Vec<RouteSpec>,
}

impl Delivery {
    /// No `[[sinks]]`: the commands keep their built-in output (stdout, `--output`).
    pub fn is_configured(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// Some sink writes the CloudTrail record (OCSF evidence, `include_event`): alerts must
    /// carry it.
    pub fn needs_event(&self) -> bool {
        self.sinks
            .iter()
            .any(|s| s.include_event || s.format == Format::Ocsf)
    }
}

pub fn secrets_of(s: &SinkSpec) -> Vec<&SecretRef> {
    match &s.kind {
        SinkKind::SplunkHec { token, .. } => vec![token],
        SinkKind::Webhook { url, hmac_key, .. } => {
            let mut v: Vec<&SecretRef> = hmac_key.iter().collect();
            if let UrlRef::Secret(s) = url {
                v.push(s);
            }
            v
        }
        SinkKind::Slack { webhook_url, .. } | SinkKind::Teams { webhook_url, .. } => {
            vec![webhook_url]
        }
        SinkKind::PagerDuty { routing_key, .. } => vec![routing_key],
        SinkKind::Opsgenie { api_key, .. } => vec![api_key],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod account_ref_tests {
    use super::AccountRef;

    #[test]
    fn a_route_account_is_an_account_id_or_an_ou() {
        assert_eq!(
            AccountRef::parse("111122223333"),
            Some(AccountRef::Account("111122223333".into()))
        );
        assert_eq!(
            AccountRef::parse("ou:ou-ab12-prod"),
            Some(AccountRef::Ou("ou-ab12-prod".into()))
        );
        for bad in ["ou:", "1111", "OU:ou-x", "11112222333a"] {
            assert_eq!(AccountRef::parse(bad), None, "{bad}");
        }
    }
}
