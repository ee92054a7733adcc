//! tus header values (Upload-Offset/Length, Upload-Metadata, Upload-Checksum, Tus-Resumable,
//! Content-Type, Upload-Complete): never panic, and accepted numbers fit i64.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vod::tus;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = tus::parse_u63("Upload-Offset", data) {
        assert!(i64::try_from(n).is_ok());
    }
    if let Ok(pairs) = tus::parse_metadata(data) {
        assert!(pairs.iter().all(|p| !p.key.is_empty()));
        let _ = tus::metadata_str(&pairs, "filename");
    }
    let _ = tus::parse_checksum(data);
    let _ = tus::check_version(data);
    let _ = tus::is_offset_octet_stream(data);
    let _ = tus::parse_sf_bool("Upload-Complete", data);
    if data.len() >= 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[..8]);
        let _ = tus::http_date(i64::from_be_bytes(b));
    }
});
