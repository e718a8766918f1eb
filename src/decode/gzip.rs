//! Capped gzip decompression: a gzip bomb is an error, not an OOM.
//!
//! Whole-buffer payloads (a CloudWatch Logs envelope is one gzip member) go through libdeflate,
//! about twice as fast as a streaming inflater, into a buffer sized from the gzip trailer and
//! never larger than the cap. Anything else (several members, a trailer that lies, corrupt
//! data) takes the streaming path, which enforces the same cap.

use std::cell::{Cell, RefCell};
use std::io::Read;

use flate2::read::MultiGzDecoder;

pub const MAGIC: [u8; 2] = [0x1f, 0x8b];

pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GzipError {
    #[error("gzip: decompressed size exceeds {limit} bytes (decode.max_decompressed_bytes)")]
    TooLarge { limit: usize },
    #[error("gzip: {0}")]
    Corrupt(String),
}

use super::inflate::{crc32, Inflater};

/// A streaming gzip reader (every member) whose output is capped at `limit` bytes: past it,
/// reading fails with [`GzipError::TooLarge`]. For whole input files, which are never held in
/// memory at once, so a bomb costs at most the cap in whatever buffers its output.
pub fn reader<R: std::io::Read>(raw: R, limit: usize) -> impl std::io::Read {
    // The capped reader itself: every read is counted against the cap.
    #[allow(clippy::disallowed_methods)]
    let inner = MultiGzDecoder::new(raw);
    Capped {
        inner,
        left: limit as u64,
        limit,
    }
}

