//! Principal patterns as CloudTrail writes principals: which ARN forms a record can carry, and
//! advice for a pattern no record can match.
//!
//! CloudTrail names a caller in `userIdentity.arn`: `arn:aws:iam::ACCT:user/NAME`,
//! `arn:aws:iam::ACCT:root`, `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` or
//! `arn:aws:sts::ACCT:federated-user/NAME`. A role session's role is in
//! `userIdentity.sessionContext.sessionIssuer.arn` as `arn:aws:iam::ACCT:role/PATH/ROLE`, which
//! principal patterns also match (see `rules::policy::Exemption`). So every IAM-console form
//! works, and only shapes that no record has are refused.

/// Partitions AWS has (a pattern's partition must match one of them).
const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

fn wild(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Why `pattern` can match no principal CloudTrail writes, with what to write instead; `None`
/// when it can match (or is not an ARN: a service name or a principal id is matched as is).
pub fn impossible(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix("arn:")?;
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let malformed = || {
        Some(format!(
            "{pattern:?} is not an ARN CloudTrail writes; expected arn:aws:iam::ACCOUNT:role/NAME (a role, matching its sessions), arn:aws:iam::ACCOUNT:user/NAME or arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION"
        ))
    };
    if parts.len() < 5 {
        // A `*` may stand for several colon-separated parts.
        return if wild(pattern) { None } else { malformed() };
    }
    let (partition, service, region, account, resource) =
        (parts[0], parts[1], parts[2], parts[3], parts[4]);
    if !wild(partition) && !PARTITIONS.contains(&partition) {
        return Some(format!(
            "{pattern:?}: partition {partition:?} does not exist; expected one of {}",
            PARTITIONS.join(", ")
        ));
    }
    if !wild(service) && service != "iam" && service != "sts" {
        return Some(format!(
            "{pattern:?}: CloudTrail principals are iam or sts ARNs, not {service:?}; expected arn:aws:iam::ACCOUNT:role/NAME or arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION"
        ));
    }
    if !region.is_empty() && !wild(region) {
        return Some(format!(
            "{pattern:?}: IAM and STS ARNs have no region ({region:?}); write {}",
            format_args!("arn:{partition}:{service}::{account}:{resource}")
        ));
    }
    let twelve_digits = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if !wild(account) && !twelve_digits {
        return Some(format!(
            "{pattern:?}: account {account:?} is not 12 digits; expected a quoted 12-digit id or *"
        ));
    }
    if wild(service) {
        return None;
    }
    let kind = resource.split('/').next().unwrap_or_default();
    if wild(kind) {
        return None;
    }
    match (service, kind) {
        ("sts", "role") => {
            let name = resource.trim_start_matches("role/");
            Some(format!(
                "{pattern:?}: an sts ARN names a session, never a role; write the role as IAM shows it, arn:{partition}:iam::{account}:role/{name} (it matches the role's sessions), or the session as arn:{partition}:sts::{account}:assumed-role/{name}/*"
            ))
        }
        ("iam", "assumed-role") => {
            let name = resource
                .trim_start_matches("assumed-role/")
                .split('/')
                .next()
                .unwrap_or_default();
            Some(format!(
                "{pattern:?}: CloudTrail writes role sessions as sts ARNs; write arn:{partition}:sts::{account}:{resource}, or the role itself as arn:{partition}:iam::{account}:role/{name}"
            ))
        }
        ("sts", "assumed-role" | "federated-user") => None,
        ("iam", "role" | "user" | "root") => None,
        ("sts", other) => Some(format!(
            "{pattern:?}: an sts principal is assumed-role/… or federated-user/…, not {other:?}/…"
        )),
        ("iam", other) => Some(format!(
            "{pattern:?}: an iam principal is role/…, user/… or root, not {other:?} (groups and policies never act)"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::impossible;

    #[test]
    fn forms_cloudtrail_writes_pass() {
        for ok in [
            "arn:aws:iam::*:role/BreakGlass*",
            "arn:aws:iam::111122223333:role/path/Deploy",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:root",
            "arn:aws:sts::*:assumed-role/OrganizationAccountAccessRole/*",
            "arn:aws-us-gov:sts::111122223333:federated-user/bob",
            "arn:*:iam::*:role/X",
            "arn:aws:*",
            "*BreakGlass*",
            "cloudformation.amazonaws.com",
        ] {
            assert_eq!(impossible(ok), None, "{ok}");
        }
    }

    #[test]
    fn shapes_no_record_has_are_named_with_a_fix() {
        let cases = [
            (
                "arn:aws:sts::*:role/BreakGlass",
                "arn:aws:iam::*:role/BreakGlass",
            ),
            (
                "arn:aws:iam::111122223333:assumed-role/Admin/*",
                "arn:aws:sts::111122223333:assumed-role/Admin/*",
            ),
            ("arn:aws-china:iam::*:role/X", "partition"),
            ("arn:aws:iam:us-east-1:*:role/X", "no region"),
            ("arn:aws:iam::1234:role/X", "12 digits"),
            ("arn:aws:ec2::*:role/X", "iam or sts"),
            ("arn:aws:iam::111122223333:group/Admins", "groups"),
            ("arn:aws:iam:role", "not an ARN"),
        ];
        for (bad, says) in cases {
            let why = impossible(bad).unwrap_or_else(|| panic!("{bad} passed"));
            assert!(why.contains(says), "{bad}: {why}");
        }
    }
}
