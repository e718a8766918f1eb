//! Lambda mode: one handler for the two events Lambda brings.
//!
//! - **Kinesis event source mapping**: every record is decoded and evaluated and its alerts
//!   delivered in order; the first record whose alerts cannot be accepted (delivered or
//!   spooled) is returned in `batchItemFailures`, so Lambda retries from there (partial batch
//!   responses). Bad records are dead letters, never failures: they would block the shard.
//! - **Firehose data transformation**: each `recordId` comes back once, `Ok` with its data
//!   unchanged (or `Dropped` when it raised nothing and `drop_non_matching` is set), or
//!   `ProcessingFailed` with its data when it could not be read. Alerts are a side effect; if
//!   they cannot be accepted the invocation fails, and Firehose invokes again.
//!
//! The event is read from JSON by hand (a record with bad base64 must not fail the whole
//! event); the responses are `aws_lambda_events` types. Dedup and shaping state live in the
//! execution environment: a retried record's events are duplicates there, so the alerts of a
//! record that failed are kept (by sequence number or record id) and delivered on the retry.

use std::collections::{HashMap, VecDeque};

use aws_lambda_events::event::firehose::{KinesisFirehoseResponse, KinesisFirehoseResponseRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use base64::Engine as _;
use serde_json::Value;

use crate::config::Config;
use crate::decode::{DeadLetter, Decoder, Position, Step, Visit};
use crate::event::now_secs;
use crate::pipeline::collect::Collect;
use crate::pipeline::Pipeline;
use crate::shaping::Shaper;
use crate::sink::deliver::Dispatcher;
use crate::sink::item::{due, items, Item};
use crate::sink::report_dead_letter;

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("not a Kinesis or Firehose transformation event")]
    UnknownEvent,
    #[error("alerts of {0} records could not be delivered or spooled; invoke again")]
    NotAccepted(usize),
}

/// Most records whose alerts are kept for a retry.
const PENDING_MAX: usize = 100_000;

pub struct Lambda {
    pipeline: Pipeline,
    shaper: Option<Shaper>,
    decoder: Decoder,
    dispatcher: Option<Dispatcher>,
    drop_non_matching: bool,
    pending: HashMap<String, Vec<Item>>,
    pending_order: VecDeque<String>,
}

/// What one record gave.
struct Evaluated {
    items: Vec<Item>,
    dead: usize,
}

impl Lambda {
    /// `dispatcher`: the configured sinks, or `None` to print the SIEM feed (CloudWatch Logs).
    pub fn new(config: &Config, dispatcher: Option<Dispatcher>, drop_non_matching: bool) -> Lambda {
        Lambda {
            pipeline: Pipeline::new(config, config.delivery.needs_event()),
            shaper: dispatcher.as_ref().map(|_| Shaper::from_config(config)),
            decoder: Decoder::new(config.decode.limits()),
            dispatcher,
            drop_non_matching,
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
        }
    }

    /// Dispatches on the event's shape; the answer is the JSON Lambda returns.
    pub async fn handle(&mut self, event: Value) -> Result<Value, LambdaError> {
        if event.get("Records").is_some_and(Value::is_array) {
            let r = self.kinesis(&event).await;
            return Ok(serde_json::to_value(r).unwrap_or(Value::Null));
        }
        if event.get("records").is_some_and(Value::is_array) {
            let r = self.firehose(&event).await?;
            return Ok(serde_json::to_value(r).unwrap_or(Value::Null));
        }
        Err(LambdaError::UnknownEvent)
    }

    fn evaluate(
        &mut self,
        input: &str,
        i: usize,
        data: Option<&str>,
        seq: Option<&str>,
    ) -> Evaluated {
        let now = now_secs();
        let mut pos = Position::new(input.to_string());
        pos.steps.push(Step::Index("Records", i));
        pos.sequence_number = seq.map(str::to_string);
        let mut c = Collect::new(&mut self.pipeline, now);
        match data {
            Some(text) => self.decoder.decode_base64(text, &mut pos, &mut c),
            None => c.dead_letter(DeadLetter::new(&pos, b"", "the record has no data")),
        }
        metrics::counter!("trailwatch_events_total").increment(c.events);
        c.dead.iter().for_each(report_dead_letter);
        let (alerts, dead) = (std::mem::take(&mut c.alerts), c.dead.len());
        for a in &alerts {
            metrics::counter!("trailwatch_alerts_total", "rule" => a.rule.clone()).increment(1);
        }
        Evaluated {
            items: items(alerts, self.shaper.as_mut(), now),
            dead,
        }
    }

