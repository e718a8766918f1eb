//! Who is behind an event: the principal at the start of its chain of role sessions.
//!
//! Most activity in an organization comes from role sessions
//! (`arn:aws:sts::ACCT:assumed-role/deploy/1701234567`). The stream says who is behind one in
//! four ways, tried in this order:
//!
//! 1. an IAM Identity Center session names its user in the session name
//!    (`AWSReservedSSO_<PermissionSet>_<hash>/alice@corp.example`): `identity-center-session`;
//! 2. the `AssumeRole*` (or `GetFederationToken`, `GetSessionToken`) record that issued the
//!    session's access key (`responseElements.credentials.accessKeyId`), which later records
//!    name in `userIdentity.accessKeyId`, chain after chain and across accounts: `assume-role`
//!    (with that record's eventID). [`Sessions`] remembers the keys issued, bounded;
//! 3. `sessionContext.sourceIdentity`, set by whoever assumed the role: `source-identity`;
//! 4. `onBehalfOf.userId`, the Identity Center user a service acted for: `on-behalf-of`.
//!
//! An IAM user, the root user, or a SAML or web-identity principal is its own origin (`self`);
//! a session issued to an AWS service has the service principal as its origin. When none of
//! these says, there is no origin: none is invented.
//!
//! The judge (any thread) takes an event's [`Clue`], only for events that alerted or issued
//! credentials; the pipeline (in stream order) resolves it with [`Sessions`] and records what
//! an issuing call handed out.

mod sessions;

use serde::{Deserialize, Serialize};

use crate::event::Event;

pub use sessions::{Issued, Sessions};

/// How an alert's `identity` was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// The principal acted as itself (IAM user, root, a federated principal, a service).
    #[serde(rename = "self")]
    Itself,
    IdentityCenterSession,
    SourceIdentity,
    OnBehalfOf,
    AssumeRole,
}

impl Via {
    /// As the alert's JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Itself => "self",
            Via::IdentityCenterSession => "identity-center-session",
            Via::SourceIdentity => "source-identity",
            Via::OnBehalfOf => "on-behalf-of",
            Via::AssumeRole => "assume-role",
        }
    }
}

/// Who is behind an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The principal at the start of the chain: an IAM user's or root's ARN, a federated
    /// principal, `identitycenter:<user>`, a `sourceIdentity`, or a service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The role sessions from the origin to the acting one, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    /// With `via = assume-role`: the eventID of the record that issued the acting key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by_event: Option<String>,
}

/// What an event says about who made it, owned (taken on a judging thread).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub kind: Option<String>,
    pub arn: Option<String>,
    pub principal_id: Option<String>,
    pub invoked_by: Option<String>,
    pub access_key_id: Option<String>,
    pub source_identity: Option<String>,
    pub on_behalf_of: Option<String>,
}

/// Credentials an STS call handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuance {
    pub access_key_id: String,
    /// The session the key acts as (`assumedRoleUser.arn`, `federatedUser.arn`); `None` for
    /// `GetSessionToken`, whose key acts as its caller.
    pub session_arn: Option<String>,
    /// When the credentials expire, seconds since the epoch, when the record says.
    pub expires: Option<i64>,
    pub event_id: Option<String>,
}

/// What the pipeline needs of an event to say who is behind it, and what it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clue {
    pub facts: Facts,
    pub issuance: Option<Issuance>,
}

/// The calls whose response hands out an access key.
const ISSUING: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetFederationToken",
    "GetSessionToken",
];

