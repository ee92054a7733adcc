#![no_main]
//! RTMP publish target: the `app` of `connect` and the stream name of `publish` (both AMF0
//! strings from the encoder) split into `(lv_id, stream key)`. Never panics; what it returns
//! are single, non-empty path segments without a query.
//!
//! Input: `<app>\0<name>` (no NUL: the whole input is the name, app `live`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (app, name) = s.split_once('\0').unwrap_or(("live", s));
    if let Some((lv, key)) = ingest::rtmp::publish_target(app, name) {
        for part in [&lv, &key] {
            assert!(!part.is_empty() && !part.contains(['/', '?']), "{part:?}");
        }
    }
});
