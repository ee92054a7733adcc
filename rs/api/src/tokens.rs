//! Playback tokens: asymmetric JWTs (ES256 or EdDSA) with a `kid`, minted by the control plane
//! and verified by the relay's authorizer, the playback-info endpoint and the VOD path.
//!
//! Minting uses `ring` directly with the key pair parsed once and cached (the JWS compact form is
//! three base64url parts; signing is the only expensive step). Verification goes through
//! `jsonwebtoken`, pinned to the one algorithm the key was created for, so `alg: none`, HS256
//! with the public key as HMAC secret, or any algorithm switch is refused before any crypto.
//!
//! Claims: `sub` = playback id (`lv_…` or `pb_…`), `org` = org id, `aud` = configured audience,
//! `iat`, `exp` (seconds since the Unix epoch).

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{Deserialize, Serialize};

use crate::store::SigningKeyRow;
use crate::Error;

/// The signing algorithms we issue. Nothing else is ever accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SigningAlg {
    ES256,
    #[default]
    EdDSA,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" | "es256" => Ok(SigningAlg::ES256),
            "EdDSA" | "eddsa" | "Ed25519" | "ed25519" => Ok(SigningAlg::EdDSA),
            other => Err(format!(
                "unsupported signing algorithm {other:?} (ES256 or EdDSA)"
            )),
        }
    }
}

/// The claims of a playback token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackClaims {
    /// Playback id: `lv_…` (live) or `pb_…` (VOD).
    pub sub: String,
    /// Org that owns the playback id.
    pub org: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// Why a token was refused. Only logged; clients see `auth_failed` / `token_invalid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token has no kid")]
    NoKid,
    #[error("unknown or deleted signing key")]
    UnknownKey,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("wrong audience")]
    Audience,
    #[error("token is for another playback id")]
    WrongId,
    #[error("token is for another org")]
    WrongOrg,
    #[error("invalid claims: {0}")]
    Claims(String),
}

/// Header fields we look at before choosing a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    pub kid: String,
    pub alg: String,
}

/// Read `kid` and `alg` from a token's header without trusting anything else.
pub fn peek(token: &str) -> Result<Peek, TokenError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: String,
        kid: Option<String>,
    }
    let head = token.split('.').next().ok_or(TokenError::Malformed)?;
    if token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| TokenError::Malformed)?;
    let h: RawHeader = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    let kid = h.kid.ok_or(TokenError::NoKid)?;
    Ok(Peek { kid, alg: h.alg })
}

/// What a verifier expects of a token.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The playback id being accessed (namespace id or URL id).
    pub playback_id: &'a str,
    /// The org owning that id, when known (relay namespace); `None` trusts the key's org.
    pub org: Option<&'a str>,
    pub audience: &'a str,
}

/// Verify a playback token with a key already selected by `kid` (see [`peek`]).
///
/// Checks, in order: the header's `alg` equals the key's algorithm (ES256/EdDSA only), the
/// signature, `exp` (no leeway), `aud`, then that `sub` is the expected playback id and `org`
/// is both the key's org and the expected org.
pub fn verify_playback(
    token: &str,
    key: &VerifyingKey,
    expect: &Expect<'_>,
) -> Result<PlaybackClaims, TokenError> {
    let head = peek(token)?;
    if head.kid != key.kid {
        return Err(TokenError::UnknownKey);
    }
    if head.alg != key.alg.as_str() {
        return Err(TokenError::Algorithm);
    }
    let mut v = Validation::new(key.alg.jwt());
    v.leeway = 0;
    v.validate_exp = true;
    v.validate_nbf = false;
    v.set_audience(&[expect.audience]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    let data = jsonwebtoken::decode::<PlaybackClaims>(token, &key.decoding, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => TokenError::Expired,
            K::InvalidAudience => TokenError::Audience,
            K::InvalidSignature | K::InvalidEcdsaKey | K::Crypto(_) => TokenError::Signature,
            K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::Algorithm,
            K::MissingRequiredClaim(c) => TokenError::Claims(format!("missing {c}")),
            K::Json(_) => TokenError::Claims("claims are not the playback shape".into()),
            _ => TokenError::Malformed,
        }
    })?;
    let claims = data.claims;
    if claims.sub != expect.playback_id {
        return Err(TokenError::WrongId);
    }
    if claims.org != key.org_id || expect.org.is_some_and(|o| o != claims.org) {
        return Err(TokenError::WrongOrg);
    }
    Ok(claims)
}

