//! SNS: PublishBatch of up to 10 entries and 256 KiB in all, each with a subject under 100
//! characters, the readable text body (or per-protocol JSON with `message_structure =
//! "json"`), and the attributes `severity`, `rule`, `account`, `region`, `kind`, `stream` for
//! subscription filter policies. FIFO topics get `MessageGroupId` = account and
//! `MessageDeduplicationId` = delivery id. A message too large is shortened with a marker that
//! names the alert id, never rejected.

use std::sync::Arc;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use super::Outcome;
use crate::item::Item;
use crate::render;
use crate::sink::error::{self, SendError};

/// SNS's limit for one message and for a whole batch, attributes included.
pub const MAX_BYTES: usize = 262_144;

pub struct Sns {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    fifo: bool,
    json_structure: bool,
}

/// Cuts `body` so that it and `overhead` fit in `max` bytes, ending with a pointer.
pub fn shorten(body: &str, id: &str, overhead: usize, max: usize) -> String {
    if body.len() + overhead <= max {
        return body.to_string();
    }
    let marker = format!("\n… [shortened by trailwatch: the whole alert is {id} in the SIEM feed]");
    let room = max.saturating_sub(overhead + marker.len());
    let mut cut = room.min(body.len());
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{marker}", &body[..cut])
}

/// How many entries of these sizes one PublishBatch takes: at most 10 and 256 KiB in all
/// (always at least one: each entry alone fits, having been shortened).
pub fn fit(sizes: &[usize]) -> usize {
    let mut total = 0;
    for (i, s) in sizes.iter().take(10).enumerate() {
        if i > 0 && total + s > MAX_BYTES {
            return i;
        }
        total += s;
    }
    sizes.len().min(10)
}

impl Sns {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String, json_structure: bool) -> Self {
        Sns {
            fifo: topic_arn.ends_with(".fifo"),
            client,
            topic_arn,
            json_structure,
        }
    }

    fn attributes(item: &Item) -> Vec<(&'static str, String)> {
        let a = item.alert();
        let kind = match item.kind() {
            crate::shaping::Kind::Alert => "alert",
            crate::shaping::Kind::Update => "update",
            crate::shaping::Kind::Digest => "digest",
        };
        let mut v = vec![
            ("severity", a.severity.as_str().to_string()),
            ("rule", a.rule.clone()),
            ("kind", kind.to_string()),
            ("stream", item.stream().as_str().to_string()),
        ];
        // Empty values are not allowed.
        if let Some(acc) = a.account.clone().filter(|s| !s.is_empty()) {
            v.push(("account", acc));
        }
        if let Some(r) = a.region.clone().filter(|s| !s.is_empty()) {
            v.push(("region", r));
        }
        v
    }

    /// One entry and its size in bytes as SNS counts it.
    fn entry(&self, i: usize, item: &Item) -> Result<(PublishBatchRequestEntry, usize), SendError> {
        let attrs = Self::attributes(item);
        let attr_bytes: usize = attrs
            .iter()
            .map(|(k, v)| k.len() + "String".len() + v.len())
            .sum();
        let subject = render::text::subject(item);
        let overhead = attr_bytes + subject.len();
        let id = item.id();
        let message = if self.json_structure {
            let text = shorten(&render::text::body(item), &id, overhead, MAX_BYTES / 3);
            let native = item.native();
            let doc = render::text::per_protocol_with(item, &text, &native);
            if doc.len() + overhead <= MAX_BYTES {
                doc
            } else {
                // The raw forms do not fit: every protocol gets the shortened text.
                render::text::per_protocol_with(
                    item,
                    &text,
                    &serde_json::Value::String(text.clone()),
                )
            }
        } else {
            shorten(&render::text::body(item), &id, overhead, MAX_BYTES)
        };
        let size = message.len() + overhead;
        let mut b = PublishBatchRequestEntry::builder()
            .id(format!("e{i}"))
            .message(message)
            .subject(subject);
        if self.json_structure {
            b = b.message_structure("json");
        }
        for (k, v) in attrs {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| SendError::rejected(e.to_string()))?;
            b = b.message_attributes(k, value);
        }
        if self.fifo {
            let group = item
                .alert()
                .account
                .clone()
                .unwrap_or_else(|| "unknown".into());
            b = b.message_group_id(group).message_deduplication_id(id);
        }
        let entry = b.build().map_err(|e| SendError::rejected(e.to_string()))?;
        Ok((entry, size))
    }

    pub async fn send(&mut self, items: &[Arc<Item>]) -> Outcome {
        let mut entries = Vec::new();
        let mut sizes = Vec::new();
        for (i, item) in items.iter().enumerate().take(10) {
            match self.entry(i, item) {
                Ok((entry, size)) => {
                    entries.push(entry);
                    sizes.push(size);
                }
                Err(e) if i == 0 => return Outcome::none(e),
                Err(_) => break,
            }
        }
        // The rest go in the next batch.
        entries.truncate(fit(&sizes));
        let n = entries.len();
        let resp = match self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let code = e.as_service_error().and_then(|s| {
                    aws_sdk_sns::error::ProvideErrorMetadata::code(s).map(str::to_string)
                });
                let msg = crate::aws::describe(&e);
                return Outcome::none(error::aws(code.as_deref(), &msg));
            }
        };
        let first_failed = resp
            .failed()
            .iter()
            .filter_map(|f| {
                let idx: usize = f.id().strip_prefix('e')?.parse().ok()?;
                Some((idx, f))
            })
            .min_by_key(|(i, _)| *i);
        match first_failed {
            None => Outcome {
                delivered: n,
                error: None,
            },
            Some((idx, f)) => {
                let msg = f.message().unwrap_or_default();
                let e = if f.sender_fault() {
                    SendError::rejected(format!("{}: {msg}", f.code()))
                } else {
                    error::aws(Some(f.code()), msg)
                };
                Outcome {
                    delivered: idx,
                    error: Some(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_ten_entries_and_256_kib() {
        assert_eq!(fit(&[1000; 14]), 10);
        assert_eq!(fit(&[100_000, 100_000, 100_000]), 2);
        assert_eq!(fit(&[MAX_BYTES, 10]), 1);
        assert_eq!(fit(&[MAX_BYTES / 2, MAX_BYTES / 2, 1]), 2);
        assert_eq!(fit(&[]), 0);
    }

    #[test]
    fn an_oversized_body_is_shortened_with_a_pointer() {
        let body = "é".repeat(200_000); // 400,000 bytes
        let out = shorten(&body, "abc123", 1000, MAX_BYTES);
        assert!(out.len() + 1000 <= MAX_BYTES);
        assert!(out.ends_with("the whole alert is abc123 in the SIEM feed]"));
        assert_eq!(shorten("short", "x", 10, MAX_BYTES), "short");
    }
}
