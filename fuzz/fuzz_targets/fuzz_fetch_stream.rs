#![no_main]

use libfuzzer_sys::fuzz_target;

// Decodes arbitrary bytes: no panic; decode -> encode -> decode is stable.
fuzz_target!(|data: &[u8]| {
    moqt::fuzzing::fetch_stream(data);
});
