//! Encode/decode traits and the internal bounded byte reader.

use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes};

use crate::error::DecodeError;
use crate::varint;

/// A value with a wire encoding that cannot fail.
pub trait Encode {
    /// Appends the wire encoding of `self` to `buf`.
    fn encode<B: BufMut>(&self, buf: &mut B);

    /// Convenience: the encoding as a vector.
    fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A value that can be decoded from the front of a buffer.
///
/// Contract: on `Err(DecodeError::Short)` nothing is consumed from `buf`;
/// the caller buffers more bytes and retries. On success exactly the
/// value's bytes are consumed. On any other error the buffer position is
/// unspecified (the session is being closed anyway).
pub trait Decode: Sized {
    /// Decodes one value from the front of `buf`.
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError>;
}

/// What a [`Reader`] reports when it runs out of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eof {
    /// Top level of a stream: more bytes may come.
    Short,
    /// Inside a length-bounded region (control message payload, datagram):
    /// the declared length does not match the content.
    Protocol,
    /// Inside a length-prefixed Key-Value/parameter value.
    KeyValue,
}

impl Eof {
    fn error(self) -> DecodeError {
        match self {
            Eof::Short => DecodeError::Short,
            Eof::Protocol => DecodeError::LengthMismatch,
            Eof::KeyValue => DecodeError::KeyValueFormatting("value shorter than its content"),
        }
    }
}

/// A cursor over a contiguous byte slice.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    eof: Eof,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            eof: Eof::Short,
        }
    }

    pub(crate) fn bounded(data: &'a [u8], eof: Eof) -> Self {
        Self { data, pos: 0, eof }
    }

    pub(crate) fn eof_error(&self) -> DecodeError {
        self.eof.error()
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.eof_error())?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let s = self.bytes(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        match varint::decode_slice(&self.data[self.pos..]) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(self.eof_error()),
        }
    }

    /// Reads a varint used as a byte length.
    pub(crate) fn length(&mut self) -> Result<usize, DecodeError> {
        let v = self.varint()?;
        // A length that does not even fit in memory can never be satisfied;
        // report it like any other missing data.
        usize::try_from(v).map_err(|_| self.eof_error())
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.eof_error());
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads `n` bytes into an owned `Bytes`.
    pub(crate) fn bytes_owned(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.bytes(n).map(Bytes::copy_from_slice)
    }

    /// Splits off the next `n` bytes as a nested reader with its own
    /// end-of-data behaviour. Running out of *outer* bytes uses the outer
    /// reader's behaviour.
    pub(crate) fn sub(&mut self, n: usize, eof: Eof) -> Result<Reader<'a>, DecodeError> {
        let s = self.bytes(n)?;
        Ok(Reader::bounded(s, eof))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }
}

/// Runs a slice decoder against a generic [`Buf`], consuming only on success.
///
/// Contiguous buffers (`&[u8]`, `Bytes`, `BytesMut`) are decoded in place.
/// Segmented buffers are gathered (up to 64 segments) into a temporary copy.
pub(crate) fn decode_buf<B, T, F>(buf: &mut B, f: F) -> Result<T, DecodeError>
where
    B: Buf,
    F: for<'a> FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
{
    let remaining = buf.remaining();
    let chunk = buf.chunk();
    if chunk.len() >= remaining {
        let mut r = Reader::new(chunk);
        let v = f(&mut r)?;
        let n = r.position();
        buf.advance(n);
        return Ok(v);
    }
    let mut slices = [IoSlice::new(&[]); 64];
    let count = buf.chunks_vectored(&mut slices);
    let mut tmp = Vec::with_capacity(remaining);
    for s in &slices[..count] {
        tmp.extend_from_slice(s);
    }
    let mut r = Reader::new(&tmp);
    let v = f(&mut r)?;
    let n = r.position();
    buf.advance(n);
    Ok(v)
}

/// Writes a length-prefixed byte string.
pub(crate) fn put_bytes<B: BufMut>(buf: &mut B, b: &[u8]) {
    varint::encode(b.len() as u64, buf);
    buf.put_slice(b);
}

/// Reads a length-prefixed byte string, enforcing `max` (PROTOCOL_VIOLATION).
pub(crate) fn get_bytes(
    r: &mut Reader<'_>,
    max: usize,
    what: &'static str,
) -> Result<Bytes, DecodeError> {
    let len = r.varint()?;
    if len > max as u64 {
        return Err(DecodeError::TooLong { what, len, max });
    }
    r.bytes_owned(len as usize)
}

/// Reads a length-prefixed UTF-8 string, enforcing `max`.
pub(crate) fn get_string(
    r: &mut Reader<'_>,
    max: usize,
    what: &'static str,
) -> Result<String, DecodeError> {
    let b = get_bytes(r, max, what)?;
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::ProtocolViolation("string is not UTF-8"))
}
