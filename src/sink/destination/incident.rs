//! The incident tools reached by one HTTPS POST an item: PagerDuty's Events API v2 (the
//! routing key in the body), Opsgenie's Alert API (`Authorization: GenieKey <key>`) and a
//! Microsoft Teams Workflows webhook (the URL is the secret). Each item is one request, as
//! their APIs take them; `Retry-After` on 429 is honoured through the one classifier. Secrets
//! never reach a log: errors name the tool and the status.

use std::sync::Arc;
use std::time::Duration;

use super::{post, Outcome};
use crate::item::Item;
use crate::render;

pub enum Protocol {
    PagerDuty { routing_key: String },
    Opsgenie { api_key: String },
    Teams,
}

pub struct Incident {
    client: reqwest::Client,
    url: String,
    protocol: Protocol,
    pub min_interval: Option<Duration>,
}

impl Incident {
    pub fn new(
        client: reqwest::Client,
        url: String,
        protocol: Protocol,
        min_interval: Option<Duration>,
    ) -> Self {
        Incident {
            client,
            url,
            protocol,
            min_interval,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.protocol {
            Protocol::PagerDuty { .. } => "pagerduty",
            Protocol::Opsgenie { .. } => "opsgenie",
            Protocol::Teams => "teams",
        }
    }

    fn request(&self, item: &Item) -> reqwest::RequestBuilder {
        let req = self.client.post(&self.url);
        match &self.protocol {
            Protocol::PagerDuty { routing_key } => {
                let mut body = render::pagerduty::event(item);
                body["routing_key"] = routing_key.clone().into();
                req.json(&body)
            }
            Protocol::Opsgenie { api_key } => req
                .header("authorization", format!("GenieKey {api_key}"))
                .json(&render::opsgenie::alert(item)),
            Protocol::Teams => req.json(&render::teams::message(item)),
        }
    }

    pub async fn send(&mut self, items: &[Arc<Item>]) -> Outcome {
        for (i, item) in items.iter().enumerate() {
            if let Err(e) = post(self.request(item)).await {
                return Outcome {
                    delivered: i,
                    error: Some(e),
                };
            }
        }
        Outcome::all(items.len())
    }
}
