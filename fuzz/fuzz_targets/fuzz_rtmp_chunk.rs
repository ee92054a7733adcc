#![no_main]
//! RTMP chunk stream reassembly: arbitrary bytes, split at arbitrary points, must never panic
//! and must respect the message limit.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    let mut r = ingest::rtmp::chunk::Reader::new();
    for piece in data.chunks(split) {
        r.push(piece);
        loop {
            match r.poll() {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= ingest::rtmp::chunk::MAX_MESSAGE);
                    let _ = ingest::rtmp::parse_command(&m.payload);
                    let _ = ingest::rtmp::parse_metadata(&m.payload);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
