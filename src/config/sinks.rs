//! One `[[sinks]]` entry: the keys its type takes (others are errors, and a key that would
//! put a secret in the config text says what to use instead), their values checked.

use std::time::Duration;

use toml::Value;

use super::collector::Collector;
use super::delivery::Format;
use super::delivery::{DeliverySettings, SecretRef, SecretSource, SinkKind, SinkSpec, UrlRef};
use super::sink_values::{boolean, check_url, duration, integer, secret, string};

/// The keys each sink type takes, besides `name`, `type` and the per-sink overrides.
pub(super) fn keys_for(kind: &str) -> Option<&'static [&'static str]> {
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
        "pagerduty" => &["url", "routing_key_env", "routing_key_file"],
        "opsgenie" => &["url", "api_key_env", "api_key_file"],
        "teams" => &["webhook_url_env", "webhook_url_file", "min_interval"],
        "securityhub" => &["account_id", "region", "finding_account"],
        _ => return None,
    })
}

pub(super) const COMMON: &[&str] = &["name", "type", "timeout", "max_attempts", "queue"];

/// Keys that would put a secret in the config text.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("token", "token_env or token_file"),
    ("hmac_key", "hmac_key_env or hmac_key_file"),
    ("webhook_url", "webhook_url_env or webhook_url_file"),
    ("routing_key", "routing_key_env or routing_key_file"),
    ("api_key", "api_key_env or api_key_file"),
];

/// The types, as errors list them.
const TYPES: &str =
    "stdout, file, splunk_hec, webhook, slack, sns, pagerduty, opsgenie, teams, securityhub";

pub(super) fn read_sink(
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
            c.error(format!("{base}.type"), format!("expected one of {TYPES}"));
        }
        return None;
    };
    let Some(allowed) = keys_for(&kind) else {
        c.error(
            format!("{base}.type"),
            format!("{kind:?}: expected one of {TYPES}"),
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
        other => super::sinks_incident::read(c, &base, other, &t)?,
    };
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
