//! MoQT draft-18 variable-length integers (`vi64`).
//!
//! This is NOT the QUIC varint. The number of leading 1 bits of the first
//! byte gives the encoded length (1 to 9 bytes); the remaining bits of the
//! first byte after the first 0 bit, followed by the other bytes, hold the
//! value in network byte order. Non-minimal encodings are valid on receipt.

use bytes::{Buf, BufMut};

use crate::coding::{decode_buf, Reader};
use crate::error::DecodeError;

/// Largest value that fits in an encoding of `len` bytes (1..=9).
const fn max_for_len(len: usize) -> u64 {
    if len >= 9 {
        u64::MAX
    } else {
        (1u64 << (7 * len)) - 1
    }
}

/// Number of bytes the minimal encoding of `v` takes (1..=9).
pub fn size(v: u64) -> usize {
    let mut len = 1;
    while len < 9 && v > max_for_len(len) {
        len += 1;
    }
    len
}

/// Number of bytes an encoding takes, given its first byte.
pub fn len_from_first_byte(first: u8) -> usize {
    first.leading_ones() as usize + 1
}

/// Writes `v` with the minimal encoding.
pub fn encode<B: BufMut>(v: u64, buf: &mut B) {
    let len = size(v);
    // `len` is always valid for `v`, so this cannot fail.
    write_len(v, len, buf);
}

/// Writes `v` using exactly `len` bytes (a possibly non-minimal encoding).
/// Returns `false` (and writes nothing) when `v` does not fit in `len`
/// bytes or `len` is not in 1..=9.
pub fn encode_with_len<B: BufMut>(v: u64, len: usize, buf: &mut B) -> bool {
    if !(1..=9).contains(&len) || v > max_for_len(len) {
        return false;
    }
    write_len(v, len, buf);
    true
}

fn write_len<B: BufMut>(v: u64, len: usize, buf: &mut B) {
    if len == 9 {
        buf.put_u8(0xff);
        buf.put_u64(v);
        return;
    }
    let be = v.to_be_bytes();
    let start = 8 - len;
    // `len - 1` leading one bits, then a zero bit.
    let prefix = !(0xffu32 >> (len - 1)) as u8;
    buf.put_u8(be[start] | prefix);
    buf.put_slice(&be[start + 1..]);
}

/// Encodes `v` into a fresh vector (minimal encoding).
pub fn to_vec(v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size(v));
    encode(v, &mut out);
    out
}

/// Decodes one varint from the front of `bytes` without consuming anything.
/// Returns the value and the number of bytes it took.
pub fn peek(bytes: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.varint()?;
    Ok((v, r.position()))
}

/// Decodes one varint from `buf`. On `DecodeError::Short` nothing is consumed.
pub fn decode<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
    decode_buf(buf, |r| r.varint())
}

/// Decodes a varint from an exact byte slice (used by [`Reader`]).
pub(crate) fn decode_slice(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = len_from_first_byte(first);
    if bytes.len() < len {
        return None;
    }
    let v = if len == 9 {
        bytes[1..9]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    } else {
        let mask = (0xffu32 >> len) as u8;
        bytes[1..len]
            .iter()
            .fold(u64::from(first & mask), |acc, b| (acc << 8) | u64::from(*b))
    };
    Some((v, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    /// The example table from the draft's "Variable-Length Integers" section.
    #[test]
    fn spec_examples() {
        let cases: &[(&str, u64)] = &[
            ("25", 37),
            ("8025", 37),
            ("bbbd", 15_293),
            ("ed7f3e7d", 226_442_877),
            ("faa1a0e403d8", 2_893_212_287_960),
            ("fc8998abc66bc0", 151_288_809_941_952),
            ("fefa318fa8e3ca11", 70_423_237_261_249_041),
            ("ffffffffffffffffff", 18_446_744_073_709_551_615),
        ];
        for (h, v) in cases {
            let bytes = hex(h);
            assert_eq!(peek(&bytes).ok(), Some((*v, bytes.len())), "{h}");
            let mut b = &bytes[..];
            assert_eq!(decode(&mut b).ok(), Some(*v));
            assert!(b.is_empty());
            // Encoding with the same length reproduces the example bytes.
            let mut out = Vec::new();
            assert!(encode_with_len(*v, bytes.len(), &mut out));
            assert_eq!(out, bytes, "{h}");
        }
        // Minimal encodings of the examples.
        assert_eq!(to_vec(37), vec![0x25]);
        assert_eq!(to_vec(15_293), hex("bbbd"));
        assert_eq!(to_vec(u64::MAX), hex("ffffffffffffffffff"));
    }

    #[test]
    fn boundaries_round_trip() {
        for len in 1..=9usize {
            let max = max_for_len(len);
            for v in [max, max.saturating_sub(1), max.wrapping_add(1)] {
                let bytes = to_vec(v);
                assert_eq!(bytes.len(), size(v));
                assert_eq!(peek(&bytes).ok(), Some((v, bytes.len())));
            }
        }
        assert_eq!(size(127), 1);
        assert_eq!(size(128), 2);
        assert_eq!(size(16_383), 2);
        assert_eq!(size(16_384), 3);
        assert_eq!(size((1 << 56) - 1), 8);
        assert_eq!(size(1 << 56), 9);
    }

    #[test]
    fn short_does_not_consume() {
        let bytes = to_vec(1 << 40);
        for cut in 0..bytes.len() {
            let mut b = &bytes[..cut];
            assert!(matches!(decode(&mut b), Err(DecodeError::Short)));
            assert_eq!(b.len(), cut);
        }
    }

    #[test]
    fn encode_with_len_rejects_too_small() {
        let mut out = Vec::new();
        assert!(!encode_with_len(128, 1, &mut out));
        assert!(!encode_with_len(1, 0, &mut out));
        assert!(!encode_with_len(1, 10, &mut out));
        assert!(out.is_empty());
    }
}
