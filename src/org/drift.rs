//! Drift: how each active account's effective SCP region allow-list moved between two reads
//! of the organization. A widening, a restriction lost, or an active account with no region
//! restriction at all is an `org-policy-drift` alert; a narrowing is only logged.
//!
//! The comparison is against the last tree the engine saved with its checkpoint, so a restart
//! raises nothing twice: an account already known to be unrestricted is not raised again.

use std::collections::BTreeSet;

use super::tree::Tree;
use crate::alert::{Alert, DriftInfo, Severity};

pub use crate::config::DRIFT_RULE as RULE;
const TITLE: &str = "An account's SCP region restriction widened or is missing";

/// How an account's allowed set moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Regions were added to the allowed set.
    Widened,
    /// The account was restricted and is no longer.
    Lifted,
    /// An active account (new, or seen for the first time) with no region restriction.
    Unrestricted,
    /// Regions were removed, or a restriction appeared (logged, not alerted).
    Narrowed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub account: String,
    pub name: String,
    pub ou_path: String,
    /// `None`: no restriction; the outer `None` of `before` in [`compare`]'s input (an
    /// account not known before) is folded into `known_before`.
    pub before: Option<Vec<String>>,
    pub after: Option<Vec<String>>,
    pub known_before: bool,
    pub kind: Kind,
    /// What changed in the tree for this account, then what set off the read.
    pub cause: String,
}

impl Drift {
    pub fn is_alert(&self) -> bool {
        self.kind != Kind::Narrowed
    }
}

/// Every active account of `after` whose allowed set moved since `before` (`None`: no tree
/// known, the first read ever), with the cause; `trigger` says what set off this read.
pub fn compare(before: Option<&Tree>, after: &Tree, trigger: Option<&str>) -> Vec<Drift> {
    let mut out = Vec::new();
    for (id, acct) in &after.accounts {
        // SCPs do not apply to the management account: its lack of a restriction is by design.
        if !acct.is_active() || after.is_management(id) {
            continue;
        }
        let new = after.effective(id).allowed_regions();
        let old = before
            .filter(|t| t.accounts.contains_key(id))
            .map(|t| t.effective(id).allowed_regions());
        let kind = match (&old, &new) {
            (Some(None), None) => continue,
            (Some(Some(_)), None) => Kind::Lifted,
            (None, None) => Kind::Unrestricted,
            (None, Some(_)) => continue,
            (Some(None), Some(_)) => Kind::Narrowed,
            (Some(Some(o)), Some(n)) => {
                if n.iter().any(|r| !o.contains(r)) {
                    Kind::Widened
                } else if o.iter().any(|r| !n.contains(r)) {
                    Kind::Narrowed
                } else {
                    continue;
                }
            }
        };
        let mut causes = before
            .map(|b| tree_changes(b, after, id))
            .unwrap_or_default();
        if causes.is_empty() {
            causes.push(match (before.is_some(), old.is_some()) {
                (false, _) => "first read of the organization".to_string(),
                (true, false) => "the account is new to the organization".to_string(),
                (true, true) => "the SCPs that apply to it changed".to_string(),
            });
        }
        if let Some(t) = trigger {
            causes.push(format!("read after {t}"));
        }
        out.push(Drift {
            account: id.clone(),
            name: acct.name.clone(),
            ou_path: after.ou_path_names(id),
            known_before: old.is_some(),
            before: old.flatten(),
            after: new,
            kind,
            cause: causes.join("; "),
        });
    }
    out
}

/// What differs between the two trees along the account's path in `after`: a move, SCPs
/// attached or detached at a level, an SCP's document updated.
fn tree_changes(before: &Tree, after: &Tree, account: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (old_path, new_path) = (before.ou_path(account), after.ou_path(account));
    if before.accounts.contains_key(account) && old_path != new_path {
        out.push(format!(
            "moved from {} to {}",
            place(before, account, &old_path),
            place(after, account, &new_path)
        ));
    }
    let targets = std::iter::once(after.root.clone())
        .chain(new_path)
        .chain(std::iter::once(account.to_string()));
    let none = Vec::new();
    for target in targets {
        let old: BTreeSet<&String> = before
            .attached
            .get(&target)
            .unwrap_or(&none)
            .iter()
            .collect();
        let new: BTreeSet<&String> = after
            .attached
            .get(&target)
            .unwrap_or(&none)
            .iter()
            .collect();
        for p in new.difference(&old) {
            out.push(format!("{} attached to {target}", policy_label(after, p)));
        }
        for p in old.difference(&new) {
            out.push(format!(
                "{} detached from {target}",
                policy_label(before, p)
            ));
        }
        for p in new.intersection(&old) {
            let (a, b) = (before.policies.get(*p), after.policies.get(*p));
            if a.map(|x| &x.content) != b.map(|x| &x.content) {
                out.push(format!("{} updated", policy_label(after, p)));
            }
        }
    }
    out
}

fn place(tree: &Tree, account: &str, path: &[String]) -> String {
    match path.last() {
        Some(ou) => format!("{} ({ou})", tree.ou_path_names(account)),
        None => format!("the root ({})", tree.root),
    }
}

fn policy_label(tree: &Tree, id: &str) -> String {
    match tree.policies.get(id) {
        Some(p) if !p.name.is_empty() => format!("{id} ({})", p.name),
        _ => id.to_string(),
    }
}

fn list(l: &Option<Vec<String>>) -> String {
    match l {
        Some(l) if l.is_empty() => "no region".into(),
        Some(l) => l.join(", "),
        None => "every region".into(),
    }
}

/// The `org-policy-drift` alert for a drift (`now`: when it was found, seconds).
pub fn alert(d: &Drift, now: i64) -> Alert {
    let label = match d.name.is_empty() {
        true => d.account.clone(),
        false => format!("{} ({})", d.account, d.name),
    };
    let what = match d.kind {
        Kind::Widened => format!(
            "The SCP region allow-list of account {label} widened from {} to {}",
            list(&d.before),
            list(&d.after)
        ),
        Kind::Lifted => format!(
            "Account {label} lost its SCP region restriction (was {}): every region is now allowed",
            list(&d.before)
        ),
        _ => format!("Account {label} is active and no SCP restricts its regions"),
    };
    let added: Vec<String> = match (&d.before, &d.after) {
        (Some(b), Some(a)) => a.iter().filter(|r| !b.contains(r)).cloned().collect(),
        _ => Vec::new(),
    };
    // One alert per account and move: the same drift read again has the same id.
    let key = format!("{}|{:?}|{:?}", d.account, d.before, d.after);
    let time = crate::event::format_utc_secs(now);
    let reason = format!("{what} ({}).", d.cause);
    Alert {
        event_time: Some(time),
        account: Some(d.account.clone()),
        account_name: (!d.name.is_empty()).then(|| d.name.clone()),
        event_source: Some("organizations.amazonaws.com".into()),
        approved_regions: d.after.clone().unwrap_or_default(),
        ou_path: Some(d.ou_path.clone()),
        drift: Some(DriftInfo {
            before: d.before.clone(),
            after: d.after.clone(),
            added,
            cause: d.cause.clone(),
        }),
        ..Alert::outside_events(RULE, &key, TITLE, Severity::High, "scp", reason)
    }
}

#[cfg(test)]
mod tests;
