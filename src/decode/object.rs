//! One pass over a JSON object that fills both the CloudTrail hot fields and the keys that
//! identify an envelope. Content decides what the object is: `{"Records":[..]}` (S3 log file,
//! `get-records` dump, Lambda Kinesis event), `records` (Firehose), `messageType` (CloudWatch
//! Logs), `detail-type` (EventBridge), `Data`/`kinesis`/`data` (one transport record), digest
//! keys, or else a CloudTrail record.
//!
//! Parsing is borrowed: nested records stay `&RawValue` slices of the input and are parsed
//! when they are visited; strings borrow unless escaped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{opt_str, present, Event, Key, Lenient, OptStr, OrOdd, UserIdentity};

/// What was found beside (or instead of) the CloudTrail fields.
#[derive(Debug, Default)]
pub struct Envelope<'a> {
    pub records_upper: Option<Vec<&'a RawValue>>,
    pub records_lower: Option<Vec<&'a RawValue>>,
    pub message_type: Option<Cow<'a, str>>,
    pub log_events: Option<Vec<LogEvent<'a>>>,
    /// How many `logEvents` messages went straight to the message sink during parsing.
    pub streamed_log_events: Option<usize>,
    pub detail_type: Option<Cow<'a, str>>,
    pub detail: Option<&'a RawValue>,
    /// `Data` (get-records), `data` (Firehose record), `kinesis.data`, `awslogs.data`: base64.
    pub data: Option<Cow<'a, str>>,
    pub sequence_number: Option<Cow<'a, str>>,
    pub digest: bool,
    /// `aws cloudtrail lookup-events` output: `{"Events":[{"CloudTrailEvent":"<json>"}]}`.
    pub lookup_events: Option<Vec<LookupEvent<'a>>>,
}

/// One entry of `lookup-events` output: the record is a JSON string in `CloudTrailEvent`.
#[derive(Debug, Deserialize)]
pub struct LookupEvent<'a> {
    #[serde(
        rename = "CloudTrailEvent",
        borrow,
        default,
        deserialize_with = "opt_str"
    )]
    pub cloudtrail_event: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct LogEvent<'a> {
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    data: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "opt_str",
        rename = "sequenceNumber"
    )]
    sequence_number: Option<Cow<'a, str>>,
}

/// A parsed JSON object: CloudTrail fields and envelope keys.
#[derive(Debug, Default)]
pub struct Object<'a> {
    pub event: Event<'a>,
    pub envelope: Envelope<'a>,
}

impl Envelope<'_> {
    pub fn is_empty(&self) -> bool {
        self.records_upper.is_none()
            && self.records_lower.is_none()
            && self.message_type.is_none()
            && self.detail_type.is_none()
            && self.data.is_none()
            && !self.digest
            && self.lookup_events.is_none()
    }
}

/// Parses one JSON object. The error message names the offending key.
pub fn parse(text: &str) -> Result<Object<'_>, serde_json::Error> {
    let mut obj: Object<'_> = serde_json::from_str(text)?;
    obj.event.raw = text;
    Ok(obj)
}

