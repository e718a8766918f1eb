//! `[delivery]`, `[[sinks]]` and `[[routes]]`: where the siem and notify streams go.
//!
//! Secrets (webhook URLs, tokens, HMAC keys) are never read from the config text: only the
//! name of an environment variable (`*_env`) or a file (`*_file`) holding them. They are
//! resolved when the sinks are built, so `validate` on a machine without them only warns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Value;

use super::validate::Collector;
use crate::alert::Severity;
use crate::sink::item::Stream;
use crate::sink::target::Format;

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

    fn read(&self) -> Result<String, String> {
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
    fn named(&self) -> bool {
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
    /// Account ids, or `ou:<id>` (that OU and the OUs under it).
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryRaw {
    state_dir: Option<String>,
    queue: Option<usize>,
    timeout: Option<String>,
    max_attempts: Option<u32>,
    backoff_initial: Option<String>,
    backoff_max: Option<String>,
    spool_segment_bytes: Option<u64>,
    accept_within: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteRaw {
    stream: Stream,
    sinks: Vec<String>,
    min_severity: Option<Severity>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
}

/// The keys each sink type takes, besides `name`, `type` and the per-sink overrides.
fn keys_for(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "stdout" => &["format", "include_event"],
        "file" => &[
            "format",
            "include_event",
            "path",
            "rotate_bytes",
            "rotate_every",
            "fsync",
        ],
        "splunk_hec" => &[
            "format",
            "include_event",
            "url",
            "token_env",
            "token_file",
            "index",
            "sourcetype",
            "ack",
            "ack_timeout",
            "batch",
        ],
        "webhook" => &[
            "format",
            "include_event",
            "url",
            "url_env",
            "url_file",
            "hmac_key_env",
            "hmac_key_file",
            "batch",
        ],
        "slack" => &["webhook_url_env", "webhook_url_file", "min_interval"],
        "sns" => &["topic_arn", "region", "message_structure"],
        _ => return None,
    })
}

const COMMON: &[&str] = &["name", "type", "timeout", "max_attempts", "queue"];

/// Keys that would put a secret in the config text.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("token", "token_env or token_file"),
    ("hmac_key", "hmac_key_env or hmac_key_file"),
    ("webhook_url", "webhook_url_env or webhook_url_file"),
];

fn duration(c: &mut Collector, key: &str, v: Option<&Value>, default: Duration) -> Duration {
    match v {
        None => default,
        Some(Value::String(s)) => match humantime::parse_duration(s) {
            Ok(d) if d > Duration::ZERO => d,
            Ok(_) => {
                c.error(key, "must be longer than 0s");
                default
            }
            Err(e) => {
                c.error(
                    key,
                    format!("{s:?} is not a duration ({e}); expected e.g. \"10s\""),
                );
                default
            }
        },
        Some(other) => {
            c.error(
                key,
                format!(
                    "expected a duration string like \"10s\", found {}",
                    other.type_str()
                ),
            );
            default
        }
    }
}

fn string(c: &mut Collector, key: &str, v: Option<&Value>) -> Option<String> {
    match v {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            c.error(key, "must not be empty");
            None
        }
        Some(other) => {
            c.error(
                key,
                format!("expected a string, found {}", other.type_str()),
            );
            None
        }
    }
}

fn integer(c: &mut Collector, key: &str, v: Option<&Value>, min: i64) -> Option<i64> {
    match v {
        None => None,
        Some(Value::Integer(n)) if *n >= min => Some(*n),
        Some(Value::Integer(_)) => {
            c.error(key, format!("must be at least {min}"));
            None
        }
        Some(other) => {
            c.error(
                key,
                format!("expected an integer, found {}", other.type_str()),
            );
            None
        }
    }
}

fn boolean(c: &mut Collector, key: &str, v: Option<&Value>) -> Option<bool> {
    match v {
        None => None,
        Some(Value::Boolean(b)) => Some(*b),
        Some(other) => {
            c.error(
                key,
                format!("expected true or false, found {}", other.type_str()),
            );
            None
        }
    }
}