/// The public half of a signing key, ready to verify.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: String,
    pub org_id: String,
    pub alg: SigningAlg,
    /// Unix ms after which this key no longer verifies (`None`: active key).
    pub verify_until: Option<i64>,
    decoding: DecodingKey,
    /// JWK `x` (and `y` for P-256), base64url.
    pub x: String,
    pub y: Option<String>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("org_id", &self.org_id)
            .field("alg", &self.alg)
            .finish()
    }
}

impl VerifyingKey {
    pub fn from_row(row: &SigningKeyRow) -> Result<Self, Error> {
        let alg: SigningAlg = row.alg.parse().map_err(Error::Crypto)?;
        let decoding = match (alg, &row.public_y) {
            (SigningAlg::ES256, Some(y)) => DecodingKey::from_ec_components(&row.public_x, y),
            (SigningAlg::EdDSA, None) => DecodingKey::from_ed_components(&row.public_x),
            _ => {
                return Err(Error::Crypto(format!(
                    "signing key {} has inconsistent components",
                    row.kid
                )))
            }
        }
        .map_err(|e| Error::Crypto(format!("signing key {}: {e}", row.kid)))?;
        Ok(VerifyingKey {
            kid: row.kid.clone(),
            org_id: row.org_id.clone(),
            alg,
            verify_until: row.verify_until,
            decoding,
            x: row.public_x.clone(),
            y: row.public_y.clone(),
        })
    }

    /// The JWK (RFC 7517) of this key.
    pub fn jwk(&self) -> serde_json::Value {
        match self.alg {
            SigningAlg::ES256 => serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "kid": self.kid, "alg": "ES256", "use": "sig",
            }),
            SigningAlg::EdDSA => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "alg": "EdDSA", "use": "sig",
            }),
        }
    }
}

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with its pre-encoded JWS header.
pub struct Signer {
    pub kid: String,
    pub org_id: String,
    pub alg: SigningAlg,
    header_b64: String,
    pair: Pair,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// A freshly minted token.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub claims: PlaybackClaims,
    pub kid: String,
}

