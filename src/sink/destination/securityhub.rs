//! AWS Security Hub: ASFF findings ([`crate::render::asff`]) through `BatchImportFindings`,
//! 100 a call. The finding's `Id` is the alert id, so a redelivery (a retry, a record read
//! again) updates the finding instead of adding one. A finding Security Hub refuses for its
//! content is rejected (to the rejected file); any other failure is retried.

use std::sync::Arc;

use aws_sdk_securityhub::types::{AwsSecurityFinding, Resource, Severity, SeverityLabel};

use super::Outcome;
use crate::config::delivery::FindingAccount;
use crate::item::Item;
use crate::render::asff;
use crate::sink::error::{self, SendError};

/// `BatchImportFindings` takes at most 100 findings.
pub const MAX_BATCH: usize = 100;

pub struct SecurityHub {
    client: aws_sdk_securityhub::Client,
    account_id: String,
    region: String,
    finding_account: FindingAccount,
}

fn sdk(f: asff::Finding) -> AwsSecurityFinding {
    let mut resources = Vec::new();
    for r in f.resources {
        let mut b = Resource::builder()
            .r#type(r.kind)
            .id(r.id)
            .partition(r.partition.into());
        if let Some(region) = r.region {
            b = b.region(region);
        }
        resources.push(b.build());
    }
    let mut b = AwsSecurityFinding::builder()
        .schema_version(f.schema_version)
        .id(f.id)
        .product_arn(f.product_arn)
        .generator_id(f.generator_id)
        .aws_account_id(f.aws_account_id)
        .set_types(Some(f.types))
        .created_at(f.created_at)
        .updated_at(f.updated_at)
        .severity(
            Severity::builder()
                .label(SeverityLabel::from(f.severity.label))
                .build(),
        )
        .title(f.title)
        .description(f.description)
        .set_resources(Some(resources))
        .set_product_fields(Some(f.product_fields.into_iter().collect()));
    if let Some(r) = f.region {
        b = b.region(r);
    }
    if let Some(u) = f.source_url {
        b = b.source_url(u);
    }
    b.build()
}

impl SecurityHub {
    pub fn new(
        client: aws_sdk_securityhub::Client,
        account_id: String,
        region: String,
        finding_account: FindingAccount,
    ) -> Self {
        SecurityHub {
            client,
            account_id,
            region,
            finding_account,
        }
    }

    fn finding(&self, item: &Item) -> AwsSecurityFinding {
        let named = match self.finding_account {
            FindingAccount::Caller => self.account_id.clone(),
            FindingAccount::Alert => item
                .alert()
                .account
                .clone()
                .unwrap_or_else(|| self.account_id.clone()),
        };
        sdk(asff::finding(item, &self.account_id, &self.region, &named))
    }

    pub async fn send(&mut self, items: &[Arc<Item>]) -> Outcome {
        let findings: Vec<AwsSecurityFinding> = items
            .iter()
            .take(MAX_BATCH)
            .map(|i| self.finding(i))
            .collect();
        let ids: Vec<String> = findings
            .iter()
            .map(|f| f.id().unwrap_or_default().to_string())
            .collect();
        let n = findings.len();
        let resp = match self
            .client
            .batch_import_findings()
            .set_findings(Some(findings))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let code = e.as_service_error().and_then(|s| {
                    aws_sdk_securityhub::error::ProvideErrorMetadata::code(s).map(str::to_string)
                });
                return Outcome::none(error::aws(code.as_deref(), &crate::aws::describe(&e)));
            }
        };
        // The first refused finding ends what was delivered: the ones before it are in.
        let first_failed = resp
            .failed_findings()
            .iter()
            .filter_map(|f| Some((ids.iter().position(|id| Some(id.as_str()) == f.id())?, f)))
            .min_by_key(|(i, _)| *i);
        match first_failed {
            None => Outcome::all(n),
            Some((idx, f)) => {
                let code = f.error_code().unwrap_or("unknown");
                let msg = format!(
                    "finding {}: {code}: {}",
                    f.id().unwrap_or("?"),
                    f.error_message().unwrap_or_default()
                );
                let e = match code {
                    "InvalidInput"
                    | "InvalidInputException"
                    | "AccessDeniedException"
                    | "ValidationException" => SendError::rejected(msg),
                    _ => error::aws(Some(code), &msg),
                };
                Outcome {
                    delivered: idx,
                    error: Some(e),
                }
            }
        }
    }
}
