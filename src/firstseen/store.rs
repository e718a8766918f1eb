//! The first-seen baseline shared by several workers (`[baseline] table`): "first" holds
//! across the fleet. Each worker's own baseline is a cache in front of it: only a pair new to
//! the worker costs a request.
//!
//! Items (hash key `pk`): the key, `k␟<rule>␟<key>` with `since` (its first event, kept by
//! `if_not_exists`), and each pair, `p␟<rule>␟<key>␟<value>` with `firstSeen`; both with
//! `expires` (seconds, the table's time to live). A pair is first when its conditional put
//! succeeds: the item is absent, or expired (unseen for `forget_after`). Known pairs are
//! touched (their `expires` moved on) every third of `forget_after`, so a pair in use never
//! expires.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;

use crate::alert::Alert;
use crate::dynamo::{failed, Failed};

const SEP: char = '\u{1f}';

/// A pair new to this worker, waiting for the shared table to say whether it is new to the
/// fleet; its alert is built already.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub alert: Alert,
    pub rule: String,
    pub key: String,
    pub value: String,
    /// The event's time, seconds.
    pub time: i64,
    /// The key's first event as this worker knows it.
    pub local_since: i64,
    pub learn_for: i64,
    pub forget_after: i64,
    /// The pipeline's clock when it was seen.
    pub now: i64,
}

impl Candidate {
    /// Whether the key has learnt, given its first event `since`.
    pub fn learnt(&self, since: i64) -> bool {
        self.time - since.min(self.local_since) >= self.learn_for
    }
}

/// A known pair whose expiry in the table is due to be moved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub rule: String,
    pub key: String,
    pub value: String,
    pub time: i64,
    pub forget_after: i64,
}

pub struct Store {
    client: Client,
    table: String,
    /// This process, as the `writer` of the pairs it puts.
    me: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_pk(rule: &str, key: &str) -> String {
    format!("k{SEP}{rule}{SEP}{key}")
}

fn pair_pk(rule: &str, key: &str, value: &str) -> String {
    format!("p{SEP}{rule}{SEP}{key}{SEP}{value}")
}

impl Store {
    /// The table (created if missing, with its time to live on `expires`).
    pub async fn open(client: Client, table: &str) -> Result<Store, Failed> {
        crate::dynamo::ensure_table(&client, table, "pk", Some("expires")).await?;
        let me = format!(
            "{}-{}-{:x}",
            std::process::id(),
            crate::clock::now_secs(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        Ok(Store {
            client,
            table: table.to_string(),
            me,
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Records the key's first event (the earliest kept) and returns it as the table has it.
    async fn key_since(&self, c: &Candidate) -> Result<i64, Failed> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key_pk(&c.rule, &c.key)))
            .update_expression("SET since = if_not_exists(since, :t), expires = :e")
            .expression_attribute_values(":t", n(c.local_since))
            .expression_attribute_values(":e", n(c.time + 2 * c.forget_after))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| failed("UpdateItem", e))?;
        Ok(r.attributes()
            .and_then(|a| a.get("since"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(c.local_since))
    }

    /// Whether the pair is new to the fleet (this worker wrote it first), and the key's
    /// first event as the fleet knows it.
    pub async fn claim(&self, c: &Candidate) -> Result<(bool, i64), Failed> {
        let since = self.key_since(c).await?;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pair_pk(&c.rule, &c.key, &c.value)))
            .item("firstSeen", n(c.time))
            .item("writer", s(&self.me))
            .item("expires", n(c.time + c.forget_after))
            .condition_expression("attribute_not_exists(pk) OR expires < :t")
            .expression_attribute_values(":t", n(c.time))
            .send()
            .await;
        match r {
            // Read back (strongly consistent): DynamoDB's conditional put is atomic, but an
            // emulator may let two racing puts both succeed; the item says who wrote it.
            Ok(_) => Ok((
                self.writer(&c.rule, &c.key, &c.value).await? == self.me,
                since,
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok((false, since))
            }
            Err(e) => Err(failed("PutItem", e)),
        }
    }

    /// Writes a baseline built from the archive (`baseline seed`): each key's first event (the
    /// earlier of the table's and the seed's) and each pair not forgotten by `now`, their
    /// expiries moved on (never back). `forget` gives a rule's `forget_after`. Returns the keys
    /// and pairs written.
    pub async fn seed(
        &self,
        saved: &[super::baseline::SavedKey],
        forget: &dyn Fn(&str) -> Option<i64>,
        now: i64,
    ) -> Result<(usize, usize), Failed> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let mut writes = Vec::new();
        for k in saved {
            let Some(f) = forget(&k.rule) else { continue };
            let pairs: Vec<_> = k.values.iter().filter(|v| v.last + f >= now).collect();
            if pairs.is_empty() {
                continue;
            }
            writes.push((key_pk(&k.rule, &k.key), k.since, k.last + 2 * f, true));
            for v in pairs {
                writes.push((
                    pair_pk(&k.rule, &k.key, &v.value),
                    v.last,
                    v.last + f,
                    false,
                ));
            }
        }
        let keys = writes.iter().filter(|w| w.3).count();
        let pairs = writes.len() - keys;
        stream::iter(writes)
            .map(|(pk, t, expires, is_key)| self.seed_one(pk, t, expires, is_key))
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        Ok((keys, pairs))
    }

    async fn seed_one(&self, pk: String, t: i64, expires: i64, is_key: bool) -> Result<(), Failed> {
        let later = "attribute_not_exists(expires) OR expires < :e";
        match is_key {
            // The earliest first event of the table's and the seed's.
            true => {
                let earlier = "attribute_not_exists(since) OR since > :t";
                self.update_if(&pk, "SET since = :t", earlier, &[(":t", t)])
                    .await?;
                self.update_if(&pk, "SET expires = :e", later, &[(":e", expires)])
                    .await
            }
            false => {
                let expr = "SET firstSeen = if_not_exists(firstSeen, :t), expires = :e";
                self.update_if(&pk, expr, later, &[(":t", t), (":e", expires)])
                    .await
            }
        }
    }

    /// An update under a condition; the condition failing is not an error.
    async fn update_if(
        &self,
        pk: &str,
        expr: &str,
        cond: &str,
        values: &[(&str, i64)],
    ) -> Result<(), Failed> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .update_expression(expr)
            .condition_expression(cond);
        for (k, v) in values {
            req = req.expression_attribute_values(*k, n(*v));
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(failed("UpdateItem", e)),
        }
    }

    /// Who wrote a pair's item last.
    async fn writer(&self, rule: &str, key: &str, value: &str) -> Result<String, Failed> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pair_pk(rule, key, value)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", e))?;
        Ok(got
            .item()
            .and_then(|i| i.get("writer"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default())
    }

    /// Moves a known pair's expiry (and its key's) on.
    pub async fn touch(&self, t: &Touch) -> Result<(), Failed> {
        let later = "attribute_not_exists(expires) OR expires < :e";
        let pair = pair_pk(&t.rule, &t.key, &t.value);
        self.update_if(
            &pair,
            "SET expires = :e",
            later,
            &[(":e", t.time + t.forget_after)],
        )
        .await?;
        let key = key_pk(&t.rule, &t.key);
        self.update_if(
            &key,
            "SET expires = :e",
            later,
            &[(":e", t.time + 2 * t.forget_after)],
        )
        .await
    }
}
