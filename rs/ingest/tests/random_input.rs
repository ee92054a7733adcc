//! Seeded random inputs (stable toolchain) for every parser of untrusted bytes: the RTMP
//! chunk reader, AMF0, FLV tags and payloads, and the fragmented-MP4 reader. None may panic;
//! the chunk reader must keep its limits. The cargo-fuzz targets in /fuzz go further.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use ingest::rtmp::chunk;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn inputs(seed: u64, n: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(move |_| {
        let len = rng.random_range(0..512);
        let mut v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Bias towards plausible headers now and then.
        if rng.random_bool(0.3) && !v.is_empty() {
            v[0] &= 0x3f;
        }
        v
    })
}

#[test]
fn chunk_reader_survives_random_bytes() {
    for data in inputs(1, 20_000) {
        let mut r = chunk::Reader::new();
        for piece in data.chunks(7) {
            r.push(piece);
            loop {
                match r.poll() {
                    Ok(Some(m)) => assert!(m.payload.len() <= chunk::MAX_MESSAGE),
                    Ok(None) => break,
                    Err(_) => break,
                }
            }
        }
    }
}

#[test]
fn amf0_and_commands_survive_random_bytes() {
    for data in inputs(2, 20_000) {
        let _ = media::amf0::decode_all(&data);
        let _ = ingest::rtmp::parse_command(&data);
        let _ = ingest::rtmp::parse_metadata(&data);
    }
}

#[test]
fn flv_and_mp4_survive_random_bytes() {
    for data in inputs(3, 20_000) {
        let b = Bytes::from(data.clone());
        if let Ok(media::flv::Video::Config(c)) = media::flv::parse_video(&b) {
            let _ = c.codec_string();
            let _ = c.picture();
        }
        if let Ok(media::flv::Audio::Config(c)) = media::flv::parse_audio(&b) {
            let _ = c.codec_string();
            let _ = media::fmp4::audio_sample_entry(&c);
        }
        let _ = media::flv::read_tag(&b);
        let mut r = media::mp4read::Reader::new();
        r.push(&data);
        while let Ok(Some(_)) = r.next_event() {}
    }
}
