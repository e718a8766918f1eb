//! The Lambda road (`trailwatch lambda`): one handler for the two events Lambda brings, run
//! under the AWS Lambda runtime ([`run`]).
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
//! event); the responses are `aws_lambda_events` types. Records go through the
//! [`Engine`]; its dedup and shaping state live in the execution environment: a retried
//! record's events are duplicates there, so the items of a record that failed are kept (by
//! sequence number or record id) and submitted again on the retry.

use std::collections::{HashMap, VecDeque};

use aws_lambda_events::event::firehose::{KinesisFirehoseResponse, KinesisFirehoseResponseRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use base64::Engine as _;
use serde_json::Value;

use crate::clock::now_secs;
use crate::decode::{Position, Step};
use crate::engine::{Data, Engine, Pending, Record};

/// Serves Lambda invocations (the runtime API named by `AWS_LAMBDA_RUNTIME_API`) until the
/// runtime stops.
pub async fn run(config: &crate::config::Config) -> Result<(), super::RoadError> {
    use lambda_runtime::{service_fn, LambdaEvent};
    let output = crate::build::OutputChoice::configured(config, None);
    let engine = crate::build::engine(config, crate::build::Options::live(output, now_secs()))
        .await
        .map_err(|source| super::RoadError::Build {
            file: "the Lambda configuration".into(),
            source,
        })?;
    let lambda = std::sync::Arc::new(tokio::sync::Mutex::new(Lambda::new(
        engine,
        config.lambda.drop_non_matching,
    )));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let lambda = lambda.clone();
        async move {
            lambda
                .lock()
                .await
                .handle(event.payload)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))
        }
    }))
    .await
    .map_err(|e| super::RoadError::Runtime(e.to_string()))
}

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
    engine: Engine,
    drop_non_matching: bool,
    pending: HashMap<String, Pending>,
    pending_order: VecDeque<String>,
}

/// What one record gave.
struct Evaluated {
    pending: Pending,
    dead: u64,
}

impl Lambda {
    pub fn new(engine: Engine, drop_non_matching: bool) -> Lambda {
        Lambda {
            engine,
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
        let mut position = Position::new(input.to_string());
        position.steps.push(Step::Index("Records", i));
        position.sequence_number = seq.map(str::to_string);
        let data = match data {
            Some(text) => Data::Base64(text),
            None => Data::Missing("the record has no data"),
        };
        let e = self
            .engine
            .evaluate([Record { position, data }], None, now_secs());
        Evaluated {
            pending: e.pending,
            dead: e.counts.dead_letters,
        }
    }

    /// Submits the items; gives them back when they were not accepted.
    async fn deliver(&self, pending: Pending) -> Result<(), Pending> {
        self.engine
            .submit(pending)
            .await
            .wait()
            .await
            .map_err(|r| r.pending)
    }

    fn keep(&mut self, key: String, pending: Pending) {
        if pending.is_empty() {
            return;
        }
        if self.pending.insert(key.clone(), pending).is_none() {
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
            Some(pending) => Evaluated { pending, dead: 0 },
            None => self.evaluate(input, i, data, seq),
        }
    }

    /// Notify items that fell due since the last invocation.
    async fn advance(&mut self) {
        let due = self.engine.tick(now_secs());
        if self.deliver(due).await.is_err() {
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
                self.keep(seq, ev.pending);
                continue;
            }
            if let Err(back) = self.deliver(ev.pending).await {
                tracing::error!(sequence_number = %seq, "alerts not accepted: Lambda retries from this record");
                response.add_failure(seq.clone());
                self.keep(seq, back);
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
            } else if self.drop_non_matching && ev.pending.is_empty() {
                ("Dropped", Vec::new())
            } else {
                ("Ok", raw)
            };
            if !not_accepted.is_empty() {
                not_accepted.push((id.clone(), ev.pending));
            } else if let Err(back) = self.deliver(ev.pending).await {
                not_accepted.push((id.clone(), back));
            }
            let mut rec = KinesisFirehoseResponseRecord::default();
            rec.record_id = Some(id);
            rec.result = Some(result.to_string());
            *rec.data = data;
            out.records.push(rec);
        }
        if !not_accepted.is_empty() {
            let n = not_accepted.len();
            for (id, pending) in not_accepted {
                self.keep(id, pending);
            }
            return Err(LambdaError::NotAccepted(n));
        }
        Ok(out)
    }

    /// Stops the sinks' workers (what is queued is spooled).
    pub async fn close(self) {
        self.engine.shutdown().await;
    }
}
