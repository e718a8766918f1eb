//! The region policy, resolved once at start-up: for every configured account, its approved
//! regions and where they came from (organization → parent OUs → OU → account).

use std::collections::{HashMap, HashSet};

use crate::alert::Severity;
use crate::config;
use crate::glob::Glob;

/// A level of the policy that can set an account's approved regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Organization,
    /// An OU's table (its id).
    Ou(String),
    /// The account's own table.
    Account,
    /// The SCPs that restrict the account (`regions_from_scps`): `scp:p-… at ou-… ∩ …`.
    Scps(String),
}

/// Which level set an account's list, and which added `extra_regions` to it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub set_by: Source,
    pub extra_from: Vec<Source>,
}

impl Level {
    fn of(set_by: Source) -> Level {
        Level {
            set_by,
            extra_from: Vec::new(),
        }
    }

    /// For a person: `the organization default`, `OU ou-…`, `account + OU ou-… extra_regions`.
    pub fn describe(&self) -> String {
        if self.set_by == Source::Organization && self.extra_from.is_empty() {
            return "the organization default".into();
        }
        self.render("OU ")
    }

    fn render(&self, ou: &str) -> String {
        let one = |s: &Source| match s {
            Source::Organization => "organization".to_string(),
            Source::Ou(id) => format!("{ou}{id}"),
            Source::Account => "account".to_string(),
            Source::Scps(text) => text.clone(),
        };
        let mut out = one(&self.set_by);
        for e in &self.extra_from {
            out.push_str(&format!(" + {} extra_regions", one(e)));
        }
        out
    }
}

/// The alert's `policy_level`: `organization`, `ou:<id>`, `account`, or the SCPs, with
/// `+ … extra_regions` notes.
impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render("ou:"))
    }
}

/// An account's effective policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPolicy {
    pub name: Option<String>,
    pub ou: Option<String>,
    /// Sorted, without duplicates.
    pub approved: Vec<String>,
    /// Which level set the list, and which added to it.
    pub level: Level,
    /// `/prod/eu`: the OU names from AWS Organizations (issue 13).
    pub ou_path: Option<String>,
    /// The account's effective SCP region restriction, when the organization is read.
    pub scp: Option<std::sync::Arc<crate::org::effective::Effective>>,
}

impl AccountPolicy {
    /// `111122223333 (payments-prod)`, or the bare id when the account has no name.
    pub fn label(&self, account: &str) -> String {
        match &self.name {
            Some(n) => format!("{account} ({n})"),
            None => account.to_string(),
        }
    }
}

impl AccountPolicy {
    pub fn approves(&self, region: &str) -> bool {
        self.approved.iter().any(|r| r == region)
    }
}

/// A compiled exemption.
#[derive(Debug, Clone)]
pub struct Exemption {
    /// Its index in `[[policy.exempt]]`.
    pub index: usize,
    pub principal: Vec<Glob>,
    pub event_source: Vec<Glob>,
    pub event_name: Vec<Glob>,
    pub account: Vec<Glob>,
    pub region: Vec<Glob>,
    /// Globs on `identity.origin`: decided after the pipeline knows who is behind the event
    /// ([`Exemption::covers_origin`]); the judge checks the other keys.
    pub origin: Vec<Glob>,
    pub reason: String,
    /// Seconds since the epoch after which it no longer applies.
    pub expires: Option<i64>,
    pub expires_text: Option<String>,
}

fn any(globs: &[Glob], value: Option<&str>) -> bool {
    // An empty list does not constrain; a constraint on an absent field does not match.
    globs.is_empty() || value.is_some_and(|v| globs.iter().any(|g| g.matches(v)))
}

/// Which key of an exemption did not match an event, and the event's value there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// `principal`, `event_source`, `event_name`, `account` or `region`.
    pub key: &'static str,
    /// What the event has there (`None`: the record has no such field).
    pub value: Option<String>,
    /// For a principal: the role behind the session, which the patterns were also tried on.
    pub role: Option<String>,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{} {v}", self.key)?,
            None => write!(f, "the event has no {}", self.key)?,
        }
        match &self.role {
            Some(r) => write!(f, " (a session of role {r}) matches none of its patterns"),
            None if self.value.is_some() => write!(f, " matches none of its patterns"),
            None => Ok(()),
        }
    }
}

impl Exemption {
    pub fn is_active(&self, now: i64) -> bool {
        self.expires.is_none_or(|t| now <= t)
    }

    /// Whether every key but `origin` matches `ev` (`origin` is known only later).
    pub fn matches(&self, ev: &crate::event::Event<'_>) -> bool {
        self.check(ev).is_ok()
    }

