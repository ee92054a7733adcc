//! AMF0 (Action Message Format 0), as RTMP commands and FLV script data use it.
//!
//! Decoding is bounded: nesting depth, element counts and string sizes are limited, and AMF3
//! switch markers, references and unknown markers are rejected.

use crate::{Error, Reader};

/// Nesting limit for objects and arrays.
const MAX_DEPTH: usize = 16;
/// Element limit per object or array.
const MAX_ELEMENTS: usize = 1024;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    /// Anonymous object (marker 0x03) or ECMA array (0x08): ordered key/value pairs.
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    StrictArray(Vec<Value>),
    /// Milliseconds since the epoch (the time-zone field is ignored).
    Date(f64),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Boolean(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
    /// Property `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(props) => props.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// Shorthand for an object value from `(&str, Value)` pairs.
    pub fn object<'a>(props: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
}

/// Decode every value in `buf` (an RTMP command or data message body).
pub fn decode_all(buf: &[u8]) -> Result<Vec<Value>, Error> {
    let mut r = Reader::new(buf, "amf0");
    let mut out = Vec::new();
    while r.remaining() > 0 {
        if out.len() >= MAX_ELEMENTS {
            return Err(Error::TooLarge("amf0 message"));
        }
        out.push(value(&mut r, 0)?);
    }
    Ok(out)
}

/// Decode one value from the front of `buf`; returns it and the bytes consumed.
pub fn decode(buf: &[u8]) -> Result<(Value, usize), Error> {
    let mut r = Reader::new(buf, "amf0");
    let v = value(&mut r, 0)?;
    Ok((v, r.pos()))
}

fn utf8(r: &mut Reader<'_>, n: usize) -> Result<String, Error> {
    let b = r.bytes(n)?;
    // Encoders in the wild send Latin-1 now and then; keep going with replacement characters.
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn short_string(r: &mut Reader<'_>) -> Result<String, Error> {
    let n = r.u16()? as usize;
    utf8(r, n)
}

fn value(r: &mut Reader<'_>, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooLarge("amf0 nesting"));
    }
    let marker = r.u8()?;
    Ok(match marker {
        0x00 => Value::Number(f64::from_bits(r.u64()?)),
        0x01 => Value::Boolean(r.u8()? != 0),
        0x02 => Value::String(short_string(r)?),
        0x03 => Value::Object(properties(r, depth)?),
        0x05 => Value::Null,
        0x06 => Value::Undefined,
        0x08 => {
            let _count_hint = r.u32()?;
            Value::Object(properties(r, depth)?)
        }
        0x0a => {
            let n = r.u32()? as usize;
            if n > MAX_ELEMENTS {
                return Err(Error::TooLarge("amf0 strict array"));
            }
            let mut items = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                items.push(value(r, depth + 1)?);
            }
            Value::StrictArray(items)
        }
        0x0b => {
            let ms = f64::from_bits(r.u64()?);
            r.skip(2)?;
            Value::Date(ms)
        }
        0x0c => {
            let n = r.u32()? as usize;
            Value::String(utf8(r, n)?)
        }
        // Typed object: class name, then properties like an anonymous object.
        0x10 => {
            let _class = short_string(r)?;
            Value::Object(properties(r, depth)?)
        }
        other => {
            return Err(Error::invalid(
                "amf0",
                format!("unsupported marker 0x{other:02x}"),
            ))
        }
    })
}

fn properties(r: &mut Reader<'_>, depth: usize) -> Result<Vec<(String, Value)>, Error> {
    let mut props = Vec::new();
    loop {
        let key = short_string(r)?;
        if key.is_empty() {
            // An empty key is followed by the object-end marker. Some encoders end an ECMA
            // array with the end marker after its counted entries; accept a missing one at EOF.
            if r.remaining() == 0 {
                return Ok(props);
            }
            let end = r.u8()?;
            if end == 0x09 {
                return Ok(props);
            }
            return Err(Error::invalid("amf0", "empty property name"));
        }
        if props.len() >= MAX_ELEMENTS {
            return Err(Error::TooLarge("amf0 object"));
        }
        let v = value(r, depth + 1)?;
        props.push((key, v));
    }
}

/// Append the AMF0 encoding of `v` to `out`.
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Number(n) => {
            out.push(0x00);
            out.extend_from_slice(&n.to_bits().to_be_bytes());
        }
        Value::Boolean(b) => {
            out.push(0x01);
            out.push(u8::from(*b));
        }
        Value::String(s) => {
            let b = s.as_bytes();
            if let Ok(n) = u16::try_from(b.len()) {
                out.push(0x02);
                out.extend_from_slice(&n.to_be_bytes());
            } else {
                out.push(0x0c);
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            }
            out.extend_from_slice(b);
        }
        Value::Object(props) => {
            out.push(0x03);
            for (k, v) in props {
                let kb = &k.as_bytes()[..k.len().min(u16::MAX as usize)];
                out.extend_from_slice(&(kb.len() as u16).to_be_bytes());
                out.extend_from_slice(kb);
                encode(v, out);
            }
            out.extend_from_slice(&[0, 0, 0x09]);
        }
        Value::Null => out.push(0x05),
        Value::Undefined => out.push(0x06),
        Value::StrictArray(items) => {
            out.push(0x0a);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for i in items {
                encode(i, out);
            }
        }
        Value::Date(ms) => {
            out.push(0x0b);
            out.extend_from_slice(&ms.to_bits().to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
    }
}

/// Encode a sequence of values (an RTMP command).
pub fn encode_all(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode(v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let vals = vec![
            Value::string("connect"),
            Value::Number(1.0),
            Value::object([
                ("app", Value::string("live/lv_1")),
                ("flag", Value::Boolean(true)),
                ("n", Value::Null),
                ("arr", Value::StrictArray(vec![Value::Number(2.5)])),
            ]),
            Value::Undefined,
        ];
        let bytes = encode_all(&vals);
        assert_eq!(decode_all(&bytes), Ok(vals));
    }

    #[test]
    fn ecma_array_and_limits() {
        let mut b = vec![0x08, 0, 0, 0, 1, 0, 5];
        b.extend_from_slice(b"width");
        b.push(0);
        b.extend_from_slice(&1280f64.to_bits().to_be_bytes());
        b.extend_from_slice(&[0, 0, 9]);
        let (v, n) = decode(&b).unwrap_or((Value::Null, 0));
        assert_eq!(n, b.len());
        assert_eq!(v.get("width").and_then(Value::as_f64), Some(1280.0));
        // Deep nesting is refused, not a stack overflow.
        let deep = [0x0a, 0, 0, 0, 1].repeat(10_000);
        assert!(decode_all(&deep).is_err());
        assert!(decode_all(&[0x11]).is_err());
        assert!(decode_all(&[0x02, 0xff]).is_err());
    }
}
