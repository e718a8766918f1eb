//! An account's effective region restriction: the SCPs of the root, each OU on its path and
//! the account itself, all of them at once (a request must pass every level, so the allowed
//! set is the intersection).

use super::scp::{Interpretation, NotUnderstood, Restriction};

/// What the SCPs say about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No restriction denies it (or none applies).
    Allowed,
    /// A restriction denies it: it should have been impossible.
    Denied,
    /// Denied but for a `NotAction` exemption: not regional use.
    ExemptAction,
    /// Denied but for a principal exemption (`aws:PrincipalARN`): a break-glass role.
    ExemptPrincipal,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    /// (target, restriction), nearest the account first.
    pub restrictions: Vec<(String, Restriction)>,
    pub not_understood: Vec<(String, NotUnderstood)>,
}

impl Effective {
    /// `levels`: (target id, what its attached SCPs say), from the root down to the account.
    pub fn from_levels(levels: &[(String, Interpretation)]) -> Effective {
        let mut e = Effective::default();
        for (target, i) in levels.iter().rev() {
            e.restrictions
                .extend(i.restrictions.iter().map(|r| (target.clone(), r.clone())));
            e.not_understood
                .extend(i.not_understood.iter().map(|n| (target.clone(), n.clone())));
        }
        e
    }

    pub fn is_restricted(&self) -> bool {
        !self.restrictions.is_empty()
    }

    /// The known regions every restriction allows (sorted); `None` when nothing restricts.
    pub fn allowed_regions(&self) -> Option<Vec<String>> {
        if !self.is_restricted() {
            return None;
        }
        let mut out: Vec<String> = crate::regions::KNOWN_REGIONS
            .iter()
            .filter(|r| self.restrictions.iter().all(|(_, x)| x.allows_region(r)))
            .map(|r| r.to_string())
            .collect();
        out.sort();
        Some(out)
    }

    /// Where the list comes from: `scp:p-abc at ou-prod ∩ scp:p-def at r-root`.
    pub fn source(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (target, r) in &self.restrictions {
            let p = format!("scp:{} at {target}", r.policy);
            if !parts.contains(&p) {
                parts.push(p);
            }
        }
        parts.join(" ∩ ")
    }

    /// Whether every restriction allows the region (then no request there is denied).
    pub fn allows(&self, region: &str) -> bool {
        self.restrictions
            .iter()
            .all(|(_, r)| r.allows_region(region))
    }

    /// `action` is `<service prefix>:<eventName>`; `principal` the caller's ARN (for roles,
    /// the role's ARN, which is what `aws:PrincipalARN` holds).
    pub fn verdict(&self, region: &str, action: &str, principal: Option<&str>) -> Verdict {
        let mut exempt = Verdict::Allowed;
        for (_, r) in &self.restrictions {
            if r.allows_region(region) {
                continue;
            }
            if r.exempts_action(action) {
                if exempt == Verdict::Allowed {
                    exempt = Verdict::ExemptAction;
                }
                continue;
            }
            if principal.is_some_and(|p| r.exempts_principal(p)) {
                exempt = Verdict::ExemptPrincipal;
                continue;
            }
            return Verdict::Denied;
        }
        exempt
    }
}

#[cfg(test)]
mod tests {
    use super::super::scp::interpret;
    use super::*;

    fn deny(allowed: &str, extra: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Regions","Effect":"Deny","NotAction":["iam:*","sts:*"],"Resource":"*","Condition":{{"StringNotEquals":{{"aws:RequestedRegion":{allowed}}}{extra}}}}}]}}"#
        )
    }

    #[test]
    fn levels_intersect_and_the_source_names_each_policy_nearest_first() {
        let root = interpret(
            "p-root",
            &deny(r#"["us-east-1","eu-west-1","eu-central-1"]"#, ""),
        );
        let ou = interpret(
            "p-eu",
            &deny(
                r#"["eu-west-1","eu-central-1"]"#,
                r#","ArnNotLike":{"aws:PrincipalARN":"arn:aws:iam::*:role/BreakGlass"}"#,
            ),
        );
        let full = interpret(
            "p-FullAWSAccess",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        );
        let e = Effective::from_levels(&[
            ("r-root".into(), root),
            ("ou-eu".into(), ou),
            ("111122223333".into(), full),
        ]);
        assert_eq!(
            e.allowed_regions(),
            Some(vec!["eu-central-1".to_string(), "eu-west-1".to_string()])
        );
        assert_eq!(e.source(), "scp:p-eu at ou-eu ∩ scp:p-root at r-root");
        let role = "arn:aws:iam::111122223333:role/BreakGlass";
        let user = "arn:aws:iam::111122223333:user/alice";
        assert_eq!(
            e.verdict("eu-west-1", "ec2:RunInstances", Some(user)),
            Verdict::Allowed
        );
        assert_eq!(
            e.verdict("us-east-1", "ec2:RunInstances", Some(user)),
            Verdict::Denied
        );
        assert_eq!(
            e.verdict("ap-south-1", "iam:CreateUser", Some(user)),
            Verdict::ExemptAction
        );
        // The break-glass role passes the OU's SCP, but not the root's outside its list.
        assert_eq!(
            e.verdict("us-east-1", "ec2:RunInstances", Some(role)),
            Verdict::ExemptPrincipal
        );
        assert_eq!(
            e.verdict("ap-south-1", "ec2:RunInstances", Some(role)),
            Verdict::Denied
        );
        assert_eq!(
            e.verdict("ap-south-1", "ec2:RunInstances", None),
            Verdict::Denied
        );
    }

    #[test]
    fn no_restriction_anywhere_is_none() {
        let e = Effective::from_levels(&[("r-root".into(), Interpretation::default())]);
        assert_eq!(e.allowed_regions(), None);
        assert_eq!(
            e.verdict("ap-south-1", "ec2:RunInstances", None),
            Verdict::Allowed
        );
        assert_eq!(e.source(), "");
    }
}
