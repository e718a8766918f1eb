//! Webhooks: an HTTPS POST of a JSON array of items (native or OCSF), signed with
//! HMAC-SHA256 over `<timestamp>.<body>` (`X-Trailwatch-Signature: t=<ts>,v1=<hex>`, the
//! Stripe scheme: a receiver checks the signature and rejects old timestamps). Idempotency:
//! each item carries `delivery_id`, and the request an `Idempotency-Key` over its ids.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{post, Format, Outcome};
use crate::item::Item;
use crate::sink::error::SendError;

pub struct Webhook {
    client: reqwest::Client,
    url: String,
    key: Option<Vec<u8>>,
    pub format: Format,
    pub include_event: bool,
    pub max_batch: usize,
}

/// `t=<ts>,v1=<hex hmac>`: what a receiver recomputes.
pub fn signature(key: &[u8], ts: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let sig = mac.finalize().into_bytes();
    let hex: String = sig.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={ts},v1={hex}")
}

impl Webhook {
    pub fn new(
        client: reqwest::Client,
        url: String,
        key: Option<Vec<u8>>,
        format: Format,
        include_event: bool,
        max_batch: usize,
    ) -> Self {
        Webhook {
            client,
            url,
            key,
            format,
            include_event,
            max_batch,
        }
    }

    pub async fn send(&mut self, items: &[Arc<Item>]) -> Outcome {
        let mut ids = Vec::with_capacity(items.len());
        let docs: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                let id = i.id();
                let mut v = super::render(self.format, i, self.include_event);
                if let Some(o) = v.as_object_mut() {
                    o.insert("delivery_id".into(), id.clone().into());
                }
                ids.push(id);
                v
            })
            .collect();
        let Ok(body) = serde_json::to_vec(&docs) else {
            return Outcome::none(SendError::rejected("cannot serialize the batch"));
        };
        let ts = crate::clock::now_secs();
        let key = format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(ids.join(",").as_bytes())
        );
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .header("x-trailwatch-timestamp", ts.to_string());
        if let Some(k) = &self.key {
            req = req.header("x-trailwatch-signature", signature(k, ts, &body));
        }
        match post(req.body(body)).await {
            Ok(_) => Outcome::all(items.len()),
            Err(e) => Outcome::none(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 key and data, with the "<ts>." prefix folded into the data.
        let sig = signature(b"Jefe", 0, b"");
        assert!(sig.starts_with("t=0,v1="));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.");
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, format!("t=0,v1={want}"));
        // A known vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
