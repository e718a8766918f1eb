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

use crate::event::{opt_str, present, Event, OptStr, UserIdentity};

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
    }
}

/// Parses one JSON object. The error message names the offending key.
pub fn parse(text: &str) -> Result<Object<'_>, serde_json::Error> {
    let mut obj: Object<'_> = serde_json::from_str(text)?;
    obj.event.raw = text;
    Ok(obj)
}

/// `readOnly` as CloudTrail writes it (a bool); strings "true"/"false" are accepted too,
/// since hand-made and re-serialised records carry them.
struct LenientBool(Option<bool>, bool);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientBool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LenientBool, E> {
                Ok(LenientBool(Some(v), false))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientBool, E> {
                match v.to_ascii_lowercase().as_str() {
                    "true" => Ok(LenientBool(Some(true), true)),
                    "false" => Ok(LenientBool(Some(false), true)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<LenientBool, E> {
                Ok(LenientBool(None, false))
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

/// An object key, borrowed from the input unless escaped (serde's `Cow<str>` would copy
/// every key into a `String`: an allocation per key per record).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
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
                "eventID" => {
                    ev.present |= present::EVENT_ID;
                    ev.event_id = field::<_, OptStr>(&mut map, key)?.0
                }
                "eventTime" => {
                    ev.present |= present::EVENT_TIME;
                    ev.event_time = field::<_, OptStr>(&mut map, key)?.0
                }
                "eventVersion" => {
                    ev.present |= present::EVENT_VERSION;
                    ev.event_version = field::<_, OptStr>(&mut map, key)?.0
                }
                "eventSource" => {
                    ev.present |= present::EVENT_SOURCE;
                    ev.event_source = field::<_, OptStr>(&mut map, key)?.0
                }
                "eventName" => {
                    ev.present |= present::EVENT_NAME;
                    ev.event_name = field::<_, OptStr>(&mut map, key)?.0
                }
                "eventType" => {
                    ev.present |= present::EVENT_TYPE;
                    ev.event_type = field::<_, OptStr>(&mut map, key)?.0
                }
                "eventCategory" => {
                    ev.present |= present::EVENT_CATEGORY;
                    ev.event_category = field::<_, OptStr>(&mut map, key)?.0
                }
                "awsRegion" => {
                    ev.present |= present::AWS_REGION;
                    ev.aws_region = field::<_, OptStr>(&mut map, key)?.0
                }
                "sourceIPAddress" => {
                    ev.present |= present::SOURCE_IP;
                    ev.source_ip = field::<_, OptStr>(&mut map, key)?.0
                }
                "userAgent" => {
                    ev.present |= present::USER_AGENT;
                    ev.user_agent = field::<_, OptStr>(&mut map, key)?.0
                }
                "errorCode" => {
                    ev.present |= present::ERROR_CODE;
                    ev.error_code = field::<_, OptStr>(&mut map, key)?.0
                }
                "recipientAccountId" => {
                    ev.present |= present::RECIPIENT_ACCOUNT_ID;
                    ev.recipient_account_id = field::<_, OptStr>(&mut map, key)?.0
                }
                "readOnly" => {
                    let b = field::<_, LenientBool>(&mut map, key)?;
                    ev.present |= present::READ_ONLY;
                    if b.1 {
                        ev.present |= present::READ_ONLY_IS_STRING;
                    }
                    ev.read_only = b.0
                }
                "userIdentity" => {
                    ev.present |= present::USER_IDENTITY;
                    ev.user_identity = field::<_, Option<UserIdentity<'de>>>(&mut map, key)?
                }
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

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse(r#"{"eventID":"e1","eventName":5}"#).unwrap_err();
        assert!(err.to_string().contains("field `eventName`"), "{err}");
        let err = parse(r#"{"userIdentity":{"arn":["x"]}}"#).unwrap_err();
        assert!(err.to_string().contains("field `userIdentity`"), "{err}");
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
        assert!(parse(r#"{"readOnly":"maybe"}"#).is_err());
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
