//! The organization as read: its root, OUs and accounts, which SCPs are attached where, and
//! their documents. Saved with the checkpoint so a restart starts from the last known tree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::effective::Effective;
use super::scp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ou {
    pub name: String,
    pub parent: String,
}

impl Account {
    /// Organizations' status as written (kept as text: a status AWS adds later still reads).
    pub const ACTIVE: &'static str = "ACTIVE";

    /// Active: not suspended, not closing.
    pub fn is_active(&self) -> bool {
        self.status == Self::ACTIVE
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
    pub parent: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub content: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub root: String,
    /// The management account: SCPs do not apply to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<String>,
    pub ous: BTreeMap<String, Ou>,
    pub accounts: BTreeMap<String, Account>,
    /// Target (root, OU or account id) → the SCP ids attached to it.
    pub attached: BTreeMap<String, Vec<String>>,
    pub policies: BTreeMap<String, Policy>,
}

impl Tree {
    /// The OU ids from the root's child down to the account's parent.
    pub fn ou_path(&self, account: &str) -> Vec<String> {
        let mut path = Vec::new();
        let mut cur = self.accounts.get(account).map(|a| a.parent.as_str());
        while let Some(id) = cur {
            let Some(ou) = self.ous.get(id) else { break };
            if path.iter().any(|p| p == id) || path.len() > self.ous.len() {
                break;
            }
            path.push(id.to_string());
            cur = Some(ou.parent.as_str());
        }
        path.reverse();
        path
    }

    /// `/prod/eu`: the OU names from the root down (`/` for an account under the root).
    pub fn ou_path_names(&self, account: &str) -> String {
        let names: Vec<&str> = self
            .ou_path(account)
            .iter()
            .filter_map(|id| self.ous.get(id).map(|o| o.name.as_str()))
            .collect();
        format!("/{}", names.join("/"))
    }

    pub fn is_management(&self, account: &str) -> bool {
        self.management.as_deref() == Some(account)
    }

    /// The account's effective SCP region restriction: root, each OU on its path, itself.
    /// None for the management account, which SCPs do not affect.
    pub fn effective(&self, account: &str) -> Effective {
        let mut levels = Vec::new();
        if self.is_management(account) {
            return Effective::from_levels(&levels);
        }
        let targets = std::iter::once(self.root.clone())
            .chain(self.ou_path(account))
            .chain(std::iter::once(account.to_string()));
        for target in targets {
            let mut i = scp::Interpretation::default();
            for id in self.attached.get(&target).into_iter().flatten() {
                match self.policies.get(id) {
                    Some(p) => {
                        let one = scp::interpret(id, &p.content);
                        i.restrictions.extend(one.restrictions);
                        i.not_understood.extend(one.not_understood);
                    }
                    None => i.not_understood.push(scp::NotUnderstood {
                        policy: id.clone(),
                        sid: None,
                        why: "attached but its document could not be read".into(),
                    }),
                }
            }
            levels.push((target, i));
        }
        Effective::from_levels(&levels)
    }
}
