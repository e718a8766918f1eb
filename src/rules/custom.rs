//! Custom rules: CloudWatch Logs filter patterns from the config, evaluated beside the region
//! rule.
//!
//! Speed: every distinct selector of the rule set gets a slot. Most CloudTrail patterns test
//! hot fields (`eventName`, `eventSource`, `errorCode`, `userIdentity.type`, …) that the decoder
//! has already parsed, so each rule is first evaluated on those alone with three-valued logic.
//! Only a rule that this cannot decide (it needs `additionalEventData.MFAUsed`, say) makes the
//! event's JSON be parsed in full, once per event, shared by all rules.

use std::borrow::Cow;
use std::cell::OnceCell;

use crate::alert::Severity;
use crate::event::Event;
use crate::filter::ast::Selector;
use crate::filter::eval::{self, Doc, Val, ValueDoc};
use crate::filter::Pattern;
use crate::rules::hot::{Hot, HotValue};

/// A compiled custom rule.
#[derive(Debug, Clone)]
pub struct CustomRule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub runbook: Option<String>,
    pub pattern: Pattern,
    /// The compiled expression (JSON patterns).
    node: Option<eval::Node>,
}

fn hot_of(sel: &Selector) -> Option<Hot> {
    Hot::of(&sel.keys()?)
}

/// An event's hot fields as a [`Doc`]: certain answers where the decoder's parse allows.
struct HotDoc<'e, 'a> {
    ev: &'e Event<'a>,
    hot: &'e [Option<Hot>],
}

impl Doc for HotDoc<'_, '_> {
    fn any(
        &self,
        slot: usize,
        _sel: &Selector,
        f: &mut dyn FnMut(&Val<'_>) -> bool,
    ) -> Option<bool> {
        let v = match (*self.hot.get(slot)?)?.value(self.ev) {
            HotValue::Missing => return Some(false),
            HotValue::Unknown => return None,
            // False whether missing or null, or unknown.
            HotValue::Absent => return (!f(&Val::Null)).then_some(false),
            HotValue::Null => Val::Null,
            HotValue::Str(s) => Val::Str(Cow::Borrowed(s)),
            HotValue::Bool(b) => Val::Bool(b),
            HotValue::Object => Val::Object,
        };
        Some(f(&v))
    }
}

/// Compiled custom rules and their selector slots.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<CustomRule>,
    selectors: Vec<Selector>,
    hot: Vec<Option<Hot>>,
}

/// Per-event counters, for benchmarks and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvalStats {
    pub decided_on_hot_fields: u64,
    pub full_parses: u64,
}

impl RuleSet {
    pub fn add(
        &mut self,
        id: String,
        title: String,
        severity: Severity,
        runbook: Option<String>,
        pattern: Pattern,
    ) {
        let slots = match &pattern {
            Pattern::Json(p) => p
                .conditions
                .iter()
                .map(|c| self.slot(&c.selector))
                .collect(),
            _ => Vec::new(),
        };
        let node = pattern.as_json().map(|p| eval::compile(p, &slots));
        self.rules.push(CustomRule {
            id,
            title,
            severity,
            runbook,
            pattern,
            node,
        });
    }

    /// The rule set of the config's `[[rules]]`.
    pub fn from_rules(rules: &[crate::config::Rule]) -> Self {
        let mut set = RuleSet::default();
        for r in rules {
            set.add(
                r.id.clone(),
                r.title.clone(),
                r.severity,
                r.runbook.clone(),
                r.pattern.clone(),
            );
        }
        set
    }

