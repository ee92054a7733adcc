//! tus 1.0.0 header values (and the `Tus-Resumable: 2.0.0` of recipe 3), parsed strictly.
//!
//! Everything here takes untrusted header bytes and answers a [`HeaderError`]; nothing panics,
//! nothing allocates more than the header's own size. The HTTP handlers in `api` map each error
//! to a 4xx with a stable code.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The protocol version we answer with.
pub const VERSION: &str = "1.0.0";
/// Versions accepted in `Tus-Resumable` (2.0.0: the recipe's "TUS2" client).
pub const ACCEPTED_VERSIONS: [&str; 2] = ["1.0.0", "2.0.0"];
/// `Tus-Extension` advertised by `OPTIONS`.
pub const EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination";
/// `Tus-Checksum-Algorithm` advertised by `OPTIONS`.
pub const CHECKSUM_ALGORITHMS: &str = "sha256";
/// The only content type of a PATCH body.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Longest decimal we accept for an offset or length (u64::MAX has 20 digits; we cap lower so
/// every value also fits a signed 64-bit database column).
const MAX_DIGITS: usize = 18;
/// Largest `Upload-Metadata` header we parse.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Most metadata pairs.
const MAX_METADATA_PAIRS: usize = 32;

/// Why a tus header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("{0} is not valid UTF-8/ASCII")]
    NotAscii(&'static str),
    #[error("{0} must be a non-negative decimal integer")]
    NotANumber(&'static str),
    #[error("{0} is too large")]
    TooLarge(&'static str),
    #[error("Upload-Metadata is malformed: {0}")]
    Metadata(&'static str),
    #[error("Upload-Checksum is malformed: {0}")]
    Checksum(&'static str),
    #[error("checksum algorithm {0:?} is not supported (sha256 is)")]
    ChecksumAlgorithm(String),
    #[error("Tus-Resumable {0:?} is not supported (1.0.0 is)")]
    Version(String),
    #[error("{0} must be ?0 or ?1")]
    Boolean(&'static str),
}

/// Parse an `Upload-Offset` / `Upload-Length` value: ASCII digits only (no sign, no spaces
/// inside, no leading `+`), at most 18 digits, so the value fits `i64`.
pub fn parse_u63(name: &'static str, raw: &[u8]) -> Result<u64, HeaderError> {
    let s = std::str::from_utf8(raw).map_err(|_| HeaderError::NotAscii(name))?;
    let s = s.trim_matches(|c| c == ' ' || c == '\t');
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::NotANumber(name));
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > MAX_DIGITS {
        return Err(HeaderError::TooLarge(name));
    }
    if digits.is_empty() {
        return Ok(0);
    }
    digits
        .parse::<u64>()
        .map_err(|_| HeaderError::TooLarge(name))
}

/// `Tus-Resumable`: one of [`ACCEPTED_VERSIONS`].
pub fn check_version(raw: &[u8]) -> Result<(), HeaderError> {
    let s = std::str::from_utf8(raw).map_err(|_| HeaderError::NotAscii("Tus-Resumable"))?;
    let s = s.trim();
    if ACCEPTED_VERSIONS.contains(&s) {
        Ok(())
    } else {
        Err(HeaderError::Version(s.chars().take(32).collect()))
    }
}

/// Whether a `Content-Type` is `application/offset+octet-stream` (parameters ignored,
/// case-insensitive).
pub fn is_offset_octet_stream(raw: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(raw) else {
        return false;
    };
    s.split(';')
        .next()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

/// One `Upload-Metadata` pair: key and (optional) decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaPair {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs (value optional); keys are
/// non-empty ASCII without spaces or commas and unique.
pub fn parse_metadata(raw: &[u8]) -> Result<Vec<MetaPair>, HeaderError> {
    if raw.len() > MAX_METADATA_BYTES {
        return Err(HeaderError::TooLarge("Upload-Metadata"));
    }
    let s = std::str::from_utf8(raw).map_err(|_| HeaderError::NotAscii("Upload-Metadata"))?;
    let mut out: Vec<MetaPair> = Vec::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(HeaderError::Metadata("empty pair"));
        }
        let mut it = part.split(' ').filter(|p| !p.is_empty());
        let key = it.next().ok_or(HeaderError::Metadata("empty key"))?;
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HeaderError::Metadata("key must be printable ASCII"));
        }
        let value = match it.next() {
            None => None,
            Some(v) => Some(
                STANDARD
                    .decode(v)
                    .map_err(|_| HeaderError::Metadata("value is not base64"))?,
            ),
        };
        if it.next().is_some() {
            return Err(HeaderError::Metadata("a pair has more than two parts"));
        }
        if out.iter().any(|p| p.key == key) {
            return Err(HeaderError::Metadata("duplicate key"));
        }
        if out.len() == MAX_METADATA_PAIRS {
            return Err(HeaderError::TooLarge("Upload-Metadata"));
        }
        out.push(MetaPair {
            key: key.to_owned(),
            value,
        });
    }
    Ok(out)
}

/// The UTF-8 value of metadata `key`, if present and valid UTF-8.
pub fn metadata_str<'a>(pairs: &'a [MetaPair], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|p| p.key == key)
        .and_then(|p| p.value.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// `Upload-Checksum: sha256 <base64 digest>` → the 32-byte digest.
pub fn parse_checksum(raw: &[u8]) -> Result<[u8; 32], HeaderError> {
    let s = std::str::from_utf8(raw).map_err(|_| HeaderError::NotAscii("Upload-Checksum"))?;
    let mut it = s.trim().split(' ').filter(|p| !p.is_empty());
    let algo = it
        .next()
        .ok_or(HeaderError::Checksum("missing algorithm"))?;
    let digest = it.next().ok_or(HeaderError::Checksum("missing digest"))?;
    if it.next().is_some() {
        return Err(HeaderError::Checksum("extra fields"));
    }
    if !algo.eq_ignore_ascii_case("sha256") {
        return Err(HeaderError::ChecksumAlgorithm(
            algo.chars().take(32).collect(),
        ));
    }
    if digest.len() > 64 {
        return Err(HeaderError::Checksum("digest too long"));
    }
    let bytes = STANDARD
        .decode(digest)
        .map_err(|_| HeaderError::Checksum("digest is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| HeaderError::Checksum("a sha256 digest has 32 bytes"))
}

/// A structured-field boolean (`?0` / `?1`), as in `Upload-Complete` of the IETF resumable
/// upload drafts.
pub fn parse_sf_bool(name: &'static str, raw: &[u8]) -> Result<bool, HeaderError> {
    match raw {
        b"?1" => Ok(true),
        b"?0" => Ok(false),
        _ => Err(HeaderError::Boolean(name)),
    }
}

/// RFC 9110 IMF-fixdate of Unix seconds (`Upload-Expires`).
pub fn http_date(unix_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = unix_secs.max(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let wd = usize::try_from(days % 7).unwrap_or(0);
    let mi = usize::try_from(month - 1).unwrap_or(0);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[wd], d, MONTHS[mi], year, h, m, s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_u63("o", b"0"), Ok(0));
        assert_eq!(parse_u63("o", b"000"), Ok(0));
        assert_eq!(parse_u63("o", b" 42 "), Ok(42));
        assert_eq!(
            parse_u63("o", b"999999999999999999"),
            Ok(999_999_999_999_999_999)
        );
        assert_eq!(
            parse_u63("o", b"9999999999999999999"),
            Err(HeaderError::TooLarge("o"))
        );
        for bad in [
            &b"-1"[..],
            b"+1",
            b"",
            b"1 2",
            b"0x10",
            b"1e3",
            b"\xff",
            b"1.0",
        ] {
            assert!(parse_u63("o", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata() {
        let m = parse_metadata(b"filename d29ybGQ=,is_confidential").unwrap_or_default();
        assert_eq!(metadata_str(&m, "filename"), Some("world"));
        assert_eq!(m[1].value, None);
        assert!(parse_metadata(b"a !!!").is_err());
        assert!(parse_metadata(b"a,a").is_err());
        assert!(parse_metadata(b"a,,b").is_err());
        assert!(parse_metadata(b"a YQ== YQ==").is_err());
        assert!(parse_metadata(&vec![b'a'; 5000]).is_err());
        assert_eq!(parse_metadata(b"").map(|m| m.len()), Ok(0));
    }

    #[test]
    fn checksum_and_version() {
        let d = STANDARD.encode([7u8; 32]);
        assert_eq!(
            parse_checksum(format!("sha256 {d}").as_bytes()),
            Ok([7u8; 32])
        );
        assert!(matches!(
            parse_checksum(format!("md5 {d}").as_bytes()),
            Err(HeaderError::ChecksumAlgorithm(_))
        ));
        assert!(parse_checksum(b"sha256 AAAA").is_err());
        assert!(parse_checksum(b"sha256").is_err());
        assert!(check_version(b"1.0.0").is_ok());
        assert!(check_version(b"2.0.0").is_ok());
        assert!(check_version(b"0.2.2").is_err());
        assert!(is_offset_octet_stream(
            b"application/offset+octet-stream; x=1"
        ));
        assert!(!is_offset_octet_stream(b"application/octet-stream"));
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
