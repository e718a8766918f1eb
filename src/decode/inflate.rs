//! A thin safe wrapper over libdeflate (through `libdeflate-sys`): whole-buffer DEFLATE
//! decompression that reports how much input it used, and CRC-32. libdeflater, the safe
//! crate, hides the input count, and without it a second gzip member after the first would be
//! silently ignored.
//!
//! The crate's only `unsafe` (`[lints.rust] unsafe_code = "deny"` elsewhere).
#![allow(unsafe_code)]

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_crc32, libdeflate_decompressor,
    libdeflate_deflate_decompress_ex, libdeflate_free_decompressor,
    libdeflate_result_LIBDEFLATE_SUCCESS,
};

pub struct Inflater(NonNull<libdeflate_decompressor>);

impl Inflater {
    /// `None` when libdeflate cannot allocate its state.
    pub fn new() -> Option<Self> {
        // SAFETY: no arguments; returns an owned pointer or null.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Inflater)
    }

    /// Inflates `input`, which must be exactly one DEFLATE stream, into `out`. Returns the
    /// bytes written, or `None` for bad data, too little room, or input left over.
    pub fn inflate_exact(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        let (mut used_in, mut used_out) = (0usize, 0usize);
        // SAFETY: the decompressor is live and owned by `self` (`&mut` gives exclusive use);
        // input and output pointers and lengths come from live slices; libdeflate reads at
        // most `input.len()` bytes, writes at most `out.len()` bytes and the two counters.
        let result = unsafe {
            libdeflate_deflate_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut used_in,
                &mut used_out,
            )
        };
        (result == libdeflate_result_LIBDEFLATE_SUCCESS && used_in == input.len())
            .then_some(used_out)
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed exactly once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// CRC-32 (the gzip trailer's checksum).
pub fn crc32(data: &[u8]) -> u32 {
    // SAFETY: pointer and length from a live slice, only read.
    unsafe { libdeflate_crc32(0, data.as_ptr().cast(), data.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflates_exactly_one_stream() {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, b"hello hello hello").unwrap();
        let stream = enc.finish().unwrap();
        let mut inf = Inflater::new().unwrap();
        let mut out = vec![0u8; 64];
        assert_eq!(inf.inflate_exact(&stream, &mut out), Some(17));
        assert_eq!(&out[..17], b"hello hello hello");
        let mut trailing = stream.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(inf.inflate_exact(&trailing, &mut out), None);
        assert_eq!(inf.inflate_exact(&stream, &mut out[..5]), None);
        assert_eq!(inf.inflate_exact(b"\xff\xff\xff", &mut out), None);
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
