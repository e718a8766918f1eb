//! The organization as AWS Organizations knows it (issue 13): its SCPs read for region intent
//! (`scp.rs`), each account's effective restriction across root, OUs and account
//! (`effective.rs`), a CloudTrail event's IAM action as SCPs name it (`actions.rs`), the tree
//! as read (`tree.rs`) and the reading itself (`fetch.rs`).

pub mod actions;
pub mod drift;
pub mod effective;
pub mod fetch;
pub mod scp;
pub mod tree;
pub mod watch;

use crate::config::organization::Organization;
use crate::event::Event;

/// The calls after which the organization is read again at once (besides every `refresh`):
/// they move accounts or change SCPs (`organizations`), or opt regions in or out (`account`).
const CHANGES: &[(&str, &str)] = &[
    ("organizations.amazonaws.com", "AttachPolicy"),
    ("organizations.amazonaws.com", "DetachPolicy"),
    ("organizations.amazonaws.com", "UpdatePolicy"),
    ("organizations.amazonaws.com", "MoveAccount"),
    ("organizations.amazonaws.com", "CreateAccountResult"),
    ("account.amazonaws.com", "EnableRegion"),
    ("account.amazonaws.com", "DisableRegion"),
];

/// `UpdatePolicy by arn:… at 2026-12-01T10:00:00Z (event 3f…)` when the event is a successful
/// call that changes the organization's region intent.
pub fn change(ev: &Event<'_>) -> Option<String> {
    let source = ev.event_source()?;
    let name = ev.event_name()?;
    if ev.error_code().is_some() || !CHANGES.contains(&(source, name)) {
        return None;
    }
    Some(format!(
        "{name} by {} at {} (event {})",
        ev.principal().unwrap_or("an unknown principal"),
        ev.event_time.as_deref().unwrap_or("an unknown time"),
        ev.event_id().unwrap_or("without id"),
    ))
}

/// Reads the organization once (at start-up, or on a refresh), logging what it read, and
/// setting `trailwatch_org_last_refresh_timestamp_seconds` and `trailwatch_org_accounts`. A
/// failure is counted (`trailwatch_org_refresh_errors_total`); the caller logs what it goes
/// on with (the tree it had, the saved tree, or the config policy).
pub async fn read(client: &fetch::Client) -> Result<tree::Tree, fetch::FetchError> {
    match fetch::fetch(client).await {
        Ok((tree, stats)) => {
            metrics::gauge!(crate::metric::ORG_LAST_REFRESH_TIMESTAMP_SECONDS)
                .set(crate::clock::now_secs() as f64);
            metrics::gauge!(crate::metric::ORG_ACCOUNTS).set(tree.accounts.len() as f64);
            tracing::info!(
                accounts = tree.accounts.len(),
                ous = tree.ous.len(),
                scps = tree.policies.len(),
                calls = stats.calls,
                seconds = stats.elapsed.as_secs_f64(),
                "organization read"
            );
            Ok(tree)
        }
        Err(e) => {
            metrics::counter!(crate::metric::ORG_REFRESH_ERRORS_TOTAL).increment(1);
            Err(e)
        }
    }
}

/// [`read`] with a new client, for a one-off read (`replay`); `None` on failure (logged).
pub async fn load(cfg: &Organization) -> Option<tree::Tree> {
    let client = fetch::client(cfg.role_arn.as_deref()).await;
    match read(&client).await {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the organization: going on with the config policy");
            None
        }
    }
}
