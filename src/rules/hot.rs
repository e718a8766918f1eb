//! The hot fields: the record fields the decoder has already parsed into an [`Event`]
//! (`eventName`, `eventSource`, `errorCode`, `userIdentity.type`, …). Rules of every kind
//! (filter patterns, Sigma) first try to decide on these alone, and parse the whole record
//! only when they cannot.

use crate::event::{present, Event};

/// Where a field's value lives among the hot fields.
#[derive(Debug, Clone, Copy)]
pub enum Hot {
    /// A top-level string field: its presence bit and which field.
    Top(u16, for<'e> fn(&'e Event<'_>) -> Option<&'e str>),
    ReadOnly,
    UserIdentity,
    /// A string field of `userIdentity`.
    Ident(for<'e> fn(&'e Event<'_>) -> Option<&'e str>),
}

/// What the hot fields say of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotValue<'e> {
    /// Certainly absent from the record.
    Missing,
    /// Present and JSON `null`.
    Null,
    Str(&'e str),
    Bool(bool),
    /// Present and an object (its content is not among the hot fields).
    Object,
    /// Missing or `null`, and the hot fields cannot tell which (a `userIdentity` field the
    /// decoder did not find a string for): a test that answers the same for both is decided.
    Absent,
    /// The hot fields cannot tell (the full record must be read).
    Unknown,
}

impl Hot {
    /// The hot field at a path of keys, if it is one.
    pub fn of(keys: &[&str]) -> Option<Hot> {
        use present::*;
        let top = |bit, f: for<'e> fn(&'e Event<'_>) -> Option<&'e str>| Some(Hot::Top(bit, f));
        match keys {
            ["eventID"] => top(EVENT_ID, |e| e.event_id.as_deref()),
            ["eventTime"] => top(EVENT_TIME, |e| e.event_time.as_deref()),
            ["eventVersion"] => top(EVENT_VERSION, |e| e.event_version.as_deref()),
            ["eventSource"] => top(EVENT_SOURCE, |e| e.event_source.as_deref()),
            ["eventName"] => top(EVENT_NAME, |e| e.event_name.as_deref()),
            ["eventType"] => top(EVENT_TYPE, |e| e.event_type.as_deref()),
            ["eventCategory"] => top(EVENT_CATEGORY, |e| e.event_category.as_deref()),
            ["awsRegion"] => top(AWS_REGION, |e| e.aws_region.as_deref()),
            ["sourceIPAddress"] => top(SOURCE_IP, |e| e.source_ip.as_deref()),
            ["userAgent"] => top(USER_AGENT, |e| e.user_agent.as_deref()),
            ["errorCode"] => top(ERROR_CODE, |e| e.error_code.as_deref()),
            ["recipientAccountId"] => {
                top(RECIPIENT_ACCOUNT_ID, |e| e.recipient_account_id.as_deref())
            }
            ["readOnly"] => Some(Hot::ReadOnly),
            ["userIdentity"] => Some(Hot::UserIdentity),
            ["userIdentity", "type"] => {
                Some(Hot::Ident(|e| e.user_identity.as_ref()?.kind.as_deref()))
            }
            ["userIdentity", "arn"] => {
                Some(Hot::Ident(|e| e.user_identity.as_ref()?.arn.as_deref()))
            }
            ["userIdentity", "accountId"] => Some(Hot::Ident(|e| {
                e.user_identity.as_ref()?.account_id.as_deref()
            })),
            ["userIdentity", "principalId"] => Some(Hot::Ident(|e| {
                e.user_identity.as_ref()?.principal_id.as_deref()
            })),
            ["userIdentity", "userName"] => Some(Hot::Ident(|e| {
                e.user_identity.as_ref()?.user_name.as_deref()
            })),
            ["userIdentity", "invokedBy"] => Some(Hot::Ident(|e| {
                e.user_identity.as_ref()?.invoked_by.as_deref()
            })),
            _ => None,
        }
    }

    /// The field's value in `ev`, as far as the decoder's parse tells. A present top-level
    /// field is a string or `null`, unless marked odd (then the answer is `Unknown`).
    pub fn value<'e>(&self, ev: &'e Event<'_>) -> HotValue<'e> {
        let has = |bit| ev.present & bit != 0;
        // A value of a type CloudTrail never writes there: only the full record tells.
        let odd = |bit| ev.odd & bit != 0;
        match *self {
            Hot::Top(bit, _) if odd(bit) => return HotValue::Unknown,
            Hot::ReadOnly if odd(present::READ_ONLY) => return HotValue::Unknown,
            Hot::UserIdentity | Hot::Ident(_) if odd(present::USER_IDENTITY) => {
                return HotValue::Unknown
            }
            _ => {}
        }
        match *self {
            Hot::Top(bit, get) => match (has(bit), get(ev)) {
                (false, _) => HotValue::Missing,
                (true, Some(s)) => HotValue::Str(s),
                (true, None) => HotValue::Null,
            },
            Hot::ReadOnly => match (has(present::READ_ONLY), ev.read_only) {
                (false, _) => HotValue::Missing,
                _ if has(present::READ_ONLY_IS_STRING) => HotValue::Unknown,
                (true, Some(b)) => HotValue::Bool(b),
                (true, None) => HotValue::Null,
            },
            Hot::UserIdentity => match (has(present::USER_IDENTITY), &ev.user_identity) {
                (false, _) => HotValue::Missing,
                (true, Some(_)) => HotValue::Object,
                (true, None) => HotValue::Null,
            },
            Hot::Ident(get) => match (has(present::USER_IDENTITY), &ev.user_identity, get(ev)) {
                // No parent: the field is missing.
                (false, _, _) | (true, None, _) => HotValue::Missing,
                (true, Some(_), Some(s)) => HotValue::Str(s),
                // Null or missing: only the full parse tells which.
                (true, Some(_), None) => HotValue::Absent,
            },
        }
    }
}
