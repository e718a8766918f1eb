//! The archive in S3, through aws-sdk-s3: ListObjectsV2 (every page) and GetObject.
//! Throttling and 5xx are retried by the SDK's standard retry (8 attempts, backoff up to
//! 20 s, unless `AWS_MAX_ATTEMPTS` says otherwise); a body that breaks off mid-read is read
//! again, up to three times. `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3` are honoured.

use std::time::Duration;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::Client;

use super::plan::{Lister, Listing, Object};

pub struct S3 {
    pub client: Client,
    pub bucket: String,
}

/// `s3://bucket/prefix` → (bucket, prefix).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.to_string()))
}

/// The S3 client from the environment (region, credentials, endpoint).
pub async fn client() -> Client {
    let shared = crate::aws::patient_config().await;
    // Emulators and S3-compatible stores answer on path-style URLs.
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(
            std::env::var_os("AWS_ENDPOINT_URL").is_some()
                || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some(),
        )
        .build();
    Client::from_conf(conf)
}

impl Lister for S3 {
    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, String> {
        let mut out = Listing::default();
        let mut token = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix);
            if delimited {
                req = req.delimiter("/");
            }
            if let Some(t) = token.take() {
                req = req.continuation_token(t);
            }
            let page = req
                .send()
                .await
                .map_err(|e| DisplayErrorContext(e).to_string())?;
            out.prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            out.objects.extend(page.contents().iter().filter_map(|o| {
                Some(Object {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                })
            }));
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }
}

impl S3 {
    /// The object's bytes; a body that breaks off is read again (the SDK retries the
    /// request itself, not a body cut mid-way).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            let resp = match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(r) => r,
                // The SDK retried what can be retried: give up on this object.
                Err(e) => return Err(DisplayErrorContext(e).to_string()),
            };
            match resp.body.collect().await {
                Ok(b) => return Ok(b.into_bytes().to_vec()),
                Err(e) => last = format!("reading the body: {e}"),
            }
        }
        Err(last)
    }
}
