//! Slack incoming webhooks: one Block Kit message per item, at most one a second per webhook
//! (Slack's limit), `Retry-After` honoured on 429. The webhook URL is the secret: it is never
//! logged (errors say "slack webhook" and the status).

use std::sync::Arc;
use std::time::Duration;

use super::{post, Outcome};
use crate::item::Item;
use crate::render;

pub struct Slack {
    client: reqwest::Client,
    url: String,
    pub min_interval: Duration,
}

impl Slack {
    pub fn new(client: reqwest::Client, url: String, min_interval: Duration) -> Self {
        Slack {
            client,
            url,
            min_interval,
        }
    }

    pub async fn send(&mut self, items: &[Arc<Item>]) -> Outcome {
        for (i, item) in items.iter().enumerate() {
            let body = render::slack::message(item);
            if let Err(e) = post(self.client.post(&self.url).json(&body)).await {
                return Outcome {
                    delivered: i,
                    error: Some(e),
                };
            }
        }
        Outcome::all(items.len())
    }
}
