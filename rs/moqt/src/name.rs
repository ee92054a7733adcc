//! Track Namespace, Track Name, Location and Reason Phrase.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::coding::{get_bytes, put_bytes, Encode, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::varint;

/// Maximum number of Track Namespace Fields.
pub const MAX_NAMESPACE_FIELDS: usize = 32;
/// Maximum total length of a Track Namespace, and of a Full Track Name
/// (namespace field lengths plus track name length).
pub const MAX_FULL_NAME_LEN: usize = 4096;
/// Maximum Reason Phrase length in bytes.
pub const MAX_REASON_LEN: usize = 1024;

/// A Track Namespace: 0 to 32 non-empty byte fields, at most 4096 bytes in
/// total. The invariants hold for every value of this type.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackNamespace {
    fields: Vec<Bytes>,
}

impl TrackNamespace {
    /// The empty namespace (zero fields).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a namespace from byte fields, checking the draft's limits.
    pub fn new<I, F>(fields: I) -> Result<Self, EncodeError>
    where
        I: IntoIterator<Item = F>,
        F: Into<Bytes>,
    {
        let fields: Vec<Bytes> = fields.into_iter().map(Into::into).collect();
        if fields.len() > MAX_NAMESPACE_FIELDS {
            return Err(EncodeError::TooLong {
                what: "track namespace fields",
                len: fields.len(),
                max: MAX_NAMESPACE_FIELDS,
            });
        }
        if fields.iter().any(|f| f.is_empty()) {
            return Err(EncodeError::Invalid("empty track namespace field"));
        }
        let total: usize = fields.iter().map(|f| f.len()).sum();
        if total > MAX_FULL_NAME_LEN {
            return Err(EncodeError::TooLong {
                what: "track namespace",
                len: total,
                max: MAX_FULL_NAME_LEN,
            });
        }
        Ok(Self { fields })
    }

    /// Builds a namespace from string parts, e.g. `["stream", org, id]`.
    pub fn from_strs<'a, I>(parts: I) -> Result<Self, EncodeError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        Self::new(
            parts
                .into_iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes())),
        )
    }

    /// Splits `path` on `/` into fields (`"stream/org_1/lv_2"`).
    pub fn from_path(path: &str) -> Result<Self, EncodeError> {
        if path.is_empty() {
            return Ok(Self::empty());
        }
        Self::from_strs(path.split('/'))
    }

    /// The fields.
    pub fn fields(&self) -> &[Bytes] {
        &self.fields
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True for zero fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Sum of field lengths.
    pub fn byte_len(&self) -> usize {
        self.fields.iter().map(|f| f.len()).sum()
    }

    /// True if `prefix`'s fields are a (field-wise) prefix of ours.
    pub fn starts_with(&self, prefix: &TrackNamespace) -> bool {
        self.fields.starts_with(&prefix.fields)
    }

    /// The fields after `prefix`, if it is a prefix.
    pub fn strip_prefix(&self, prefix: &TrackNamespace) -> Option<TrackNamespace> {
        self.fields
            .strip_prefix(prefix.fields.as_slice())
            .map(|rest| TrackNamespace {
                fields: rest.to_vec(),
            })
    }

    /// `self` followed by `suffix`'s fields (checked against the limits).
    pub fn join(&self, suffix: &TrackNamespace) -> Result<TrackNamespace, EncodeError> {
        Self::new(self.fields.iter().chain(suffix.fields.iter()).cloned())
    }

    /// Fields rendered lossily as UTF-8 and joined with `/`.
    pub fn to_path(&self) -> String {
        self.fields
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<Vec<_>>()
            .join("/")
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = r.varint()?;
        if count > MAX_NAMESPACE_FIELDS as u64 {
            return Err(DecodeError::TooLong {
                what: "track namespace fields",
                len: count,
                max: MAX_NAMESPACE_FIELDS,
            });
        }
        let mut fields = Vec::with_capacity(count as usize);
        let mut total = 0usize;
        for _ in 0..count {
            let f = get_bytes(r, MAX_FULL_NAME_LEN, "track namespace field")?;
            if f.is_empty() {
                return Err(DecodeError::ProtocolViolation(
                    "empty track namespace field",
                ));
            }
            total += f.len();
            if total > MAX_FULL_NAME_LEN {
                return Err(DecodeError::TooLong {
                    what: "track namespace",
                    len: total as u64,
                    max: MAX_FULL_NAME_LEN,
                });
            }
            fields.push(f);
        }
        Ok(Self { fields })
    }
}

impl Encode for TrackNamespace {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        varint::encode(self.fields.len() as u64, buf);
        for f in &self.fields {
            put_bytes(buf, f);
        }
    }
}

/// Renders with the draft's recommended safe form: fields joined by `-`,
/// bytes outside `[a-zA-Z0-9_]` as `.` plus two lowercase hex digits.
impl fmt::Display for TrackNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write_safe(f, field)?;
        }
        Ok(())
    }
}

impl fmt::Debug for TrackNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackNamespace({self})")
    }
}

