//! Seeded random and mutated input for the tus header parsers and the box reader (the same
//! decoders have cargo-fuzz targets: fuzz_tus_headers, fuzz_mp4_boxes). `CLUTCHCALL_FUZZ_SEED`
//! replays a run, `CLUTCHCALL_FUZZ_CASES` sets the number of cases.

use vod::{boxes, tus};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len() + 8)
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

#[test]
fn random_and_mutated_input_never_panics() {
    let seed = env("CLUTCHCALL_FUZZ_SEED", 0x5eed_1234);
    let cases = env("CLUTCHCALL_FUZZ_CASES", 20_000);
    let mut r = Rng(seed.max(1));
    let seeds: Vec<Vec<u8>> = vec![
        b"12345".to_vec(),
        b"filename d29ybGQ=,is_confidential".to_vec(),
        b"sha256 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_vec(),
        bx(
            b"moof",
            &bx(
                b"traf",
                &[
                    bx(b"tfhd", &[0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 2, 0]),
                    bx(b"tfdt", &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
                    bx(b"trun", &[0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 6]),
                ]
                .concat(),
            ),
        ),
    ];
    for i in 0..cases {
        let mut data = if i % 2 == 0 {
            seeds[(r.next() % seeds.len() as u64) as usize].clone()
        } else {
            (0..r.next() % 64).map(|_| r.next() as u8).collect()
        };
        for _ in 0..(r.next() % 4) {
            if data.is_empty() {
                break;
            }
            let at = (r.next() % data.len() as u64) as usize;
            data[at] = r.next() as u8;
        }
        if let Ok(n) = tus::parse_u63("x", &data) {
            assert!(i64::try_from(n).is_ok());
        }
        let _ = tus::parse_metadata(&data);
        let _ = tus::parse_checksum(&data);
        let _ = tus::check_version(&data);
        let _ = boxes::header(&data);
        for c in boxes::children(&data) {
            let Ok((k, body)) = c else { break };
            if &k == b"moof" {
                let _ = boxes::parse_moof(body, None);
            }
            let _ = boxes::parse_moov(body);
        }
    }
}
