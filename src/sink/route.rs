//! The routing table: which sinks take an item, by stream, severity, rule, account or OU
//! (an OU matches the accounts of the OUs under it too), and region. Built once from
//! `[[routes]]` and the OU tree of `[policy.ous]`; an item may go to several sinks, each at
//! most once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::alert::Severity;
use crate::config::delivery::{AccountRef, RouteSpec};
use crate::config::Ou;
use crate::glob::Glob;
use crate::item::{Item, Stream};

struct Route {
    stream: Stream,
    sinks: Vec<usize>,
    min_severity: Option<Severity>,
    rules: Vec<Glob>,
    accounts: HashSet<String>,
    ous: Vec<String>,
    regions: HashSet<String>,
    origins: Vec<Glob>,
}

pub struct Router {
    routes: Vec<Route>,
    /// OU → its parent OU.
    parent: HashMap<String, String>,
}

impl Router {
    pub fn new(routes: &[RouteSpec], ous: &BTreeMap<String, Ou>) -> Router {
        let parent = ous
            .iter()
            .filter_map(|(id, ou)| Some((id.clone(), ou.parent.clone()?)))
            .collect();
        Router {
            routes: routes.iter().map(compile).collect(),
            parent,
        }
    }

    /// The OU and every OU above it.
    fn ou_chain<'a>(&'a self, ou: Option<&'a str>) -> Vec<&'a str> {
        let mut chain = Vec::new();
        let mut cur = ou;
        while let Some(o) = cur {
            if chain.contains(&o) || chain.len() > self.parent.len() + 1 {
                break;
            }
            chain.push(o);
            cur = self.parent.get(o).map(String::as_str);
        }
        chain
    }

    /// Appends the indexes of the sinks that take `item` (each once).
    pub fn targets(&self, item: &Item, out: &mut Vec<usize>) {
        let a = item.alert();
        let chain = self.ou_chain(a.ou.as_deref());
        for r in &self.routes {
            if r.stream != item.stream() {
                continue;
            }
            if r.min_severity.is_some_and(|m| a.severity < m) {
                continue;
            }
            if !r.rules.is_empty() && !r.rules.iter().any(|g| g.matches(&a.rule)) {
                continue;
            }
            if !(r.accounts.is_empty() && r.ous.is_empty()) {
                let by_id = a.account.as_ref().is_some_and(|x| r.accounts.contains(x));
                let by_ou = r.ous.iter().any(|o| chain.contains(&o.as_str()));
                if !(by_id || by_ou) {
                    continue;
                }
            }
            if !r.regions.is_empty() && !a.region.as_ref().is_some_and(|x| r.regions.contains(x)) {
                continue;
            }
            if !r.origins.is_empty() {
                let origin = a.identity.as_deref().and_then(|i| i.origin.as_deref());
                if !origin.is_some_and(|o| r.origins.iter().any(|g| g.matches(o))) {
                    continue;
                }
            }
            for s in &r.sinks {
                if !out.contains(s) {
                    out.push(*s);
                }
            }
        }
    }
}