fn own(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// An event's clue: for an event that raised alerts, or one that issued credentials (whose
/// record is then read whole, once: these calls are rare). `None` for everything else.
pub fn clue(ev: &Event<'_>, alerted: bool) -> Option<Box<Clue>> {
    let issuance = issuance(ev);
    if !alerted && issuance.is_none() {
        return None;
    }
    let u = ev.user_identity.as_ref();
    let ctx = u.and_then(|u| u.session_context.as_ref());
    let facts = Facts {
        kind: own(u.and_then(|u| u.kind.as_deref())),
        arn: own(u.and_then(|u| u.arn.as_deref())),
        principal_id: own(u.and_then(|u| u.principal_id.as_deref())),
        invoked_by: own(u.and_then(|u| u.invoked_by.as_deref())),
        access_key_id: own(u.and_then(|u| u.access_key_id.as_deref())),
        source_identity: own(ctx.and_then(|c| c.source_identity.as_deref())),
        on_behalf_of: own(u.and_then(|u| u.on_behalf_of.as_deref())),
    };
    Some(Box::new(Clue { facts, issuance }))
}

/// The credentials a successful issuing call handed out, from its record.
fn issuance(ev: &Event<'_>) -> Option<Issuance> {
    if ev.event_source() != Some("sts.amazonaws.com")
        || !ev.event_name().is_some_and(|n| ISSUING.contains(&n))
        || ev.error_code().is_some()
    {
        return None;
    }
    // Only the fields needed, borrowed; the rest of the record is skipped.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Record<'a> {
        #[serde(borrow)]
        response_elements: Option<Response<'a>>,
        request_parameters: Option<Request>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Response<'a> {
        #[serde(borrow)]
        credentials: Option<Credentials<'a>>,
        #[serde(borrow)]
        assumed_role_user: Option<Arn<'a>>,
        #[serde(borrow)]
        federated_user: Option<Arn<'a>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Credentials<'a> {
        #[serde(borrow)]
        access_key_id: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        expiration: Option<std::borrow::Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Arn<'a> {
        #[serde(borrow)]
        arn: Option<std::borrow::Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Request {
        duration_seconds: Option<i64>,
    }
    let record: Record<'_> = serde_json::from_str(ev.raw).ok()?;
    let response = record.response_elements?;
    let credentials = response.credentials?;
    let access_key_id = credentials.access_key_id?.into_owned();
    let session_arn = response
        .assumed_role_user
        .or(response.federated_user)
        .and_then(|a| a.arn)
        .map(|a| a.into_owned());
    let expires = credentials
        .expiration
        .as_deref()
        .and_then(parse_expiration)
        .or_else(|| Some(ev.time_secs()? + record.request_parameters?.duration_seconds?));
    Some(Issuance {
        access_key_id,
        session_arn,
        expires,
        event_id: own(ev.event_id()),
    })
}

/// CloudTrail writes an expiration as `Jul 30, 2024, 9:46:15 PM` (UTC); newer records may
/// write RFC 3339.
fn parse_expiration(s: &str) -> Option<i64> {
    if let Some(t) = crate::event::parse_utc_secs(s) {
        return Some(t);
    }
    let format = time::macros::format_description!(
        "[month repr:short] [day padding:none], [year], [hour repr:12 padding:none]:[minute]:[second] [period]"
    );
    time::PrimitiveDateTime::parse(s, &format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// The Identity Center user of a session of a role AWS made for a permission set.
fn identity_center_user(arn: &str) -> Option<&str> {
    let rest = arn.split_once(":assumed-role/")?.1;
    let (role, session) = rest.split_once('/')?;
    (role.starts_with("AWSReservedSSO_") && !session.is_empty()).then_some(session)
}

impl Identity {
    fn itself(origin: Option<String>) -> Identity {
        Identity {
            via: origin.is_some().then_some(Via::Itself),
            origin,
            ..Identity::default()
        }
    }

    fn known(origin: String, chain: Vec<String>, via: Via) -> Identity {
        Identity {
            origin: Some(origin),
            chain,
            via: Some(via),
            issued_by_event: None,
        }
    }
}

/// Who is behind an event, from what it says and the keys issued so far.
pub fn resolve(f: &Facts, sessions: &Sessions, now: i64) -> Identity {
    let session = || f.arn.iter().cloned().collect::<Vec<_>>();
    let issued = || {
        f.access_key_id
            .as_deref()
            .and_then(|k| sessions.get(k, now))
    };
    match f.kind.as_deref() {
        Some("AssumedRole") => {
            if let Some(user) = f.arn.as_deref().and_then(identity_center_user) {
                return Identity::known(
                    format!("identitycenter:{user}"),
                    session(),
                    Via::IdentityCenterSession,
                );
            }
            if let Some(i) = issued() {
                return i.identity();
            }
            if let Some(s) = &f.source_identity {
                return Identity::known(s.clone(), session(), Via::SourceIdentity);
            }
            if let Some(u) = &f.on_behalf_of {
                return Identity::known(format!("identitycenter:{u}"), session(), Via::OnBehalfOf);
            }
            Identity {
                chain: session(),
                ..Identity::default()
            }
        }
        Some("FederatedUser") => match issued() {
            Some(i) => i.identity(),
            None => Identity {
                chain: session(),
                ..Identity::default()
            },
        },
        Some("AWSService") => Identity::itself(f.invoked_by.clone()),
        Some("SAMLUser" | "WebIdentityUser") => {
            Identity::itself(f.arn.clone().or_else(|| f.principal_id.clone()))
        }
        // An IAM user's key acts as the user; a `GetSessionToken` key too (it is still the
        // user's ARN in the record).
        _ => Identity::itself(f.arn.clone()),
    }
}

#[cfg(test)]
mod tests;
