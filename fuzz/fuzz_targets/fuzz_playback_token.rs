#![no_main]
//! Playback JWTs, through the entry points the engine uses: `Api::verify_playback` (the
//! playback-info endpoint and `/vod/{pb}/…`) and the relay's `Authorizer` (SUBSCRIBE to
//! `stream/<org>/<lv>`), on a real control plane (SQLite in a temporary directory) with real
//! signing keys: an ES256 key, the retired EdDSA key still in its grace period, and another
//! org's key. Never panics, never a store error, and whatever is accepted is for the expected
//! id, org and audience and not expired.
//!
//! Input: one control byte, then the token.
//! * control & 3 == 0: the rest is the token, verbatim (bytes, not necessarily UTF-8).
//! * control & 3 == k (1..=3): the rest is `<header JSON>\n<claims JSON>` (or only the claims
//!   JSON, under the key's own header), signed with key k, so mutated claims and headers get
//!   past the signature to the claim checks. `$kid`, `$org`, `$lv` and `$pb` are replaced by
//!   the key's kid, the org, the live input's `lv_…` id and a VOD `pb_…` id.
//! * control & 4: verify for `$pb` instead of `$lv`; control & 8: without an expected org.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use api::tokens::SigningAlg;
use api::{Api, Config, Ingest};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use relay::auth::{Action, AuthRequest};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

const PB: &str = "pb_0123456789abcdef01234567";

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct Key {
    kid: String,
    org: String,
    alg: &'static str,
    pair: Pair,
}

struct Env {
    rt: tokio::runtime::Runtime,
    api: Api,
    authorizer: std::sync::Arc<dyn relay::auth::Authorizer>,
    org: String,
    lv: String,
    audience: String,
    /// org ES256 (active), org EdDSA (retired, still verifying), other org's EdDSA.
    keys: Vec<Key>,
    rng: SystemRandom,
}

fn key(row: &api::store::SigningKeyRow, rng: &SystemRandom) -> Key {
    let der = STANDARD.decode(&row.private_pkcs8).expect("pkcs8 base64");
    let alg: SigningAlg = row.alg.parse().expect("alg");
    let pair = match alg {
        SigningAlg::ES256 => Pair::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, rng).expect("p256"),
        ),
        SigningAlg::EdDSA => Pair::Ed(Ed25519KeyPair::from_pkcs8(&der).expect("ed25519")),
    };
    Key {
        kid: row.kid.clone(),
        org: row.org_id.clone(),
        alg: alg.as_str(),
        pair,
    }
}

fn setup() -> Env {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // One data directory per process; those of earlier runs (their process gone) are removed.
    const PREFIX: &str = "clutchcall-fuzz-token-";
    for e in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        let name = e.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(PREFIX));
        if pid.is_some_and(|p| !std::path::Path::new("/proc").join(p).exists()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = Config::new(&dir);
    cfg.announce_credentials = false;
    let audience = cfg.audience.clone();
    let rng = SystemRandom::new();
    let (api, org, lv, keys) = rt.block_on(async {
        let api = Api::open(cfg).await.expect("open api");
        // Bootstrap made the org and its EdDSA key; rotating to ES256 leaves the EdDSA key
        // verifying for its grace period.
        let org = api.bootstrap_credentials().expect("bootstrap").org_id;
        api.rotate_signing_key(&org, Some(SigningAlg::ES256))
            .await
            .expect("rotate");
        let (input, _) = api
            .create_input(&org, "fuzz", Ingest::Fmp4)
            .await
            .expect("input");
        let other = api.create_org("other").await.expect("org").org_id;
        let mut keys = Vec::new();
        for o in [&org, &other] {
            for row in api.list_signing_keys(o).await.expect("keys") {
                keys.push(key(&row, &rng));
            }
        }
        (api, org, input.external_input_id, keys)
    });
    assert_eq!(keys.len(), 3, "ES256 + retired EdDSA + other org's EdDSA");
    assert_eq!(keys[0].alg, "ES256", "the active key is listed first");
    Env {
        rt,
        authorizer: api.authorizer(),
        api,
        org,
        lv,
        audience,
        keys,
        rng,
    }
}

fn replace(mut s: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut i = 0;
    while i + from.len() <= s.len() {
        if &s[i..i + from.len()] == from {
            s.splice(i..i + from.len(), to.iter().copied());
            i += to.len();
        } else {
            i += 1;
        }
    }
    s
}

fn sign(env: &Env, k: &Key, rest: &[u8]) -> Vec<u8> {
    let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (rest[..i].to_vec(), &rest[i + 1..]),
        None => (
            format!(r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#, k.alg, k.kid).into_bytes(),
            rest,
        ),
    };
    let fill = |b: Vec<u8>| {
        let b = replace(b, b"$kid", k.kid.as_bytes());
        let b = replace(b, b"$org", env.org.as_bytes());
        let b = replace(b, b"$lv", env.lv.as_bytes());
        replace(b, b"$pb", PB.as_bytes())
    };
    let mut token = URL_SAFE_NO_PAD.encode(fill(header));
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(fill(claims.to_vec())));
    let sig = match &k.pair {
        Pair::Ec(p) => p
            .sign(&env.rng, token.as_bytes())
            .expect("ecdsa sign")
            .as_ref()
            .to_vec(),
        Pair::Ed(p) => p.sign(token.as_bytes()).as_ref().to_vec(),
    };
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig));
    token.into_bytes()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    static ENV: OnceLock<Env> = OnceLock::new();
    let env = ENV.get_or_init(setup);
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let token = match usize::from(control & 3) {
        0 => rest.to_vec(),
        k => sign(env, &env.keys[k - 1], rest),
    };
    let id = if control & 4 == 0 { env.lv.as_str() } else { PB };
    let org = (control & 8 == 0).then_some(env.org.as_str());
    // Before verifying: an accepted token's `exp` is not earlier than this.
    let now = now_s();

    // HTTP: `?token=` / `Authorization: Bearer` arrive as text.
    if let Ok(t) = std::str::from_utf8(&token) {
        let verdict = env
            .rt
            .block_on(env.api.verify_playback(t, id, org))
            .expect("a token must never cause a store error");
        if let Ok(c) = verdict {
            assert_eq!(c.sub, id);
            assert_eq!(c.aud, env.audience);
            // Without an expected org the key's org is trusted; with one, both must match.
            let kid = api::tokens::peek(t).expect("accepted, so it has a header").kid;
            let key = env.keys.iter().find(|k| k.kid == kid).expect("signed by a known key");
            assert_eq!(c.org, key.org, "claims name another org than the key's");
            assert!(org.is_none_or(|o| o == c.org), "accepted another org's token");
            assert!(c.exp >= now, "accepted an expired token");
        }
    }

    // The relay: SUBSCRIBE to stream/<org>/<lv> with the AUTHORIZATION TOKEN parameter's bytes.
    let request = AuthRequest {
        action: Action::Subscribe,
        namespace: vec![
            b"stream".to_vec(),
            env.org.as_bytes().to_vec(),
            env.lv.as_bytes().to_vec(),
        ],
        track: Some(b"video/source".to_vec()),
        token: Some(token),
    };
    if let Ok(grant) = env.rt.block_on(env.authorizer.authorize(request)) {
        let exp = grant.expires_at.expect("a subscribe grant expires with its token");
        assert!(exp >= UNIX_EPOCH + std::time::Duration::from_secs(now));
    }
});
