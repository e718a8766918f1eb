//! Reading the organization through AWS Organizations (aws-sdk-organizations): ListRoots, then
//! the OUs and accounts of each parent, breadth first, then the SCPs (ListPolicies) and, for
//! each, its targets (ListTargetsForPolicy) and its document. Every list is paginated; throttling is retried with
//! backoff by the SDK's standard retry (more attempts than the default).

use std::time::{Duration, Instant};

use aws_sdk_organizations::error::SdkError;
use aws_sdk_organizations::types::PolicyType;
pub use aws_sdk_organizations::Client;

use super::tree::{Account, Ou, Policy, Tree};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{call}: {message}")]
    Api { call: &'static str, message: String },
    #[error("ListRoots returned no root")]
    NoRoot,
}

fn api<E, R>(call: &'static str) -> impl Fn(SdkError<E, R>) -> FetchError
where
    E: aws_sdk_organizations::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| FetchError::Api {
        call,
        message: crate::aws::describe(&e),
    }
}

/// What one read cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub calls: u32,
    pub elapsed: Duration,
}

/// An Organizations client from the SDK's usual configuration (`AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_ORGANIZATIONS` honoured), assuming `role_arn` first when given.
pub async fn client(role_arn: Option<&str>) -> Client {
    // Organizations throttles hard (a few calls a second).
    let base = crate::aws::patient_config().await;
    let Some(arn) = role_arn else {
        return Client::new(&base);
    };
    let provider = aws_config::sts::AssumeRoleProvider::builder(arn)
        .session_name("trailwatch-org-read")
        .configure(&base)
        .build()
        .await;
    let conf = aws_sdk_organizations::config::Builder::from(&base)
        .credentials_provider(provider)
        .build();
    Client::from_conf(conf)
}

/// Reads the whole tree and every attached SCP.
pub async fn fetch(c: &Client) -> Result<(Tree, Stats), FetchError> {
    let started = Instant::now();
    let mut calls = 0u32;
    let mut tree = Tree::default();
    let roots = c.list_roots().send().await.map_err(api("ListRoots"))?;
    calls += 1;
    let root = roots
        .roots()
        .first()
        .and_then(|r| r.id())
        .ok_or(FetchError::NoRoot)?
        .to_string();
    tree.root = root.clone();
    // SCPs never restrict the management account: it must be known to be left out.
    let org = c
        .describe_organization()
        .send()
        .await
        .map_err(api("DescribeOrganization"))?;
    calls += 1;
    tree.management = org
        .organization()
        .and_then(|o| o.master_account_id())
        .map(str::to_string);
    let mut parents = vec![root.clone()];
    while let Some(parent) = parents.pop() {
        let mut token = None;
        loop {
            let page = c
                .list_organizational_units_for_parent()
                .parent_id(&parent)
                .set_next_token(token)
                .send()
                .await
                .map_err(api("ListOrganizationalUnitsForParent"))?;
            calls += 1;
            for ou in page.organizational_units() {
                if let Some(id) = ou.id() {
                    tree.ous.insert(
                        id.to_string(),
                        Ou {
                            name: ou.name().unwrap_or_default().to_string(),
                            parent: parent.clone(),
                        },
                    );
                    parents.push(id.to_string());
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut token = None;
        loop {
            let page = c
                .list_accounts_for_parent()
                .parent_id(&parent)
                .set_next_token(token)
                .send()
                .await
                .map_err(api("ListAccountsForParent"))?;
            calls += 1;
            for a in page.accounts() {
                if let Some(id) = a.id() {
                    tree.accounts.insert(
                        id.to_string(),
                        Account {
                            name: a.name().unwrap_or_default().to_string(),
                            status: a
                                .status()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                            parent: parent.clone(),
                        },
                    );
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    // The SCPs, then each one's targets: about two calls a policy, however many accounts
    // and OUs there are (one ListPoliciesForTarget per target cost a call per account).
    let mut attached: std::collections::BTreeMap<String, Vec<String>> = std::iter::once(root)
        .chain(tree.ous.keys().cloned())
        .chain(tree.accounts.keys().cloned())
        .map(|t| (t, Vec::new()))
        .collect();
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy)
            .set_next_token(token)
            .send()
            .await
            .map_err(api("ListPolicies"))?;
        calls += 1;
        ids.extend(
            page.policies()
                .iter()
                .filter_map(|p| p.id().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    for id in ids {
        let mut targets = Vec::new();
        let mut token = None;
        loop {
            let page = c
                .list_targets_for_policy()
                .policy_id(&id)
                .set_next_token(token)
                .send()
                .await
                .map_err(api("ListTargetsForPolicy"))?;
            calls += 1;
            targets.extend(
                page.targets()
                    .iter()
                    .filter_map(|t| t.target_id().map(str::to_string)),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        if targets.is_empty() {
            // Attached nowhere: it restricts no one, and its document is not needed.
            continue;
        }
        let d = c
            .describe_policy()
            .policy_id(&id)
            .send()
            .await
            .map_err(api("DescribePolicy"))?;
        calls += 1;
        if let Some(p) = d.policy() {
            tree.policies.insert(
                id.clone(),
                Policy {
                    name: p
                        .policy_summary()
                        .and_then(|s| s.name())
                        .unwrap_or_default()
                        .to_string(),
                    content: p.content().unwrap_or_default().to_string(),
                },
            );
        }
        for t in targets {
            // A target this read did not list (moved in between) is listed next time.
            if let Some(list) = attached.get_mut(&t) {
                list.push(id.clone());
            }
        }
    }
    tree.attached = attached;
    Ok((
        tree,
        Stats {
            calls,
            elapsed: started.elapsed(),
        },
    ))
}
