#![no_main]
//! FLV tags and RTMP audio/video payloads, plus what they carry (codec records, SPS).
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::flv;

fuzz_target!(|data: &[u8]| {
    let b = Bytes::copy_from_slice(data);
    if let Ok(flv::Video::Config(c)) = flv::parse_video(&b) {
        let _ = c.codec_string();
        let _ = c.picture();
        let _ = media::fmp4::video_sample_entry(&c, 16, 16);
    }
    if let Ok(flv::Audio::Config(c)) = flv::parse_audio(&b) {
        let _ = c.codec_string();
        let _ = media::fmp4::audio_sample_entry(&c);
    }
    let mut rest = b.clone();
    if let Ok(h) = flv::read_file_header(&rest) {
        rest = rest.slice(h.min(rest.len())..);
    }
    while let Ok(Some((tag, n))) = flv::read_tag(&rest) {
        let _ = flv::parse_video(&tag.body);
        let _ = flv::parse_audio(&tag.body);
        rest = rest.slice(n..);
    }
    let mut r = media::mp4read::Reader::new();
    r.push(data);
    while let Ok(Some(_)) = r.next_event() {}
});