    /// Whether its `origin` globs take who is behind the event (an unknown origin matches
    /// none; an exemption without `origin` takes any).
    pub fn covers_origin(&self, origin: Option<&str>) -> bool {
        any(&self.origin, origin)
    }

    /// Whether every key given matches `ev`; else the first that does not.
    ///
    /// A principal pattern matches the caller as CloudTrail names it (`userIdentity.arn`: an
    /// `sts` session ARN for a role) or the role behind the session
    /// (`sessionContext.sessionIssuer.arn`: the `iam` role ARN that IAM shows), so both forms
    /// exempt a role's sessions.
    pub fn check(&self, ev: &crate::event::Event<'_>) -> Result<(), Miss> {
        let miss = |key, value: Option<&str>| Miss {
            key,
            value: value.map(str::to_string),
            role: None,
        };
        let issuer = ev.session_issuer_arn();
        if !(any(&self.principal, ev.principal())
            || issuer.is_some_and(|i| any(&self.principal, Some(i))))
        {
            return Err(Miss {
                key: "principal",
                value: ev.principal().map(str::to_string),
                role: issuer
                    .filter(|i| Some(*i) != ev.principal())
                    .map(str::to_string),
            });
        }
        let keys: [(&'static str, &[Glob], Option<&str>); 4] = [
            ("event_source", &self.event_source, ev.event_source()),
            ("event_name", &self.event_name, ev.event_name()),
            ("account", &self.account, ev.account()),
            ("region", &self.region, ev.region()),
        ];
        for (key, globs, value) in keys {
            if !any(globs, value) {
                return Err(miss(key, value));
            }
        }
        Ok(())
    }
}

/// The whole resolved policy for the `unapproved-region` rule.
#[derive(Debug, Clone)]
pub struct RegionPolicy {
    pub organization: AccountPolicy,
    pub accounts: HashMap<String, AccountPolicy>,
    /// Every configured OU's own policy (its config parents applied), for accounts whose
    /// membership comes from AWS Organizations.
    pub ous: HashMap<String, AccountPolicy>,
    /// Accounts whose OU the config says (`ou = …`, or an OU's `accounts`): that wins.
    pub config_members: HashSet<String>,
    /// Each configured account's own level (`approved_regions`, `extra_regions`).
    account_levels: HashMap<String, (Option<Vec<String>>, Vec<String>)>,
    pub read_prefixes: Vec<String>,
    pub read_prefix_exceptions: HashSet<String>,
    pub global_sources: HashSet<String>,
    pub global_regions: Vec<String>,
    pub exemptions: Vec<Exemption>,
    /// Some exemption has `origin` (the judge then notes which may apply).
    pub has_origin_exemptions: bool,
    pub severity: Severity,
    pub failed_call_severity: Severity,
    pub alert_on_failed_calls: bool,
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn globs(v: &Option<config::OneOrMany>) -> Vec<Glob> {
    v.clone()
        .map(|v| v.into_vec().iter().map(|s| Glob::new(s)).collect())
        .unwrap_or_default()
}

impl RegionPolicy {
    /// Builds the policy from a validated config (validation guarantees the references).
    pub fn build(p: &config::Policy) -> Self {
        let organization = AccountPolicy {
            name: None,
            ou: None,
            approved: sorted(p.top.approved_regions.clone()),
            level: Level::of(Source::Organization),
            ou_path: None,
            scp: None,
        };
        // OU membership: `ou = …` on the account wins over `accounts = […]` on the OU.
        let mut member_of: HashMap<&str, &str> = HashMap::new();
        for (ou_id, ou) in &p.ous {
            for a in &ou.accounts {
                member_of.entry(a.as_str()).or_insert(ou_id.as_str());
            }
        }
        for (id, a) in &p.accounts {
            if let Some(ou) = &a.ou {
                member_of.insert(id.as_str(), ou.as_str());
            }
        }
        let ou_policy = |ou_id: &str| -> AccountPolicy {
            // Walk to the root, then apply from the top down.
            let mut chain = Vec::new();
            let mut cur = Some(ou_id);
            while let Some(id) = cur {
                if chain.contains(&id) || chain.len() > p.ous.len() {
                    break;
                }
                chain.push(id);
                cur = p.ous.get(id).and_then(|o| o.parent.as_deref());
            }
            let mut pol = organization.clone();
            for id in chain.iter().rev() {
                if let Some(ou) = p.ous.get(*id) {
                    apply(
                        &mut pol,
                        &ou.approved_regions,
                        &ou.extra_regions,
                        Source::Ou(id.to_string()),
                    );
                }
            }
            pol.ou = Some(ou_id.to_string());
            pol
        };
        let mut accounts = HashMap::new();
        for (&acct, &ou) in &member_of {
            accounts.insert(acct.to_string(), ou_policy(ou));
        }
        let ous = p.ous.keys().map(|id| (id.clone(), ou_policy(id))).collect();
        let config_members = member_of.keys().map(|a| a.to_string()).collect();
        let account_levels = p
            .accounts
            .iter()
            .map(|(id, a)| {
                (
                    id.clone(),
                    (a.approved_regions.clone(), a.extra_regions.clone()),
                )
            })
            .collect();
        for (id, a) in &p.accounts {
            let mut pol = accounts.remove(id).unwrap_or_else(|| organization.clone());
            apply(
                &mut pol,
                &a.approved_regions,
                &a.extra_regions,
                Source::Account,
            );
            pol.name = a.name.clone();
            accounts.insert(id.clone(), pol);
        }
        let g = &p.global_services;
        RegionPolicy {
            organization,
            accounts,
            ous,
            config_members,
            account_levels,
            read_prefixes: p.top.read_prefixes.clone(),
            read_prefix_exceptions: p.top.read_prefix_exceptions.iter().cloned().collect(),
            global_sources: g
                .event_sources
                .iter()
                .chain(&g.extra_event_sources)
                .cloned()
                .collect(),
            global_regions: g.recorded_in.clone(),
            exemptions: p
                .exempt
                .iter()
                .enumerate()
                .map(|(index, e)| Exemption {
                    index,
                    principal: globs(&e.principal),
                    event_source: globs(&e.event_source),
                    event_name: globs(&e.event_name),
                    account: globs(&e.account),
                    region: globs(&e.region),
                    origin: globs(&e.origin),
                    reason: e.reason.clone(),
                    expires: e
                        .expires
                        .as_deref()
                        .and_then(|s| config::parse_date(s).ok()),
                    expires_text: e.expires.clone(),
                })
                .collect(),
            has_origin_exemptions: p.exempt.iter().any(|e| e.origin.is_some()),
            severity: p.top.severity,
            failed_call_severity: p.top.failed_call_severity,
            alert_on_failed_calls: p.top.alert_on_failed_calls,
        }
    }