/// `<name>_env` or `<name>_file` (exactly one).
fn secret(
    c: &mut Collector,
    base: &str,
    t: &toml::Table,
    name: &str,
    required: bool,
) -> Option<SecretRef> {
    let env_key = format!("{name}_env");
    let file_key = format!("{name}_file");
    let env = string(c, &format!("{base}.{env_key}"), t.get(&env_key));
    let file = string(c, &format!("{base}.{file_key}"), t.get(&file_key));
    match (env, file) {
        (Some(e), None) => Some(SecretRef {
            key: format!("{base}.{env_key}"),
            source: SecretSource::Env(e),
        }),
        (None, Some(f)) => Some(SecretRef {
            key: format!("{base}.{file_key}"),
            source: SecretSource::File(f.into()),
        }),
        (Some(_), Some(_)) => {
            c.error(
                format!("{base}.{env_key}"),
                format!("give {env_key} or {file_key}, not both"),
            );
            None
        }
        (None, None) => {
            if required {
                c.error(
                    format!("{base}.{env_key}"),
                    format!("expected {env_key} (an environment variable name) or {file_key} (a file path)"),
                );
            }
            None
        }
    }
}

fn read_sink(
    c: &mut Collector,
    i: usize,
    v: Value,
    defaults: &DeliverySettings,
) -> Option<SinkSpec> {
    let base = format!("sinks[{i}]");
    let Value::Table(t) = v else {
        c.error(&base, "expected a table ([[sinks]])");
        return None;
    };
    let name = string(c, &format!("{base}.name"), t.get("name"));
    if name.is_none() && !t.contains_key("name") {
        c.error(
            format!("{base}.name"),
            "expected a name for the sink (routes refer to it)",
        );
    }
    let kind = string(c, &format!("{base}.type"), t.get("type"));
    let Some(kind) = kind else {
        if !t.contains_key("type") {
            c.error(
                format!("{base}.type"),
                "expected one of stdout, file, splunk_hec, webhook, slack, sns",
            );
        }
        return None;
    };
    let Some(allowed) = keys_for(&kind) else {
        c.error(
            format!("{base}.type"),
            format!("{kind:?}: expected one of stdout, file, splunk_hec, webhook, slack, sns"),
        );
        return None;
    };
    for key in t.keys() {
        if COMMON.contains(&key.as_str()) || allowed.contains(&key.as_str()) {
            continue;
        }
        if let Some((_, instead)) = SECRET_KEYS.iter().find(|(k, _)| k == key) {
            c.error(
                format!("{base}.{key}"),
                format!("secrets are not read from the config; use {instead}"),
            );
        } else {
            c.error(
                format!("{base}.{key}"),
                format!(
                    "unknown key for a {kind} sink; expected one of {}",
                    allowed.join(", ")
                ),
            );
        }
    }
    let key = |k: &str| format!("{base}.{k}");
    let format = match string(c, &key("format"), t.get("format")).as_deref() {
        None | Some("native") => Format::Native,
        Some("ocsf") => Format::Ocsf,
        Some(other) => {
            c.error(
                key("format"),
                format!("{other:?}: expected \"native\" or \"ocsf\""),
            );
            Format::Native
        }
    };
    let include_event = boolean(c, &key("include_event"), t.get("include_event")).unwrap_or(false);
    let batch = |c: &mut Collector, max: i64| {
        let n = integer(c, &key("batch"), t.get("batch"), 1).unwrap_or(100.min(max));
        if n > max {
            c.error(key("batch"), format!("at most {max}"));
        }
        n.min(max) as usize
    };
    let sink_kind = match kind.as_str() {
        "stdout" => SinkKind::Stdout,
        "file" => {
            let path = string(c, &key("path"), t.get("path"));
            if path.is_none() && !t.contains_key("path") {
                c.error(key("path"), "expected the file to write (JSON lines)");
            }
            let fsync = match string(c, &key("fsync"), t.get("fsync")).as_deref() {
                None | Some("batch") => true,
                Some("never") => false,
                Some(other) => {
                    c.error(
                        key("fsync"),
                        format!("{other:?}: expected \"batch\" or \"never\""),
                    );
                    true
                }
            };
            SinkKind::File {
                path: path.unwrap_or_default().into(),
                rotate_bytes: integer(c, &key("rotate_bytes"), t.get("rotate_bytes"), 1)
                    .map(|n| n as u64),
                rotate_every: t.get("rotate_every").map(|v| {
                    duration(
                        c,
                        &key("rotate_every"),
                        Some(v),
                        Duration::from_secs(86_400),
                    )
                }),
                fsync,
            }
        }
        "splunk_hec" => {
            let url = string(c, &key("url"), t.get("url"));
            if url.is_none() && !t.contains_key("url") {
                c.error(
                    key("url"),
                    "expected the HEC base URL, e.g. \"https://splunk.example.com:8088\"",
                );
            }
            if let Some(u) = &url {
                check_url(c, &key("url"), u);
            }
            let token = secret(c, &base, &t, "token", true);
            let ack = boolean(c, &key("ack"), t.get("ack")).unwrap_or(false);
            let ack_timeout = duration(
                c,
                &key("ack_timeout"),
                t.get("ack_timeout"),
                Duration::from_secs(60),
            );
            SinkKind::SplunkHec {
                url: url.unwrap_or_default(),
                token: token.unwrap_or(SecretRef {
                    key: key("token_env"),
                    source: SecretSource::Env(String::new()),
                }),
                index: string(c, &key("index"), t.get("index")),
                sourcetype: string(c, &key("sourcetype"), t.get("sourcetype")),
                ack: ack.then_some(ack_timeout),
                batch: batch(c, 1000),
            }
        }
        "webhook" => {
            let plain = string(c, &key("url"), t.get("url"));
            let secret_url = secret(c, &base, &t, "url", false);
            let url = match (plain, secret_url) {
                (Some(u), None) => {
                    check_url(c, &key("url"), &u);
                    UrlRef::Plain(u)
                }
                (None, Some(s)) => UrlRef::Secret(s),
                (Some(_), Some(_)) => {
                    c.error(key("url"), "give url, url_env or url_file, only one");
                    UrlRef::Plain(String::new())
                }
                (None, None) => {
                    c.error(
                        key("url"),
                        "expected url (or url_env / url_file when it embeds a secret)",
                    );
                    UrlRef::Plain(String::new())
                }
            };
            SinkKind::Webhook {
                url,
                hmac_key: secret(c, &base, &t, "hmac_key", false),
                batch: batch(c, 1000),
            }
        }
        "slack" => SinkKind::Slack {
            webhook_url: secret(c, &base, &t, "webhook_url", true).unwrap_or(SecretRef {
                key: key("webhook_url_env"),
                source: SecretSource::Env(String::new()),
            }),
            min_interval: duration(
                c,
                &key("min_interval"),
                t.get("min_interval"),
                Duration::from_secs(1),
            ),
        },
        "sns" => {
            let arn = string(c, &key("topic_arn"), t.get("topic_arn"));
            match &arn {
                Some(a) if a.starts_with("arn:") && a.split(':').count() == 6 => {}
                Some(a) => c.error(
                    key("topic_arn"),
                    format!("{a:?}: expected an SNS topic ARN, arn:aws:sns:REGION:ACCOUNT:NAME"),
                ),
                None if !t.contains_key("topic_arn") => {
                    c.error(key("topic_arn"), "expected the topic ARN")
                }
                None => {}
            }
            let json_structure =
                match string(c, &key("message_structure"), t.get("message_structure")).as_deref() {
                    None | Some("text") => false,
                    Some("json") => true,
                    Some(other) => {
                        c.error(
                            key("message_structure"),
                            format!("{other:?}: expected \"text\" or \"json\""),
                        );
                        false
                    }
                };
            // The topic's region is in its ARN; `region` overrides.
            let region = string(c, &key("region"), t.get("region")).or_else(|| {
                arn.as_deref()
                    .and_then(|a| a.split(':').nth(3))
                    .map(str::to_string)
            });
            SinkKind::Sns {
                topic_arn: arn.unwrap_or_default(),
                region,
                json_structure,
            }
        }
        _ => return None,
    };
    if format == Format::Ocsf && matches!(sink_kind, SinkKind::Slack { .. } | SinkKind::Sns { .. })
    {
        c.error(
            key("format"),
            "only SIEM sinks (stdout, file, splunk_hec, webhook) take a format",
        );
    }
    Some(SinkSpec {
        name: name.unwrap_or_default(),
        kind: sink_kind,
        format,
        include_event,
        timeout: duration(c, &key("timeout"), t.get("timeout"), defaults.timeout),
        max_attempts: integer(c, &key("max_attempts"), t.get("max_attempts"), 1)
            .map_or(defaults.max_attempts, |n| n.min(100) as u32),
        queue: integer(c, &key("queue"), t.get("queue"), 1).map_or(defaults.queue, |n| n as usize),
    })
}

