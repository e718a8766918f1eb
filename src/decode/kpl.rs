//! KPL (Kinesis Producer Library) aggregated records.
//!
//! The data of an aggregated Kinesis record is laid out as
//!
//! ```text
//! 0..4      magic F3 89 9A C2
//! 4..N      protobuf (proto2) AggregatedRecord
//! N..N+16   MD5 digest of the protobuf bytes
//! ```
//!
//! As in the KCL, data that is too short, lacks the magic or fails the MD5
//! check is not an aggregate: [`deaggregate`] returns `Ok(None)` and the caller
//! treats it as a plain record. Once the MD5 matches, a protobuf that cannot be
//! read is an error. The protobuf reader is hand-written, never panics on any
//! input, and borrows keys and payloads from the input. Tags and unknown fields
//! are skipped.

use md5::{Digest, Md5};
use std::collections::HashMap;

pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

const DIGEST_LEN: usize = 16;
const MAX_VARINT_LEN: usize = 10;

// AggregatedRecord fields.
const AGG_PARTITION_KEY_TABLE: u64 = 1;
const AGG_EXPLICIT_HASH_KEY_TABLE: u64 = 2;
const AGG_RECORDS: u64 = 3;
// Record fields.
const REC_PARTITION_KEY_INDEX: u64 = 1;
const REC_EXPLICIT_HASH_KEY_INDEX: u64 = 2;
const REC_DATA: u64 = 3;
const REC_TAGS: u64 = 4;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// One user record inside an aggregate. `data` borrows from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRecord<'a> {
    pub partition_key: &'a str,
    pub explicit_hash_key: Option<&'a str>,
    pub data: &'a [u8],
}

/// Why an MD5-valid aggregate could not be read. Byte offsets are relative to
/// the start of the Kinesis record data (the magic is bytes 0..4).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KplError {
    #[error("KPL aggregate: truncated varint at byte {offset}")]
    TruncatedVarint { offset: usize },
    #[error("KPL aggregate: varint at byte {offset} is longer than 10 bytes or overflows 64 bits")]
    VarintOverflow { offset: usize },
    #[error("KPL aggregate: {len} bytes needed at byte {offset} but only {remaining} remain")]
    LengthPastEnd {
        offset: usize,
        len: u64,
        remaining: usize,
    },
    #[error("KPL aggregate: invalid field number 0 at byte {offset}")]
    InvalidFieldNumber { offset: usize },
    #[error("KPL aggregate: unsupported wire type {wire_type} for field {field} at byte {offset}")]
    UnsupportedWireType {
        field: u64,
        wire_type: u8,
        offset: usize,
    },
    #[error("KPL aggregate: field {field} has wire type {found}, expected {expected}")]
    WrongWireType { field: u64, found: u8, expected: u8 },
    #[error("KPL aggregate: record at byte {offset} is missing required field {field}")]
    MissingField { offset: usize, field: &'static str },
    #[error("KPL aggregate: partition_key_index {index} out of range (table has {table_len})")]
    PartitionKeyIndexOutOfRange { index: u64, table_len: usize },
    #[error("KPL aggregate: explicit_hash_key_index {index} out of range (table has {table_len})")]
    ExplicitHashKeyIndexOutOfRange { index: u64, table_len: usize },
    #[error("KPL aggregate: invalid UTF-8 in {what}")]
    InvalidUtf8 { what: &'static str },
}

/// Splits KPL aggregated record data into its user records.
///
/// `Ok(None)`: not an aggregate (pass through as a plain record).
/// `Ok(Some(records))`: the sub-records in order (sub-sequence number = index).
/// `Err`: the MD5 matched but the protobuf cannot be read.
pub fn deaggregate(data: &[u8]) -> Result<Option<Vec<SubRecord<'_>>>, KplError> {
    let Some(rest) = data.strip_prefix(&MAGIC[..]) else {
        return Ok(None);
    };
    if rest.len() <= DIGEST_LEN {
        return Ok(None);
    }
    let (message, digest) = rest.split_at(rest.len() - DIGEST_LEN);
    if Md5::digest(message).as_slice() != digest {
        return Ok(None);
    }
    parse_aggregate(Reader::new(message, MAGIC.len())).map(Some)
}

