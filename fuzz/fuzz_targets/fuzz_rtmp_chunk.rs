#![no_main]
//! RTMP chunk stream reassembly: arbitrary bytes, split at arbitrary points, must never panic,
//! must respect the message limit, and must give the same messages however the bytes are split
//! (a socket read can end anywhere; messages may wait in the input buffer or be reassembled
//! chunk by chunk, and both must agree).
use ingest::rtmp::chunk::{Message, Reader, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

/// Feed `data` in pieces of `split` bytes; the messages that came out, and whether the reader
/// stopped on an error.
fn reassemble(data: &[u8], split: usize) -> (Vec<Message>, bool) {
    let mut r = Reader::new();
    let mut out = Vec::new();
    for piece in data.chunks(split) {
        r.push(piece);
        loop {
            match r.poll() {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= MAX_MESSAGE);
                    let _ = ingest::rtmp::parse_command(&m.payload);
                    let _ = ingest::rtmp::parse_metadata(&m.payload);
                    out.push(m);
                }
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    let (pieces, pieces_failed) = reassemble(data, split);
    let (whole, whole_failed) = reassemble(data, data.len().max(1));
    if !pieces_failed && !whole_failed {
        assert_eq!(pieces, whole, "messages depend on how the bytes were split");
    } else {
        // Up to the first error, both saw the same stream.
        let n = pieces.len().min(whole.len());
        assert_eq!(pieces[..n], whole[..n]);
    }
});
