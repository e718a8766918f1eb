//! Bytes → CloudTrail events. Content decides the envelope, never a flag: gzip magic, KPL
//! magic, then the JSON shape (see [`object`]). Envelopes nest (a `get-records` dump holds
//! base64 Kinesis records holding gzip'd CloudWatch Logs envelopes holding CloudTrail records),
//! so decoding recurses, to a bounded depth.
//!
//! Nothing here panics on input: a record that cannot be read is handed to
//! [`Visit::dead_letter`] with its position and the reason, and decoding goes on with the next.

pub mod gzip;
pub(crate) mod inflate;
pub mod kpl;
pub mod object;
mod split;

use std::fmt::Write as _;

use base64::Engine as _;
use serde::de::DeserializeSeed;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::event::Event;

/// Size and depth limits. Defaults suit CloudTrail (events ≤ 256 KB; Kinesis records ≤ 10 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest output of one gzip layer; more is a dead letter (gzip-bomb guard).
    pub max_decompressed_bytes: usize,
    /// Largest single CloudTrail record (its JSON text); larger ones are dead letters.
    pub max_event_bytes: usize,
    /// Deepest envelope nesting (gzip, base64, KPL, Records, logEvents each count one).
    pub max_depth: u32,
    /// Deepest JSON nesting inside a record (arrays and objects); deeper is a dead letter.
    /// Below serde_json's own limit (128), so later full parses of a record cannot fail on it.
    pub max_json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed_bytes: 128 << 20,
            max_event_bytes: 1 << 20,
            max_depth: 12,
            max_json_depth: 100,
        }
    }
}

impl From<&crate::config::Decode> for Limits {
    /// `[decode]`'s limits; the nesting limits are fixed.
    fn from(d: &crate::config::Decode) -> Self {
        Limits {
            max_decompressed_bytes: d.max_decompressed_bytes,
            max_event_bytes: d.max_event_bytes,
            ..Limits::default()
        }
    }
}

/// One step from the outside of a record inwards, for positions in dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Element `i` of an array field (`Records`, `records`, `logEvents`, or `[]` for a bare array).
    Index(&'static str, usize),
    Base64,
    Gzip,
    /// Sub-record `i` of a KPL aggregate (the KCL sub-sequence number).
    Kpl(usize),
    /// EventBridge `detail`.
    Detail,
    /// A field holding the record as a JSON string (`lookup-events`' `CloudTrailEvent`).
    Field(&'static str),
}

/// Where a record sits: input name, line, and the steps into it.
#[derive(Debug, Clone, Default)]
pub struct Position {
    pub input: String,
    /// 1-based line of the input where the record (or its enclosing document) starts.
    pub line: Option<u64>,
    /// Kinesis sequence number of the enclosing transport record, when known.
    pub sequence_number: Option<String>,
    pub steps: Vec<Step>,
}

impl Position {
    pub fn new(input: impl Into<String>) -> Self {
        Position {
            input: input.into(),
            ..Default::default()
        }
    }

    /// `Records[3]/base64/gzip/logEvents[17]`.
    pub fn path(&self) -> String {
        let mut s = String::new();
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                s.push('/');
            }
            let _ = match step {
                Step::Index(name, n) => write!(s, "{name}[{n}]"),
                Step::Base64 => write!(s, "base64"),
                Step::Gzip => write!(s, "gzip"),
                Step::Kpl(n) => write!(s, "kpl[{n}]"),
                Step::Detail => write!(s, "detail"),
                Step::Field(name) => write!(s, "{name}"),
            };
        }
        s
    }

    /// The innermost KPL sub-record index, if the record came out of an aggregate.
    pub fn sub_sequence(&self) -> Option<usize> {
        self.steps.iter().rev().find_map(|s| match s {
            Step::Kpl(n) => Some(*n),
            _ => None,
        })
    }

    fn with<T>(&mut self, step: Step, f: impl FnOnce(&mut Self) -> T) -> T {
        self.steps.push(step);
        let out = f(self);
        self.steps.pop();
        out
    }
}

/// A record that could not be read: one JSON line of the dead-letter file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeadLetter {
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_sequence: Option<usize>,
    pub reason: String,
    /// Size of the unreadable record in bytes.
    pub size: usize,
    /// Its first bytes (up to [`DeadLetter::HEAD_BYTES`]), base64.
    pub head_base64: String,
}

