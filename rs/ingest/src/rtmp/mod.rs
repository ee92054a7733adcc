//! RTMP server side: handshake, chunk stream, AMF0 commands of a publishing client.
//!
//! Everything here is sans-I/O except [`handshake`]; the connection task in `server` drives it.

pub mod chunk;

use bytes::Bytes;
use media::amf0::{self, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use chunk::{ChunkError, Message};

pub const HANDSHAKE_SIZE: usize = 1536;
/// The chunk size we send with.
pub const OUT_CHUNK_SIZE: usize = 4096;
/// Window acknowledgement size we announce and honour.
pub const WINDOW: u32 = 2_500_000;

/// Message type ids.
pub mod types {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACK: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK: u8 = 5;
    pub const PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("unsupported RTMP version {0} (only 3, plain RTMP)")]
    Version(u8),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Server side of the simple handshake: C0+C1 → S0+S1+S2 → C2. Returns bytes the client
/// sent after C2 (the start of the chunk stream), if any were read with it.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    seed: u64,
) -> Result<(), HandshakeError> {
    let mut c0 = [0u8; 1];
    io.read_exact(&mut c0).await?;
    if c0[0] != 3 {
        return Err(HandshakeError::Version(c0[0]));
    }
    let mut c1 = vec![0u8; HANDSHAKE_SIZE];
    io.read_exact(&mut c1).await?;
    let mut out = Vec::with_capacity(1 + 2 * HANDSHAKE_SIZE);
    out.push(3);
    // S1: time, zero, random.
    out.extend_from_slice(&[0; 8]);
    let mut x = seed | 1;
    while out.len() < 1 + HANDSHAKE_SIZE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    // S2: echo of C1.
    out.extend_from_slice(&c1);
    io.write_all(&out).await?;
    io.flush().await?;
    let mut c2 = vec![0u8; HANDSHAKE_SIZE];
    io.read_exact(&mut c2).await?;
    Ok(())
}

/// A command (AMF0) the client sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub transaction: f64,
    pub object: Value,
    pub args: Vec<Value>,
}

pub fn parse_command(payload: &[u8]) -> Result<Command, media::Error> {
    let mut vals = amf0::decode_all(payload)?.into_iter();
    let name = match vals.next() {
        Some(Value::String(s)) => s,
        _ => {
            return Err(media::Error::Invalid {
                what: "rtmp command",
                why: "no command name".into(),
            })
        }
    };
    let transaction = vals.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
    let object = vals.next().unwrap_or(Value::Null);
    Ok(Command {
        name,
        transaction,
        object,
        args: vals.collect(),
    })
}

/// `@setDataFrame onMetaData {…}` or `onMetaData {…}`: the metadata object.
pub fn parse_metadata(payload: &[u8]) -> Option<Value> {
    let vals = amf0::decode_all(payload).ok()?;
    let mut it = vals.into_iter();
    let mut first = it.next()?;
    if first.as_str() == Some("@setDataFrame") {
        first = it.next()?;
    }
    if first.as_str() != Some("onMetaData") {
        return None;
    }
    match it.next()? {
        v @ Value::Object(_) => Some(v),
        _ => None,
    }
}

fn message(csid: u32, type_id: u8, stream_id: u32, payload: Vec<u8>) -> Message {
    Message {
        csid,
        timestamp: 0,
        type_id,
        stream_id,
        payload: Bytes::from(payload),
    }
}

pub fn control(type_id: u8, value: u32) -> Message {
    message(2, type_id, 0, value.to_be_bytes().to_vec())
}

pub fn peer_bandwidth(value: u32) -> Message {
    let mut p = value.to_be_bytes().to_vec();
    p.push(2); // dynamic
    message(2, types::PEER_BANDWIDTH, 0, p)
}

/// User control "Stream Begin".
pub fn stream_begin(stream_id: u32) -> Message {
    let mut p = vec![0, 0];
    p.extend_from_slice(&stream_id.to_be_bytes());
    message(2, types::USER_CONTROL, 0, p)
}

pub fn command(stream_id: u32, values: &[Value]) -> Message {
    message(3, types::COMMAND_AMF0, stream_id, amf0::encode_all(values))
}

pub fn result(transaction: f64, object: Value, info: Value) -> Message {
    command(
        0,
        &[
            Value::string("_result"),
            Value::Number(transaction),
            object,
            info,
        ],
    )
}

pub fn connect_result(transaction: f64) -> Message {
    result(
        transaction,
        Value::object([
            ("fmsVer", Value::string("FMS/3,0,1,123")),
            ("capabilities", Value::Number(31.0)),
        ]),
        Value::object([
            ("level", Value::string("status")),
            ("code", Value::string("NetConnection.Connect.Success")),
            ("description", Value::string("Connection succeeded.")),
            ("objectEncoding", Value::Number(0.0)),
        ]),
    )
}

pub fn on_status(stream_id: u32, level: &str, code: &str, description: &str) -> Message {
    command(
        stream_id,
        &[
            Value::string("onStatus"),
            Value::Number(0.0),
            Value::Null,
            Value::object([
                ("level", Value::string(level)),
                ("code", Value::string(code)),
                ("description", Value::string(description)),
            ]),
        ],
    )
}

/// Split `app` + `stream name` into `(lv_id, stream key)`. Accepts OBS style (app
/// `live/<lv>`, name `<key>`) and single-URL style (app `live`, name `<lv>/<key>`); a query
/// string on either part is ignored.
pub fn publish_target(app: &str, name: &str) -> Option<(String, String)> {
    let strip = |s: &str| s.split('?').next().unwrap_or("").to_owned();
    let path = format!("{}/{}", strip(app), strip(name));
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["live", lv, key] => Some(((*lv).to_owned(), (*key).to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            publish_target("live/lv_a", "sk_b"),
            Some(("lv_a".into(), "sk_b".into()))
        );
        assert_eq!(
            publish_target("live", "lv_a/sk_b?x=1"),
            Some(("lv_a".into(), "sk_b".into()))
        );
        assert_eq!(
            publish_target("live/lv_a?t=1", "sk_b"),
            Some(("lv_a".into(), "sk_b".into()))
        );
        assert_eq!(publish_target("app", "x"), None);
        assert_eq!(publish_target("live/lv_a", ""), None);
    }

    #[test]
    fn metadata() {
        let p = amf0::encode_all(&[
            Value::string("@setDataFrame"),
            Value::string("onMetaData"),
            Value::object([("width", Value::Number(1280.0))]),
        ]);
        assert_eq!(
            parse_metadata(&p).and_then(|m| m.get("width").and_then(Value::as_f64)),
            Some(1280.0)
        );
    }

    #[tokio::test]
    async fn handshake_refuses_garbage() {
        let (mut a, mut b) = tokio::io::duplex(8192);
        let server = tokio::spawn(async move { handshake(&mut b, 7).await });
        a.write_all(b"GET / HTTP/1.1\r\n").await.ok();
        let r = server.await.ok();
        assert!(matches!(r, Some(Err(HandshakeError::Version(b'G')))));
    }
}
