//! The CloudTrail record's documented fields (CloudTrail User Guide, "CloudTrail record
//! contents"), with their JSON types: what `lint` checks field names and modifiers against,
//! and where its "did you mean" comes from. Service-specific objects (`requestParameters`,
//! `responseElements`, …) have free-form children.

/// A field's JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Text holding an IP address or a service name (`sourceIPAddress`).
    Address,
    Bool,
    /// An object with documented children.
    Object(&'static [(&'static str, Kind)]),
    /// An object or array whose children depend on the service.
    Free,
}

use Kind::*;

const ATTRIBUTES: &[(&str, Kind)] = &[("creationDate", Text), ("mfaAuthenticated", Text)];
const ISSUER: &[(&str, Kind)] = &[
    ("type", Text),
    ("principalId", Text),
    ("arn", Text),
    ("accountId", Text),
    ("userName", Text),
];
const SESSION: &[(&str, Kind)] = &[
    ("attributes", Object(ATTRIBUTES)),
    ("sessionIssuer", Object(ISSUER)),
    ("webIdFederationData", Free),
    ("sourceIdentity", Text),
    ("ec2RoleDelivery", Text),
    ("ec2IssuedInScopeOf", Free),
    ("assumedRoot", Text),
];
pub const IDENTITY: &[(&str, Kind)] = &[
    ("type", Text),
    ("principalId", Text),
    ("arn", Text),
    ("accountId", Text),
    ("accessKeyId", Text),
    ("userName", Text),
    ("invokedBy", Text),
    ("sessionContext", Object(SESSION)),
    ("identityProvider", Text),
    ("credentialId", Text),
    ("onBehalfOf", Free),
    ("inScopeOf", Free),
];
const TLS: &[(&str, Kind)] = &[
    ("tlsVersion", Text),
    ("cipherSuite", Text),
    ("clientProvidedHostHeader", Text),
    ("keyExchange", Text),
];
/// The top-level fields.
pub const TOP: &[(&str, Kind)] = &[
    ("eventVersion", Text),
    ("userIdentity", Object(IDENTITY)),
    ("eventTime", Text),
    ("eventSource", Text),
    ("eventName", Text),
    ("awsRegion", Text),
    ("sourceIPAddress", Address),
    ("userAgent", Text),
    ("errorCode", Text),
    ("errorMessage", Text),
    ("requestParameters", Free),
    ("responseElements", Free),
    ("additionalEventData", Free),
    ("requestID", Text),
    ("eventID", Text),
    ("eventType", Text),
    ("apiVersion", Text),
    ("managementEvent", Bool),
    ("readOnly", Bool),
    ("resources", Free),
    ("recipientAccountId", Text),
    ("serviceEventDetails", Free),
    ("sharedEventID", Text),
    ("vpcEndpointId", Text),
    ("vpcEndpointAccountId", Text),
    ("eventCategory", Text),
    ("addendum", Free),
    ("sessionCredentialFromConsole", Text),
    ("edgeDeviceDetails", Free),
    ("tlsDetails", Object(TLS)),
    ("eventContext", Free),
    ("insightDetails", Free),
];

/// The names of a level's fields.
pub fn names(level: &[(&'static str, Kind)]) -> Vec<&'static str> {
    level.iter().map(|(n, _)| *n).collect()
}

/// What the schema says of a dotted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Known(Kind),
    /// Below a service-specific object: anything may be there.
    Free,
    /// Segment `at` is not a field of its parent; `suggestion` is the whole path corrected.
    Unknown {
        at: usize,
        suggestion: Option<String>,
    },
}

pub fn lookup(path: &[&str]) -> Lookup {
    let mut level = TOP;
    for (i, seg) in path.iter().enumerate() {
        let Some((_, kind)) = level.iter().find(|(n, _)| n == seg) else {
            let suggestion = closest(seg, &names(level)).map(|k| {
                let mut fixed: Vec<&str> = path.to_vec();
                fixed[i] = k;
                fixed.join(".")
            });
            return Lookup::Unknown { at: i, suggestion };
        };
        match (kind, i + 1 == path.len()) {
            (k, true) => return Lookup::Known(*k),
            (Object(children), false) => level = children,
            (Free, false) => return Lookup::Free,
            // A child of text or a boolean: never there.
            (_, false) => {
                return Lookup::Unknown {
                    at: i + 1,
                    suggestion: None,
                }
            }
        }
    }
    Lookup::Known(Object(TOP))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name nearest `name` (case, a missing prefix such as `region` → `awsRegion`, or
/// at most three edits), if any.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            let (kl, nl) = (k.to_ascii_lowercase(), name.to_ascii_lowercase());
            let d = if kl == nl {
                0
            } else if nl.len() >= 4 && kl.contains(&nl) {
                1 // `region` → `awsRegion`
            } else {
                edit_distance(&nl, &kl)
            };
            (d, *k)
        })
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_known_free_or_unknown_with_a_suggestion() {
        assert_eq!(lookup(&["eventName"]), Lookup::Known(Text));
        assert_eq!(lookup(&["readOnly"]), Lookup::Known(Bool));
        let issuer = ["userIdentity", "sessionContext", "sessionIssuer", "arn"];
        assert_eq!(lookup(&issuer), Lookup::Known(Text));
        assert_eq!(lookup(&["requestParameters", "bucketName"]), Lookup::Free);
        let unknown = |p: &[&str]| match lookup(p) {
            Lookup::Unknown { at, suggestion } => (at, suggestion),
            other => panic!("{p:?}: {other:?}"),
        };
        assert_eq!(unknown(&["eventname"]), (0, Some("eventName".into())));
        assert_eq!(unknown(&["region"]), (0, Some("awsRegion".into())));
        assert_eq!(
            unknown(&["userIdentity", "sessionContext", "sessionIssuer", "typ"]),
            (
                3,
                Some("userIdentity.sessionContext.sessionIssuer.type".into())
            )
        );
        assert_eq!(unknown(&["eventName", "x"]), (1, None));
        assert_eq!(unknown(&["zzzzzzzz"]), (0, None));
    }
}