fn check_url(c: &mut Collector, key: &str, u: &str) {
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        c.error(key, format!("{u:?}: expected an http:// or https:// URL"));
    }
}

fn array(c: &mut Collector, key: &str, v: Option<Value>) -> Vec<Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            c.error(
                key,
                format!(
                    "expected an array of tables ([[{key}]]), found {}",
                    other.type_str()
                ),
            );
            Vec::new()
        }
    }
}

/// Reads the three sections. `severities` lists, per rule id, the severities it can produce
/// (to find alerts no route takes); `ous` the OU ids of the policy.
pub(super) fn read(
    c: &mut Collector,
    delivery: toml::Table,
    sinks: Option<Value>,
    routes: Option<Value>,
    severities: &BTreeMap<String, BTreeSet<Severity>>,
    ous: &BTreeSet<String>,
) -> Delivery {
    let mut settings = DeliverySettings::default();
    if let Some(raw) = c.read::<DeliveryRaw>("delivery", Value::Table(delivery)) {
        let d = DeliverySettings::default();
        if let Some(s) = raw.state_dir {
            settings.state_dir = s.into();
        }
        if let Some(q) = raw.queue {
            if q == 0 {
                c.error("delivery.queue", "must be at least 1");
            }
            settings.queue = q.max(1);
        }
        for (k, v, slot, def) in [
            (
                "delivery.timeout",
                raw.timeout,
                &mut settings.timeout,
                d.timeout,
            ),
            (
                "delivery.backoff_initial",
                raw.backoff_initial,
                &mut settings.backoff_initial,
                d.backoff_initial,
            ),
            (
                "delivery.backoff_max",
                raw.backoff_max,
                &mut settings.backoff_max,
                d.backoff_max,
            ),
            (
                "delivery.accept_within",
                raw.accept_within,
                &mut settings.accept_within,
                d.accept_within,
            ),
        ] {
            *slot = duration(c, k, v.map(Value::String).as_ref(), def);
        }
        if let Some(n) = raw.max_attempts {
            if n == 0 {
                c.error("delivery.max_attempts", "must be at least 1");
            }
            settings.max_attempts = n.max(1);
        }
        if let Some(b) = raw.spool_segment_bytes {
            if b < 4096 {
                c.error("delivery.spool_segment_bytes", "must be at least 4096");
            }
            settings.spool_segment_bytes = b.max(4096);
        }
    }
    let mut specs = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, v) in array(c, "sinks", sinks).into_iter().enumerate() {
        if let Some(s) = read_sink(c, i, v, &settings) {
            if names.insert(s.name.clone(), specs.len()).is_some() {
                c.error(
                    format!("sinks[{i}].name"),
                    format!("{:?} is used by another sink", s.name),
                );
            }
            specs.push(s);
        }
    }
    let mut used = BTreeSet::new();
    let mut out_routes = Vec::new();
    for (i, v) in array(c, "routes", routes).into_iter().enumerate() {
        let base = format!("routes[{i}]");
        let Some(r) = c.read::<RouteRaw>(&base, v) else {
            continue;
        };
        if r.sinks.is_empty() {
            c.error(format!("{base}.sinks"), "expected at least one sink name");
        }
        let mut idx = Vec::new();
        for (j, s) in r.sinks.iter().enumerate() {
            match names.get(s) {
                Some(n) => {
                    used.insert(*n);
                    idx.push(*n);
                }
                None => c.error(
                    format!("{base}.sinks[{j}]"),
                    format!(
                        "no sink is named {s:?}; the sinks are: {}",
                        names.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
        for (j, a) in r.accounts.iter().enumerate() {
            let ok = match a.strip_prefix("ou:") {
                Some(ou) => {
                    if !ous.contains(ou) {
                        c.warn(format!("{base}.accounts[{j}]"), format!("OU {ou:?} is not in [policy.ous]: its accounts are unknown, so this matches nothing"));
                    }
                    true
                }
                None => a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()),
            };
            if !ok {
                c.error(
                    format!("{base}.accounts[{j}]"),
                    format!("{a:?}: expected a 12-digit account id or \"ou:<ou id>\""),
                );
            }
        }
        for (j, rule) in r.rules.iter().enumerate() {
            if !rule.contains('*') && !severities.contains_key(rule) {
                c.warn(
                    format!("{base}.rules[{j}]"),
                    format!("no rule is named {rule:?}"),
                );
            }
        }
        super::validate::check_region_list(c, &format!("{base}.regions"), &r.regions);
        out_routes.push(RouteSpec {
            stream: r.stream,
            sinks: idx,
            min_severity: r.min_severity,
            rules: r.rules,
            accounts: r.accounts,
            regions: r.regions,
        });
    }
    for (name, i) in &names {
        if !used.contains(i) {
            c.warn(
                format!("sinks[{i}]"),
                format!("sink {name:?} is in no route: nothing is sent to it"),
            );
        }
    }
    if !specs.is_empty() {
        check_coverage(c, &out_routes, severities);
    } else if !out_routes.is_empty() {
        c.error("routes", "routes need [[sinks]] to send to");
    }
    for s in &specs {
        for secret in secrets_of(s).into_iter().filter(|s| s.named()) {
            if let Err(why) = secret.read() {
                c.warn(
                    secret.key.clone(),
                    format!("{why} (needed when the sink starts)"),
                );
            }
        }
    }
    Delivery {
        settings,
        sinks: specs,
        routes: out_routes,
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
        SinkKind::Slack { webhook_url, .. } => vec![webhook_url],
        _ => Vec::new(),
    }
}

/// Warns about alerts no route takes: for each stream with routes, each rule at each
/// severity it produces must be taken by a route without account or region filters.
fn check_coverage(
    c: &mut Collector,
    routes: &[RouteSpec],
    severities: &BTreeMap<String, BTreeSet<Severity>>,
) {
    for stream in [Stream::Siem, Stream::Notify] {
        let of_stream: Vec<&RouteSpec> = routes.iter().filter(|r| r.stream == stream).collect();
        if of_stream.is_empty() {
            c.warn(
                "routes",
                format!(
                    "no route takes the {} stream: its items go nowhere",
                    stream.as_str()
                ),
            );
            continue;
        }
        for (rule, sevs) in severities {
            for sev in sevs {
                let taken = of_stream.iter().any(|r| {
                    r.accounts.is_empty()
                        && r.regions.is_empty()
                        && r.min_severity.is_none_or(|m| *sev >= m)
                        && (r.rules.is_empty()
                            || r.rules
                                .iter()
                                .any(|g| crate::rules::glob::Glob::new(g).matches(rule)))
                });
                if !taken {
                    c.warn(
                        "routes",
                        format!(
                            "{} stream: {} alerts of rule {rule:?} are taken by no route in some accounts or regions (or at all)",
                            stream.as_str(),
                            sev.as_str()
                        ),
                    );
                }
            }
        }
    }
}