    /// The policy for an account; unknown (or absent) accounts get the organization default.
    pub fn for_account(&self, account: Option<&str>) -> &AccountPolicy {
        account
            .and_then(|a| self.accounts.get(a))
            .unwrap_or(&self.organization)
    }
}

impl RegionPolicy {
    /// The config policy for an account whose OU path (OU ids from the root down) comes from
    /// AWS Organizations: an `ou` the config gives it still wins; otherwise the nearest OU on
    /// the path that the config has a table for, then the account's own level.
    pub fn for_member(&self, account: &str, path: &[String]) -> AccountPolicy {
        if self.config_members.contains(account) {
            return self.for_account(Some(account)).clone();
        }
        let mut pol = path
            .iter()
            .rev()
            .find_map(|ou| self.ous.get(ou))
            .cloned()
            .unwrap_or_else(|| self.organization.clone());
        if let Some((replace, extra)) = self.account_levels.get(account) {
            apply(&mut pol, replace, extra, Source::Account);
        }
        if let Some(a) = self.accounts.get(account) {
            pol.name = a.name.clone();
        }
        pol
    }
}

impl RegionPolicy {
    /// Every account AWS Organizations knows, homed by its real OU membership: its name and
    /// OU path, its SCP restriction, and, with `regions_from_scps`, its approved regions from
    /// the SCPs where they restrict (the config policy elsewhere).
    pub fn with_tree(mut self, tree: &crate::org::tree::Tree, regions_from_scps: bool) -> Self {
        for (id, a) in &tree.accounts {
            let path = tree.ou_path(id);
            let mut pol = self.for_member(id, &path);
            let eff = tree.effective(id);
            if regions_from_scps {
                if let Some(list) = eff.allowed_regions() {
                    pol.approved = list;
                    pol.level = Level::of(Source::Scps(eff.source()));
                }
            }
            if pol.name.is_none() && !a.name.is_empty() {
                pol.name = Some(a.name.clone());
            }
            if !self.config_members.contains(id) {
                pol.ou = path.last().cloned();
            }
            pol.ou_path = Some(tree.ou_path_names(id));
            pol.scp = eff.is_restricted().then(|| std::sync::Arc::new(eff));
            self.accounts.insert(id.clone(), pol);
        }
        self
    }
}

/// One level's effect: `approved_regions` replaces, `extra_regions` adds.
fn apply(pol: &mut AccountPolicy, replace: &Option<Vec<String>>, extra: &[String], level: Source) {
    if let Some(list) = replace {
        pol.approved = sorted(list.clone());
        pol.level = Level::of(level.clone());
    }
    if !extra.is_empty() {
        pol.approved = sorted(pol.approved.iter().chain(extra).cloned().collect());
        pol.level.extra_from.push(level);
    }
}