fn compile(r: &RouteSpec) -> Route {
    let mut accounts = BTreeSet::new();
    let mut ous = BTreeSet::new();
    for a in &r.accounts {
        match a {
            AccountRef::Account(id) => accounts.insert(id.clone()),
            AccountRef::Ou(ou) => ous.insert(ou.clone()),
        };
    }
    Route {
        stream: r.stream,
        sinks: r.sinks.clone(),
        min_severity: r.min_severity,
        rules: r.rules.iter().map(|g| Glob::new(g)).collect(),
        accounts: accounts.into_iter().collect(),
        ous: ous.into_iter().collect(),
        regions: r.regions.iter().cloned().collect(),
        origins: r.origins.iter().map(|g| Glob::new(g)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::config::load_str;

    fn alert(account: &str, ou: Option<&str>, region: &str, sev: Severity, rule: &str) -> Alert {
        let mut a: Alert = serde_json::from_value(serde_json::json!({
            "alert_id": "x", "rule": rule, "title": "t", "severity": sev, "event_id": null,
            "event_time": null, "account": account, "account_name": null, "ou": ou,
            "region": region, "principal": null, "principal_type": null, "event_source": null,
            "event_name": null, "event_type": null, "read_only": null, "source_ip": null,
            "user_agent": null, "error_code": null, "reason": "r", "runbook": null,
            "approved_regions": [], "policy_level": "organization"
        }))
        .unwrap();
        a.severity = sev;
        a
    }

    #[test]
    fn routes_match_on_stream_severity_rule_account_ou_and_region() {
        let cfg = load_str(
            r#"
[policy]
approved_regions = ["us-east-1"]
[policy.ous."ou-prod"]
[policy.ous."ou-prodeu"]
parent = "ou-prod"

[[sinks]]
name = "siem"
type = "stdout"
[[sinks]]
name = "slack"
type = "slack"
webhook_url_env = "NOPE_SLACK"
[[sinks]]
name = "pager"
type = "sns"
topic_arn = "arn:aws:sns:us-east-1:111122223333:critical"
[[sinks]]
name = "eu"
type = "stdout"

[[routes]]
stream = "siem"
sinks = ["siem"]
[[routes]]
stream = "notify"
sinks = ["slack"]
min_severity = "medium"
[[routes]]
stream = "notify"
sinks = ["pager", "slack"]
min_severity = "critical"
accounts = ["111122223333", "ou:ou-prod"]
[[routes]]
stream = "notify"
sinks = ["eu"]
rules = ["unapproved-*"]
regions = ["eu-west-1"]
"#,
            "r.toml",
            0,
        )
        .unwrap()
        .config;
        let r = Router::new(&cfg.delivery.routes, &cfg.policy.ous);
        let t = |item: Item| {
            let mut v = Vec::new();
            r.targets(&item, &mut v);
            v
        };
        let a = alert(
            "222233334444",
            None,
            "ap-south-1",
            Severity::High,
            "unapproved-region",
        );
        assert_eq!(t(Item::Siem(a.clone())), vec![0]);
        let notify = |a: Alert| {
            Item::Notify(crate::shaping::NotifyItem {
                alert: a,
                kind: crate::shaping::Kind::Alert,
                events: 1,
                group_key: String::new(),
                first_seen: String::new(),
                last_seen: String::new(),
                suppressed: None,
                event_names: vec![],
                event_ids: vec![],
                accounts: vec![],
            })
        };
        assert_eq!(t(notify(a.clone())), vec![1]);
        let low = alert("222233334444", None, "ap-south-1", Severity::Low, "x");
        assert!(t(notify(low)).is_empty(), "below every min_severity");
        let crit = alert("111122223333", None, "ap-south-1", Severity::Critical, "x");
        assert_eq!(t(notify(crit)), vec![1, 2], "each sink once");
        let nested = alert(
            "999988887777",
            Some("ou-prodeu"),
            "ap-south-1",
            Severity::Critical,
            "x",
        );
        assert_eq!(
            t(notify(nested)),
            vec![1, 2],
            "an OU matches the OUs under it"
        );
        let elsewhere = alert(
            "999988887777",
            Some("ou-other"),
            "ap-south-1",
            Severity::Critical,
            "x",
        );
        assert_eq!(t(notify(elsewhere)), vec![1]);
        let eu = alert(
            "999988887777",
            None,
            "eu-west-1",
            Severity::Low,
            "unapproved-region",
        );
        assert_eq!(t(notify(eu)), vec![3]);
    }

    #[test]
    fn a_route_with_origins_takes_only_alerts_whose_identity_matches() {
        use crate::identity::{Identity, Via};
        let cfg = load_str(
            r#"
[policy]
approved_regions = ["us-east-1"]
[[sinks]]
name = "all"
type = "stdout"
[[sinks]]
name = "contractors"
type = "stdout"
[[routes]]
stream = "siem"
sinks = ["all"]
[[routes]]
stream = "siem"
sinks = ["contractors"]
origins = ["arn:aws:iam::*:user/contractor-*", "identitycenter:*@contractors.example"]
"#,
            "r.toml",
            0,
        )
        .unwrap()
        .config;
        let router = Router::new(&cfg.delivery.routes, &cfg.policy.ous);
        let with = |origin: Option<&str>| {
            let mut a = alert("111122223333", None, "eu-west-1", Severity::High, "r");
            a.identity = origin.map(|o| {
                Box::new(Identity {
                    origin: Some(o.to_string()),
                    via: Some(Via::AssumeRole),
                    ..Identity::default()
                })
            });
            let mut out = Vec::new();
            router.targets(&Item::Siem(a), &mut out);
            out.sort();
            out
        };
        assert_eq!(
            with(Some("arn:aws:iam::111122223333:user/contractor-bob")),
            [0, 1]
        );
        assert_eq!(with(Some("identitycenter:eve@contractors.example")), [0, 1]);
        assert_eq!(with(Some("arn:aws:iam::111122223333:user/alice")), [0]);
        assert_eq!(with(None), [0], "no origin known: not a contractor's");
    }
}