/// `readOnly` as CloudTrail writes it (a bool); strings "true"/"false" are accepted too,
/// since hand-made and re-serialised records carry them (the second field). Any other value
/// reads as absent and is marked odd (the third).
struct LenientBool(Option<bool>, bool, bool);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientBool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LenientBool, E> {
                Ok(LenientBool(Some(v), false, false))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientBool, E> {
                Ok(match v.to_ascii_lowercase().as_str() {
                    "true" => LenientBool(Some(true), true, false),
                    "false" => LenientBool(Some(false), true, false),
                    _ => LenientBool(None, false, true),
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<LenientBool, E> {
                Ok(LenientBool(None, false, false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<LenientBool, E> {
                Ok(LenientBool(None, false, true))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<LenientBool, E> {
                Ok(LenientBool(None, false, true))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<LenientBool, E> {
                Ok(LenientBool(None, false, true))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LenientBool, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientBool(None, false, true))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LenientBool, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientBool(None, false, true))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Object<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor { sink: None })
    }
}

/// Receives each CloudWatch Logs message (and its index) while the envelope is parsed, so
/// an escaped message is read straight from the parser's buffer, never copied out.
pub type MessageSink<'s> = &'s mut dyn FnMut(&str, usize);

/// Parses a [`Object`]; `DATA_MESSAGE` log events go to `sink` when `messageType` comes
/// before `logEvents` (as AWS writes it); otherwise they are kept in `log_events`.
pub struct ObjectSeed<'s> {
    pub sink: Option<MessageSink<'s>>,
}

impl<'de, 's> DeserializeSeed<'de> for ObjectSeed<'s> {
    type Value = Object<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Object<'de>, D::Error> {
        d.deserialize_map(ObjectVisitor { sink: self.sink })
    }
}

/// `logEvents`: each element's `message` to the sink.
struct LogEvents<'s, 'k> {
    sink: &'k mut MessageSink<'s>,
}

impl<'de> DeserializeSeed<'de> for LogEvents<'_, '_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LogEvents<'_, '_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of log events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(OneLogEvent {
                sink: &mut *self.sink,
                index,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(index)
    }
}

struct OneLogEvent<'s, 'k> {
    sink: &'k mut MessageSink<'s>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for OneLogEvent<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OneLogEvent<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a log event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == "message" && !seen {
                seen = true;
                map.next_value_seed(Message {
                    sink: &mut *self.sink,
                    index: self.index,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !seen {
            return Err(de::Error::missing_field("message"));
        }
        Ok(())
    }
}

struct Message<'s, 'k> {
    sink: &'k mut MessageSink<'s>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for Message<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Message<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        (self.sink)(v, self.index);
        Ok(())
    }
}

struct ObjectVisitor<'s> {
    sink: Option<MessageSink<'s>>,
}

/// Reads the next value, naming the key in the error.
fn field<'de, A, T>(map: &mut A, key: &str) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    map.next_value::<T>()
        .map_err(|e| de::Error::custom(format_args!("field `{key}`: {e}")))
}

/// Reads a hot string field leniently: marks it present, and odd when it is not a string or
/// `null` (it then reads as absent).
fn hot<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: &str,
    ev: &mut Event<'de>,
    bit: u16,
) -> Result<Option<Cow<'de, str>>, A::Error> {
    let v = field::<_, Lenient<'de>>(map, key)?;
    ev.present |= bit;
    if v.odd {
        ev.odd |= bit;
    }
    Ok(v.value)
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Object<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (a CloudTrail record or an envelope)")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Object<'de>, A::Error> {
        let mut s = Object::default();
        let (ev, env) = (&mut s.event, &mut s.envelope);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let key = key.0.as_ref();
            match key {
                "eventID" => ev.event_id = hot(&mut map, key, ev, present::EVENT_ID)?,
                "eventTime" => ev.event_time = hot(&mut map, key, ev, present::EVENT_TIME)?,
                "eventVersion" => {
                    ev.event_version = hot(&mut map, key, ev, present::EVENT_VERSION)?
                }
                "eventSource" => ev.event_source = hot(&mut map, key, ev, present::EVENT_SOURCE)?,
                "eventName" => ev.event_name = hot(&mut map, key, ev, present::EVENT_NAME)?,
                "eventType" => ev.event_type = hot(&mut map, key, ev, present::EVENT_TYPE)?,
                "eventCategory" => {
                    ev.event_category = hot(&mut map, key, ev, present::EVENT_CATEGORY)?
                }
                "awsRegion" => ev.aws_region = hot(&mut map, key, ev, present::AWS_REGION)?,
                "sourceIPAddress" => ev.source_ip = hot(&mut map, key, ev, present::SOURCE_IP)?,
                "userAgent" => ev.user_agent = hot(&mut map, key, ev, present::USER_AGENT)?,
                "errorCode" => ev.error_code = hot(&mut map, key, ev, present::ERROR_CODE)?,
                "recipientAccountId" => {
                    ev.recipient_account_id = hot(&mut map, key, ev, present::RECIPIENT_ACCOUNT_ID)?
                }
                "readOnly" => {
                    let b = field::<_, LenientBool>(&mut map, key)?;
                    ev.present |= present::READ_ONLY;
                    if b.1 {
                        ev.present |= present::READ_ONLY_IS_STRING;
                    }
                    if b.2 {
                        ev.odd |= present::READ_ONLY;
                    }
                    ev.read_only = b.0
                }
                "userIdentity" => {
                    ev.present |= present::USER_IDENTITY;
                    let u = field::<_, OrOdd<UserIdentity<'de>>>(&mut map, key)?;
                    if u.1 || u.0.as_ref().is_some_and(|u| u.odd) {
                        ev.odd |= present::USER_IDENTITY;
                    }
                    ev.user_identity = u.0
                }
                "Events" => env.lookup_events = field(&mut map, key)?,
                "Records" => env.records_upper = field(&mut map, key)?,
                "records" => env.records_lower = field(&mut map, key)?,
                "messageType" => env.message_type = field::<_, OptStr>(&mut map, key)?.0,
                "logEvents" => match (&mut self.sink, env.message_type.as_deref()) {
                    (Some(sink), Some("DATA_MESSAGE")) => {
                        let n = map
                            .next_value_seed(LogEvents { sink })
                            .map_err(|e| de::Error::custom(format_args!("field `{key}`: {e}")))?;
                        env.streamed_log_events = Some(n);
                    }
                    _ => env.log_events = field(&mut map, key)?,
                },
                "detail-type" => env.detail_type = field::<_, OptStr>(&mut map, key)?.0,
                "detail" => env.detail = field(&mut map, key)?,
                "Data" | "data" => env.data = field::<_, OptStr>(&mut map, key)?.0,
                "SequenceNumber" => env.sequence_number = field::<_, OptStr>(&mut map, key)?.0,
                "kinesis" | "awslogs" => {
                    if let Some(inner) = field::<_, Option<Inner<'de>>>(&mut map, key)? {
                        env.data = inner.data;
                        if inner.sequence_number.is_some() {
                            env.sequence_number = inner.sequence_number;
                        }
                    }
                }
                "digestStartTime" | "digestSignatureAlgorithm" | "logFiles" => {
                    map.next_value::<IgnoredAny>()?;
                    env.digest = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hot_fields_borrowed() {
        let text = r#"{"eventID":"e1","eventName":"RunInstances","awsRegion":"us-west-1",
            "readOnly":false,"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"},
            "requestParameters":{"deep":[1,2,{"x":null}]}}"#;
        let s = parse(text).unwrap();
        assert!(s.envelope.is_empty());
        assert_eq!(s.event.event_name(), Some("RunInstances"));
        assert!(matches!(s.event.event_name, Some(Cow::Borrowed(_))));
        assert_eq!(s.event.read_only, Some(false));
        assert_eq!(s.event.principal(), Some("arn:aws:iam::1:user/a"));
        assert_eq!(s.event.raw, text);
    }

    /// Issue 27, case 7: a hot field of a type CloudTrail never writes there reads as absent
    /// (marked odd, so rules read the whole record), never a reason to drop the event.
    #[test]
    fn hot_fields_of_unexpected_types_read_as_absent_and_odd() {
        let s = parse(r#"{"eventID":"e1","eventName":5,"userAgent":{"a":[1]}}"#).unwrap();
        assert_eq!(s.event.event_id(), Some("e1"));
        assert_eq!(s.event.event_name(), None);
        assert_eq!(s.event.user_agent, None);
        assert_eq!(s.event.odd, present::EVENT_NAME | present::USER_AGENT);
        assert_eq!(s.event.present & present::EVENT_NAME, present::EVENT_NAME);
        let s = parse(r#"{"userIdentity":{"arn":["x"],"type":"IAMUser"}}"#).unwrap();
        let u = s.event.user_identity.as_ref().unwrap();
        assert_eq!(
            (u.arn.as_deref(), u.kind.as_deref()),
            (None, Some("IAMUser"))
        );
        assert!(u.odd);
        assert_eq!(s.event.odd, present::USER_IDENTITY);
        let s = parse(r#"{"userIdentity":"root"}"#).unwrap();
        assert!(s.event.user_identity.is_none());
        assert_eq!(s.event.odd, present::USER_IDENTITY);
        let s = parse(r#"{"userIdentity":{"sessionContext":7,"arn":"a"}}"#).unwrap();
        assert_eq!(s.event.principal(), Some("a"));
        assert_eq!(s.event.odd, present::USER_IDENTITY);
        // Envelope keys still name the field when they are of the wrong type.
        let err = parse(r#"{"Records":{"a":1}}"#).unwrap_err();
        assert!(err.to_string().contains("field `Records`"), "{err}");
    }

    #[test]
    fn read_only_is_lenient_about_strings_and_null() {
        assert_eq!(
            parse(r#"{"readOnly":"True"}"#).unwrap().event.read_only,
            Some(true)
        );
        assert_eq!(parse(r#"{"readOnly":null}"#).unwrap().event.read_only, None);
        let odd = parse(r#"{"readOnly":"maybe"}"#).unwrap().event;
        assert_eq!((odd.read_only, odd.odd), (None, present::READ_ONLY));
        let odd = parse(r#"{"readOnly":1}"#).unwrap().event;
        assert_eq!((odd.read_only, odd.odd), (None, present::READ_ONLY));
    }

    #[test]
    fn finds_envelope_keys() {
        let s =
            parse(r#"{"kinesis":{"data":"eyJ9","sequenceNumber":"49"},"eventID":"x"}"#).unwrap();
        assert_eq!(s.envelope.data.as_deref(), Some("eyJ9"));
        assert_eq!(s.envelope.sequence_number.as_deref(), Some("49"));
        let s = parse(r#"{"digestStartTime":"t","logFiles":[]}"#).unwrap();
        assert!(s.envelope.digest);
        let s = parse(r#"{"Records":[{"a":1},{"b":[2]}]}"#).unwrap();
        assert_eq!(s.envelope.records_upper.unwrap()[1].get(), r#"{"b":[2]}"#);
    }
}