impl Signer {
    /// Generate a new key for `org` and the row that stores it.
    pub fn generate(
        org_id: &str,
        alg: SigningAlg,
        kid: String,
        now_ms: i64,
    ) -> Result<(Signer, SigningKeyRow), Error> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            SigningAlg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| Error::Crypto("key generation failed".into()))?;
        let mut row = SigningKeyRow {
            kid,
            org_id: org_id.to_owned(),
            alg: alg.as_str().to_owned(),
            public_x: String::new(),
            public_y: None,
            private_pkcs8: STANDARD.encode(pkcs8.as_ref()),
            created_at: now_ms,
            retired_at: None,
            verify_until: None,
        };
        let signer = Signer::from_row(&row)?;
        let (x, y) = signer.public_components();
        row.public_x = x;
        row.public_y = y;
        Ok((signer, row))
    }

    pub fn from_row(row: &SigningKeyRow) -> Result<Signer, Error> {
        let alg: SigningAlg = row.alg.parse().map_err(Error::Crypto)?;
        let der = STANDARD
            .decode(&row.private_pkcs8)
            .map_err(|_| Error::Crypto(format!("signing key {}: bad base64", row.kid)))?;
        let rng = SystemRandom::new();
        let pair = match alg {
            SigningAlg::ES256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
                    .map_err(|e| Error::Crypto(format!("signing key {}: {e}", row.kid)))?,
            ),
            SigningAlg::EdDSA => Pair::Ed(
                Ed25519KeyPair::from_pkcs8(&der)
                    .map_err(|e| Error::Crypto(format!("signing key {}: {e}", row.kid)))?,
            ),
        };
        let header = serde_json::json!({ "alg": alg.as_str(), "typ": "JWT", "kid": row.kid });
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(Signer {
            kid: row.kid.clone(),
            org_id: row.org_id.clone(),
            alg,
            header_b64,
            pair,
            rng,
        })
    }

    fn public_components(&self) -> (String, Option<String>) {
        match &self.pair {
            Pair::Ec(p) => {
                // Uncompressed SEC1 point: 0x04 || x || y.
                let pt = p.public_key().as_ref();
                let (x, y) = pt.get(1..33).zip(pt.get(33..65)).unwrap_or((&[], &[]));
                (URL_SAFE_NO_PAD.encode(x), Some(URL_SAFE_NO_PAD.encode(y)))
            }
            Pair::Ed(p) => (URL_SAFE_NO_PAD.encode(p.public_key().as_ref()), None),
        }
    }

    /// Sign `claims` (whose `org` must be this key's org).
    pub fn mint(&self, claims: PlaybackClaims) -> Result<Minted, Error> {
        let payload =
            serde_json::to_vec(&claims).map_err(|e| Error::Crypto(format!("claims: {e}")))?;
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let sig = match &self.pair {
            Pair::Ec(p) => p
                .sign(&self.rng, token.as_bytes())
                .map_err(|_| Error::Crypto("ecdsa signing failed".into()))?
                .as_ref()
                .to_vec(),
            Pair::Ed(p) => p.sign(token.as_bytes()).as_ref().to_vec(),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut token);
        Ok(Minted {
            token,
            claims,
            kid: self.kid.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_s() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    fn claims(exp_in: i64) -> PlaybackClaims {
        let now = now_s();
        PlaybackClaims {
            sub: "lv_1".into(),
            org: "org_a".into(),
            aud: "aud".into(),
            iat: now,
            exp: (now as i64 + exp_in) as u64,
        }
    }

    fn roundtrip(alg: SigningAlg) -> Result<(), Error> {
        let (signer, row) = Signer::generate("org_a", alg, "kid_1".into(), 0)?;
        let key = VerifyingKey::from_row(&row)?;
        let expect = Expect {
            playback_id: "lv_1",
            org: Some("org_a"),
            audience: "aud",
        };
        let m = signer.mint(claims(60))?;
        assert_eq!(
            verify_playback(&m.token, &key, &expect),
            Ok(m.claims.clone())
        );
        let expired = signer.mint(claims(-5))?;
        assert_eq!(
            verify_playback(&expired.token, &key, &expect),
            Err(TokenError::Expired)
        );
        let other = Expect {
            playback_id: "lv_2",
            ..expect
        };
        assert_eq!(
            verify_playback(&m.token, &key, &other),
            Err(TokenError::WrongId)
        );
        let other = Expect {
            org: Some("org_b"),
            ..expect
        };
        assert_eq!(
            verify_playback(&m.token, &key, &other),
            Err(TokenError::WrongOrg)
        );
        let other = Expect {
            audience: "x",
            ..expect
        };
        assert_eq!(
            verify_playback(&m.token, &key, &other),
            Err(TokenError::Audience)
        );
        Ok(())
    }

    #[test]
    fn es256_round_trip() -> Result<(), Error> {
        roundtrip(SigningAlg::ES256)
    }

    #[test]
    fn eddsa_round_trip() -> Result<(), Error> {
        roundtrip(SigningAlg::EdDSA)
    }

    #[test]
    fn peek_rejects_garbage() {
        assert_eq!(peek("a.b"), Err(TokenError::Malformed));
        assert_eq!(peek("!!.b.c"), Err(TokenError::Malformed));
        let no_kid = format!("{}.e30.x", URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#));
        assert_eq!(peek(&no_kid), Err(TokenError::NoKid));
    }
}
