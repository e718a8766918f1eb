//! Builds the configured sinks: resolves their secrets (a missing one fails start-up, naming
//! the config key and the variable or file, never a value), makes their clients, and starts
//! the dispatcher with each sink's spool.

use std::collections::BTreeMap;

use crate::config::delivery::{Delivery, SinkKind, SinkSpec, UrlRef};
use crate::config::Ou;
use crate::sink::deliver::{Dispatcher, SinkParts, WorkerSettings};
use crate::sink::destination::incident::{Incident, Protocol};
use crate::sink::destination::securityhub::SecurityHub;
use crate::sink::destination::{
    file::FileSink, hec::Hec, http_client, slack::Slack, sns::Sns, webhook::Webhook, Destination,
};
use crate::sink::route::Router;
use crate::sink::spool::{self, Spool};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Secret(String),
    #[error("spool under {dir}: {source}")]
    Spool { dir: String, source: std::io::Error },
}

/// A URL read from a secret: it must be an absolute http(s) URL, or every delivery would fail
/// (and, failing as "retryable", spool for ever). The value is never printed: it may hold a
/// token.
fn secret_url(r: &crate::config::delivery::SecretRef) -> Result<String, BuildError> {
    let v = r.resolve().map_err(BuildError::Secret)?;
    match reqwest::Url::parse(&v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(v),
        Ok(u) => Err(BuildError::Secret(format!(
            "{}: the secret is a {} URL, not an absolute http:// or https:// one (its value is not shown)",
            r.key,
            u.scheme()
        ))),
        Err(e) => Err(BuildError::Secret(format!(
            "{}: the secret is not an absolute http:// or https:// URL ({e}; its value is not shown)",
            r.key
        ))),
    }
}

async fn target(spec: &SinkSpec) -> Result<Destination, BuildError> {
    let secret = |r: &crate::config::delivery::SecretRef| r.resolve().map_err(BuildError::Secret);
    Ok(match &spec.kind {
        SinkKind::Stdout => Destination::File(FileSink::stdout(spec.format, spec.include_event)),
        SinkKind::File {
            path,
            rotate_bytes,
            rotate_every,
            fsync,
        } => {
            let mut f = FileSink::file(path, spec.format, spec.include_event);
            f.rotate_bytes = *rotate_bytes;
            f.rotate_every = *rotate_every;
            f.fsync = *fsync;
            Destination::File(f)
        }
        SinkKind::SplunkHec {
            url,
            token,
            index,
            sourcetype,
            ack,
            batch,
        } => Destination::Hec(Hec::new(
            http_client(spec.timeout),
            url,
            secret(token)?,
            index.clone(),
            sourcetype.clone(),
            spec.format,
            spec.include_event,
            *batch,
            *ack,
        )),
        SinkKind::Webhook {
            url,
            hmac_key,
            batch,
        } => {
            let url = match url {
                UrlRef::Plain(u) => u.clone(),
                UrlRef::Secret(s) => secret_url(s)?,
            };
            let key = hmac_key.as_ref().map(secret).transpose()?;
            Destination::Webhook(Webhook::new(
                http_client(spec.timeout),
                url,
                key.map(String::into_bytes),
                spec.format,
                spec.include_event,
                *batch,
            ))
        }
        SinkKind::Slack {
            webhook_url,
            min_interval,
        } => Destination::Slack(Slack::new(
            http_client(spec.timeout),
            secret_url(webhook_url)?,
            *min_interval,
        )),
        SinkKind::Sns {
            topic_arn,
            region,
            json_structure,
        } => {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(r) = region {
                loader = loader.region(aws_config::Region::new(r.clone()));
            }
            let client = aws_sdk_sns::Client::new(&loader.load().await);
            Destination::Sns(Sns::new(client, topic_arn.clone(), *json_structure))
        }
        SinkKind::PagerDuty { url, routing_key } => Destination::Incident(Incident::new(
            http_client(spec.timeout),
            url.clone(),
            Protocol::PagerDuty {
                routing_key: secret(routing_key)?,
            },
            None,
        )),
        SinkKind::Opsgenie { url, api_key } => Destination::Incident(Incident::new(
            http_client(spec.timeout),
            url.clone(),
            Protocol::Opsgenie {
                api_key: secret(api_key)?,
            },
            None,
        )),
        SinkKind::Teams {
            webhook_url,
            min_interval,
        } => Destination::Incident(Incident::new(
            http_client(spec.timeout),
            secret_url(webhook_url)?,
            Protocol::Teams,
            Some(*min_interval),
        )),
        SinkKind::SecurityHub {
            account_id,
            region,
            finding_account,
        } => {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(r) = region {
                loader = loader.region(aws_config::Region::new(r.clone()));
            }
            let conf = loader.load().await;
            let Some(hub_region) = region
                .clone()
                .or_else(|| conf.region().map(|r| r.to_string()))
            else {
                return Err(BuildError::Secret(format!(
                    "sinks.{}: Security Hub's region is not known: set region in the sink or AWS_REGION",
                    spec.name
                )));
            };
            Destination::SecurityHub(SecurityHub::new(
                aws_sdk_securityhub::Client::new(&conf),
                account_id.clone(),
                hub_region,
                *finding_account,
            ))
        }
    })
}

/// Every configured sink, ready (the routes see the OU tree); `None` when no `[[sinks]]` are
/// configured.
pub async fn dispatcher(
    d: &Delivery,
    ous: &BTreeMap<String, Ou>,
) -> Result<Option<Dispatcher>, BuildError> {
    if !d.is_configured() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for spec in &d.sinks {
        parts.push(SinkParts {
            name: spec.name.clone(),
            target: target(spec).await?,
            queue: spec.queue,
            settings: WorkerSettings {
                timeout: spec.timeout,
                max_attempts: spec.max_attempts,
                backoff_initial: d.settings.backoff_initial,
                backoff_max: d.settings.backoff_max,
                accept_within: d.settings.accept_within,
            },
        });
    }
    Dispatcher::start(
        Router::new(&d.routes, ous),
        parts,
        &d.settings.state_dir,
        d.settings.spool_segment_bytes,
        d.settings.delivered_ids,
    )
    .map(Some)
    .map_err(|source| BuildError::Spool {
        dir: d.settings.state_dir.display().to_string(),
        source,
    })
}

/// Items waiting in every sink's spool.
pub fn spooled(d: &Delivery) -> std::io::Result<usize> {
    let mut n = 0;
    for s in &d.sinks {
        n += Spool::inspect(&spool::dir(&d.settings.state_dir, &s.name))?.len();
    }
    Ok(n)
}
