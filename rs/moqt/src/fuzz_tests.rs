//! Stable-toolchain stand-in for fuzzing: seeded pseudo-random and mutated
//! valid inputs fed to every decoder. Asserts no panic and that
//! decode → encode → decode is stable. The same checks are shared with the
//! cargo-fuzz targets through [`crate::fuzzing`].

use crate::data::tests::{
    encode_fetch_stream, sample_datagrams, sample_fetch_items, sample_subgroup_headers,
    sample_subgroup_stream,
};
use crate::fuzzing;
use crate::message::tests::sample_messages;
use crate::params::GroupOrder;
use crate::Encode;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let mut c: Vec<Vec<u8>> = sample_messages()
        .iter()
        .map(|m| m.to_vec().unwrap())
        .collect();
    for h in sample_subgroup_headers() {
        c.push(sample_subgroup_stream(&h).0);
    }
    c.push(encode_fetch_stream(
        GroupOrder::Ascending,
        &sample_fetch_items(),
    ));
    for d in sample_datagrams() {
        c.push(d.to_bytes().unwrap().to_vec());
    }
    for m in sample_messages() {
        if let Some(p) = m.params() {
            c.push(p.to_vec());
        }
    }
    c
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(input.len() + 1);
                input.insert(i, rng.next() as u8);
            }
            3 if !input.is_empty() => {
                let i = rng.below(input.len());
                input.remove(i);
            }
            4 => {
                let n = rng.below(input.len() + 1);
                input.truncate(n);
            }
            _ => {
                // Interesting varint bytes.
                let i = rng.below(input.len() + 1);
                let v = [0x00, 0x3f, 0x7f, 0x80, 0xbf, 0xc0, 0xfe, 0xff][rng.below(8)];
                input.insert(i, v);
            }
        }
    }
}

fn run_all(data: &[u8]) {
    fuzzing::varint(data);
    fuzzing::control_message(data);
    fuzzing::params(data);
    fuzzing::setup(data);
    fuzzing::subgroup_stream(data);
    fuzzing::fetch_stream(data);
    fuzzing::datagram(data);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..150_000 {
        let len = rng.below(48);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        run_all(&data);
    }
}

#[test]
fn mutated_valid_inputs_never_panic() {
    let corpus = corpus();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..150_000 {
        let mut data = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &mut data);
        run_all(&data);
    }
}

#[test]
fn corpus_is_stable() {
    for data in corpus() {
        run_all(&data);
    }
}