    fn slot(&mut self, sel: &Selector) -> usize {
        if let Some(i) = self.selectors.iter().position(|s| s == sel) {
            return i;
        }
        self.selectors.push(sel.clone());
        self.hot.push(hot_of(sel));
        self.selectors.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Appends the indexes of the rules that match `ev` to `out`.
    pub fn evaluate(&self, ev: &Event<'_>, out: &mut Vec<usize>, stats: &mut EvalStats) {
        let full: OnceCell<Option<serde_json::Value>> = OnceCell::new();
        let hot = HotDoc { ev, hot: &self.hot };
        for (i, rule) in self.rules.iter().enumerate() {
            let matched = match (&rule.pattern, &rule.node) {
                (Pattern::Json(p), Some(node)) => match eval::eval(p, node, &hot) {
                    Some(m) => {
                        stats.decided_on_hot_fields += 1;
                        m
                    }
                    None => {
                        let v = full.get_or_init(|| {
                            stats.full_parses += 1;
                            serde_json::from_str(ev.raw).ok()
                        });
                        v.as_ref()
                            .is_some_and(|v| eval::eval(p, node, &ValueDoc(v)) == Some(true))
                    }
                },
                (other, _) => other.matches_text(ev.raw),
            };
            if matched {
                out.push(i);
            }
        }
    }
}

/// True when a pattern's conditions all sit on hot fields (lint and docs use it).
pub fn all_hot(p: &Pattern) -> bool {
    match p {
        Pattern::Json(j) => j.conditions.iter().all(|c| hot_of(&c.selector).is_some()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::object;

    fn set(patterns: &[&str]) -> RuleSet {
        let mut s = RuleSet::default();
        for (i, p) in patterns.iter().enumerate() {
            s.add(
                format!("r{i}"),
                "t".into(),
                Severity::High,
                None,
                Pattern::parse(p).unwrap(),
            );
        }
        s
    }

    fn run(s: &RuleSet, record: &str) -> (Vec<usize>, EvalStats) {
        let ev = object::parse(record).unwrap().event;
        let (mut out, mut stats) = (Vec::new(), EvalStats::default());
        s.evaluate(&ev, &mut out, &mut stats);
        (out, stats)
    }

    /// The hot-field shortcut gives the same answer as a full parse, on every kind of value.
    #[test]
    fn hot_fields_agree_with_the_full_document() {
        let patterns = [
            r#"{ $.eventName = "ConsoleLogin" }"#,
            r#"{ $.errorCode = "AccessDenied*" || $.errorCode = "*UnauthorizedOperation" }"#,
            r#"{ $.errorCode NOT EXISTS }"#,
            r#"{ $.errorCode IS NULL }"#,
            r#"{ $.errorCode != "x" }"#,
            r#"{ $.readOnly IS FALSE }"#,
            r#"{ $.readOnly NOT EXISTS }"#,
            r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS }"#,
            r#"{ $.userIdentity.invokedBy = * }"#,
            // Missing (record 1) and null (record 4) look alike to the hot fields.
            r#"{ $.userIdentity.invokedBy IS NULL }"#,
            r#"{ $.userIdentity.invokedBy NOT EXISTS }"#,
            r#"{ $.userIdentity.invokedBy = "x*" }"#,
            r#"{ $.userIdentity.invokedBy != "x" }"#,
            r#"{ $.userIdentity NOT EXISTS }"#,
            r#"{ $.userIdentity IS NULL }"#,
            r#"{ $.eventName = %Log% && $.additionalEventData.MFAUsed != "Yes" }"#,
            r#"{ ($.eventName = StopLogging) || ($.eventName = StartLogging) || ($.eventName = X) || ($.errorCode = "AccessDenied") || $.eventName = "ConsoleLogin" }"#,
            r#"{ $.userIdentity.type = A || $.userIdentity.type = B || $.userIdentity.type = Root || $.readOnly IS TRUE }"#,
            r#"{ $.additionalEventData.MFAUsed = "No" || $.additionalEventData.MFAUsed = "x" || $.additionalEventData.MFAUsed = "y" }"#,
        ];
        let records = [
            r#"{"eventID":"1","eventName":"ConsoleLogin","readOnly":false,"userIdentity":{"type":"Root"},"additionalEventData":{"MFAUsed":"No"}}"#,
            r#"{"eventID":"2","eventName":"StopLogging","errorCode":"AccessDenied","readOnly":"false","userIdentity":{"type":"Root","invokedBy":"x"}}"#,
            r#"{"eventID":"3","eventName":"StartLogging","errorCode":null,"readOnly":null,"userIdentity":null}"#,
            r#"{"eventID":"4","eventName":"RunInstances","errorCode":"Client.UnauthorizedOperation","userIdentity":{"type":"IAMUser","invokedBy":null}}"#,
            r#"{"eventID":"5","eventName":"X"}"#,
        ];
        for p in patterns {
            let s = set(&[p]);
            for r in records {
                let want = Pattern::parse(p).unwrap().matches_message(r);
                assert_eq!(!run(&s, r).0.is_empty(), want, "{p} on {r}");
            }
        }
    }

    #[test]
    fn most_events_are_decided_without_a_full_parse() {
        let s = set(&[
            r#"{ $.eventName = "ConsoleLogin" && $.additionalEventData.MFAUsed != "Yes" }"#,
            r#"{ ($.eventName = CreateTrail) || ($.eventName = StopLogging) }"#,
        ]);
        let (out, stats) = run(&s, r#"{"eventID":"1","eventName":"RunInstances"}"#);
        assert!(out.is_empty());
        assert_eq!(
            stats,
            EvalStats {
                decided_on_hot_fields: 2,
                full_parses: 0
            }
        );
        let (out, stats) = run(
            &s,
            r#"{"eventID":"1","eventName":"ConsoleLogin","additionalEventData":{"MFAUsed":"No"}}"#,
        );
        assert_eq!(out, [0]);
        assert_eq!(
            stats,
            EvalStats {
                decided_on_hot_fields: 1,
                full_parses: 1
            }
        );
    }

    #[test]
    fn text_patterns_read_the_raw_record() {
        let s = set(&["StopLogging -AccessDenied", "%^\\{%"]);
        assert_eq!(
            run(&s, r#"{"eventID":"1","eventName":"StopLogging"}"#).0,
            [0, 1]
        );
        assert_eq!(
            run(
                &s,
                r#"{"eventID":"1","eventName":"StopLogging","errorCode":"AccessDenied"}"#
            )
            .0,
            [1]
        );
    }
}
