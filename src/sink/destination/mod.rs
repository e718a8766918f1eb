//! The destinations: each turns a batch of items into one request of its protocol and says
//! how it went: files, Splunk HEC, webhooks, Slack, SNS, the incident tools (PagerDuty,
//! Opsgenie, Teams) and Security Hub. Batching, retries, pacing and the spool are the delivery worker's job
//! ([`crate::sink::deliver`]); errors are classified in [`crate::sink::error`].

pub mod file;
pub mod hec;
pub mod incident;
#[cfg(test)]
pub mod memory;
pub mod securityhub;
pub mod slack;
pub mod sns;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::error::SendError;
use crate::item::Item;
use crate::render;

pub use crate::config::delivery::Format;

/// An item as a SIEM-type sink writes it: the native JSON (without the record unless
/// `include_event`) or an OCSF Detection Finding.
pub fn render(format: Format, item: &Item, include_event: bool) -> Value {
    match format {
        Format::Native => {
            let mut v = item.native();
            if !include_event {
                if let Some(o) = v.as_object_mut() {
                    o.remove("event");
                }
            }
            v
        }
        Format::Ocsf => render::ocsf::finding(item),
    }
}

/// Items that were delivered (a prefix of the batch), and why the rest were not.
#[derive(Debug)]
pub struct Outcome {
    pub delivered: usize,
    pub error: Option<SendError>,
}

impl Outcome {
    pub fn all(n: usize) -> Self {
        Outcome {
            delivered: n,
            error: None,
        }
    }
    pub fn none(e: SendError) -> Self {
        Outcome {
            delivered: 0,
            error: Some(e),
        }
    }
}

pub enum Destination {
    File(file::FileSink),
    Hec(hec::Hec),
    Webhook(webhook::Webhook),
    Slack(slack::Slack),
    Sns(sns::Sns),
    Incident(incident::Incident),
    SecurityHub(securityhub::SecurityHub),
    #[cfg(test)]
    Memory(memory::Memory),
}

impl Destination {
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::File(f) if f.is_stdout() => "stdout",
            Destination::File(_) => "file",
            Destination::Hec(_) => "splunk_hec",
            Destination::Webhook(_) => "webhook",
            Destination::Slack(_) => "slack",
            Destination::Sns(_) => "sns",
            Destination::Incident(i) => i.kind(),
            Destination::SecurityHub(_) => "securityhub",
            #[cfg(test)]
            Destination::Memory(_) => "memory",
        }
    }

    /// Most items in one request.
    pub fn max_batch(&self) -> usize {
        match self {
            Destination::File(_) => 1000,
            Destination::Hec(h) => h.max_batch,
            Destination::Webhook(w) => w.max_batch,
            Destination::Slack(_) => 1,
            Destination::Sns(_) => 10,
            Destination::Incident(_) => 1,
            Destination::SecurityHub(_) => securityhub::MAX_BATCH,
            #[cfg(test)]
            Destination::Memory(_) => 100,
        }
    }

    /// Least time between two requests (Slack: one message a second per webhook).
    pub fn min_interval(&self) -> Option<Duration> {
        match self {
            Destination::Slack(s) => Some(s.min_interval),
            Destination::Incident(i) => i.min_interval,
            _ => None,
        }
    }

    pub async fn send(&mut self, items: &[Arc<Item>]) -> Outcome {
        if items.is_empty() {
            return Outcome::all(0);
        }
        match self {
            Destination::File(f) => f.send(items),
            Destination::Hec(h) => h.send(items).await,
            Destination::Webhook(w) => w.send(items).await,
            Destination::Slack(s) => s.send(items).await,
            Destination::Sns(s) => s.send(items).await,
            Destination::Incident(i) => i.send(items).await,
            Destination::SecurityHub(s) => s.send(items).await,
            #[cfg(test)]
            Destination::Memory(m) => m.send(items).await,
        }
    }
}

/// The HTTP client for Slack, HEC, webhooks and the incident tools: rustls, a request timeout, no redirects
/// (a webhook that redirects is misconfigured, and the body must not follow it elsewhere).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("trailwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends a request and maps any answer other than 2xx through the classifier.
pub async fn post(req: reqwest::RequestBuilder) -> Result<(u16, String), SendError> {
    let resp = req.send().await.map_err(|e| super::error::transport(&e))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.text().await.unwrap_or_default();
    if (200..300).contains(&status) {
        Ok((status, body))
    } else {
        Err(super::error::http(status, retry_after.as_deref(), &body))
    }
}
