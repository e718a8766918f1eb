//! The SDK configuration the read-heavy clients share (Organizations, the S3 archive): the
//! environment's region, credentials and endpoints (`AWS_ENDPOINT_URL…`), with a retry more
//! patient than the default (8 attempts, backoff up to 20 s) unless `AWS_MAX_ATTEMPTS` says
//! otherwise: both APIs throttle readers that list a lot.

use std::time::Duration;

pub async fn patient_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
        loader = loader.retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(8)
                .with_max_backoff(Duration::from_secs(20)),
        );
    }
    loader.load().await
}