/// Builds an aggregate (magic + protobuf + MD5) from `(partition_key, data)`
/// pairs, deduplicating partition keys into the key table.
///
/// Note: an empty `records` slice yields data that [`deaggregate`] treats as
/// not an aggregate (nothing between the magic and the digest), as in the KCL.
pub fn aggregate(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut key_table: Vec<&str> = Vec::new();
    let mut key_index: HashMap<&str, u64> = HashMap::new();
    let mut record_fields = Vec::new();
    let mut record = Vec::new();
    for &(key, data) in records {
        let index = *key_index.entry(key).or_insert_with(|| {
            key_table.push(key);
            (key_table.len() - 1) as u64
        });
        record.clear();
        put_varint_field(&mut record, REC_PARTITION_KEY_INDEX, index);
        put_bytes_field(&mut record, REC_DATA, data);
        put_bytes_field(&mut record_fields, AGG_RECORDS, &record);
    }
    let mut message = Vec::new();
    for key in &key_table {
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, key.as_bytes());
    }
    message.extend_from_slice(&record_fields);

    let mut out = Vec::with_capacity(MAGIC.len() + message.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&message);
    out.extend_from_slice(&Md5::digest(&message));
    out
}

fn parse_aggregate(mut reader: Reader<'_>) -> Result<Vec<SubRecord<'_>>, KplError> {
    // Tables may follow the records on the wire, so resolve indices at the end.
    let mut partition_keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw_records = Vec::new();
    while let Some((field, value)) = reader.field()? {
        match field {
            AGG_PARTITION_KEY_TABLE => {
                partition_keys.push(utf8(value.bytes(field)?.1, "partition key")?);
            }
            AGG_EXPLICIT_HASH_KEY_TABLE => {
                hash_keys.push(utf8(value.bytes(field)?.1, "explicit hash key")?);
            }
            AGG_RECORDS => raw_records.push(value.bytes(field)?),
            _ => {} // unknown field, already skipped
        }
    }
    let mut records = Vec::with_capacity(raw_records.len());
    for (offset, bytes) in raw_records {
        let reader = Reader::new(bytes, offset);
        records.push(parse_record(reader, &partition_keys, &hash_keys)?);
    }
    Ok(records)
}

fn parse_record<'a>(
    mut reader: Reader<'a>,
    partition_keys: &[&'a str],
    hash_keys: &[&'a str],
) -> Result<SubRecord<'a>, KplError> {
    let offset = reader.offset();
    let (mut key_index, mut hash_key_index, mut data) = (None, None, None);
    while let Some((field, value)) = reader.field()? {
        match field {
            REC_PARTITION_KEY_INDEX => key_index = Some(value.varint(field)?),
            REC_EXPLICIT_HASH_KEY_INDEX => hash_key_index = Some(value.varint(field)?),
            REC_DATA => data = Some(value.bytes(field)?.1),
            REC_TAGS => {
                value.bytes(field)?; // tags are not used
            }
            _ => {} // unknown field, already skipped
        }
    }
    let missing = |field| KplError::MissingField { offset, field };
    let key_index = key_index.ok_or_else(|| missing("partition_key_index"))?;
    let data = data.ok_or_else(|| missing("data"))?;
    let partition_key =
        lookup(partition_keys, key_index).ok_or(KplError::PartitionKeyIndexOutOfRange {
            index: key_index,
            table_len: partition_keys.len(),
        })?;
    let explicit_hash_key = match hash_key_index {
        None => None,
        Some(index) => Some(lookup(hash_keys, index).ok_or(
            KplError::ExplicitHashKeyIndexOutOfRange {
                index,
                table_len: hash_keys.len(),
            },
        )?),
    };
    Ok(SubRecord {
        partition_key,
        explicit_hash_key,
        data,
    })
}

fn lookup<'a>(table: &[&'a str], index: u64) -> Option<&'a str> {
    let index = usize::try_from(index).ok()?;
    table.get(index).copied()
}

fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, KplError> {
    std::str::from_utf8(bytes).map_err(|_| KplError::InvalidUtf8 { what })
}

/// A decoded field value; fixed-width values are skipped, keeping the wire type.
enum Value<'a> {
    Varint(u64),
    Fixed(u8),
    /// Length-delimited bytes and their offset in the record data.
    Bytes(usize, &'a [u8]),
}

