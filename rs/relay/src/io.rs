//! Buffered reading and writing of MoQT messages on QUIC/WebTransport streams.

use bytes::{Buf, Bytes, BytesMut};
use moqt::message::ControlMessage;
use moqt::DecodeError;
use web_transport_quinn::{RecvStream, SendStream};

use crate::error::SessionError;

/// Largest chunk read from the transport at once.
const READ_CHUNK: usize = 64 * 1024;

/// A receive stream plus the bytes read but not yet decoded.
pub struct Reader {
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

    /// Read more bytes; `Ok(false)` at a clean end of stream.
    async fn fill(&mut self) -> Result<bool, SessionError> {
        match self.stream.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => {
                self.buf.extend_from_slice(&chunk.bytes);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(SessionError::from_read(e)),
        }
    }

    /// Decode one value with `f`, reading more bytes while it reports `Short`. Returns
    /// `Ok(None)` when the stream ended cleanly before any byte of a value.
    pub async fn decode<T>(
        &mut self,
        mut f: impl FnMut(&mut &[u8]) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, SessionError> {
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
                    Err(e) => return Err(SessionError::Decode(e)),
                }
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(SessionError::Protocol(
                        "stream ended in the middle of a message".into(),
                    ))
                };
            }
        }
    }

    /// The next control message, or `None` at a clean end of stream.
    pub async fn message(&mut self) -> Result<Option<ControlMessage>, SessionError> {
        self.decode(|b| ControlMessage::decode(b)).await
    }

    /// Exactly `n` payload bytes (an object payload that follows its header).
    pub async fn bytes(&mut self, n: usize) -> Result<Bytes, SessionError> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(SessionError::Protocol(
                    "stream ended inside an object payload".into(),
                ));
            }
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// Whether the stream has more data (false after a clean FIN with nothing buffered).
    pub async fn has_more(&mut self) -> Result<bool, SessionError> {
        if !self.buf.is_empty() {
            return Ok(true);
        }
        self.fill().await
    }

    pub fn stop(&mut self, code: u32) {
        let _ = self.stream.stop(code);
    }
}

/// Encode and send a control message.
pub async fn send(
    stream: &mut SendStream,
    msg: impl Into<ControlMessage>,
) -> Result<(), SessionError> {
    let msg = msg.into();
    let mut buf = Vec::with_capacity(64);
    msg.encode(&mut buf)
        .map_err(|e| SessionError::Internal(format!("encoding {}: {e}", msg.name())))?;
    stream
        .write_all(&buf)
        .await
        .map_err(SessionError::from_write)
}
