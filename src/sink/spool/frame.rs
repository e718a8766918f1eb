//! The spool's record framing. A record is
//! `magic "\xA5TW1" | crc32(len ‖ ts ‖ payload): u32 LE | len: u32 LE | ts_millis: u64 LE | payload`.
//! The magic lets a reader find the next record after damage; the checksum covers the length,
//! so a corrupt length is never trusted. Segments written before the magic (version 0:
//! `len | crc32(ts ‖ payload) | ts | payload`) are still read, never appended to.

use crate::decode::inflate::crc32;

pub const MAGIC: [u8; 4] = *b"\xA5TW1";
pub const HEADER: usize = 20;
const LEGACY_HEADER: usize = 16;
/// A larger length is corruption, not an alert.
pub const MAX_RECORD: u32 = 16 << 20;

/// One readable record of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub offset: u64,
    /// Where the payload starts, from `offset`.
    pub header: u8,
    pub len: u32,
    pub ts_millis: u64,
}

impl Frame {
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.header) + u64::from(self.len)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Appends one framed record to `buf`.
pub fn encode(buf: &mut Vec<u8>, payload: &[u8], ts_millis: u64) -> Option<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD)?;
    let start = buf.len();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&ts_millis.to_le_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32(&buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Some(())
}

/// The record at `off`, or why there is none.
pub fn parse_at(bytes: &[u8], off: usize, legacy: bool) -> Result<Frame, &'static str> {
    let header = if legacy { LEGACY_HEADER } else { HEADER };
    let rest = bytes.len().saturating_sub(off);
    if rest < header {
        return Err("truncated record header");
    }
    let (len, crc, ts, covered_from) = if legacy {
        (
            u32_at(bytes, off),
            u32_at(bytes, off + 4),
            u64_at(bytes, off + 8),
            off + 8,
        )
    } else {
        if bytes[off..off + 4] != MAGIC {
            return Err("no record marker");
        }
        (
            u32_at(bytes, off + 8),
            u32_at(bytes, off + 4),
            u64_at(bytes, off + 12),
            off + 8,
        )
    };
    if len > MAX_RECORD {
        return Err("implausible record length");
    }
    let end = off + header + len as usize;
    if end > bytes.len() {
        return Err("truncated record");
    }
    if crc32(&bytes[covered_from..end]) != crc {
        return Err("checksum mismatch");
    }
    Ok(Frame {
        offset: off as u64,
        header: header as u8,
        len,
        ts_millis: ts,
    })
}

/// The offset of the next readable record at or after `from`, if any (resynchronising on
/// the magic; a candidate counts only when its checksum holds).
pub fn next_good(bytes: &[u8], from: usize) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(&MAGIC);
    let mut at = from;
    while at < bytes.len() {
        let hit = at + finder.find(&bytes[at..])?;
        if parse_at(bytes, hit, false).is_ok() {
            return Some(hit);
        }
        at = hit + 1;
    }
    None
}

/// Whether a segment is in the version-0 format: it does not start with the magic but does
/// start with a readable version-0 record.
pub fn is_legacy(bytes: &[u8]) -> bool {
    bytes.len() >= LEGACY_HEADER && bytes[..4] != MAGIC && parse_at(bytes, 0, true).is_ok()
}
