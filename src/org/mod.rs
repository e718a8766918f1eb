//! The organization as AWS Organizations knows it (issue 13): its SCPs read for region intent
//! (`scp.rs`), each account's effective restriction across root, OUs and account
//! (`effective.rs`), a CloudTrail event's IAM action as SCPs name it (`actions.rs`), the tree
//! as read (`tree.rs`) and the reading itself (`fetch.rs`).

pub mod actions;
pub mod effective;
pub mod fetch;
pub mod scp;
pub mod tree;

use crate::config::organization::Organization;

/// Reads the organization once (at start-up, or on a refresh). A failure is logged and
/// counted (`trailwatch_org_refresh_errors_total`) and gives `None`: the caller goes on with
/// what it had (the saved tree, else the config policy).
pub async fn load(cfg: &Organization) -> Option<tree::Tree> {
    let client = fetch::client(cfg.role_arn.as_deref()).await;
    match fetch::fetch(&client).await {
        Ok((tree, stats)) => {
            metrics::gauge!("trailwatch_org_last_refresh_timestamp_seconds")
                .set(crate::clock::now_secs() as f64);
            metrics::gauge!("trailwatch_org_accounts").set(tree.accounts.len() as f64);
            tracing::info!(
                accounts = tree.accounts.len(),
                ous = tree.ous.len(),
                scps = tree.policies.len(),
                calls = stats.calls,
                seconds = stats.elapsed.as_secs_f64(),
                "organization read"
            );
            Some(tree)
        }
        Err(e) => {
            metrics::counter!("trailwatch_org_refresh_errors_total").increment(1);
            tracing::error!(error = %e, "cannot read the organization: going on with the config policy");
            None
        }
    }
}
