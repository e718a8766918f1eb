//! The one place that decides what a failed delivery means: try again later (`Retry`, with
//! the destination's `Retry-After` when it gave one), the destination is misconfigured or
//! revoked (`Broken`: keep the items in the spool and tell the operator), or these items can
//! never be accepted (`Rejected`: written to the sink's rejected file, never retried).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Retry { after: Option<Duration> },
    Broken,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub class: Class,
    /// Never contains a secret: URLs are reduced to their host, tokens never included.
    pub message: String,
}

impl SendError {
    pub fn retry(message: impl Into<String>) -> Self {
        SendError {
            class: Class::Retry { after: None },
            message: message.into(),
        }
    }
    pub fn broken(message: impl Into<String>) -> Self {
        SendError {
            class: Class::Broken,
            message: message.into(),
        }
    }
    pub fn rejected(message: impl Into<String>) -> Self {
        SendError {
            class: Class::Rejected,
            message: message.into(),
        }
    }
    pub fn kind(&self) -> &'static str {
        match self.class {
            Class::Retry { .. } => "retry",
            Class::Broken => "broken",
            Class::Rejected => "rejected",
        }
    }
}

/// `Retry-After`: delay-seconds (an HTTP date is not worth a clock comparison: ignored).
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let secs: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

/// An HTTP answer that is not a success. `body` is the destination's (short) explanation.
pub fn http(status: u16, retry_after_header: Option<&str>, body: &str) -> SendError {
    let body: String = body.chars().take(300).collect();
    let message = format!("HTTP {status}: {}", body.trim());
    let class = match status {
        429 => Class::Retry {
            after: retry_after(retry_after_header),
        },
        408 | 425 | 500..=599 => Class::Retry {
            after: retry_after(retry_after_header),
        },
        // Credentials, a revoked webhook, a deleted channel: no retry will fix it soon.
        401 | 403 | 404 | 410 => Class::Broken,
        _ => Class::Rejected,
    };
    SendError { class, message }
}

/// A transport failure (connection refused, reset, DNS, timeout): always worth retrying.
pub fn transport(e: &dyn std::error::Error) -> SendError {
    // reqwest's Display includes the URL, which may hold a secret (Slack webhooks): only the
    // kind of failure and its sources are kept.
    let causes = crate::error_text::causes(e);
    SendError::retry(format!(
        "transport: {}",
        causes.as_deref().unwrap_or("request failed")
    ))
}

/// An AWS service error code from the SDK (SNS): throttling and server faults are retried,
/// missing permissions or topics are broken, anything else about the request is rejected.
pub fn aws(code: Option<&str>, message: &str) -> SendError {
    let class = match code {
        None => Class::Retry { after: None },
        Some(c)
            if c.contains("Throttl")
                || c == "InternalError"
                || c == "InternalFailure"
                || c == "InternalException"
                || c == "LimitExceededException"
                || c == "ServiceUnavailable"
                || c == "KMSThrottling"
                || c == "RequestTimeout" =>
        {
            Class::Retry { after: None }
        }
        Some(
            "AuthorizationError"
            | "AccessDenied"
            | "AccessDeniedException"
            | "NotFound"
            | "InvalidSecurity"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "ExpiredToken"
            | "KMSDisabled"
            | "KMSAccessDenied"
            | "KMSNotFound"
            | "KMSInvalidState"
            | "EndpointDisabled"
            // Security Hub is not enabled in the account and region.
            | "InvalidAccessException",
        ) => Class::Broken,
        Some(_) => Class::Rejected,
    };
    SendError {
        class,
        message: format!("{}: {message}", code.unwrap_or("transport")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_are_classified_once() {
        assert_eq!(
            http(429, Some("7"), "rate limited").class,
            Class::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(http(503, None, "").class, Class::Retry { after: None });
        assert_eq!(http(500, None, "").class, Class::Retry { after: None });
        assert_eq!(http(403, None, "action_prohibited").class, Class::Broken);
        assert_eq!(http(404, None, "no_service").class, Class::Broken);
        assert_eq!(http(410, None, "channel_is_archived").class, Class::Broken);
        assert_eq!(http(400, None, "invalid_payload").class, Class::Rejected);
        assert_eq!(http(413, None, "").class, Class::Rejected);
        assert!(http(400, None, "invalid_payload")
            .message
            .contains("invalid_payload"));
    }

    #[test]
    fn retry_after_takes_seconds_only() {
        assert_eq!(retry_after(Some("30")), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(Some("99999")), Some(Duration::from_secs(3600)));
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn aws_codes() {
        assert_eq!(
            aws(Some("Throttling"), "x").class,
            Class::Retry { after: None }
        );
        assert_eq!(
            aws(Some("InternalError"), "x").class,
            Class::Retry { after: None }
        );
        assert_eq!(aws(Some("AuthorizationError"), "x").class, Class::Broken);
        assert_eq!(aws(Some("NotFound"), "x").class, Class::Broken);
        assert_eq!(aws(Some("InvalidParameter"), "x").class, Class::Rejected);
        assert_eq!(
            aws(None, "dispatch failure").class,
            Class::Retry { after: None }
        );
    }
}