impl DeadLetter {
    pub const HEAD_BYTES: usize = 256;

    pub fn new(pos: &Position, data: &[u8], reason: impl Into<String>) -> Self {
        let head = &data[..data.len().min(Self::HEAD_BYTES)];
        DeadLetter {
            input: pos.input.clone(),
            line: pos.line,
            path: pos.path(),
            sequence_number: pos.sequence_number.clone(),
            sub_sequence: pos.sub_sequence(),
            reason: reason.into(),
            size: data.len(),
            head_base64: base64::engine::general_purpose::STANDARD.encode(head),
        }
    }
}

/// Why a readable record carried no CloudTrail event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A CloudTrail digest file.
    Digest,
    /// An EventBridge event that is not CloudTrail-delivered.
    NotCloudTrail,
    /// An empty transport record (Firehose allows them).
    Empty,
}

impl Skip {
    /// Its name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Skip::Digest => "digest",
            Skip::NotCloudTrail => "not_cloudtrail",
            Skip::Empty => "empty",
        }
    }
}

/// What decoding finds, handed to the caller as it goes.
pub trait Visit {
    fn event(&mut self, event: Event<'_>, pos: &Position);
    fn dead_letter(&mut self, dead: DeadLetter);
    /// A CloudWatch Logs `CONTROL_MESSAGE` (a subscription's reachability probe).
    fn control_message(&mut self, _pos: &Position) {}
    fn skipped(&mut self, _why: Skip, _pos: &Position) {}
    /// A base64 transport record (Kinesis, Firehose) was opened.
    fn transport_record(&mut self, _pos: &Position) {}
}

/// Decodes records of any supported envelope.
#[derive(Debug, Clone, Copy, Default)]
pub struct Decoder {
    pub limits: Limits,
}

fn is_cloudtrail_detail_type(dt: &str) -> bool {
    dt.ends_with(" via CloudTrail")
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder { limits }
    }

    /// Decodes one record, document or payload and reports what it holds to `v`.
    pub fn decode(&self, data: &[u8], pos: &mut Position, v: &mut impl Visit) {
        self.bytes(data, pos, v, 0);
    }

