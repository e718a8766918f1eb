//! The CloudTrail event model: the hot fields every rule needs, borrowed from the record's
//! JSON text, plus that text itself so later rules (filter patterns) can reach any field.
//!
//! An [`Event`] is parsed once, by [`crate::decode`], and never cloned per rule. Strings are
//! `Cow`s: borrowed from the input unless the JSON escaped them.

use std::borrow::Cow;

use serde::Deserialize;

/// One CloudTrail record.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Event<'a> {
    pub event_id: Option<Cow<'a, str>>,
    pub event_time: Option<Cow<'a, str>>,
    pub event_version: Option<Cow<'a, str>>,
    pub event_source: Option<Cow<'a, str>>,
    pub event_name: Option<Cow<'a, str>>,
    pub event_type: Option<Cow<'a, str>>,
    pub event_category: Option<Cow<'a, str>>,
    pub aws_region: Option<Cow<'a, str>>,
    pub source_ip: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub error_code: Option<Cow<'a, str>>,
    pub recipient_account_id: Option<Cow<'a, str>>,
    /// `readOnly`; `None` when absent (unknown, not "read-only").
    pub read_only: Option<bool>,
    pub user_identity: Option<UserIdentity<'a>>,
    /// The record's JSON text, exactly as received (after unwrapping its envelope).
    pub raw: &'a str,
    /// Which top-level hot keys the record has (bits of [`present`]): tells a missing field
    /// from a `null` one, so rules can decide on hot fields alone.
    pub present: u16,
    /// Which hot keys hold a value of a type CloudTrail never writes there (a number where a
    /// string belongs, an object for `readOnly`, a `userIdentity` field that is not a string):
    /// bits of [`present`]. Such a field reads as absent here, never as a reason to drop the
    /// event; rules that test it read the whole record ([`crate::rules::hot`]).
    pub odd: u16,
}

/// Bits of [`Event::present`].
pub mod present {
    pub const EVENT_ID: u16 = 1;
    pub const EVENT_TIME: u16 = 1 << 1;
    pub const EVENT_VERSION: u16 = 1 << 2;
    pub const EVENT_SOURCE: u16 = 1 << 3;
    pub const EVENT_NAME: u16 = 1 << 4;
    pub const EVENT_TYPE: u16 = 1 << 5;
    pub const EVENT_CATEGORY: u16 = 1 << 6;
    pub const AWS_REGION: u16 = 1 << 7;
    pub const SOURCE_IP: u16 = 1 << 8;
    pub const USER_AGENT: u16 = 1 << 9;
    pub const ERROR_CODE: u16 = 1 << 10;
    pub const RECIPIENT_ACCOUNT_ID: u16 = 1 << 11;
    pub const READ_ONLY: u16 = 1 << 12;
    pub const USER_IDENTITY: u16 = 1 << 13;
    /// `readOnly` was written as a string (`"true"`), which `read_only` accepts leniently.
    pub const READ_ONLY_IS_STRING: u16 = 1 << 14;
}

/// The parts of `userIdentity` that alerts and exemptions use. A field of an unexpected type
/// reads as absent and sets `odd`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UserIdentity<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub arn: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    pub principal_id: Option<Cow<'a, str>>,
    pub user_name: Option<Cow<'a, str>>,
    pub invoked_by: Option<Cow<'a, str>>,
    /// The key the call was signed with: a role session's names the `AssumeRole*` call that
    /// issued it ([`crate::identity`]).
    pub access_key_id: Option<Cow<'a, str>>,
    pub session_context: Option<SessionContext<'a>>,
    /// `onBehalfOf.userId`: the Identity Center user a service acted for.
    pub on_behalf_of: Option<Cow<'a, str>>,
    /// Some field above had a type CloudTrail never writes there.
    pub odd: bool,
}

/// `userIdentity.onBehalfOf` (of which the user id is kept).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnBehalfOf<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    user_id: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for UserIdentity<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UserIdentity<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a userIdentity object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UserIdentity<'de>, A::Error> {
                let mut u = UserIdentity::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let slot = match key.0.as_ref() {
                        "type" => &mut u.kind,
                        "arn" => &mut u.arn,
                        "accountId" => &mut u.account_id,
                        "principalId" => &mut u.principal_id,
                        "userName" => &mut u.user_name,
                        "invokedBy" => &mut u.invoked_by,
                        "accessKeyId" => &mut u.access_key_id,
                        "onBehalfOf" => {
                            let o = map.next_value::<OrOdd<OnBehalfOf<'de>>>()?;
                            u.on_behalf_of = o.0.and_then(|o| o.user_id);
                            u.odd |= o.1;
                            continue;
                        }
                        "sessionContext" => {
                            let c = map.next_value::<OrOdd<SessionContext<'de>>>()?;
                            u.session_context = c.0;
                            u.odd |= c.1;
                            continue;
                        }
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    let v = map.next_value::<Lenient<'de>>()?;
                    *slot = v.value;
                    u.odd |= v.odd;
                }
                Ok(u)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(borrow, default, deserialize_with = "or_odd")]
    pub session_issuer: Option<SessionIssuer<'a>>,
    /// `sourceIdentity`: set by whoever assumed the role, and kept along a chain.
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    pub source_identity: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    pub arn: Option<Cow<'a, str>>,
}

