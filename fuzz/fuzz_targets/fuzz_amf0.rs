#![no_main]
//! AMF0 decoding; whatever decodes must re-encode and decode to the same values.
use libfuzzer_sys::fuzz_target;
use media::amf0;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        let again = amf0::encode_all(&values);
        if let Ok(back) = amf0::decode_all(&again) {
            // NaN payloads compare unequal; compare the encodings instead.
            assert_eq!(amf0::encode_all(&back), again);
        }
    }
});
