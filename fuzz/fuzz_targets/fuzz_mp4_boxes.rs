//! The ISO-BMFF reader: box headers, child iteration, moov tracks, moof timing. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vod::boxes;

fuzz_target!(|data: &[u8]| {
    let _ = boxes::header(data);
    for c in boxes::children(data).take(10_000) {
        let Ok((kind, body)) = c else { break };
        match &kind {
            b"moov" => {
                let _ = boxes::parse_moov(body);
            }
            b"moof" => {
                let _ = boxes::parse_moof(body, None);
            }
            _ => {}
        }
    }
    let tracks = boxes::parse_moov(data).unwrap_or_default();
    let _ = boxes::parse_moof(data, tracks.first());
});