    /// A transport record given as standard base64 (Firehose, Lambda events): an empty one is
    /// nothing, bad base64 is a dead letter at `pos`, the bytes are decoded under `base64`.
    pub fn decode_base64(&self, text: &str, pos: &mut Position, v: &mut impl Visit) {
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            Ok(bytes) if bytes.is_empty() => {}
            Ok(bytes) => pos.with(Step::Base64, |pos| self.decode(&bytes, pos, v)),
            Err(e) => v.dead_letter(DeadLetter::new(
                pos,
                text.as_bytes(),
                format!("bad base64: {e}"),
            )),
        }
    }

    fn too_nested(&self, depth: u32) -> Option<String> {
        (depth > self.limits.max_depth).then(|| {
            format!(
                "envelopes nested deeper than {} levels",
                self.limits.max_depth
            )
        })
    }

    fn bytes(&self, data: &[u8], pos: &mut Position, v: &mut impl Visit, depth: u32) {
        if let Some(why) = self.too_nested(depth) {
            return v.dead_letter(DeadLetter::new(pos, data, why));
        }
        if gzip::is_gzip(data) {
            return match gzip::gunzip(data, self.limits.max_decompressed_bytes) {
                Ok(plain) => {
                    pos.with(Step::Gzip, |pos| self.bytes(&plain, pos, v, depth + 1));
                    gzip::give_back(plain)
                }
                Err(e) => v.dead_letter(DeadLetter::new(pos, data, e.to_string())),
            };
        }
        if data.starts_with(&kpl::MAGIC) {
            match kpl::deaggregate(data) {
                Ok(Some(subs)) => {
                    for (i, sub) in subs.iter().enumerate() {
                        pos.with(Step::Kpl(i), |pos| self.bytes(sub.data, pos, v, depth + 1));
                    }
                    return;
                }
                Ok(None) => {} // bad MD5 or too short: a plain record, as KCL does
                Err(e) => return v.dead_letter(DeadLetter::new(pos, data, e.to_string())),
            }
        }
        let body = data
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(data)
            .trim_ascii();
        match body.first() {
            None => v.skipped(Skip::Empty, pos),
            Some(b'{' | b'[') => match std::str::from_utf8(body) {
                Ok(text) => self.json(text, pos, v, depth),
                Err(e) => v.dead_letter(DeadLetter::new(pos, data, format!("not UTF-8: {e}"))),
            },
            Some(b) => {
                let why = format!(
                    "unknown format: not gzip, KPL or JSON (first byte 0x{b:02x}, {:?})",
                    char::from(*b)
                );
                v.dead_letter(DeadLetter::new(pos, data, why))
            }
        }
    }

    /// [`Self::bytes`] for text already known to be UTF-8 (a log message): a `str` cannot
    /// start with the gzip or KPL magic, so only the JSON check remains.
    fn text(&self, text: &str, pos: &mut Position, v: &mut impl Visit, depth: u32) {
        let body = text.trim_start_matches('\u{feff}').trim_ascii();
        if body.starts_with(['{', '[']) {
            self.json(body, pos, v, depth)
        } else {
            self.bytes(text.as_bytes(), pos, v, depth)
        }
    }

    fn json(&self, text: &str, pos: &mut Position, v: &mut impl Visit, depth: u32) {
        if let Some(why) = self.too_nested(depth) {
            return v.dead_letter(DeadLetter::new(pos, text.as_bytes(), why));
        }
        if text.starts_with('[') {
            // A bare array of records, as tools (and Stratus Red Team) save them.
            return match serde_json::from_str::<Vec<&RawValue>>(text) {
                Ok(items) => self.each(items.iter().map(|r| r.get()), "[]", pos, v, depth),
                Err(e) => {
                    v.dead_letter(DeadLetter::new(pos, text.as_bytes(), format!("JSON: {e}")))
                }
            };
        }
        // A CloudTrail log file: each record is parsed once, below (see `split`).
        if let Some(records) = split::records(text) {
            return self.each(records, "Records", pos, v, depth);
        }
        // CloudWatch Logs messages are decoded as the parser reaches them, straight from its
        // buffer (see `object::ObjectSeed`).
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = {
            let mut sink = |message: &str, i: usize| {
                pos.with(Step::Index("logEvents", i), |pos| {
                    self.text(message, pos, v, depth + 1)
                })
            };
            object::ObjectSeed {
                sink: Some(&mut sink),
            }
            .deserialize(&mut de)
        };
        let mut obj = match parsed {
            Ok(obj) => obj,
            Err(e) => {
                return v.dead_letter(DeadLetter::new(pos, text.as_bytes(), format!("JSON: {e}")))
            }
        };
        if de.end().is_ok() {
            obj.event.raw = text;
            return self.object(text, obj, pos, v, depth);
        }
        // Several objects back to back (Firehose writes them so to S3): the first is parsed
        // already; split off the others and read each.
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
        let mut start = 0;
        for n in 0.. {
            let item = values.next();
            let end = values.byte_offset().min(text.len());
            match item {
                None => break,
                Some(Ok(raw)) if n == 0 => {
                    obj.event.raw = raw.get();
                    self.object(raw.get(), std::mem::take(&mut obj), pos, v, depth);
                }
                Some(Ok(raw)) => pos.with(Step::Index("values", n), |pos| {
                    self.json(raw.get(), pos, v, depth)
                }),
                Some(Err(e)) => {
                    let rest = text.get(start..).unwrap_or(text);
                    v.dead_letter(DeadLetter::new(pos, rest.as_bytes(), format!("JSON: {e}")));
                    break;
                }
            }
            start = end;
        }
    }

    /// Acts on one parsed object: an envelope to open, or a CloudTrail event.
    fn object(
        &self,
        text: &str,
        obj: object::Object<'_>,
        pos: &mut Position,
        v: &mut impl Visit,
        depth: u32,
    ) {
        let (event, env) = (obj.event, obj.envelope);
        if let Some(items) = &env.records_upper {
            return self.each(items.iter().map(|r| r.get()), "Records", pos, v, depth);
        }
        if let Some(items) = &env.records_lower {
            return self.each(items.iter().map(|r| r.get()), "records", pos, v, depth);
        }
        if let Some(items) = &env.lookup_events {
            for (i, e) in items.iter().enumerate() {
                pos.with(Step::Index("Events", i), |pos| match &e.cloudtrail_event {
                    Some(text) => pos.with(Step::Field("CloudTrailEvent"), |pos| {
                        self.json(text, pos, v, depth + 1)
                    }),
                    None => v.dead_letter(DeadLetter::new(
                        pos,
                        &[],
                        "lookup-events entry without a CloudTrailEvent string",
                    )),
                });
            }
            return;
        }
        if let Some(kind) = env.message_type.as_deref() {
            return match kind {
                "CONTROL_MESSAGE" => v.control_message(pos),
                // Already decoded while parsing, unless `logEvents` came before `messageType`.
                "DATA_MESSAGE" => {
                    for (i, e) in env.log_events.iter().flatten().enumerate() {
                        pos.with(Step::Index("logEvents", i), |pos| {
                            self.text(&e.message, pos, v, depth + 1)
                        });
                    }
                }
                other => {
                    let why = format!("unknown CloudWatch Logs messageType {other:?}");
                    v.dead_letter(DeadLetter::new(pos, text.as_bytes(), why))
                }
            };
        }
        if let Some(kind) = env.detail_type.as_deref() {
            return match (is_cloudtrail_detail_type(kind), env.detail) {
                (false, _) => v.skipped(Skip::NotCloudTrail, pos),
                (true, Some(detail)) => pos.with(Step::Detail, |pos| {
                    self.json(detail.get(), pos, v, depth + 1)
                }),
                (true, None) => {
                    let why = format!("EventBridge {kind:?} event without `detail`");
                    v.dead_letter(DeadLetter::new(pos, text.as_bytes(), why))
                }
            };
        }
        if let Some(b64) = env.data.as_deref() {
            let outer_seq = match env.sequence_number {
                Some(seq) => pos.sequence_number.replace(seq.into_owned()),
                None => pos.sequence_number.clone(),
            };
            v.transport_record(pos);
            match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(bytes) => pos.with(Step::Base64, |pos| self.bytes(&bytes, pos, v, depth + 1)),
                Err(e) => v.dead_letter(DeadLetter::new(
                    pos,
                    text.as_bytes(),
                    format!("base64: {e}"),
                )),
            }
            pos.sequence_number = outer_seq;
            return;
        }
        if env.digest {
            return v.skipped(Skip::Digest, pos);
        }
        if !event.looks_like_cloudtrail() {
            let why = "unknown envelope: a JSON object with neither CloudTrail fields \
                       (eventID, eventVersion, eventName+eventSource) nor a known envelope key";
            return v.dead_letter(DeadLetter::new(pos, text.as_bytes(), why.to_string()));
        }
        if text.len() > self.limits.max_event_bytes {
            let why = format!(
                "record of {} bytes exceeds max_event_bytes ({})",
                text.len(),
                self.limits.max_event_bytes
            );
            return v.dead_letter(DeadLetter::new(pos, text.as_bytes(), why));
        }
        if let Some(depth) = too_deep(text, self.limits.max_json_depth) {
            let why = format!(
                "JSON nested {depth} levels deep, more than max_json_depth ({})",
                self.limits.max_json_depth
            );
            return v.dead_letter(DeadLetter::new(pos, text.as_bytes(), why));
        }
        v.event(event, pos)
    }

    fn each<'t>(
        &self,
        items: impl IntoIterator<Item = &'t str>,
        field: &'static str,
        pos: &mut Position,
        v: &mut impl Visit,
        depth: u32,
    ) {
        for (i, item) in items.into_iter().enumerate() {
            pos.with(Step::Index(field, i), |pos| {
                self.json(item, pos, v, depth + 1)
            });
        }
    }
}

/// The nesting depth of `text` when it exceeds `limit`. Cheap for normal records: the exact
/// scan runs only when there are more brackets than the limit.
fn too_deep(text: &str, limit: usize) -> Option<usize> {
    let b = text.as_bytes();
    if memchr::memchr2_iter(b'[', b'{', b).take(limit + 1).count() <= limit {
        return None;
    }
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &c in b {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    (max > limit).then_some(max)
}

#[cfg(test)]
mod tests;
