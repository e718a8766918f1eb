//! `trailwatch validate`'s check against the organization as AWS Organizations has it.

use crate::org::tree::Tree;
use crate::rules::RegionPolicy;

/// Every account whose `ou` the config sets (on the account or in an OU's `accounts`) where
/// AWS Organizations puts it elsewhere, or which it does not know: one warning each, by key.
pub fn misplaced(tree: &Tree, policy: &RegionPolicy) -> Vec<String> {
    let mut members: Vec<&String> = policy.config_members.iter().collect();
    members.sort();
    let mut out = Vec::new();
    for id in members {
        let written = policy.for_account(Some(id)).ou.clone().unwrap_or_default();
        let real = tree.ou_path(id);
        let problem = match tree.accounts.get(id.as_str()) {
            None => Some("AWS Organizations has no such account".to_string()),
            Some(_) if real.contains(&written) => None,
            Some(_) => Some(format!(
                "AWS Organizations puts it in {} ({}); the config's ou wins",
                real.last().map_or(tree.root.as_str(), String::as_str),
                tree.ou_path_names(id)
            )),
        };
        if let Some(why) = problem {
            out.push(format!(
                "policy.accounts.\"{id}\".ou: {written:?}, but {why}"
            ));
        }
    }
    out
}
