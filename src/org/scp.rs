//! The SCP interpreter: which Service Control Policy statements restrict regions, and how.
//!
//! A region restriction is a `Deny` whose condition tests `aws:RequestedRegion` with
//! `StringNotEquals`, `StringNotEqualsIgnoreCase` or `StringNotLike` (the shape AWS documents),
//! on `Action: "*"` or a `NotAction` list (those actions are exempt), on every resource. It may
//! also exempt principals with `ArnNotLike`, `ArnNotEquals` or `StringNotLike` on
//! `aws:PrincipalARN`. `Allow` statements without a region condition (`FullAWSAccess`) and
//! `Deny`s that do not mention the region are not about regions and are passed over.
//! Everything else that mentions the region is *not understood*, with the statement and why:
//! it is never silently ignored, and the account falls back to the config policy for it.

use crate::glob::Glob;
use serde_json::Value;

/// How one allowed-region value matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RegionMatch {
    Exact(String),
    IgnoreCase(String),
    Like(Glob),
}

impl RegionMatch {
    fn matches(&self, region: &str) -> bool {
        match self {
            RegionMatch::Exact(r) => r == region,
            RegionMatch::IgnoreCase(r) => r.eq_ignore_ascii_case(region),
            RegionMatch::Like(g) => g.matches(region),
        }
    }
}

/// One statement that restricts regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// The policy id (`p-…`).
    pub policy: String,
    pub sid: Option<String>,
    allowed: Vec<RegionMatch>,
    /// `NotAction` patterns, lower-cased (IAM actions compare case-insensitively).
    exempt_actions: Vec<Glob>,
    exempt_principals: Vec<Glob>,
}

/// A statement that mentions the region but that the interpreter does not take on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUnderstood {
    pub policy: String,
    pub sid: Option<String>,
    pub why: String,
}

/// What one policy document says about regions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interpretation {
    pub restrictions: Vec<Restriction>,
    pub not_understood: Vec<NotUnderstood>,
}

impl Restriction {
    pub fn allows_region(&self, region: &str) -> bool {
        self.allowed.iter().any(|m| m.matches(region))
    }

    /// `action` is `<service prefix>:<eventName>`.
    pub fn exempts_action(&self, action: &str) -> bool {
        let action = action.to_ascii_lowercase();
        self.exempt_actions.iter().any(|g| g.matches(&action))
    }

    pub fn exempts_principal(&self, arn: &str) -> bool {
        self.exempt_principals.iter().any(|g| g.matches(arn))
    }

    /// The allowed values as written (regions, or patterns for `StringNotLike`).
    pub fn allowed_as_written(&self) -> Vec<String> {
        self.allowed
            .iter()
            .map(|m| match m {
                RegionMatch::Exact(r) | RegionMatch::IgnoreCase(r) => r.clone(),
                RegionMatch::Like(g) => g.as_str().to_string(),
            })
            .collect()
    }

    /// The `aws:PrincipalARN` patterns exempted, as written.
    pub fn exempt_principals_as_written(&self) -> Vec<&str> {
        self.exempt_principals.iter().map(|g| g.as_str()).collect()
    }

    /// How many `NotAction` patterns the statement exempts (0: `Action: "*"`).
    pub fn exempt_action_count(&self) -> usize {
        self.exempt_actions.len()
    }

