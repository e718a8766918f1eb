//! Splunk HTTP Event Collector: batched events (objects back to back) to
//! `/services/collector/event` with `Authorization: Splunk <token>`. HEC answers
//! `{"text","code"}`; code 9 (busy) and 5xx are retried, bad tokens are broken, bad data is
//! rejected. With `ack = true` a channel id is sent and the batch counts as delivered only
//! once `/services/collector/ack` confirms it was indexed. Each event carries the delivery
//! id in `fields.alert_id` so searches can drop at-least-once repeats.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{post, Format, Outcome};
use crate::event::parse_utc_secs;
use crate::item::Item;
use crate::sink::error::{self, SendError};

pub struct Hec {
    client: reqwest::Client,
    base: String,
    token: String,
    pub index: Option<String>,
    pub source: String,
    pub sourcetype: Option<String>,
    pub format: Format,
    pub include_event: bool,
    pub max_batch: usize,
    /// Indexer acknowledgement: the channel id, and how long to wait for the ack.
    pub ack: Option<(String, Duration)>,
    host: String,
}

impl Hec {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: reqwest::Client,
        url: &str,
        token: String,
        index: Option<String>,
        sourcetype: Option<String>,
        format: Format,
        include_event: bool,
        max_batch: usize,
        ack: Option<Duration>,
    ) -> Self {
        let nanos = crate::clock::now_nanos();
        let h = xxhash_rust::xxh3::xxh3_128(format!("{nanos}{}", std::process::id()).as_bytes());
        let hex = format!("{h:032x}");
        // A UUID-shaped channel id, as HEC requires.
        let channel = format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        );
        Hec {
            client,
            base: url.trim_end_matches('/').to_string(),
            token,
            index,
            source: "trailwatch".into(),
            sourcetype,
            format,
            include_event,
            max_batch,
            ack: ack.map(|d| (channel, d)),
            host: std::env::var("HOSTNAME").unwrap_or_else(|_| "trailwatch".into()),
        }
    }

    fn event(&self, item: &Item) -> Value {
        let a = item.alert();
        let time = item
            .notify()
            .and_then(|n| parse_utc_secs(&n.last_seen))
            .or_else(|| a.event_time.as_deref().and_then(parse_utc_secs));
        let sourcetype = self
            .sourcetype
            .clone()
            .unwrap_or_else(|| match self.format {
                Format::Native => "trailwatch:alert".into(),
                Format::Ocsf => "ocsf:detection_finding".into(),
            });
        let mut e = json!({
            "host": self.host,
            "source": self.source,
            "sourcetype": sourcetype,
            "event": super::render(self.format, item, self.include_event),
            "fields": {
                "alert_id": item.id(),
                "rule": a.rule,
                "severity": a.severity.as_str(),
                "stream": item.stream().as_str(),
            },
        });
        if let Some(t) = time {
            e["time"] = json!(t);
        }
        if let Some(i) = &self.index {
            e["index"] = json!(i);
        }
        e
    }

    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Splunk {}", self.token));
        if let Some((channel, _)) = &self.ack {
            req = req.header("x-splunk-request-channel", channel);
        }
        req
    }

    pub async fn send(&mut self, items: &[Arc<Item>]) -> Outcome {
        let mut body = Vec::new();
        for item in items {
            if serde_json::to_writer(&mut body, &self.event(item)).is_err() {
                return Outcome::none(SendError::rejected("cannot serialize an event"));
            }
            body.push(b'\n');
        }
        let (_, text) = match post(
            self.request("/services/collector/event")
                .header("content-type", "application/json")
                .body(body),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => return Outcome::none(hec_code(e)),
        };
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if answer["code"].as_i64().is_some_and(|c| c != 0) {
            return Outcome::none(SendError::retry(format!("HEC answered {text}")));
        }
        if let Some((_, wait)) = &self.ack {
            let Some(id) = answer["ackId"].as_u64() else {
                return Outcome::none(SendError::broken(
                    "HEC gave no ackId: indexer acknowledgement is off for this token (set ack = false)",
                ));
            };
            if let Err(e) = self.wait_ack(id, *wait).await {
                return Outcome::none(e);
            }
        }
        Outcome::all(items.len())
    }

    async fn wait_ack(&self, id: u64, wait: Duration) -> Result<(), SendError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (_, text) = post(
                self.request("/services/collector/ack")
                    .json(&json!({"acks": [id]})),
            )
            .await
            .map_err(hec_code)?;
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if v["acks"][id.to_string()].as_bool() == Some(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SendError::retry(format!(
                    "HEC did not acknowledge ackId {id} within {wait:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// HEC's own codes refine the HTTP status: 9 (busy) is retried whatever the status says;
/// a missing channel, a disabled ack or a wrong index are configuration, not data.
fn hec_code(e: SendError) -> SendError {
    let code = e
        .message
        .split_once(": ")
        .and_then(|(_, body)| serde_json::from_str::<Value>(body).ok())
        .and_then(|v| v["code"].as_i64());
    match code {
        Some(9) => SendError {
            class: error::Class::Retry { after: None },
            ..e
        },
        Some(7 | 10 | 11 | 14) => SendError {
            class: error::Class::Broken,
            ..e
        },
        _ => e,
    }
}
