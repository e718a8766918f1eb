//! The access keys issued so far and who they were issued to, bounded twice: an entry lives
//! until its credentials expire (at most `identity.max_session_duration`, 12 h by default:
//! the longest a role session can last), and when `identity.max_sessions` are held the one
//! that expires first makes room. Saved with the engine's snapshot, so a restart resolves
//! sessions issued before it.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{Identity, Issuance, Via};

/// Who a key was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The sessions from the origin to the one the key acts as.
    pub chain: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Seconds since the epoch.
    pub expires: i64,
}

impl Issued {
    /// The identity of what the key does.
    pub fn identity(&self) -> Identity {
        Identity {
            origin: self.origin.clone(),
            chain: self.chain.clone(),
            via: Some(Via::AssumeRole),
            issued_by_event: self.event_id.clone(),
        }
    }
}

/// Keys issued, by access key id.
#[derive(Debug, Clone)]
pub struct Sessions {
    by_key: HashMap<String, Issued>,
    by_expiry: BTreeSet<(i64, String)>,
    max: usize,
    max_duration: i64,
    /// Entries dropped to make room before they expired.
    pub evicted: u64,
}

impl Sessions {
    pub fn new(max: usize, max_duration_secs: i64) -> Sessions {
        Sessions {
            by_key: HashMap::new(),
            by_expiry: BTreeSet::new(),
            max: max.max(1),
            max_duration: max_duration_secs.max(1),
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Who `key` was issued to, while its credentials last.
    pub fn get(&self, key: &str, now: i64) -> Option<&Issued> {
        self.by_key.get(key).filter(|i| i.expires >= now)
    }

    /// Records what an issuing call handed out, to a caller now known as `caller`.
    pub fn issue(&mut self, caller: &Identity, iss: &Issuance, now: i64) {
        let cap = now.saturating_add(self.max_duration);
        let expires = iss.expires.map_or(cap, |e| e.min(cap));
        if expires < now {
            return;
        }
        self.expire(now);
        let mut chain = caller.chain.clone();
        chain.extend(iss.session_arn.clone());
        let issued = Issued {
            origin: caller.origin.clone(),
            chain,
            event_id: iss.event_id.clone(),
            expires,
        };
        self.insert(iss.access_key_id.clone(), issued);
        while self.by_key.len() > self.max {
            let Some(first) = self.by_expiry.pop_first() else {
                break;
            };
            self.by_key.remove(&first.1);
            self.evicted += 1;
        }
    }

    fn insert(&mut self, key: String, issued: Issued) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_expiry.remove(&(old.expires, key.clone()));
        }
        self.by_expiry.insert((issued.expires, key.clone()));
        self.by_key.insert(key, issued);
    }

    /// Drops the entries whose credentials have expired.
    fn expire(&mut self, now: i64) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 >= now {
                break;
            }
            if let Some(first) = self.by_expiry.pop_first() {
                self.by_key.remove(&first.1);
            }
        }
    }

    /// Every entry, for the snapshot.
    pub fn snapshot(&self) -> Vec<(String, Issued)> {
        let mut out: Vec<(String, Issued)> = self
            .by_key
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.1.expires.cmp(&b.1.expires).then(a.0.cmp(&b.0)));
        out
    }

    /// Entries from a snapshot (the bound still holds: the last to expire are kept).
    pub fn restore(&mut self, entries: &[(String, Issued)]) {
        for (k, v) in entries {
            self.insert(k.clone(), v.clone());
        }
        while self.by_key.len() > self.max {
            if let Some(first) = self.by_expiry.pop_first() {
                self.by_key.remove(&first.1);
            }
        }
    }
}