impl<'a> Value<'a> {
    fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => WIRE_VARINT,
            Value::Fixed(wire_type) => *wire_type,
            Value::Bytes(..) => WIRE_LEN,
        }
    }

    fn wrong_type(&self, field: u64, expected: u8) -> KplError {
        KplError::WrongWireType {
            field,
            found: self.wire_type(),
            expected,
        }
    }

    fn varint(self, field: u64) -> Result<u64, KplError> {
        match self {
            Value::Varint(value) => Ok(value),
            other => Err(other.wrong_type(field, WIRE_VARINT)),
        }
    }

    fn bytes(self, field: u64) -> Result<(usize, &'a [u8]), KplError> {
        match self {
            Value::Bytes(offset, bytes) => Ok((offset, bytes)),
            other => Err(other.wrong_type(field, WIRE_LEN)),
        }
    }
}

/// Protobuf reader over `buf`, which starts at byte `base` of the record data.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn varint(&mut self) -> Result<u64, KplError> {
        let offset = self.offset();
        let rest = self.rest();
        let mut value = 0u64;
        for (i, &byte) in rest.iter().take(MAX_VARINT_LEN).enumerate() {
            let bits = u64::from(byte & 0x7f);
            if i == MAX_VARINT_LEN - 1 && bits > 1 {
                return Err(KplError::VarintOverflow { offset });
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(value);
            }
        }
        if rest.len() >= MAX_VARINT_LEN {
            Err(KplError::VarintOverflow { offset })
        } else {
            Err(KplError::TruncatedVarint { offset })
        }
    }

    /// Takes `len` bytes, returning them with their offset in the record data.
    fn take(&mut self, len: u64) -> Result<(usize, &'a [u8]), KplError> {
        let offset = self.offset();
        let rest = self.rest();
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|len| rest.get(..len))
            .ok_or(KplError::LengthPastEnd {
                offset,
                len,
                remaining: rest.len(),
            })?;
        self.pos += bytes.len();
        Ok((offset, bytes))
    }

    /// Reads the next field number and value; `None` at the end of input.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, KplError> {
        if self.rest().is_empty() {
            return Ok(None);
        }
        let offset = self.offset();
        let key = self.varint()?;
        let field = key >> 3;
        let wire_type = (key & 7) as u8;
        if field == 0 {
            return Err(KplError::InvalidFieldNumber { offset });
        }
        let value = match wire_type {
            WIRE_VARINT => Value::Varint(self.varint()?),
            WIRE_FIXED64 => {
                self.take(8)?;
                Value::Fixed(wire_type)
            }
            WIRE_LEN => {
                let len = self.varint()?;
                let (offset, bytes) = self.take(len)?;
                Value::Bytes(offset, bytes)
            }
            WIRE_FIXED32 => {
                self.take(4)?;
                Value::Fixed(wire_type)
            }
            _ => {
                return Err(KplError::UnsupportedWireType {
                    field,
                    wire_type,
                    offset,
                })
            }
        };
        Ok(Some((field, value)))
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire_type: u8) {
    put_varint(out, (field << 3) | u64::from(wire_type));
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_key(out, field, WIRE_VARINT);
    put_varint(out, value);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps raw protobuf bytes in magic + MD5, making a checksum-valid aggregate.
    fn wrap(message: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(message);
        out.extend_from_slice(&Md5::digest(message));
        out
    }

    fn record(key_index: u64, data: &[u8]) -> Vec<u8> {
        let mut rec = Vec::new();
        put_varint_field(&mut rec, REC_PARTITION_KEY_INDEX, key_index);
        put_bytes_field(&mut rec, REC_DATA, data);
        rec
    }

    fn sub<'a>(key: &'a str, data: &'a [u8]) -> SubRecord<'a> {
        SubRecord {
            partition_key: key,
            explicit_hash_key: None,
            data,
        }
    }

    #[test]
    fn round_trip() {
        let binary: Vec<u8> = (0..=255).collect();
        let input: Vec<(&str, &[u8])> = vec![
            ("alpha", b"{\"eventName\":\"RunInstances\"}"),
            ("beta", b""),
            ("alpha", &binary),
            ("", b"empty key"),
            ("beta", &[0xF3, 0x89, 0x9A, 0xC2, 0x00]),
        ];
        let agg = aggregate(&input);
        assert_eq!(agg.get(..4), Some(&MAGIC[..]));
        let records = deaggregate(&agg).unwrap().unwrap();
        let expected: Vec<_> = input.iter().map(|&(k, d)| sub(k, d)).collect();
        assert_eq!(records, expected);
    }

    #[test]
    fn partition_keys_are_deduplicated() {
        let agg = aggregate(&[("k", b"1"), ("k", b"2"), ("j", b"3"), ("k", b"4")]);
        let mut expected = Vec::new();
        put_bytes_field(&mut expected, AGG_PARTITION_KEY_TABLE, b"k");
        put_bytes_field(&mut expected, AGG_PARTITION_KEY_TABLE, b"j");
        for (index, data) in [(0, b"1"), (0, b"2"), (1, b"3"), (0, b"4")] {
            put_bytes_field(&mut expected, AGG_RECORDS, &record(index, data));
        }
        assert_eq!(agg, wrap(&expected));
    }

    #[test]
    fn large_record_uses_multi_byte_lengths() {
        let big = vec![0xAB; 300_000];
        let agg = aggregate(&[("key", &big)]);
        assert_eq!(deaggregate(&agg), Ok(Some(vec![sub("key", &big)])));
    }

    #[test]
    fn not_an_aggregate() {
        let agg = aggregate(&[("k", b"payload")]);
        assert_eq!(deaggregate(b""), Ok(None));
        assert_eq!(deaggregate(&MAGIC[..3]), Ok(None));
        assert_eq!(deaggregate(&MAGIC), Ok(None));
        assert_eq!(deaggregate(b"{\"Records\":[]}"), Ok(None));
        // Magic plus exactly 16 bytes (an MD5 of nothing): still not an aggregate.
        assert_eq!(deaggregate(&aggregate(&[])), Ok(None));
        assert_eq!(deaggregate(&wrap(b"")), Ok(None));

        let mut wrong_magic = agg.clone();
        wrong_magic[0] ^= 1;
        assert_eq!(deaggregate(&wrong_magic), Ok(None));

        for i in MAGIC.len()..agg.len() {
            let mut corrupt = agg.clone();
            corrupt[i] ^= 0x40;
            assert_eq!(deaggregate(&corrupt), Ok(None), "flipped byte {i}");
        }
        assert_eq!(deaggregate(&agg[..agg.len() - 1]), Ok(None));
    }

    #[test]
    fn truncated_varint() {
        // Key byte 0x08 (field 1, varint) then a varint that never ends.
        let data = wrap(&[0x08, 0x80, 0x80]);
        assert_eq!(
            deaggregate(&data),
            Err(KplError::TruncatedVarint { offset: 5 })
        );
        assert_eq!(
            deaggregate(&data).unwrap_err().to_string(),
            "KPL aggregate: truncated varint at byte 5"
        );
    }

    #[test]
    fn overlong_varint() {
        let mut message = vec![0x08];
        message.extend_from_slice(&[0xFF; 11]);
        assert_eq!(
            deaggregate(&wrap(&message)),
            Err(KplError::VarintOverflow { offset: 5 })
        );
        // Ten bytes whose last carries more than the 64th bit.
        let mut message = vec![0x08];
        message.extend_from_slice(&[0xFF; 9]);
        message.push(0x02);
        assert_eq!(
            deaggregate(&wrap(&message)),
            Err(KplError::VarintOverflow { offset: 5 })
        );
        // u64::MAX itself is fine (an unknown varint field, skipped).
        let mut message = Vec::new();
        put_varint_field(&mut message, 9, u64::MAX);
        assert_eq!(message.len(), 11);
        assert_eq!(deaggregate(&wrap(&message)), Ok(Some(vec![])));
    }

    #[test]
    fn length_past_end() {
        // Field 1 (length-delimited) claims 10 bytes but only 3 follow.
        let data = wrap(&[0x0A, 0x0A, b'a', b'b', b'c']);
        assert_eq!(
            deaggregate(&data),
            Err(KplError::LengthPastEnd {
                offset: 6,
                len: 10,
                remaining: 3
            })
        );
        // A length that does not fit in usize or anywhere near the input.
        let mut message = vec![0x0A];
        put_varint(&mut message, u64::MAX);
        assert!(matches!(
            deaggregate(&wrap(&message)),
            Err(KplError::LengthPastEnd { len: u64::MAX, .. })
        ));
        // Truncated fixed64 inside a record.
        let mut rec = record(0, b"x");
        rec.extend_from_slice(&[0x29, 1, 2, 3]); // field 5, wire type 1
        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"k");
        put_bytes_field(&mut message, AGG_RECORDS, &rec);
        assert!(matches!(
            deaggregate(&wrap(&message)),
            Err(KplError::LengthPastEnd {
                len: 8,
                remaining: 3,
                ..
            })
        ));
    }

    #[test]
    fn index_out_of_range() {
        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"a");
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"b");
        put_bytes_field(&mut message, AGG_RECORDS, &record(5, b"x"));
        let err = deaggregate(&wrap(&message)).unwrap_err();
        assert_eq!(
            err,
            KplError::PartitionKeyIndexOutOfRange {
                index: 5,
                table_len: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "KPL aggregate: partition_key_index 5 out of range (table has 2)"
        );

        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"a");
        put_bytes_field(&mut message, AGG_RECORDS, &record(u64::MAX, b"x"));
        assert!(matches!(
            deaggregate(&wrap(&message)),
            Err(KplError::PartitionKeyIndexOutOfRange { .. })
        ));

        let mut rec = record(0, b"x");
        put_varint_field(&mut rec, REC_EXPLICIT_HASH_KEY_INDEX, 1);
        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"a");
        put_bytes_field(&mut message, AGG_EXPLICIT_HASH_KEY_TABLE, b"42");
        put_bytes_field(&mut message, AGG_RECORDS, &rec);
        assert_eq!(
            deaggregate(&wrap(&message)),
            Err(KplError::ExplicitHashKeyIndexOutOfRange {
                index: 1,
                table_len: 1
            })
        );
    }

    #[test]
    fn wrong_and_unsupported_wire_types() {
        // Field 3 (records) sent as a varint.
        let err = deaggregate(&wrap(&[0x18, 0x01])).unwrap_err();
        assert_eq!(
            err,
            KplError::WrongWireType {
                field: 3,
                found: 0,
                expected: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "KPL aggregate: field 3 has wire type 0, expected 2"
        );
        // partition_key_index sent as length-delimited.
        let mut rec = Vec::new();
        put_bytes_field(&mut rec, REC_PARTITION_KEY_INDEX, b"0");
        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_RECORDS, &rec);
        assert_eq!(
            deaggregate(&wrap(&message)),
            Err(KplError::WrongWireType {
                field: 1,
                found: 2,
                expected: 0
            })
        );
        // Groups (3, 4) and undefined wire types (6, 7) are rejected.
        for wire_type in [3u8, 4, 6, 7] {
            let mut message = vec![0x0A, 0x01, b'k'];
            put_key(&mut message, 7, wire_type);
            message.push(0);
            assert_eq!(
                deaggregate(&wrap(&message)),
                Err(KplError::UnsupportedWireType {
                    field: 7,
                    wire_type,
                    offset: 7
                })
            );
        }
        // Field number 0.
        assert_eq!(
            deaggregate(&wrap(&[0x02, 0x00])),
            Err(KplError::InvalidFieldNumber { offset: 4 })
        );
    }

    #[test]
    fn missing_required_fields() {
        let mut rec = Vec::new();
        put_varint_field(&mut rec, REC_PARTITION_KEY_INDEX, 0);
        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"k");
        put_bytes_field(&mut message, AGG_RECORDS, &rec);
        // Record body starts after magic (4) + table entry (3) + key and length (2).
        let err = deaggregate(&wrap(&message)).unwrap_err();
        assert_eq!(
            err,
            KplError::MissingField {
                offset: 9,
                field: "data"
            }
        );
        assert_eq!(
            err.to_string(),
            "KPL aggregate: record at byte 9 is missing required field data"
        );

        let mut rec = Vec::new();
        put_bytes_field(&mut rec, REC_DATA, b"x");
        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"k");
        put_bytes_field(&mut message, AGG_RECORDS, &rec);
        assert!(matches!(
            deaggregate(&wrap(&message)),
            Err(KplError::MissingField {
                field: "partition_key_index",
                ..
            })
        ));
    }

    #[test]
    fn invalid_utf8() {
        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, &[0xFF, 0xFE]);
        put_bytes_field(&mut message, AGG_RECORDS, &record(0, b"x"));
        let err = deaggregate(&wrap(&message)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "KPL aggregate: invalid UTF-8 in partition key"
        );

        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_EXPLICIT_HASH_KEY_TABLE, &[0xC0]);
        assert_eq!(
            deaggregate(&wrap(&message)),
            Err(KplError::InvalidUtf8 {
                what: "explicit hash key"
            })
        );
    }

    #[test]
    fn unknown_fields_and_tags_are_skipped() {
        let mut tag = Vec::new();
        put_bytes_field(&mut tag, 1, b"tag-key");
        put_bytes_field(&mut tag, 2, b"tag-value");

        let mut rec = Vec::new();
        put_varint_field(&mut rec, 99, 12345); // unknown varint
        put_bytes_field(&mut rec, REC_TAGS, &tag);
        put_bytes_field(&mut rec, REC_DATA, b"payload");
        put_key(&mut rec, 6, WIRE_FIXED32);
        rec.extend_from_slice(&[1, 2, 3, 4]);
        put_varint_field(&mut rec, REC_PARTITION_KEY_INDEX, 1);
        put_key(&mut rec, 7, WIRE_FIXED64);
        rec.extend_from_slice(&[0; 8]);
        put_bytes_field(&mut rec, REC_TAGS, &tag);

        let mut message = Vec::new();
        // Records before the table, with unknown top-level fields around them.
        put_bytes_field(&mut message, 15, b"future field");
        put_bytes_field(&mut message, AGG_RECORDS, &rec);
        put_key(&mut message, 2000, WIRE_FIXED32);
        message.extend_from_slice(&[9; 4]);
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"a");
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"b");
        put_varint_field(&mut message, 4, 7);

        assert_eq!(
            deaggregate(&wrap(&message)),
            Ok(Some(vec![sub("b", b"payload")]))
        );
    }

    #[test]
    fn explicit_hash_keys() {
        let mut with_hash = record(0, b"one");
        put_varint_field(&mut with_hash, REC_EXPLICIT_HASH_KEY_INDEX, 1);
        let mut message = Vec::new();
        put_bytes_field(&mut message, AGG_PARTITION_KEY_TABLE, b"pk");
        put_bytes_field(&mut message, AGG_EXPLICIT_HASH_KEY_TABLE, b"0");
        put_bytes_field(
            &mut message,
            AGG_EXPLICIT_HASH_KEY_TABLE,
            b"340282366920938463463374607431768211455",
        );
        put_bytes_field(&mut message, AGG_RECORDS, &with_hash);
        put_bytes_field(&mut message, AGG_RECORDS, &record(0, b"two"));

        let data = wrap(&message);
        let records = deaggregate(&data).unwrap().unwrap();
        assert_eq!(
            records,
            vec![
                SubRecord {
                    partition_key: "pk",
                    explicit_hash_key: Some("340282366920938463463374607431768211455"),
                    data: b"one",
                },
                sub("pk", b"two"),
            ]
        );
    }

    /// xorshift64: a tiny deterministic PRNG for the fuzz loops.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    #[test]
    fn random_protobuf_never_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let len = 1 + rng.below(96);
            let message: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // MD5 is valid and the message is non-empty, so never "not an aggregate".
            assert_ne!(deaggregate(&wrap(&message)), Ok(None));
        }
    }

    #[test]
    fn mutated_aggregates_never_panic() {
        let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
        let big = vec![7u8; 200];
        let base_records: Vec<(&str, &[u8])> = vec![
            ("a", b"first"),
            ("bb", b""),
            ("a", &big),
            ("c", b"\x00\xff"),
        ];
        let base = aggregate(&base_records);
        let message = &base[MAGIC.len()..base.len() - DIGEST_LEN];
        let (mut ok, mut err) = (0, 0);
        for _ in 0..5000 {
            let mut mutated = message.to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(mutated.len() as u64);
                match rng.below(3) {
                    0 => mutated[i] = rng.next() as u8,
                    1 => mutated[i] ^= 1 << rng.below(8),
                    _ => mutated.truncate(i.max(1)),
                }
            }
            match deaggregate(&wrap(&mutated)) {
                Ok(Some(_)) => ok += 1,
                Err(e) => {
                    assert!(e.to_string().starts_with("KPL aggregate: "));
                    err += 1;
                }
                Ok(None) => panic!("MD5-valid aggregate reported as plain record"),
            }
        }
        // Both outcomes should be exercised.
        assert!(ok > 0 && err > 0, "ok={ok} err={err}");
    }
}
