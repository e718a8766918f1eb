//! The DynamoDB tables trailwatch creates for itself (the lease table, the first-seen
//! baseline): created on demand if missing, waited for until ACTIVE.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

/// A call that failed: which, and why (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub op: &'static str,
    pub message: String,
}

/// A failed call as one line: the service's code and message, or the transport's causes.
pub fn failed<E, R>(op: &'static str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> Failed
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = crate::aws::describe(&e);
    Failed { op, message }
}

/// Creates `table` (on-demand capacity, string hash key `key`) if it does not exist, turns on
/// its time to live on `ttl` when given, and waits until it is ACTIVE.
pub async fn ensure_table(
    client: &Client,
    table: &str,
    key: &str,
    ttl: Option<&str>,
) -> Result<(), Failed> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| Failed {
        op: "CreateTable",
        message: e.to_string(),
    };
    match client.describe_table().table_name(table).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            tracing::info!(table, "creating the DynamoDB table");
            let created = client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(key)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(build)?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(key)
                        .key_type(KeyType::Hash)
                        .build()
                        .map_err(build)?,
                )
                .send()
                .await;
            match created {
                Ok(_) => {}
                // Another worker created it first.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(failed("CreateTable", e)),
            }
        }
        Err(e) => return Err(failed("DescribeTable", e)),
    }
    let mut active = false;
    for _ in 0..120 {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| failed("DescribeTable", e))?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !active {
        return Err(Failed {
            op: "DescribeTable",
            message: format!("{table} did not become ACTIVE within a minute"),
        });
    }
    if let Some(attr) = ttl {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(attr)
            .build()
            .map_err(|e| Failed {
                op: "UpdateTimeToLive",
                message: e.to_string(),
            })?;
        let r = client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await;
        match r {
            Ok(_) => {}
            // Already on (a second worker, a restart).
            Err(e)
                if e.as_service_error()
                    .and_then(|s| s.meta().message())
                    .is_some_and(|m| m.contains("already enabled")) => {}
            Err(e) => return Err(failed("UpdateTimeToLive", e)),
        }
    }
    Ok(())
}
