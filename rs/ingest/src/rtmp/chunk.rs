//! RTMP chunk stream: a sans-I/O reader that reassembles messages from chunks, and a writer.
//!
//! Limits protect the server from hostile peers: the peer's chunk size is capped, a message
//! may not exceed [`MAX_MESSAGE`], and only [`MAX_STREAMS`] chunk streams may hold a partial
//! message at once. Any violation is an error that ends the connection.

use bytes::{Buf, Bytes, BytesMut};

/// Largest message we reassemble (a 4K keyframe fits; a "never-ending message" does not).
pub const MAX_MESSAGE: usize = 8 << 20;
/// Largest chunk size a peer may set.
pub const MAX_CHUNK_SIZE: u32 = 1 << 20;
/// Chunk streams with partial messages at once.
pub const MAX_STREAMS: usize = 64;
/// Bytes of partial messages held at once, over all chunk streams.
pub const MAX_PARTIAL: usize = 32 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("message of {0} bytes exceeds the limit")]
    MessageTooLarge(usize),
    #[error("chunk size {0} is out of range")]
    BadChunkSize(u32),
    #[error("too many chunk streams in flight")]
    TooManyStreams,
    #[error("chunk of stream {0} continues a message it never started")]
    NoPrevious(u32),
}

/// A complete RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub csid: u32,
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, Default, Clone)]
struct Stream {
    timestamp: u32,
    delta: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    started: bool,
    partial: Option<BytesMut>,
}

impl Stream {
    /// The message this stream's current header describes, carrying `payload`.
    fn message(&self, csid: u32, payload: Bytes) -> Message {
        Message {
            csid,
            timestamp: self.timestamp,
            type_id: self.type_id,
            stream_id: self.stream_id,
            payload,
        }
    }
}

/// What follows a message's chunk in the buffer, for [`Reader::continuation_header`].
enum Continuation {
    /// The message's next chunk header, this many bytes long.
    Header(usize),
    /// Not enough bytes yet to tell.
    Short,
    /// Another stream's chunk, or a new header on this one.
    Other,
}

/// Where a message stands in the input buffer, for [`Reader::span`].
enum Span {
    /// Every chunk is buffered, one after the other; the last ends at this offset.
    Whole(usize),
    /// Its chunks follow each other so far, and more are still to arrive.
    Arriving,
    /// Another stream's chunk comes between two of its chunks.
    Interleaved,
}

/// A message split over at most this many chunks, arriving chunk after chunk, is left in the
/// input buffer until it is all there (then handed out in place, see [`Reader::span`]) rather
/// than copied into a reassembly buffer a chunk at a time. Bounded so a message of tiny chunks
/// cannot make each poll re-walk thousands of headers (a 125 kB keyframe in 4 KiB chunks is 31).
const MAX_WAIT_CHUNKS: usize = 256;