    /// Delivers (or prints) the items; whether they were all accepted.
    async fn deliver(&self, items: Vec<Item>) -> bool {
        if items.is_empty() {
            return true;
        }
        match &self.dispatcher {
            Some(d) => d.submit(items).await.wait().await,
            None => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Siem(a) => Some(a),
                        Item::Notify(_) => None,
                    })
                    .all(|a| {
                        serde_json::to_writer(&mut out, a).is_ok() && out.write_all(b"\n").is_ok()
                    })
                    && out.flush().is_ok()
            }
        }
    }

    fn keep(&mut self, key: String, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        if self.pending.insert(key.clone(), items).is_none() {
            self.pending_order.push_back(key);
        }
        while self.pending_order.len() > PENDING_MAX {
            if let Some(old) = self.pending_order.pop_front() {
                if self.pending.remove(&old).is_some() {
                    tracing::error!(record = %old, "dropping the kept alerts of a record that was never retried");
                }
            }
        }
    }

    /// The record's items: kept from a failed attempt, or evaluated now.
    fn items_for(
        &mut self,
        key: &str,
        input: &str,
        i: usize,
        data: Option<&str>,
        seq: Option<&str>,
    ) -> Evaluated {
        match self.pending.remove(key) {
            Some(items) => Evaluated { items, dead: 0 },
            None => self.evaluate(input, i, data, seq),
        }
    }

    /// Notify items that fell due since the last invocation.
    async fn advance(&mut self) {
        let items = match self.shaper.as_mut() {
            Some(s) => due(s, now_secs()),
            None => return,
        };
        if !self.deliver(items).await {
            tracing::error!("notify items could not be delivered or spooled");
        }
    }

    pub async fn kinesis(&mut self, event: &Value) -> KinesisEventResponse {
        self.advance().await;
        let records = event["Records"].as_array().cloned().unwrap_or_default();
        let mut response = KinesisEventResponse::default();
        let mut failed = false;
        for (i, r) in records.iter().enumerate() {
            let seq = r["kinesis"]["sequenceNumber"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let input = r["eventSourceARN"]
                .as_str()
                .unwrap_or("kinesis")
                .to_string();
            let ev = self.items_for(&seq, &input, i, r["kinesis"]["data"].as_str(), Some(&seq));
            if failed {
                self.keep(seq, ev.items);
                continue;
            }
            if !self.deliver(ev.items.clone()).await {
                tracing::error!(sequence_number = %seq, "alerts not accepted: Lambda retries from this record");
                response.add_failure(seq.clone());
                self.keep(seq, ev.items);
                failed = true;
            }
        }
        response
    }

    pub async fn firehose(
        &mut self,
        event: &Value,
    ) -> Result<KinesisFirehoseResponse, LambdaError> {
        self.advance().await;
        let records = event["records"].as_array().cloned().unwrap_or_default();
        let input = event["deliveryStreamArn"]
            .as_str()
            .unwrap_or("firehose")
            .to_string();
        let mut out = KinesisFirehoseResponse::default();
        let mut not_accepted = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let id = r["recordId"].as_str().unwrap_or_default().to_string();
            let data = r["data"].as_str();
            let ev = self.items_for(&id, &input, i, data, None);
            let raw = data
                .and_then(|d| {
                    base64::engine::general_purpose::STANDARD
                        .decode(d.trim())
                        .ok()
                })
                .unwrap_or_default();
            let (result, data) = if ev.dead > 0 {
                ("ProcessingFailed", raw)
            } else if self.drop_non_matching && ev.items.is_empty() {
                ("Dropped", Vec::new())
            } else {
                ("Ok", raw)
            };
            if !not_accepted.is_empty() || !self.deliver(ev.items.clone()).await {
                not_accepted.push((id.clone(), ev.items));
            }
            let mut rec = KinesisFirehoseResponseRecord::default();
            rec.record_id = Some(id);
            rec.result = Some(result.to_string());
            *rec.data = data;
            out.records.push(rec);
        }
        if !not_accepted.is_empty() {
            let n = not_accepted.len();
            for (id, items) in not_accepted {
                self.keep(id, items);
            }
            return Err(LambdaError::NotAccepted(n));
        }
        Ok(out)
    }

    /// Stops the sinks' workers (what is queued is spooled).
    pub async fn close(self) {
        if let Some(d) = self.dispatcher {
            d.close().await;
        }
    }
}
