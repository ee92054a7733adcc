//! A bit reader for H.264/HEVC parameter sets (Exp-Golomb), over RBSP with emulation
//! prevention bytes removed.

use crate::Error;

pub(crate) struct Bits<'a> {
    buf: &'a [u8],
    bit: usize,
}

/// Remove emulation-prevention bytes (00 00 03 → 00 00).
pub(crate) fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

impl<'a> Bits<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, bit: 0 }
    }
    pub(crate) fn u1(&mut self) -> Result<u32, Error> {
        let byte = self
            .buf
            .get(self.bit / 8)
            .ok_or(Error::Truncated("parameter set"))?;
        let v = (byte >> (7 - (self.bit % 8))) & 1;
        self.bit += 1;
        Ok(u32::from(v))
    }
    pub(crate) fn u(&mut self, n: u32) -> Result<u32, Error> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.u1()?;
        }
        Ok(v)
    }
    pub(crate) fn ue(&mut self) -> Result<u32, Error> {
        let mut zeros = 0;
        while self.u1()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(Error::invalid("parameter set", "exp-golomb too long"));
            }
        }
        let rest = self.u(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }
    pub(crate) fn se(&mut self) -> Result<i64, Error> {
        let k = self.ue()?;
        let v = i64::from(k.div_ceil(2));
        Ok(if k % 2 == 1 { v } else { -v })
    }
}
