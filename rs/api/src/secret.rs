//! Identifiers, secrets and their hashes.
//!
//! API keys and stream keys carry 256 bits from the OS CSPRNG, so a single SHA-256 is the right
//! at-rest form: a slow password hash (argon2, bcrypt) only helps against guessing low-entropy
//! secrets, and would cost milliseconds on every API request and every publish.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Error;

/// `len` random bytes from the OS generator.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| Error::Crypto("system random generator failed".into()))?;
    Ok(buf)
}

/// A new id: `prefix` + 24 lowercase hex characters (96 random bits).
pub(crate) fn new_id(prefix: &str) -> Result<String, Error> {
    Ok(format!("{prefix}{}", hex::encode(random_bytes::<12>()?)))
}

/// A new 256-bit secret: `prefix` + 43 base64url characters.
pub(crate) fn new_secret(prefix: &str) -> Result<String, Error> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// Hex SHA-256 of a secret, the form stored in the database.
pub(crate) fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `presented` hashes to `stored_hex`, compared in constant time.
pub(crate) fn verify(presented: &[u8], stored_hex: &str) -> bool {
    let Ok(stored) = hex::decode(stored_hex) else {
        return false;
    };
    let digest = Sha256::digest(presented);
    stored.len() == digest.len() && bool::from(digest.as_slice().ct_eq(&stored))
}

/// Whether `s` can be one of our ids: 1..=64 ASCII letters, digits or `_`. Checked before any
/// query so that hostile input (NUL bytes, which PostgreSQL rejects) reads as "not found".
pub(crate) fn plausible_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Prefixes, kept in one place.
pub(crate) mod prefix {
    pub const ORG: &str = "org_";
    pub const API_KEY: &str = "ak_";
    pub const LIVE_INPUT: &str = "li_";
    pub const LIVE_PLAYBACK: &str = "lv_";
    pub const VOD_PLAYBACK: &str = "pb_";
    pub const KID: &str = "kid_";
    pub const STREAM_KEY: &str = "sk_";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_their_shape() -> Result<(), Error> {
        let id = new_id("li_")?;
        assert_eq!(id.len(), 3 + 24);
        let s = new_secret("sk_")?;
        assert_eq!(s.len(), 3 + 43);
        assert!(verify(s.as_bytes(), &hash(&s)));
        assert!(!verify(b"sk_nope", &hash(&s)));
        assert!(!verify(s.as_bytes(), "not-hex"));
        Ok(())
    }
}
