//! The lease table in DynamoDB: one item per shard, changed only by conditional writes, so a
//! worker that lost a lease cannot move the new owner's checkpoint.
//!
//! Item: `leaseKey` (S, the shard id, hash key), `stream` (S), `leaseOwner` (S, absent when
//! free), `leaseCounter` (N), `checkpoint` (S, absent before the first), `subSequence` (N),
//! `finished` (BOOL), `parentShardIds` (L of S), `wantedBy` (S), `arrived` (N, seconds: when
//! the checkpointed record arrived in the stream).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::plan::Lease;
use crate::state::ShardCheckpoint;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease table {table}: DynamoDB {op}: {message}")]
    Api {
        table: String,
        op: &'static str,
        message: String,
    },
    #[error("lease table {table} holds leases of stream {found:?}, not {expected:?}: use one table per stream")]
    OtherStream {
        table: String,
        found: String,
        expected: String,
    },
}

pub struct LeaseTable {
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) stream: String,
    pub(super) me: String,
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key prefix of the items that record a `feed-gap` window's backfill (not leases).
pub const BACKFILL_PREFIX: &str = "backfill#";

fn parse(item: &HashMap<String, AttributeValue>) -> Option<Lease> {
    if item
        .get("leaseKey")
        .and_then(|v| v.as_s().ok())
        .is_some_and(|k| k.starts_with(BACKFILL_PREFIX))
    {
        return None;
    }
    let get_s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let get_n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    Some(Lease {
        shard: get_s("leaseKey")?,
        owner: get_s("leaseOwner"),
        counter: get_n("leaseCounter").unwrap_or(0),
        checkpoint: ShardCheckpoint {
            sequence_number: get_s("checkpoint"),
            sub_sequence: get_n("subSequence").and_then(|v| u64::try_from(v).ok()),
            finished: item
                .get("finished")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            arrived: get_n("arrived"),
        },
        parents: item
            .get("parentShardIds")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|p| p.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        wanted_by: get_s("wantedBy"),
    })
}