/// An object key, borrowed from the input unless escaped (serde's `Cow<str>` would copy
/// every key into a `String`: an allocation per key per record).
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A string field read leniently: a string (borrowed when it can be), `null`, or any other
/// JSON value, which reads as absent and is marked `odd`.
#[derive(Debug, Default)]
pub struct Lenient<'a> {
    pub value: Option<Cow<'a, str>>,
    pub odd: bool,
}

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let odd = |_| Lenient {
            value: None,
            odd: true,
        };
        match d.deserialize_any(OddVisitor(StrVisitor))? {
            Ok(s) => Ok(Lenient {
                value: s.0,
                odd: false,
            }),
            Err(()) => Ok(odd(())),
        }
    }
}

/// `Option<String>`-like fields that read any other JSON type as absent.
fn lenient_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Lenient::deserialize(d)?.value)
}

/// An object read leniently: `T` from a JSON object, `None` for `null`, and `None` marked odd
/// (the `bool`) for any other JSON value.
pub struct OrOdd<T>(pub Option<T>, pub bool);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrOdd<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = OrOdd<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<OrOdd<T>, A::Error> {
                let t = T::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(OrOdd(Some(t), false))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<OrOdd<T>, E> {
                Ok(OrOdd(None, false))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<OrOdd<T>, E> {
                Ok(OrOdd(None, false))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OrOdd<T>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(OrOdd(None, true))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<OrOdd<T>, E> {
                Ok(OrOdd(None, true))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<OrOdd<T>, E> {
                Ok(OrOdd(None, true))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<OrOdd<T>, E> {
                Ok(OrOdd(None, true))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<OrOdd<T>, E> {
                Ok(OrOdd(None, true))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<OrOdd<T>, E> {
                Ok(OrOdd(None, true))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

fn or_odd<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(OrOdd::<T>::deserialize(d)?.0)
}

/// Wraps a string visitor: any value it does not take (a number, a bool, an array, an
/// object) is consumed and answered `Err(())`.
struct OddVisitor(StrVisitor);

impl<'de> serde::de::Visitor<'de> for OddVisitor {
    type Value = Result<OptStr<'de>, ()>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.0.visit_borrowed_str(v).map(Ok)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.0.visit_str(v).map(Ok)
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.0.visit_string(v).map(Ok)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(OptStr(None)))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(OptStr(None)))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Err(()))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Err(()))
    }
}

/// Deserializes an optional string, borrowing from the input when it has no escapes
/// (serde's own `Cow` impl always copies).
pub fn opt_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(d.deserialize_any(StrVisitor)?.0)
}

/// `Option<Cow<str>>` that borrows when it can; accepts `null`.
#[derive(Debug, Default)]
pub struct OptStr<'a>(pub Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OptStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> serde::de::Visitor<'de> for StrVisitor {
    type Value = OptStr<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(OptStr(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(OptStr(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(OptStr(Some(Cow::Owned(v))))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(OptStr(None))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(OptStr(None))
    }
}

/// The session issuer's ARN (the role behind an assumed-role session), when not empty.
fn issuer_arn<'s>(u: &'s UserIdentity<'_>) -> Option<&'s str> {
    u.session_context
        .as_ref()
        .and_then(|s| s.session_issuer.as_ref())
        .and_then(|i| opt(&i.arn))
        .filter(|a| !a.is_empty())
}

fn opt<'s>(s: &'s Option<Cow<'_, str>>) -> Option<&'s str> {
    s.as_deref()
}

impl<'a> Event<'a> {
    pub fn event_id(&self) -> Option<&str> {
        opt(&self.event_id)
    }
    pub fn event_name(&self) -> Option<&str> {
        opt(&self.event_name)
    }
    pub fn event_source(&self) -> Option<&str> {
        opt(&self.event_source)
    }
    pub fn region(&self) -> Option<&str> {
        opt(&self.aws_region)
    }
    pub fn event_type(&self) -> Option<&str> {
        opt(&self.event_type)
    }
    pub fn error_code(&self) -> Option<&str> {
        opt(&self.error_code).filter(|c| !c.is_empty())
    }

    /// The account the event belongs to: `recipientAccountId`, else `userIdentity.accountId`.
    pub fn account(&self) -> Option<&str> {
        opt(&self.recipient_account_id)
            .filter(|a| !a.is_empty())
            .or_else(|| {
                self.user_identity
                    .as_ref()
                    .and_then(|u| opt(&u.account_id))
                    .filter(|a| !a.is_empty())
            })
    }

    /// What `aws:PrincipalARN` holds for the caller: the role's ARN for an assumed role (the
    /// session issuer), else `userIdentity.arn`.
    pub fn principal_arn(&self) -> Option<&str> {
        let u = self.user_identity.as_ref()?;
        issuer_arn(u).or_else(|| opt(&u.arn).filter(|a| !a.is_empty()))
    }

    /// The role behind an assumed-role session (`sessionContext.sessionIssuer.arn`), when
    /// the record names one.
    pub fn session_issuer_arn(&self) -> Option<&str> {
        issuer_arn(self.user_identity.as_ref()?)
    }

    /// The acting principal: `userIdentity.arn`; for AWS services, the service that invoked;
    /// for other accounts, the principal id; else the session issuer.
    pub fn principal(&self) -> Option<&str> {
        let u = self.user_identity.as_ref()?;
        opt(&u.arn)
            .filter(|a| !a.is_empty())
            .or_else(|| issuer_arn(u))
            .or_else(|| opt(&u.invoked_by).filter(|a| !a.is_empty()))
            .or_else(|| opt(&u.principal_id).filter(|a| !a.is_empty()))
    }

    /// The principal that stays the same across sessions: the role's ARN for its sessions
    /// (a new session name is not a new principal), else `userIdentity.arn` (an IAM user,
    /// root), else the AWS service that invoked, else the principal id.
    pub fn stable_principal(&self) -> Option<&str> {
        let u = self.user_identity.as_ref()?;
        self.principal_arn()
            .or_else(|| opt(&u.invoked_by).filter(|a| !a.is_empty()))
            .or_else(|| opt(&u.principal_id).filter(|a| !a.is_empty()))
    }

    pub fn principal_type(&self) -> Option<&str> {
        self.user_identity.as_ref().and_then(|u| opt(&u.kind))
    }

    /// Event time as seconds since the Unix epoch, when it is a well-formed UTC timestamp.
    pub fn time_secs(&self) -> Option<i64> {
        self.event_time.as_deref().and_then(parse_utc_secs)
    }

    /// True when the record carries any CloudTrail field (as opposed to an unknown object).
    pub fn looks_like_cloudtrail(&self) -> bool {
        self.event_id.is_some()
            || self.event_version.is_some()
            || (self.event_name.is_some() && self.event_source.is_some())
            || self.event_type.is_some()
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (or a space instead of `T`, or `+00:00`) into
/// seconds since the Unix epoch. Returns `None` for anything else.
pub fn parse_utc_secs(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v: i64 = 0;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &b[19..];
    if let Some((&b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    match rest {
        b"" | b"Z" | b"z" | b"+00:00" | b"+0000" => {}
        _ => return None,
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc_secs(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudtrail_timestamps_like_the_time_crate() {
        use time::format_description::well_known::Rfc3339;
        for s in [
            "1970-01-01T00:00:00Z",
            "2021-07-28T15:28:12Z",
            "2000-02-29T23:59:59Z",
            "2026-11-01T00:00:00.123Z",
            "1969-12-31T23:59:59Z",
            "2100-03-01T12:00:00Z",
        ] {
            let want = time::OffsetDateTime::parse(s, &Rfc3339)
                .unwrap()
                .unix_timestamp();
            assert_eq!(parse_utc_secs(s), Some(want), "{s}");
        }
        assert_eq!(
            parse_utc_secs("2026-01-11 22:54:56.000000000"),
            parse_utc_secs("2026-01-11T22:54:56Z")
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for s in [
            "",
            "foo",
            "2021-13-01T00:00:00Z",
            "2021-07-28T25:00:00Z",
            "2021-07-28T15:28:12+02:00",
            "2021-07-28T15:28:12.Z",
            "2021-07-28T15:28:1",
            "２０２１-07-28T15:28:12Z",
        ] {
            assert_eq!(parse_utc_secs(s), None, "{s}");
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_utc_secs(0), "1970-01-01T00:00:00Z");
        let s = "2026-11-26T20:07:54Z";
        assert_eq!(format_utc_secs(parse_utc_secs(s).unwrap()), s);
    }

    #[test]
    fn account_falls_back_to_user_identity() {
        let mut ev = Event {
            user_identity: Some(UserIdentity {
                account_id: Some("222233334444".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(ev.account(), Some("222233334444"));
        ev.recipient_account_id = Some("111122223333".into());
        assert_eq!(ev.account(), Some("111122223333"));
        ev.recipient_account_id = Some("".into());
        assert_eq!(ev.account(), Some("222233334444"));
    }

    #[test]
    fn principal_prefers_arn_then_issuer_then_service() {
        let ui =
            |arn: Option<&'static str>, issuer: Option<&'static str>, by: Option<&'static str>| {
                Event {
                    user_identity: Some(UserIdentity {
                        arn: arn.map(Into::into),
                        invoked_by: by.map(Into::into),
                        session_context: issuer.map(|i| SessionContext {
                            session_issuer: Some(SessionIssuer {
                                arn: Some(i.into()),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            };
        assert_eq!(ui(Some("a"), Some("b"), Some("c")).principal(), Some("a"));
        assert_eq!(ui(Some(""), Some("b"), Some("c")).principal(), Some("b"));
        assert_eq!(ui(None, None, Some("c")).principal(), Some("c"));
        assert_eq!(Event::default().principal(), None);
    }
}