struct Capped<R> {
    inner: R,
    left: u64,
    limit: usize,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (buf.len() as u64).min(self.left.saturating_add(1)) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(GzipError::TooLarge {
                limit: self.limit,
            }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

thread_local! {
    static INFLATER: RefCell<Option<Inflater>> = RefCell::new(Inflater::new());
}

/// Length of the gzip member header (RFC 1952: 10 bytes, then the optional fields).
fn header_len(data: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if data.get(..3)? != [0x1f, 0x8b, 8] {
        return None;
    }
    let flags = *data.get(3)?;
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let xlen = u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?) as usize;
        at += 2 + xlen;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            at += memchr::memchr(0, data.get(at..)?)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    (at <= data.len()).then_some(at)
}

/// One gzip member whose trailer's size fits the cap, inflated by libdeflate. The DEFLATE
/// stream must end exactly at the trailer, and the output must match the trailer's CRC-32
/// and size; otherwise (several members, a lying trailer, corruption) `None`.
fn one_member(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    let body_start = header_len(data)?;
    let body_end = data.len().checked_sub(8)?;
    let body = data.get(body_start..body_end)?;
    let trailer = data.get(body_end..)?;
    let crc = u32::from_le_bytes(trailer.get(..4)?.try_into().ok()?);
    let size = u32::from_le_bytes(trailer.get(4..)?.try_into().ok()?) as usize;
    if size > limit {
        return None;
    }
    let mut out = SPARE.with(Cell::take);
    // Only what the last member on this thread did not reach is zeroed: the inflater
    // writes every byte of `out` or the member is refused (`n == size`).
    out.resize(size, 0);
    let n = INFLATER.with(|i| i.borrow_mut().as_mut()?.inflate_exact(body, &mut out));
    match n {
        Some(n) if n == size && crc32(&out) == crc => Some(out),
        _ => {
            give_back(out);
            None
        }
    }
}

thread_local! {
    /// A buffer done with, for the next member inflated on this thread.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Buffers up to this size are kept for the next member; a bigger one is freed.
const KEEP: usize = 4 << 20;

/// Hands a buffer [`gunzip`] returned back once its bytes are no longer needed, so the next
/// member on this thread is inflated into it: a log file a unit, the same few hundred KiB
/// allocated, faulted in and zeroed for each without it.
pub fn give_back(done: Vec<u8>) {
    if done.capacity() <= KEEP {
        SPARE.with(|s| {
            let kept = s.take();
            s.set(if kept.capacity() > done.capacity() {
                kept
            } else {
                done
            });
        });
    }
}

/// Decompresses all gzip members of `data`, failing once the output would pass `limit` bytes.
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    if let Some(out) = one_member(data, limit) {
        return Ok(out);
    }
    let mut out = Vec::with_capacity(data.len().saturating_mul(8).min(limit));
    // Capped: `take(limit + 1)` tells a stream at the cap from one past it.
    #[allow(clippy::disallowed_methods)]
    let mut reader = MultiGzDecoder::new(data).take(limit as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| GzipError::Corrupt(e.to_string()))?;
    if out.len() > limit {
        return Err(GzipError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    pub fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trips_and_concatenated_members() {
        let mut two = gz(b"hello ");
        two.extend(gz(b"world"));
        assert_eq!(gunzip(&two, 100).unwrap(), b"hello world");
    }

    #[test]
    fn identical_members_are_both_read() {
        let mut two = gz(b"same");
        two.extend(gz(b"same"));
        assert_eq!(gunzip(&two, 100).unwrap(), b"samesame");
    }

    #[test]
    fn optional_header_fields_take_the_fast_path_correctly() {
        let mut e = flate2::GzBuilder::new()
            .filename("x.json")
            .comment("c")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), Compression::default());
        e.write_all(b"payload with a named header").unwrap();
        let g = e.finish().unwrap();
        assert!(header_len(&g).unwrap() > 10);
        assert_eq!(
            one_member(&g, 1000).unwrap(),
            b"payload with a named header"
        );
        assert_eq!(gunzip(&g, 1000).unwrap(), b"payload with a named header");
    }

    #[test]
    fn a_trailer_that_lies_is_still_capped_and_correct() {
        let mut g = gz(&vec![b'a'; 100_000]);
        let n = g.len();
        // Claim 10 bytes: the fast path fails (no room) and the streaming path answers.
        g[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert!(matches!(gunzip(&g, 1 << 20), Err(GzipError::Corrupt(_))));
        assert_eq!(gunzip(&g, 1000), Err(GzipError::TooLarge { limit: 1000 }));
        // Claim more than the data: libdeflate's output is short, streaming finds the bad size.
        g[n - 4..].copy_from_slice(&200_000u32.to_le_bytes());
        assert!(gunzip(&g, 1 << 20).is_err());
    }

    #[test]
    fn a_buffer_given_back_is_inflated_into_again_and_nothing_of_it_shows() {
        // Each test runs on a thread of its own: the spare starts empty.
        let big: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let first = gunzip(&gz(&big), 1 << 20).unwrap();
        assert_eq!(first, big);
        let at = first.as_ptr();
        give_back(first);
        // A smaller member lands in the same allocation, with none of the bigger one's bytes.
        let small = gunzip(&gz(b"small"), 1 << 20).unwrap();
        assert_eq!((small.as_slice(), small.as_ptr()), (&b"small"[..], at));
        give_back(small);
        // So does a corrupt one, refused as before, and the buffer stays for the next.
        let mut bad = gz(&big);
        bad[20] ^= 0xff;
        assert!(gunzip(&bad, 1 << 20).is_err());
        let again = gunzip(&gz(&big[..40_000]), 1 << 20).unwrap();
        assert_eq!((&again[..], again.as_ptr()), (&big[..40_000], at));
        give_back(again);
        // One over KEEP is not kept.
        let spare = || {
            SPARE.with(|s| {
                let v = s.take();
                let c = v.capacity();
                s.set(v);
                c
            })
        };
        assert!(spare() >= 50_000);
        let huge = gunzip(&gz(&vec![7u8; KEEP + 1]), KEEP + 1).unwrap();
        assert_eq!(huge.len(), KEEP + 1);
        give_back(huge);
        assert_eq!(spare(), 0, "a buffer over KEEP was kept");
    }

    #[test]
    fn caps_output() {
        let bomb = gz(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 5000);
        assert_eq!(
            gunzip(&bomb, 1000),
            Err(GzipError::TooLarge { limit: 1000 })
        );
        assert_eq!(gunzip(&bomb, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn corrupt_and_truncated_are_errors() {
        let good = gz(b"some text that is long enough to matter");
        let truncated = &good[..good.len() - 10];
        assert!(matches!(
            gunzip(truncated, 1000),
            Err(GzipError::Corrupt(_))
        ));
        let mut flipped = good.clone();
        flipped[12] ^= 0xff;
        assert!(gunzip(&flipped, 1000).is_err());
        assert!(matches!(gunzip(&MAGIC, 1000), Err(GzipError::Corrupt(_))));
    }

    #[test]
    fn the_streaming_reader_stops_at_the_cap_across_members() {
        use std::io::Read;
        let member = {
            let mut e = GzEncoder::new(Vec::new(), Compression::default());
            e.write_all(&[b'x'; 4000]).unwrap();
            e.finish().unwrap()
        };
        let two = [member.clone(), member].concat();
        let mut out = Vec::new();
        reader(&two[..], 8000).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 8000, "exactly the cap is fine");
        let err = reader(&two[..], 7999)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("exceeds 7999 bytes (decode.max_decompressed_bytes)"),
            "{err}"
        );
    }
}