impl LeaseTable {
    pub fn new(client: Client, table: &str, stream: &str, me: &str) -> LeaseTable {
        LeaseTable {
            client,
            table: table.to_string(),
            stream: stream.to_string(),
            me: me.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.table
    }

    pub(super) fn api<E, R>(
        &self,
        op: &'static str,
        e: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> LeaseError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        LeaseError::Api {
            table: self.table.clone(),
            op,
            message: crate::aws::describe(&e),
        }
    }

    /// Creates the table (on-demand capacity) if it does not exist, and waits until ACTIVE.
    pub async fn ensure(&self) -> Result<(), LeaseError> {
        crate::dynamo::ensure_table(&self.client, &self.table, "leaseKey", None)
            .await
            .map_err(|f| LeaseError::Api {
                table: self.table.clone(),
                op: f.op,
                message: f.message,
            })
    }

    /// Every lease (strongly consistent), after checking they belong to this stream.
    pub async fn scan(&self) -> Result<Vec<Lease>, LeaseError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let resp = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.api("Scan", e))?;
            for item in resp.items() {
                if let Some(found) = item.get("stream").and_then(|v| v.as_s().ok()) {
                    if *found != self.stream {
                        return Err(LeaseError::OtherStream {
                            table: self.table.clone(),
                            found: found.clone(),
                            expected: self.stream.clone(),
                        });
                    }
                }
                if let Some(l) = parse(item) {
                    out.push(l);
                }
            }
            match resp.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.shard.cmp(&b.shard));
        Ok(out)
    }

    /// Adds a free lease for a newly seen shard (nothing if it exists).
    pub async fn create(&self, shard: &str, parents: &[String]) -> Result<(), LeaseError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("leaseKey", s(shard))
            .item("stream", s(&self.stream))
            .item("leaseCounter", n(0))
            .item("finished", AttributeValue::Bool(false))
            .item(
                "parentShardIds",
                AttributeValue::L(parents.iter().map(s).collect()),
            )
            .condition_expression("attribute_not_exists(leaseKey)")
            .send()
            .await;
        self.conditional("PutItem", r).map(|_| ())
    }

    /// Ok(false) when the condition failed (someone else moved first).
    pub(super) fn conditional<T, E>(
        &self,
        op: &'static str,
        r: Result<T, SdkError<E>>,
    ) -> Result<bool, LeaseError>
    where
        E: std::error::Error
            + ConditionFailed
            + aws_sdk_dynamodb::error::ProvideErrorMetadata
            + 'static,
        SdkError<E>: std::error::Error,
    {
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.condition_failed()) => Ok(false),
            Err(e) => Err(self.api(op, e)),
        }
    }

    pub(super) async fn update(
        &self,
        shard: &str,
        expr: &str,
        cond: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, LeaseError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", s(shard))
            .update_expression(expr)
            .condition_expression(cond);
        for (k, v) in values {
            req = req.expression_attribute_values(*k, v.clone());
        }
        let r = req.send().await;
        self.conditional("UpdateItem", r)
    }

    /// Takes a free or expired lease, if its counter is still the one observed.
    pub async fn take(&self, shard: &str, counter: i64) -> Result<bool, LeaseError> {
        let taken = self
            .update(
                shard,
                "SET leaseOwner = :me, leaseCounter = :next REMOVE wantedBy",
                "leaseCounter = :seen",
                &[
                    (":me", s(&self.me)),
                    (":next", n(counter + 1)),
                    (":seen", n(counter)),
                ],
            )
            .await?;
        // Read back (strongly consistent): DynamoDB's conditional update is atomic, but an
        // emulator may let two racing takes both succeed; the item says who owns it.
        Ok(
            taken
                && self.attribute(shard, "leaseOwner").await?.as_deref() == Some(self.me.as_str()),
        )
    }

    /// A string attribute of an item, read strongly consistent (who owns or claims it now).
    pub(super) async fn attribute(
        &self,
        item: &str,
        attr: &str,
    ) -> Result<Option<String>, LeaseError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("leaseKey", s(item))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.api("GetItem", e))?;
        Ok(got
            .item()
            .and_then(|i| i.get(attr))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    /// Shows this worker is alive; Ok(false) if the lease is no longer its own.
    pub async fn renew(&self, shard: &str) -> Result<bool, LeaseError> {
        self.update(
            shard,
            "SET leaseCounter = leaseCounter + :one",
            "leaseOwner = :me",
            &[(":one", n(1)), (":me", s(&self.me))],
        )
        .await
    }

    /// Moves the checkpoint; Ok(false) if the lease is no longer this worker's.
    pub async fn checkpoint(&self, shard: &str, cp: &ShardCheckpoint) -> Result<bool, LeaseError> {
        let mut values = vec![
            (":me", s(&self.me)),
            (":finished", AttributeValue::Bool(cp.finished)),
        ];
        let mut set = vec!["finished = :finished"];
        let mut remove = Vec::new();
        match &cp.sequence_number {
            Some(seq) => {
                set.push("checkpoint = :seq");
                values.push((":seq", s(seq)));
            }
            None => remove.push("checkpoint"),
        }
        match cp.sub_sequence {
            Some(sub) => {
                set.push("subSequence = :sub");
                values.push((":sub", n(sub as i64)));
            }
            None => remove.push("subSequence"),
        }
        if let Some(t) = cp.arrived {
            set.push("arrived = :arrived");
            values.push((":arrived", n(t)));
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.update(shard, &expr, "leaseOwner = :me", &values).await
    }

    /// Gives a lease to the worker that asked for it (after this worker's last checkpoint).
    pub async fn hand_over(&self, shard: &str, to: &str) -> Result<bool, LeaseError> {
        self.update(
            shard,
            "SET leaseOwner = :to, leaseCounter = leaseCounter + :one REMOVE wantedBy",
            "leaseOwner = :me AND wantedBy = :to",
            &[(":to", s(to)), (":one", n(1)), (":me", s(&self.me))],
        )
        .await
    }

    /// Asks `owner` for a lease.
    pub async fn request(&self, shard: &str, owner: &str) -> Result<bool, LeaseError> {
        self.update(
            shard,
            "SET wantedBy = :me",
            "leaseOwner = :owner AND attribute_not_exists(wantedBy)",
            &[(":me", s(&self.me)), (":owner", s(owner))],
        )
        .await
    }

    /// Frees a lease at shutdown so another worker takes it at once.
    pub async fn release(&self, shard: &str) -> Result<bool, LeaseError> {
        self.update(
            shard,
            "SET leaseCounter = leaseCounter + :one REMOVE leaseOwner, wantedBy",
            "leaseOwner = :me",
            &[(":one", n(1)), (":me", s(&self.me))],
        )
        .await
    }

    /// Deletes the lease of a finished shard that has left the stream (trimmed).
    pub async fn delete_finished(&self, shard: &str) -> Result<bool, LeaseError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("leaseKey", s(shard))
            .condition_expression("finished = :t")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        self.conditional("DeleteItem", r)
    }
}

/// Service errors that can be a failed condition.
pub trait ConditionFailed {
    fn condition_failed(&self) -> bool;
}

macro_rules! condition_failed {
    ($($t:ty),*) => {$(
        impl ConditionFailed for $t {
            fn condition_failed(&self) -> bool {
                self.is_conditional_check_failed_exception()
            }
        }
    )*};
}
condition_failed!(
    aws_sdk_dynamodb::operation::put_item::PutItemError,
    aws_sdk_dynamodb::operation::update_item::UpdateItemError,
    aws_sdk_dynamodb::operation::delete_item::DeleteItemError
);