/// Reassembles messages. Feed bytes with [`Reader::push`], drain with [`Reader::poll`].
#[derive(Debug)]
pub struct Reader {
    buf: BytesMut,
    chunk_size: usize,
    /// Chunk streams by id. An encoder uses a handful, so a linear scan beats hashing (the
    /// count is capped, see [`MAX_STREAMS`]).
    streams: Vec<(u32, Stream)>,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            buf: BytesMut::new(),
            chunk_size: 128,
            streams: Vec::new(),
        }
    }
}

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The input buffer, for reading from a socket straight into it (no intermediate copy):
    /// `socket.read_buf(reader.buffer_mut())`, then [`Reader::poll`].
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes buffered but not yet parsed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Apply the peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::BadChunkSize(size));
        }
        self.chunk_size = size as usize;
        Ok(())
    }

    /// Abort Message: drop the partial message of a chunk stream.
    pub fn abort(&mut self, csid: u32) {
        if let Some(i) = self.index(csid) {
            self.streams[i].1.partial = None;
        }
    }

    fn index(&self, csid: u32) -> Option<usize> {
        self.streams.iter().position(|(id, _)| *id == csid)
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. Protocol control
    /// "Set Chunk Size" is applied here so following chunks parse correctly.
    pub fn poll(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            match self.chunk()? {
                None => return Ok(None),
                Some(None) => continue,
                Some(Some(m)) => {
                    if m.type_id == 1 && m.payload.len() >= 4 {
                        let size = u32::from_be_bytes([
                            m.payload[0],
                            m.payload[1],
                            m.payload[2],
                            m.payload[3],
                        ]) & 0x7fff_ffff;
                        self.set_chunk_size(size)?;
                    }
                    return Ok(Some(m));
                }
            }
        }
    }

    /// Parse one chunk: `None` = need more bytes; `Some(None)` = chunk consumed, message
    /// incomplete; `Some(Some(m))` = message complete.
    fn chunk(&mut self) -> Result<Option<Option<Message>>, ChunkError> {
        let b = &self.buf[..];
        let Some(&b0) = b.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (u32::from(x) + 64, 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&x), Some(&y)) => (u32::from(y) * 256 + u32::from(x) + 64, 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        if b.len() < pos + header_len {
            return Ok(None);
        }
        let h = &b[pos..pos + header_len];
        pos += header_len;
        let be24 = |s: &[u8]| u32::from_be_bytes([0, s[0], s[1], s[2]]);

        let index = self.index(csid);
        if index.is_none() {
            if fmt != 0 {
                return Err(ChunkError::NoPrevious(csid));
            }
            if self.streams.len() >= MAX_STREAMS * 4 {
                return Err(ChunkError::TooManyStreams);
            }
        }
        // Header fields only: the partial payload (if any) stays in the map until committed,
        // so a chunk that is not complete yet costs no copy.
        let (mut st, prev_partial) = match index.map(|i| &self.streams[i].1) {
            Some(p) => (
                Stream {
                    partial: None,
                    ..*p
                },
                p.partial.as_ref().map(BytesMut::len),
            ),
            None => (Stream::default(), None),
        };
        let prev_extended = st.extended;
        let prev_started = st.started;
        let ts_field = match fmt {
            0 => {
                st.length = be24(&h[3..6]) as usize;
                st.type_id = h[6];
                st.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
                Some(be24(&h[0..3]))
            }
            1 => {
                st.length = be24(&h[3..6]) as usize;
                st.type_id = h[6];
                Some(be24(&h[0..3]))
            }
            2 => Some(be24(&h[0..3])),
            _ => None,
        };
        let extended = match ts_field {
            Some(t) => t == 0x00ff_ffff,
            None => prev_extended,
        };
        let mut ext_value = 0;
        if extended {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            ext_value = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            pos += 4;
        }
        if st.length > MAX_MESSAGE {
            return Err(ChunkError::MessageTooLarge(st.length));
        }
        // A header (fmt 0-2) in the middle of a message abandons the partial message.
        let continuing = prev_partial.is_some() && fmt == 3;
        if fmt == 3 && !prev_started && !continuing {
            return Err(ChunkError::NoPrevious(csid));
        }
        let have = if continuing {
            prev_partial.unwrap_or(0)
        } else {
            0
        };
        let want = (st.length.saturating_sub(have)).min(self.chunk_size);
        if b.len() < pos + want {
            return Ok(None);
        }
        // Only now commit: the whole chunk is in the buffer.
        if !continuing {
            let t = if extended {
                ext_value
            } else {
                ts_field.unwrap_or(0)
            };
            match fmt {
                0 => {
                    st.timestamp = t;
                    st.delta = 0;
                }
                1 | 2 => {
                    st.delta = t;
                    st.timestamp = st.timestamp.wrapping_add(t);
                }
                _ => st.timestamp = st.timestamp.wrapping_add(st.delta),
            }
        }
        st.extended = extended;
        st.started = true;
        // The partial message continues (fmt 3); a new header in the middle of a message
        // abandons it.
        let kept = match index {
            Some(i) if continuing => self.streams[i].1.partial.take(),
            _ => None,
        };
        let mut partial = match kept {
            Some(p) => p,
            None => {
                if !continuing && want == st.length {
                    // The whole message is in this chunk: hand out the input buffer's bytes
                    // as they are (no copy).
                    self.buf.advance(pos);
                    let msg = st.message(csid, self.buf.split_to(want).freeze());
                    self.store(index, csid, st);
                    return Ok(Some(Some(msg)));
                }
                // A message split in chunks that follow each other (an encoder writes a
                // message at once): once every chunk is buffered, close the gaps the chunk
                // headers leave in place and hand out the input buffer's bytes (no reassembly
                // buffer, no copy to it); until then, leave it where it is. Only a message
                // interleaved with another stream's chunks (or of very many chunks) is copied
                // out chunk by chunk.
                if !continuing {
                    match self.span(pos, want, csid, extended, st.length) {
                        Span::Whole(end) => {
                            self.compact(pos, want, csid, extended, st.length);
                            self.buf.advance(pos);
                            let msg = st.message(csid, self.buf.split_to(st.length).freeze());
                            self.buf.advance(end - pos - st.length);
                            self.store(index, csid, st);
                            return Ok(Some(Some(msg)));
                        }
                        Span::Arriving
                            if st.length.div_ceil(self.chunk_size) <= MAX_WAIT_CHUNKS =>
                        {
                            // Nothing committed: the whole chunk is parsed again next time.
                            return Ok(None);
                        }
                        Span::Arriving | Span::Interleaved => {}
                    }
                }
                let in_flight = self
                    .streams
                    .iter()
                    .filter(|(_, s)| s.partial.is_some())
                    .count();
                if in_flight >= MAX_STREAMS {
                    return Err(ChunkError::TooManyStreams);
                }
                // Exactly the declared length (no regrowth copies), up to 1 MiB: a hostile
                // declaration reserves no more than that, and untouched pages cost nothing.
                BytesMut::with_capacity(st.length.min(1 << 20))
            }
        };
        let held: usize = self
            .streams
            .iter()
            .filter(|(id, _)| *id != csid)
            .filter_map(|(_, s)| s.partial.as_ref().map(BytesMut::len))
            .sum();
        if held + partial.len() + want > MAX_PARTIAL {
            return Err(ChunkError::MessageTooLarge(held + partial.len() + want));
        }
        partial.extend_from_slice(&self.buf[pos..pos + want]);
        self.buf.advance(pos + want);
        let done = partial.len() >= st.length;
        let msg = if done {
            Some(st.message(csid, partial.freeze()))
        } else {
            st.partial = Some(partial);
            None
        };
        self.store(index, csid, st);
        Ok(Some(msg))
    }

    /// What starts at the beginning of `b`, seen from a message of stream `csid` that wants
    /// its next chunk: that chunk's fmt-3 header (its length, with the extended timestamp when
    /// `extended`), too few bytes to tell yet, or anything else.
    fn continuation_header(b: &[u8], csid: u32, extended: bool) -> Continuation {
        let Some(&b0) = b.first() else {
            return Continuation::Short;
        };
        if b0 >> 6 != 3 {
            return Continuation::Other;
        }
        let (id, len) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (u32::from(x) + 64, 2),
                None => return Continuation::Short,
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&x), Some(&y)) => (u32::from(y) * 256 + u32::from(x) + 64, 3),
                _ => return Continuation::Short,
            },
            n => (u32::from(n), 1),
        };
        let len = if extended { len + 4 } else { len };
        if id != csid {
            Continuation::Other
        } else if b.len() < len {
            Continuation::Short
        } else {
            Continuation::Header(len)
        }
    }

    /// Where the message whose first chunk's payload (`first` bytes) starts at `pos` stands in
    /// the buffer, when its other chunks follow it directly as fmt-3 chunks of the same stream
    /// (an encoder writes a message at once): all there ([`Span::Whole`], with the end of the
    /// last chunk), still arriving, or interrupted by another chunk.
    fn span(&self, pos: usize, first: usize, csid: u32, extended: bool, length: usize) -> Span {
        let b = &self.buf[..];
        let mut at = pos + first;
        let mut have = first;
        while have < length {
            match Self::continuation_header(&b[at.min(b.len())..], csid, extended) {
                Continuation::Header(len) => at += len,
                Continuation::Short => return Span::Arriving,
                Continuation::Other => return Span::Interleaved,
            }
            let n = (length - have).min(self.chunk_size);
            if b.len() < at + n {
                return Span::Arriving;
            }
            at += n;
            have += n;
        }
        Span::Whole(at)
    }

    /// Move the message's chunk payloads (found whole by [`Reader::span`]) together, so its
    /// `length` bytes lie contiguous from `pos`.
    fn compact(&mut self, pos: usize, first: usize, csid: u32, extended: bool, length: usize) {
        let chunk_size = self.chunk_size;
        let b = &mut self.buf[..];
        let mut src = pos + first;
        let mut dst = src;
        let mut have = first;
        while have < length {
            if let Continuation::Header(len) = Self::continuation_header(&b[src..], csid, extended)
            {
                src += len;
            }
            let n = (length - have).min(chunk_size);
            b.copy_within(src..src + n, dst);
            src += n;
            dst += n;
            have += n;
        }
    }

    fn store(&mut self, index: Option<usize>, csid: u32, st: Stream) {
        match index {
            Some(i) => self.streams[i].1 = st,
            None => self.streams.push((csid, st)),
        }
    }
}

