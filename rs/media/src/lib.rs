//! Media formats for ClutchCall: FLV/AMF0 parsing, codec configuration records and codec
//! strings, the CMAF (fragmented MP4) writer and a small fragmented-MP4 reader, and the MSF
//! catalog (with the CMSF extension).
//!
//! Owns: turning bytes of one format into bytes or values of another, with no I/O. Every parser
//! takes untrusted input and returns [`Error`] instead of panicking; sizes are bounded.
//! Must not: open sockets or files, spawn tasks, know about MoQT tracks or the relay (that is
//! `ingest`), or decode/encode pixels and samples (ffmpeg does that for the ladder).

pub mod amf0;
mod bits;
pub mod catalog;
pub mod codec;
pub mod flv;
pub mod fmp4;
pub mod mp4read;

/// Why some bytes could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended in the middle of a structure.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// The input is well-framed but says something we refuse or do not understand.
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    /// A structure is larger or deeper than our limits.
    #[error("{0} exceeds a limit")]
    TooLarge(&'static str),
}

impl Error {
    pub(crate) fn invalid(what: &'static str, why: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            why: why.into(),
        }
    }
}

/// A bounds-checked reader over a byte slice (big-endian).
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.remaining() < n {
            return Err(Error::Truncated(self.what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.bytes(n).map(|_| ())
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.bytes(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u24(&mut self) -> Result<u32, Error> {
        let b = self.bytes(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}
