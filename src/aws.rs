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

/// An SDK error as one log-friendly line: the service's error code, its message and the
/// request id (`ThrottlingException: Rate exceeded (request id 4f…)`), or for an error that
/// never reached the service (a timeout, a refused connection) the chain of causes, flattened,
/// at most 300 characters. Never the SDK's whole `Debug` dump.
pub fn describe<E, R>(e: &aws_sdk_kinesis::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_kinesis::error::{DisplayErrorContext, SdkError};
    use aws_sdk_kinesis::operation::RequestId;
    match e {
        SdkError::ServiceError(s) => {
            let meta = s.err().meta();
            let code = meta.code().unwrap_or("an error without a code");
            let mut line = code.to_string();
            if let Some(m) = meta.message() {
                line.push_str(": ");
                line.push_str(&clip(&one_line(m), 300));
            }
            if let Some(id) = meta.request_id() {
                line.push_str(&format!(" (request id {})", clip(id, 80)));
            }
            line
        }
        other => clip(&one_line(&DisplayErrorContext(other).to_string()), 300),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_kinesis::error::{ErrorMetadata, SdkError};
    use aws_sdk_kinesis::operation::get_records::GetRecordsError;

    #[test]
    fn a_service_error_is_one_line_with_its_code_message_and_request_id() {
        let meta = ErrorMetadata::builder()
            .code("ThrottlingException")
            .message("Rate exceeded\nfor account")
            .custom("aws_request_id", "req-123")
            .build();
        let err = GetRecordsError::generic(meta);
        let e = SdkError::service_error(err, ());
        let line = super::describe(&e);
        assert_eq!(
            line,
            "ThrottlingException: Rate exceeded for account (request id req-123)"
        );
    }
}