    pub fn has_principal_exemption(&self) -> bool {
        !self.exempt_principals.is_empty()
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn get_ci<'v>(o: &'v serde_json::Map<String, Value>, key: &str) -> Option<&'v Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

const REGION_KEY: &str = "aws:RequestedRegion";
const PRINCIPAL_KEY: &str = "aws:PrincipalARN";

/// Reads one SCP document.
pub fn interpret(policy: &str, document: &str) -> Interpretation {
    let mut out = Interpretation::default();
    let refuse = |out: &mut Interpretation, sid: Option<String>, why: String| {
        out.not_understood.push(NotUnderstood {
            policy: policy.to_string(),
            sid,
            why,
        })
    };
    let doc: Value = match serde_json::from_str(document) {
        Ok(v) => v,
        Err(e) => {
            refuse(&mut out, None, format!("not a JSON policy document: {e}"));
            return out;
        }
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => {
            refuse(&mut out, None, "no Statement".into());
            return out;
        }
    };
    for (i, st) in statements.iter().enumerate() {
        let Some(st) = st.as_object() else {
            refuse(&mut out, None, format!("Statement[{i}] is not an object"));
            continue;
        };
        let sid = st.get("Sid").and_then(Value::as_str).map(str::to_string);
        match statement(policy, st) {
            Ok(Some(r)) => out.restrictions.push(r),
            Ok(None) => {}
            Err(why) => refuse(&mut out, sid.or(Some(format!("Statement[{i}]"))), why),
        }
    }
    out
}

/// `Ok(None)`: not about regions.
fn statement(
    policy: &str,
    st: &serde_json::Map<String, Value>,
) -> Result<Option<Restriction>, String> {
    let empty = serde_json::Map::new();
    let cond = match st.get("Condition") {
        None => &empty,
        Some(Value::Object(c)) => c,
        Some(_) => return Err("Condition is not an object".into()),
    };
    let mentions = |key: &str| {
        cond.values()
            .filter_map(Value::as_object)
            .any(|m| get_ci(m, key).is_some())
    };
    if !mentions(REGION_KEY) {
        return Ok(None);
    }
    let effect = st.get("Effect").and_then(Value::as_str).unwrap_or("");
    if effect != "Deny" {
        return Err(format!(
            "an {effect:?} statement with a condition on {REGION_KEY} (an allow-list SCP) is not interpreted"
        ));
    }
    if st.contains_key("NotResource") {
        return Err("NotResource: the restriction covers only some resources".into());
    }
    match st.get("Resource").map(strings) {
        None => {}
        Some(Some(r)) if r == ["*"] => {}
        Some(_) => {
            return Err("Resource is not \"*\": the restriction covers only some resources".into())
        }
    }
    let exempt_actions = match (
        st.get("Action").map(strings),
        st.get("NotAction").map(strings),
    ) {
        (Some(Some(a)), None) if a == ["*"] => Vec::new(),
        (None, Some(Some(n))) => n
            .iter()
            .map(|p| Glob::new(&p.to_ascii_lowercase()))
            .collect(),
        (Some(Some(_)), None) => {
            return Err(
                "Action is a list, not \"*\": the restriction covers only some actions".into(),
            )
        }
        _ => return Err("expected Action \"*\" or a NotAction list".into()),
    };
    let mut allowed = None;
    let mut exempt_principals = Vec::new();
    for (op, body) in cond {
        let Some(body) = body.as_object() else {
            return Err(format!("Condition {op} is not an object"));
        };
        for (key, value) in body {
            let Some(values) = strings(value) else {
                return Err(format!(
                    "{op} {key}: expected a string or a list of strings"
                ));
            };
            if key.eq_ignore_ascii_case(REGION_KEY) {
                let m: Vec<RegionMatch> = match op.as_str() {
                    "StringNotEquals" => values.into_iter().map(RegionMatch::Exact).collect(),
                    "StringNotEqualsIgnoreCase" => {
                        values.into_iter().map(RegionMatch::IgnoreCase).collect()
                    }
                    "StringNotLike" => values.iter().map(|v| RegionMatch::Like(Glob::new(v))).collect(),
                    other => {
                        return Err(format!(
                            "{other} on {REGION_KEY}: only StringNotEquals, StringNotEqualsIgnoreCase and StringNotLike are interpreted"
                        ))
                    }
                };
                if allowed.replace(m).is_some() {
                    return Err(format!("{REGION_KEY} is tested twice"));
                }
            } else if key.eq_ignore_ascii_case(PRINCIPAL_KEY) {
                match op.as_str() {
                    "ArnNotLike" | "ArnNotEquals" | "StringNotLike" => {
                        exempt_principals.extend(values.iter().map(|v| Glob::new(v)))
                    }
                    other => {
                        return Err(format!(
                            "{other} on {PRINCIPAL_KEY}: only ArnNotLike, ArnNotEquals and StringNotLike exempt principals"
                        ))
                    }
                }
            } else {
                return Err(format!(
                    "condition key {key} ({op}) besides {REGION_KEY}: other condition keys are not interpreted"
                ));
            }
        }
    }
    let Some(allowed) = allowed else {
        return Err(format!("{REGION_KEY} is not tested"));
    };
    Ok(Some(Restriction {
        policy: policy.to_string(),
        sid: st.get("Sid").and_then(Value::as_str).map(str::to_string),
        allowed,
        exempt_actions,
        exempt_principals,
    }))
}

#[cfg(test)]
mod tests;
