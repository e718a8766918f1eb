//! Capped gzip decompression: a gzip bomb is an error, not an OOM.

use std::io::Read;

use flate2::read::MultiGzDecoder;

pub const MAGIC: [u8; 2] = [0x1f, 0x8b];

pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GzipError {
    #[error("gzip: decompressed size exceeds {limit} bytes (decompression cap)")]
    TooLarge { limit: usize },
    #[error("gzip: {0}")]
    Corrupt(String),
}

/// Decompresses all gzip members of `data`, failing once the output would pass `limit` bytes.
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(8).min(limit));
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
}