/// Serialize a message as chunks of `chunk_size` (fmt 0 then fmt 3).
pub fn write(out: &mut Vec<u8>, chunk_size: usize, m: &Message) {
    let basic = |out: &mut Vec<u8>, fmt: u8| {
        if m.csid < 64 {
            out.push((fmt << 6) | m.csid as u8);
        } else if m.csid < 320 {
            out.push(fmt << 6);
            out.push((m.csid - 64) as u8);
        } else {
            out.push((fmt << 6) | 1);
            let v = m.csid - 64;
            out.push((v & 0xff) as u8);
            out.push((v >> 8) as u8);
        }
    };
    let ext = m.timestamp >= 0x00ff_ffff;
    basic(out, 0);
    let ts = if ext { 0x00ff_ffff } else { m.timestamp };
    out.extend_from_slice(&ts.to_be_bytes()[1..]);
    out.extend_from_slice(&(m.payload.len() as u32).to_be_bytes()[1..]);
    out.push(m.type_id);
    out.extend_from_slice(&m.stream_id.to_le_bytes());
    if ext {
        out.extend_from_slice(&m.timestamp.to_be_bytes());
    }
    let mut chunks = m.payload.chunks(chunk_size.max(1));
    if let Some(first) = chunks.next() {
        out.extend_from_slice(first);
    }
    for c in chunks {
        basic(out, 3);
        if ext {
            out.extend_from_slice(&m.timestamp.to_be_bytes());
        }
        out.extend_from_slice(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(csid: u32, ts: u32, len: usize) -> Message {
        Message {
            csid,
            timestamp: ts,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()),
        }
    }

    #[test]
    fn round_trip_split_anywhere() {
        let msgs = [
            msg(4, 0, 300),
            msg(6, 40, 10),
            msg(300, 0x0100_0000, 1000),
            msg(4, 80, 0),
        ];
        let mut wire = Vec::new();
        // Set Chunk Size 100 first.
        write(
            &mut wire,
            128,
            &Message {
                csid: 2,
                timestamp: 0,
                type_id: 1,
                stream_id: 0,
                payload: Bytes::from_static(&[0, 0, 0, 100]),
            },
        );
        for m in &msgs {
            write(&mut wire, 100, m);
        }
        for step in [1, 7, 1000] {
            let mut r = Reader::new();
            let mut got = Vec::new();
            for c in wire.chunks(step) {
                r.push(c);
                while let Ok(Some(m)) = r.poll() {
                    got.push(m);
                }
            }
            assert_eq!(got.len(), 5);
            assert_eq!(&got[1..], &msgs[..]);
        }
    }

    /// Chunks of another stream between a message's chunks: that message is reassembled in
    /// its own buffer, a message whose chunks follow each other in place; both come out whole,
    /// fed at once or a byte at a time.
    #[test]
    fn interleaved_and_contiguous_messages() {
        let a = msg(4, 10, 250);
        let b = msg(6, 0x0100_0000, 250);
        let mut one = Vec::new();
        write(&mut one, 100, &a);
        let mut two = Vec::new();
        write(&mut two, 100, &b);
        // a's first chunk (1 + 11 header bytes + 100), then b whole, then the rest of a.
        let mut wire = one[..112].to_vec();
        wire.extend_from_slice(&two);
        wire.extend_from_slice(&one[112..]);
        // And a once more (fmt 0 again), contiguous, after b's extended timestamp stream.
        wire.extend_from_slice(&one);
        wire.extend_from_slice(&two);
        for step in [1, wire.len()] {
            let mut r = Reader::new();
            r.set_chunk_size(100).ok();
            let mut got = Vec::new();
            for c in wire.chunks(step) {
                r.push(c);
                while let Ok(Some(m)) = r.poll() {
                    got.push(m);
                }
            }
            assert_eq!(got, vec![b.clone(), a.clone(), a.clone(), b.clone()]);
            assert_eq!(r.buffered(), 0);
        }
    }

    /// A message arriving chunk after chunk stays in the input buffer until it is whole; one of
    /// more than MAX_WAIT_CHUNKS chunks is reassembled chunk by chunk instead. Both come out
    /// right whatever the pieces the socket delivers.
    #[test]
    fn arriving_messages_of_few_and_many_chunks() {
        for (chunk_size, len) in [(100usize, 950usize), (1, MAX_WAIT_CHUNKS + 44)] {
            let m = msg(4, 7, len);
            let mut wire = Vec::new();
            write(&mut wire, chunk_size, &m);
            for step in [1, 3, 101, wire.len() - 1] {
                let mut r = Reader::new();
                r.set_chunk_size(chunk_size as u32).ok();
                let mut got = Vec::new();
                let pieces: Vec<&[u8]> = wire.chunks(step).collect();
                for (i, c) in pieces.iter().enumerate() {
                    r.push(c);
                    while let Ok(Some(m)) = r.poll() {
                        got.push(m);
                    }
                    if i + 1 < pieces.len() {
                        assert!(got.is_empty(), "a message came out before its last byte");
                    }
                }
                assert_eq!(got, vec![m.clone()], "chunk size {chunk_size}, step {step}");
                assert_eq!(r.buffered(), 0);
            }
        }
    }

    #[test]
    fn new_header_abandons_a_partial_message() {
        let mut r = Reader::new();
        // 200-byte message on csid 4: first 128-byte chunk only.
        let mut wire = vec![0x04, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0];
        wire.extend_from_slice(&[7u8; 128]);
        // A fresh fmt-0 header on csid 4 (a 3-byte message) replaces it.
        wire.extend_from_slice(&[0x04, 0, 0, 40, 0, 0, 3, 8, 1, 0, 0, 0, 1, 2, 3]);
        r.push(&wire);
        let m = r.poll().ok().flatten();
        assert_eq!(
            m.map(|m| (m.timestamp, m.type_id, m.payload)),
            Some((40, 8, Bytes::from_static(&[1, 2, 3])))
        );
        assert_eq!(r.poll(), Ok(None));
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn hostile_inputs() {
        let mut r = Reader::new();
        // Declared 17 MiB message.
        r.push(&[0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
        assert!(matches!(r.poll(), Err(ChunkError::MessageTooLarge(_))));
        let mut r = Reader::new();
        r.push(&[
            0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
        ]);
        assert!(matches!(r.poll(), Err(ChunkError::BadChunkSize(_))));
        let mut r = Reader::new();
        r.push(&[0xc5, 1, 2, 3]);
        assert!(matches!(r.poll(), Err(ChunkError::NoPrevious(5))));
    }
}
