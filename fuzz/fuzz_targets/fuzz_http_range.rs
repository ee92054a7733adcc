#![no_main]
//! The `Range` header of `GET /vod/{pb}/…` against an object size: never panics, and a range it
//! accepts lies inside the object (the handler computes `end - start + 1` and reads
//! `start..end + 1` from storage).
//!
//! Input: the object size (8 bytes, big-endian; a short input means size 0), then the value.
use http::header::{HeaderMap, HeaderValue, RANGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (size, value) = match data.split_first_chunk::<8>() {
        Some((n, rest)) => (u64::from_be_bytes(*n), rest),
        None => (0, data),
    };
    let mut h = HeaderMap::new();
    // The HTTP server refuses bytes no header value may hold before any handler runs.
    let Ok(v) = HeaderValue::from_bytes(value) else {
        return;
    };
    h.insert(RANGE, v);
    if let Ok(Some((start, end))) = api::assets::parse_range(&h, size) {
        assert!(start <= end && end < size, "{start}-{end} of {size}");
    }
});
