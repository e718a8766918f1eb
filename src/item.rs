//! What is delivered: an alert of the siem stream, or an item of the notify stream (an alert,
//! an update or a digest, issue 4). Each has a delivery id, stable across restarts, that sinks
//! use as their idempotency key (SNS FIFO dedup id, HEC event id, webhook header).

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Severity};
use crate::shaping::{Kind, NotifyItem};

pub use crate::config::delivery::Stream;

#[derive(Debug, Clone)]
pub enum Item {
    Siem(Alert),
    Notify(NotifyItem),
}

/// The spool form: the alert and, for notify items, what shaping added (no `flatten`, so the
/// raw CloudTrail record inside an alert reads back).
#[derive(Serialize, Deserialize)]
struct Stored {
    stream: Stream,
    alert: Alert,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shaping: Option<Shaping>,
}

#[derive(Serialize, Deserialize)]
struct Shaping {
    kind: Kind,
    events: u64,
    group_key: String,
    first_seen: String,
    last_seen: String,
    suppressed: Option<u64>,
    event_names: Vec<String>,
    event_ids: Vec<String>,
    accounts: Vec<String>,
}

impl Item {
    pub fn alert(&self) -> &Alert {
        match self {
            Item::Siem(a) => a,
            Item::Notify(n) => &n.alert,
        }
    }

    pub fn stream(&self) -> Stream {
        match self {
            Item::Siem(_) => Stream::Siem,
            Item::Notify(_) => Stream::Notify,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Item::Siem(_) => Kind::Alert,
            Item::Notify(n) => n.kind,
        }
    }

    pub fn severity(&self) -> Severity {
        self.alert().severity
    }

    pub fn notify(&self) -> Option<&NotifyItem> {
        match self {
            Item::Notify(n) => Some(n),
            Item::Siem(_) => None,
        }
    }

    /// The delivery id: the alert id for alerts; for updates and digests a hash of what makes
    /// them one (kind, group, the head alert, the window), 32 hex digits either way.
    pub fn id(&self) -> String {
        match self {
            Item::Notify(n) if n.kind != Kind::Alert => {
                let key = format!(
                    "{:?}\0{}\0{}\0{}\0{}",
                    n.kind, n.group_key, n.alert.alert_id, n.first_seen, n.last_seen
                );
                format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
            }
            _ => self.alert().alert_id.clone(),
        }
    }

    /// The native JSON form: issue 2's alert line for the siem stream, the notify item (the
    /// alert's fields plus kind, counts, window) for notify.
    pub fn native(&self) -> serde_json::Value {
        let v = match self {
            Item::Siem(a) => serde_json::to_value(a),
            Item::Notify(n) => serde_json::to_value(n),
        };
        v.unwrap_or(serde_json::Value::Null)
    }

    pub fn to_spool(&self) -> Vec<u8> {
        let stored = Stored {
            stream: self.stream(),
            alert: self.alert().clone(),
            shaping: self.notify().map(|n| Shaping {
                kind: n.kind,
                events: n.events,
                group_key: n.group_key.clone(),
                first_seen: n.first_seen.clone(),
                last_seen: n.last_seen.clone(),
                suppressed: n.suppressed,
                event_names: n.event_names.clone(),
                event_ids: n.event_ids.clone(),
                accounts: n.accounts.clone(),
            }),
        };
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    pub fn from_spool(bytes: &[u8]) -> Result<Item, serde_json::Error> {
        let s: Stored = serde_json::from_slice(bytes)?;
        Ok(match (s.stream, s.shaping) {
            (Stream::Notify, Some(sh)) => Item::Notify(NotifyItem {
                alert: s.alert,
                kind: sh.kind,
                events: sh.events,
                group_key: sh.group_key,
                first_seen: sh.first_seen,
                last_seen: sh.last_seen,
                suppressed: sh.suppressed,
                event_names: sh.event_names,
                event_ids: sh.event_ids,
                accounts: sh.accounts,
            }),
            _ => Item::Siem(s.alert),
        })
    }
}
