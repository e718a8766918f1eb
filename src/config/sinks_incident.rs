//! The `[[sinks]]` of the tools incident response already uses: PagerDuty, Opsgenie, Microsoft
//! Teams and AWS Security Hub (issue 30). Secrets by `*_env`/`*_file` as for the others.

use std::time::Duration;

use super::collector::Collector;
use super::delivery::{FindingAccount, SecretRef, SecretSource, SinkKind};
use super::sink_values::{check_url, duration, secret, string};

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Opsgenie's Alert API (the EU instance is `https://api.eu.opsgenie.com/v2/alerts`).
pub const OPSGENIE_URL: &str = "https://api.opsgenie.com/v2/alerts";

fn required_secret(c: &mut Collector, base: &str, t: &toml::Table, name: &str) -> SecretRef {
    secret(c, base, t, name, true).unwrap_or(SecretRef {
        key: format!("{base}.{name}_env"),
        source: SecretSource::Env(String::new()),
    })
}

fn url(c: &mut Collector, base: &str, t: &toml::Table, default: &str) -> String {
    let key = format!("{base}.url");
    match string(c, &key, t.get("url")) {
        Some(u) => {
            check_url(c, &key, &u);
            u
        }
        None => default.to_string(),
    }
}

/// The sink of type `kind` (one of this module's), or `None` for another type.
pub(super) fn read(c: &mut Collector, base: &str, kind: &str, t: &toml::Table) -> Option<SinkKind> {
    let key = |k: &str| format!("{base}.{k}");
    Some(match kind {
        "pagerduty" => SinkKind::PagerDuty {
            url: url(c, base, t, PAGERDUTY_URL),
            routing_key: required_secret(c, base, t, "routing_key"),
        },
        "opsgenie" => SinkKind::Opsgenie {
            url: url(c, base, t, OPSGENIE_URL),
            api_key: required_secret(c, base, t, "api_key"),
        },
        "teams" => SinkKind::Teams {
            webhook_url: required_secret(c, base, t, "webhook_url"),
            min_interval: duration(
                c,
                &key("min_interval"),
                t.get("min_interval"),
                Duration::from_secs(1),
            ),
        },
        "securityhub" => {
            let account_id = string(c, &key("account_id"), t.get("account_id"));
            match &account_id {
                Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => {}
                Some(a) => c.error(
                    key("account_id"),
                    format!("{a:?}: expected a 12-digit account id"),
                ),
                None if !t.contains_key("account_id") => c.error(
                    key("account_id"),
                    "expected the 12-digit id of the account trailwatch imports findings as \
                     (the security account; its default product ARN is used)",
                ),
                None => {}
            }
            let finding_account =
                match string(c, &key("finding_account"), t.get("finding_account")).as_deref() {
                    None | Some("caller") => FindingAccount::Caller,
                    Some("alert") => FindingAccount::Alert,
                    Some(other) => {
                        c.error(
                            key("finding_account"),
                            format!("{other:?}: expected \"caller\" or \"alert\""),
                        );
                        FindingAccount::Caller
                    }
                };
            SinkKind::SecurityHub {
                account_id: account_id.unwrap_or_default(),
                region: string(c, &key("region"), t.get("region")),
                finding_account,
            }
        }
        _ => return None,
    })
}
