//! Builds the configured sinks: resolves their secrets (a missing one fails start-up, naming
//! the config key and the variable or file, never a value), makes their clients, and starts
//! the dispatcher with each sink's spool.

use crate::config::delivery::{SinkKind, SinkSpec, UrlRef};
use crate::config::Config;
use crate::route::Router;
use crate::sink::deliver::{Dispatcher, SinkParts, WorkerSettings};
use crate::sink::target::{
    file::FileTarget, hec::Hec, http_client, slack::Slack, sns::Sns, webhook::Webhook, Target,
};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Secret(String),
    #[error("spool under {dir}: {source}")]
    Spool { dir: String, source: std::io::Error },
}

async fn target(spec: &SinkSpec) -> Result<Target, BuildError> {
    let secret = |r: &crate::config::delivery::SecretRef| r.resolve().map_err(BuildError::Secret);
    Ok(match &spec.kind {
        SinkKind::Stdout => Target::File(FileTarget::stdout(spec.format, spec.include_event)),
        SinkKind::File {
            path,
            rotate_bytes,
            rotate_every,
            fsync,
        } => {
            let mut f = FileTarget::file(path, spec.format, spec.include_event);
            f.rotate_bytes = *rotate_bytes;
            f.rotate_every = *rotate_every;
            f.fsync = *fsync;
            Target::File(f)
        }
        SinkKind::SplunkHec {
            url,
            token,
            index,
            sourcetype,
            ack,
            batch,
        } => Target::Hec(Hec::new(
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
                UrlRef::Secret(s) => secret(s)?,
            };
            let key = hmac_key.as_ref().map(secret).transpose()?;
            Target::Webhook(Webhook::new(
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
        } => Target::Slack(Slack::new(
            http_client(spec.timeout),
            secret(webhook_url)?,
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
            Target::Sns(Sns::new(client, topic_arn.clone(), *json_structure))
        }
    })
}

/// Every configured sink, ready; `None` when no `[[sinks]]` are configured.
pub async fn dispatcher(config: &Config) -> Result<Option<Dispatcher>, BuildError> {
    let d = &config.delivery;
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
        Router::new(config),
        parts,
        &d.settings.state_dir,
        d.settings.spool_segment_bytes,
    )
    .map(Some)
    .map_err(|source| BuildError::Spool {
        dir: d.settings.state_dir.display().to_string(),
        source,
    })
}

/// The alert ids of siem items waiting in the sinks' spools. After a crash, records read
/// again from the last checkpoint must not alert again for what is already spooled.
pub fn spooled_alert_ids(config: &Config) -> std::io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for s in &config.delivery.sinks {
        let dir = config
            .delivery
            .settings
            .state_dir
            .join("spool")
            .join(&s.name);
        let spool = crate::sink::spool::Spool::inspect(&dir)?;
        for p in spool.peek(spool.len())? {
            if let Ok(crate::sink::item::Item::Siem(a)) = crate::sink::item::Item::from_spool(&p) {
                ids.push(a.alert_id);
            }
        }
    }
    Ok(ids)
}