fn write_safe(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b == b'_' {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, ".{b:02x}")?;
        }
    }
    Ok(())
}

/// Renders a Full Track Name in the draft's safe form (`ns1-ns2--name`).
pub fn render_full_name(namespace: &TrackNamespace, name: &[u8]) -> String {
    struct Safe<'a>(&'a [u8]);
    impl fmt::Display for Safe<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_safe(f, self.0)
        }
    }
    format!("{namespace}--{}", Safe(name))
}

/// Reads `Track Name Length (vi64), Track Name (..)` and checks the Full
/// Track Name limit against `namespace`.
pub(crate) fn decode_track_name(
    r: &mut Reader<'_>,
    namespace: &TrackNamespace,
) -> Result<Bytes, DecodeError> {
    let max = MAX_FULL_NAME_LEN - namespace.byte_len();
    get_bytes(r, max, "full track name")
}

/// Checks the Full Track Name limit (4096 bytes) for encoding.
pub fn check_full_name(namespace: &TrackNamespace, name: &[u8]) -> Result<(), EncodeError> {
    let len = namespace.byte_len() + name.len();
    if len > MAX_FULL_NAME_LEN {
        return Err(EncodeError::TooLong {
            what: "full track name",
            len,
            max: MAX_FULL_NAME_LEN,
        });
    }
    Ok(())
}

/// A Location `{Group, Object}`. Ordered as the draft defines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// Group ID.
    pub group: u64,
    /// Object ID.
    pub object: u64,
}

impl Location {
    /// `{group, object}`.
    pub const fn new(group: u64, object: u64) -> Self {
        Self { group, object }
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            group: r.varint()?,
            object: r.varint()?,
        })
    }
}

impl Encode for Location {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        varint::encode(self.group, buf);
        varint::encode(self.object, buf);
    }
}

/// A Reason Phrase: at most 1024 bytes, meant to be UTF-8 (kept as raw
/// bytes so relays forward it unchanged).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ReasonPhrase(Bytes);

impl ReasonPhrase {
    /// From text, truncated to 1024 bytes on a character boundary.
    pub fn new(text: &str) -> Self {
        let mut end = text.len().min(MAX_REASON_LEN);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self(Bytes::copy_from_slice(&text.as_bytes()[..end]))
    }

    /// From raw bytes; fails above 1024 bytes.
    pub fn from_bytes(b: impl Into<Bytes>) -> Result<Self, EncodeError> {
        let b = b.into();
        if b.len() > MAX_REASON_LEN {
            return Err(EncodeError::TooLong {
                what: "reason phrase",
                len: b.len(),
                max: MAX_REASON_LEN,
            });
        }
        Ok(Self(b))
    }

    /// Raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Text (invalid UTF-8 replaced).
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        get_bytes(r, MAX_REASON_LEN, "reason phrase").map(Self)
    }
}

impl From<&str> for ReasonPhrase {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for ReasonPhrase {
    fn from(s: String) -> Self {
        Self::new(&s)
    }
}

impl fmt::Debug for ReasonPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl Encode for ReasonPhrase {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        put_bytes(buf, &self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::Eof;

    #[test]
    fn namespace_limits() {
        assert!(TrackNamespace::from_strs(std::iter::repeat_n("a", 32)).is_ok());
        assert!(TrackNamespace::from_strs(std::iter::repeat_n("a", 33)).is_err());
        assert!(TrackNamespace::from_strs(["a", ""]).is_err());
        let big = "x".repeat(4097);
        assert!(TrackNamespace::from_strs([big.as_str()]).is_err());

        // 33 fields on the wire.
        let mut buf = Vec::new();
        varint::encode(33, &mut buf);
        let mut r = Reader::bounded(&buf, Eof::Protocol);
        assert!(TrackNamespace::decode_from(&mut r).is_err());
        // zero-length field on the wire.
        let buf = [1u8, 0u8];
        let mut r = Reader::bounded(&buf, Eof::Protocol);
        assert!(matches!(
            TrackNamespace::decode_from(&mut r),
            Err(DecodeError::ProtocolViolation(_))
        ));
    }

    #[test]
    fn namespace_helpers() {
        let ns = TrackNamespace::from_path("stream/org_1/lv_2").unwrap();
        assert_eq!(ns.len(), 3);
        let prefix = TrackNamespace::from_strs(["stream"]).unwrap();
        assert!(ns.starts_with(&prefix));
        let suffix = ns.strip_prefix(&prefix).unwrap();
        assert_eq!(suffix.to_path(), "org_1/lv_2");
        assert_eq!(prefix.join(&suffix).unwrap(), ns);
        let ex = TrackNamespace::from_strs(["example.net", "team2", "project_x"]).unwrap();
        assert_eq!(
            render_full_name(&ex, b"report"),
            "example.2enet-team2-project_x--report"
        );
    }

    #[test]
    fn reason_truncates() {
        let r = ReasonPhrase::new(&"é".repeat(600));
        assert!(r.as_bytes().len() <= MAX_REASON_LEN);
        assert!(ReasonPhrase::from_bytes(vec![b'a'; 1025]).is_err());
    }
}
