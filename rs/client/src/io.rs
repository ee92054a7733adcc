//! Buffered decoding of MoQT messages and objects from a receive stream, and message sending.

use bytes::{Buf, Bytes, BytesMut};
use moqt::{ControlMessage, DecodeError};
use net::{ReadError, RecvStream, SendStream, WriteError};

/// Largest chunk taken from the transport at once.
const READ_CHUNK: usize = 64 * 1024;

/// Why reading a stream stopped.
#[derive(Debug)]
pub(crate) enum ReadFail {
    /// The bytes are not valid MoQT.
    Decode(DecodeError),
    /// The stream ended in the middle of a message or payload.
    Truncated,
    /// The peer reset the stream with this code.
    Reset(u32),
    /// The session is gone, or the stream failed otherwise.
    Transport(ReadError),
}

/// A receive stream plus the bytes read but not yet decoded.
pub(crate) struct Reader {
    stream: RecvStream,
    buf: BytesMut,
}

impl Reader {
    pub fn new(stream: RecvStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Reads more bytes; `Ok(false)` at a clean end of stream.
    async fn fill(&mut self) -> Result<bool, ReadFail> {
        match self.stream.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => {
                self.buf.extend_from_slice(&chunk.bytes);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(ReadError::Reset(code)) => Err(ReadFail::Reset(code)),
            Err(e) => Err(ReadFail::Transport(e)),
        }
    }

    /// Decodes one value with `f`, reading while it reports `Short`. `Ok(None)` when the stream
    /// ended cleanly before the first byte of a value.
    pub async fn decode<T>(
        &mut self,
        mut f: impl FnMut(&mut &[u8]) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, ReadFail> {
        loop {
            if !self.buf.is_empty() {
                let mut slice: &[u8] = &self.buf[..];
                let before = slice.len();
                match f(&mut slice) {
                    Ok(v) => {
                        let used = before - slice.len();
                        self.buf.advance(used);
                        return Ok(Some(v));
                    }
                    Err(DecodeError::Short) => {}
                    Err(e) => return Err(ReadFail::Decode(e)),
                }
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadFail::Truncated)
                };
            }
        }
    }

    /// The next control message, or `None` at a clean end of stream.
    pub async fn message(&mut self) -> Result<Option<ControlMessage>, ReadFail> {
        self.decode(|b| ControlMessage::decode(b)).await
    }

    /// Exactly `n` bytes (an object payload after its header).
    pub async fn bytes(&mut self, n: usize) -> Result<Bytes, ReadFail> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(ReadFail::Truncated);
            }
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// Whether more data follows (false after a clean FIN with nothing buffered).
    pub async fn has_more(&mut self) -> Result<bool, ReadFail> {
        if !self.buf.is_empty() {
            return Ok(true);
        }
        self.fill().await
    }

    /// STOP_SENDING with `code`.
    pub fn stop(&mut self, code: u32) {
        let _ = self.stream.stop(code);
    }
}

/// Encodes and sends one control message.
pub(crate) async fn send(
    stream: &mut SendStream,
    msg: impl Into<ControlMessage>,
) -> Result<(), SendFail> {
    let msg = msg.into();
    let mut buf = Vec::with_capacity(64);
    msg.encode(&mut buf).map_err(SendFail::Encode)?;
    stream.write_all(&buf).await.map_err(SendFail::Write)
}

/// Why sending a message failed.
#[derive(Debug)]
pub(crate) enum SendFail {
    Encode(moqt::EncodeError),
    Write(WriteError),
}
