//! ClutchCall Streams control plane.
//!
//! * [`Api::open`] connects the store (SQLite file in the data directory, or PostgreSQL with
//!   `database_url`), applies migrations and, on an empty database, creates the first org and an
//!   admin API key (printed once, written to `<data_dir>/credentials`, mode 0600).
//! * [`Api::router`] is the REST API (`/v1/...`), `/openapi.json`, `/.well-known/jwks.json` and
//!   the `/watch/{id}` player page.
//! * [`Api::authorizer`] is the relay's [`relay::auth::Authorizer`]: stream keys to publish,
//!   playback JWTs to subscribe.
//! * [`Api::set_relay_info`] tells the playback-info endpoint which relay URLs and certificate
//!   hash to advertise.
//! * [`Api::upstream_auth`] mints the per-stream relay tokens an edge presents to its origin;
//!   [`Api::run_cluster_listener`] keeps nodes sharing one PostgreSQL in step ([`cluster`]).
//!
//! JSON naming: resource objects (`input`, `apiKey`, signing keys) use snake_case field names
//! (`external_input_id`, `created_at`), as the SDKs read them off the resource; request bodies
//! and response envelopes use camelCase (`streamKey`, `expiresAt`, `ttlSeconds`, `nextCursor`).

#![forbid(unsafe_code)]

pub mod assets;
pub mod auth;
pub mod cli;
pub mod cluster;
mod error;
mod http;
mod openapi;
mod player;
mod secret;
pub mod store;
pub mod tokens;
mod web;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

pub use error::Error;

/// Lifetime of a relay-to-relay token, in seconds. Each upstream request gets a fresh one; an
/// upstream subscription, once granted, lives on (the edge enforces its viewers' tokens).
pub const RELAY_TOKEN_TTL_SECS: u64 = 60;
pub use http::ApiError;
use secret::prefix;
use store::{ApiKeyRow, Cursor, Db, InputRow, OrgRow};
use tokens::{Expect, Minted, PlaybackClaims, Signer, SigningAlg, TokenError, VerifyingKey};

/// Control-plane configuration. Build it with [`Config::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory: holds `clutchcall.db` (SQLite default) and `credentials`.
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL, `sqlite://…` for another SQLite file; `None` uses
    /// `<data_dir>/clutchcall.db`.
    pub database_url: Option<String>,
    /// Base URL this API is reachable at, used to build signed playback URLs
    /// (`{public_base_url}/watch/{id}?token=…`) and VOD catalog URLs. No trailing slash.
    pub public_base_url: String,
    /// Relay URLs advertised by `GET /v1/playback/{id}` before [`Api::set_relay_info`] is called.
    pub relay_urls: Vec<String>,
    /// JWT `aud` of playback tokens.
    pub audience: String,
    /// Shortest TTL a playback token may be minted with, seconds.
    pub token_ttl_min: u64,
    /// Longest TTL, seconds. Also the grace period of a rotated signing key.
    pub token_ttl_max: u64,
    /// TTL used when a mint request names none, seconds.
    pub token_ttl_default: u64,
    /// Algorithm of newly created signing keys.
    pub signing_alg: SigningAlg,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Create the first org and admin key on an empty database.
    pub bootstrap: bool,
    /// Print bootstrap credentials to stdout (once, when they are created).
    pub announce_credentials: bool,
    /// Name of the org created at bootstrap.
    pub bootstrap_org_name: String,
    /// VOD: uploads, object storage, packaging.
    pub vod: assets::VodConfig,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir: PathBuf = data_dir.into();
        Config {
            vod: assets::VodConfig::new(&data_dir),
            data_dir,
            database_url: None,
            public_base_url: "http://127.0.0.1:8080".into(),
            relay_urls: Vec::new(),
            audience: "clutchcall-playback".into(),
            token_ttl_min: 60,
            token_ttl_max: 24 * 3600,
            token_ttl_default: 3600,
            signing_alg: SigningAlg::EdDSA,
            max_body_bytes: 64 * 1024,
            bootstrap: true,
            announce_credentials: true,
            bootstrap_org_name: "default".into(),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.token_ttl_min == 0 || self.token_ttl_min > self.token_ttl_max {
            return Err(Error::Config(
                "token TTL bounds: need 0 < min <= max".into(),
            ));
        }
        if !(self.token_ttl_min..=self.token_ttl_max).contains(&self.token_ttl_default) {
            return Err(Error::Config(
                "default token TTL must lie within the bounds".into(),
            ));
        }
        if self.audience.is_empty() {
            return Err(Error::Config("audience must not be empty".into()));
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new("data")
    }
}

/// Credentials created at bootstrap (or by [`Api::create_org`]).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub org_id: String,
    pub api_key_id: String,
    /// The secret API key (`ak_….…`); shown once.
    pub api_key: String,
}

/// Input ingest kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ingest {
    Rtmp,
    Fmp4,
}

impl Ingest {
    pub fn as_str(self) -> &'static str {
        match self {
            Ingest::Rtmp => "rtmp",
            Ingest::Fmp4 => "fmp4",
        }
    }

    pub fn parse(s: &str) -> Option<Ingest> {
        match s {
            "rtmp" => Some(Ingest::Rtmp),
            "fmp4" => Some(Ingest::Fmp4),
            _ => None,
        }
    }
}

/// A playback token with its URL, as returned to API callers.
#[derive(Debug, Clone)]
pub struct SignedUrl {
    pub url: String,
    pub token: String,
    pub expires_at_ms: i64,
    pub playback_id: String,
    pub kid: String,
}

struct RelayInfo {
    urls: Vec<String>,
    cert_hash: Option<watch::Receiver<String>>,
}

pub(crate) struct Inner {
    config: Config,
    db: Db,
    /// Active signer per org.
    signers: RwLock<HashMap<String, Arc<Signer>>>,
    /// Verifying keys by kid.
    verifiers: RwLock<HashMap<String, Arc<VerifyingKey>>>,
    live: auth::LiveTable,
    relay: RwLock<RelayInfo>,
    bootstrap: Mutex<Option<Credentials>>,
    vod: assets::VodState,
    ingest_details: RwLock<Option<IngestDetails>>,
    /// This process, among nodes sharing the database (see [`cluster`]).
    node_id: String,
    /// This node's live/idle changes, for `run_cluster_listener` to tell the others.
    cluster_outbox: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<cluster::Event>>>,
}

/// The control plane. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("backend", &self.inner.db.backend())
            .finish()
    }
}

/// Ingest details by `lv_…` id, published by the binary: see [`Api::set_ingest_details`].
pub type IngestDetails = watch::Receiver<std::collections::BTreeMap<String, serde_json::Value>>;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// RFC 3339 UTC rendering of Unix milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn ms_to_system(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or_default())
}

impl Api {
    /// Connect the store, run migrations, and bootstrap the first org on an empty database.
    pub async fn open(config: Config) -> Result<Api, Error> {
        config.validate()?;
        let url = match &config.database_url {
            Some(u) => u.clone(),
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                    Error::io(format!("create data dir {}", config.data_dir.display()), e)
                })?;
                Db::sqlite_url(&config.data_dir)
            }
        };
        let db = Db::connect(&url).await?;
        let vod = assets::VodState::open(&config)?;
        let api = Api {
            inner: Arc::new(Inner {
                relay: RwLock::new(RelayInfo {
                    urls: config.relay_urls.clone(),
                    cert_hash: None,
                }),
                config,
                db,
                signers: RwLock::new(HashMap::new()),
                verifiers: RwLock::new(HashMap::new()),
                live: auth::LiveTable::default(),
                bootstrap: Mutex::new(None),
                vod,
                ingest_details: RwLock::new(None),
                node_id: secret::new_id("node_")?,
                cluster_outbox: Mutex::new(None),
            }),
        };
        if matches!(api.inner.db, Db::Postgres(_)) {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            api.inner.live.report_changes_to(tx);
            if let Ok(mut outbox) = api.inner.cluster_outbox.lock() {
                *outbox = Some(rx);
            }
        }
        if api.inner.config.bootstrap && api.inner.db.count_orgs().await? == 0 {
            let name = api.inner.config.bootstrap_org_name.clone();
            let creds = api.create_org(&name).await?;
            write_credentials(
                &api.inner.config.data_dir,
                &creds,
                &api.inner.config.public_base_url,
            )?;
            if api.inner.config.announce_credentials {
                println!(
                    "ClutchCall Streams: created org {} and an admin API key (shown once):",
                    creds.org_id
                );
                println!("  CLUTCHCALL_CREDENTIALS={}", creds.api_key);
                println!("  CLUTCHCALL_ORG_ID={}", creds.org_id);
                println!(
                    "  also written to {} (mode 0600): set -a; . {}",
                    api.inner.config.data_dir.join("credentials").display(),
                    api.inner.config.data_dir.join("credentials").display()
                );
            }
            if let Ok(mut b) = api.inner.bootstrap.lock() {
                *b = Some(creds);
            }
        }
        Ok(api)
    }

    /// The REST router: `/v1/...`, `/openapi.json`, `/.well-known/jwks.json`, `/watch/{id}`.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// The relay's authorization hook.
    pub fn authorizer(&self) -> Arc<dyn relay::auth::Authorizer> {
        Arc::new(auth::RelayAuthorizer { api: self.clone() })
    }

    /// Tokens an edge relay presents to its origin (see [`Api::mint_relay_token`]). The edge and
    /// the origin must share the database (their orgs' signing keys).
    pub fn upstream_auth(&self) -> Arc<dyn relay::mesh::UpstreamAuth> {
        Arc::new(auth::RelayTokens { api: self.clone() })
    }

    /// Relay URLs and certificate hash that `GET /v1/playback/{lv_…}` advertises. `cert_hash`
    /// carries the relay certificate's SHA-256 (as the binary serves it on `/certificate.sha256`)
    /// and follows certificate renewals. Call once after the relay is up; later calls replace.
    pub fn set_relay_info(&self, relay_urls: Vec<String>, cert_hash: watch::Receiver<String>) {
        if let Ok(mut r) = self.inner.relay.write() {
            r.urls = relay_urls;
            r.cert_hash = Some(cert_hash);
        }
    }

    /// Credentials created by this `open` on an empty database, if any.
    pub fn bootstrap_credentials(&self) -> Option<Credentials> {
        self.inner.bootstrap.lock().ok().and_then(|b| b.clone())
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn store(&self) -> &Db {
        &self.inner.db
    }

    /// Close the database pool (graceful shutdown).
    pub async fn close(&self) {
        self.inner.db.close().await;
    }

    /// Create an org with one admin API key and a signing key.
    pub async fn create_org(&self, name: &str) -> Result<Credentials, Error> {
        let org = OrgRow {
            id: secret::new_id(prefix::ORG)?,
            name: name.to_owned(),
            created_at: now_ms(),
        };
        self.inner.db.insert_org(&org).await?;
        let (key, secret) = self.create_api_key(&org.id, "admin").await?;
        self.rotate_signing_key(&org.id, None).await?;
        Ok(Credentials {
            org_id: org.id,
            api_key_id: key.id,
            api_key: secret,
        })
    }

    pub async fn list_orgs(&self) -> Result<Vec<OrgRow>, Error> {
        self.inner.db.list_orgs().await
    }

    // ---- API keys ----

    /// Create an API key in `org`; returns the row and the secret (shown once).
    pub async fn create_api_key(
        &self,
        org: &str,
        name: &str,
    ) -> Result<(ApiKeyRow, String), Error> {
        let id = secret::new_id(prefix::API_KEY)?;
        let secret = format!("{id}.{}", secret::new_secret("")?);
        let row = ApiKeyRow {
            id,
            org_id: org.to_owned(),
            name: name.to_owned(),
            secret_hash: secret::hash(&secret),
            created_at: now_ms(),
            revoked_at: None,
        };
        self.inner.db.insert_api_key(&row).await?;
        Ok((row, secret))
    }

    /// The key a bearer secret belongs to, if valid and not revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<ApiKeyRow>, Error> {
        let Some((id, _)) = presented.split_once('.') else {
            return Ok(None);
        };
        if !id.starts_with(prefix::API_KEY) || !secret::plausible_id(id) {
            return Ok(None);
        }
        let Some(row) = self.inner.db.get_api_key(id).await? else {
            return Ok(None);
        };
        let ok = secret::verify(presented.as_bytes(), &row.secret_hash);
        Ok((ok && row.revoked_at.is_none()).then_some(row))
    }

    pub async fn list_api_keys(
        &self,
        org: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<ApiKeyRow>, Error> {
        self.inner.db.list_api_keys(org, after, limit).await
    }

    pub async fn revoke_api_key(&self, org: &str, id: &str) -> Result<(), Error> {
        if !secret::plausible_id(id) {
            return Err(Error::NotFound);
        }
        if self.inner.db.revoke_api_key(org, id, now_ms()).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    // ---- live inputs ----

    /// Create a live input; returns it and its stream key (shown once).
    pub async fn create_input(
        &self,
        org: &str,
        name: &str,
        ingest: Ingest,
    ) -> Result<(InputRow, String), Error> {
        let key = secret::new_secret(prefix::STREAM_KEY)?;
        let now = now_ms();
        let row = InputRow {
            id: secret::new_id(prefix::LIVE_INPUT)?,
            org_id: org.to_owned(),
            external_input_id: secret::new_id(prefix::LIVE_PLAYBACK)?,
            name: name.to_owned(),
            ingest: ingest.as_str().to_owned(),
            stream_key_hash: secret::hash(&key),
            stream_key_rotated_at: now,
            created_at: now,
            updated_at: now,
        };
        self.inner.db.insert_input(&row).await?;
        Ok((row, key))
    }

    /// By `li_…` or `lv_…` id.
    pub async fn get_input(&self, org: &str, id: &str) -> Result<InputRow, Error> {
        if !secret::plausible_id(org) || !secret::plausible_id(id) {
            return Err(Error::NotFound);
        }
        self.inner
            .db
            .get_input(org, id)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn list_inputs(
        &self,
        org: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<InputRow>, Error> {
        self.inner.db.list_inputs(org, after, limit).await
    }

    pub async fn rename_input(&self, org: &str, id: &str, name: &str) -> Result<InputRow, Error> {
        let row = self.get_input(org, id).await?;
        self.inner
            .db
            .rename_input(org, &row.id, name, now_ms())
            .await?;
        self.get_input(org, &row.id).await
    }

    /// New stream key; the old one stops working at once and its publishers are disconnected.
    pub async fn rotate_stream_key(
        &self,
        org: &str,
        id: &str,
    ) -> Result<(InputRow, String), Error> {
        let row = self.get_input(org, id).await?;
        let key = secret::new_secret(prefix::STREAM_KEY)?;
        if !self
            .inner
            .db
            .set_stream_key(org, &row.id, &secret::hash(&key), now_ms())
            .await?
        {
            return Err(Error::NotFound);
        }
        self.inner.live.revoke_publishers(&row.external_input_id);
        self.announce(cluster::Event::PublishersRevoked(
            row.external_input_id.clone(),
        ))
        .await;
        Ok((self.get_input(org, &row.id).await?, key))
    }

    pub async fn delete_input(&self, org: &str, id: &str) -> Result<(), Error> {
        let row = self.get_input(org, id).await?;
        if !self.inner.db.delete_input(org, &row.id).await? {
            return Err(Error::NotFound);
        }
        self.inner.live.remove_input(&row.external_input_id);
        self.announce(cluster::Event::InputRemoved(row.external_input_id.clone()))
            .await;
        Ok(())
    }

    /// Data-plane status of an input, by its `lv_…` id, with the ingest's details (see
    /// [`Api::set_ingest_details`]) merged in.
    pub fn input_status(&self, lv: &str) -> auth::InputStatus {
        let mut status = self.inner.live.status(lv);
        let details = self.inner.ingest_details.read().ok().and_then(|d| {
            d.as_ref()
                .and_then(|rx| rx.borrow().get(lv).and_then(|v| v.as_object().cloned()))
        });
        if let Some(details) = details {
            for (k, v) in details {
                // The control plane's own fields win.
                if !matches!(k.as_str(), "state" | "since" | "ingest" | "publishers") {
                    status.details.insert(k, v);
                }
            }
        }
        status
    }

    /// Per-input details from an ingest component, by `lv_…` id (a JSON object each, e.g.
    /// `{"renditions": [...], "transcoder_error": null}`), merged into `input.status`. Set once
    /// by the binary; later calls replace. Keeps the control plane independent of the ingest.
    pub fn set_ingest_details(&self, details: IngestDetails) {
        if let Ok(mut d) = self.inner.ingest_details.write() {
            *d = Some(details);
        }
    }

    /// The live input with this `lv_…` id, in whichever org owns it.
    pub async fn find_input_by_external_id(&self, lv: &str) -> Result<Option<InputRow>, Error> {
        if !secret::plausible_id(lv) {
            return Ok(None);
        }
        self.inner.db.find_input_by_external_id(lv).await
    }

    // ---- signing keys and tokens ----

    /// Create a new active signing key for `org`; the previous one keeps verifying for
    /// `token_ttl_max` (every token it signed expires by then).
    pub async fn rotate_signing_key(
        &self,
        org: &str,
        alg: Option<SigningAlg>,
    ) -> Result<Arc<VerifyingKey>, Error> {
        let alg = alg.unwrap_or(self.inner.config.signing_alg);
        let now = now_ms();
        let kid = secret::new_id(prefix::KID)?;
        let (signer, row) = Signer::generate(org, alg, kid, now)?;
        let grace =
            i64::try_from(self.inner.config.token_ttl_max.saturating_mul(1000)).unwrap_or(i64::MAX);
        let verify_until = now.saturating_add(grace).saturating_add(1000);
        self.inner
            .db
            .rotate_signing_key(&row, now, verify_until)
            .await?;
        if let Err(e) = self.inner.db.purge_expired_signing_keys(now).await {
            tracing::warn!(error = %e, "purging expired signing keys failed");
        }
        let verifying = Arc::new(VerifyingKey::from_row(&row)?);
        if let Ok(mut v) = self.inner.verifiers.write() {
            // Retired keys get their new verify_until on next load.
            v.retain(|_, k| k.org_id != org);
            v.insert(verifying.kid.clone(), verifying.clone());
        }
        if let Ok(mut s) = self.inner.signers.write() {
            s.insert(org.to_owned(), Arc::new(signer));
        }
        self.announce(cluster::Event::SigningKeysChanged(org.to_owned()))
            .await;
        tracing::info!(org, kid = %verifying.kid, alg = %alg, "signing key rotated");
        Ok(verifying)
    }

    /// Keys of `org` that still verify (the active one first).
    pub async fn list_signing_keys(&self, org: &str) -> Result<Vec<store::SigningKeyRow>, Error> {
        self.inner.db.verifying_keys(Some(org), now_ms()).await
    }

    /// Delete a retired signing key at once: tokens it signed stop verifying.
    pub async fn delete_signing_key(&self, org: &str, kid: &str) -> Result<(), Error> {
        if !secret::plausible_id(kid) {
            return Err(Error::NotFound);
        }
        let Some(row) = self
            .inner
            .db
            .get_signing_key(kid)
            .await?
            .filter(|r| r.org_id == org)
        else {
            return Err(Error::NotFound);
        };
        if row.retired_at.is_none() {
            return Err(Error::Conflict(
                "the active signing key cannot be deleted; rotate first".into(),
            ));
        }
        self.inner.db.delete_signing_key(org, kid).await?;
        if let Ok(mut v) = self.inner.verifiers.write() {
            v.remove(kid);
        }
        self.announce(cluster::Event::SigningKeyDeleted(kid.to_owned()))
            .await;
        Ok(())
    }

    /// Public keys of every org that still verify (the JWKS).
    pub async fn jwks(&self) -> Result<serde_json::Value, Error> {
        let rows = self.inner.db.verifying_keys(None, now_ms()).await?;
        let keys: Vec<_> = rows
            .iter()
            .filter_map(|r| VerifyingKey::from_row(r).ok())
            .map(|k| k.jwk())
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    async fn signer(&self, org: &str) -> Result<Arc<Signer>, Error> {
        if let Some(s) = self
            .inner
            .signers
            .read()
            .ok()
            .and_then(|s| s.get(org).cloned())
        {
            return Ok(s);
        }
        let signer = match self.inner.db.active_signing_key(org).await? {
            Some(row) => Arc::new(Signer::from_row(&row)?),
            None => {
                self.rotate_signing_key(org, None).await?;
                return self
                    .inner
                    .signers
                    .read()
                    .ok()
                    .and_then(|s| s.get(org).cloned())
                    .ok_or_else(|| Error::Crypto("no signer after rotation".into()));
            }
        };
        if let Ok(mut s) = self.inner.signers.write() {
            s.insert(org.to_owned(), signer.clone());
        }
        Ok(signer)
    }

    /// Check a requested TTL against the configured bounds.
    pub fn check_ttl(&self, ttl: Option<u64>) -> Result<u64, Error> {
        let c = &self.inner.config;
        let ttl = ttl.unwrap_or(c.token_ttl_default);
        if ttl < c.token_ttl_min || ttl > c.token_ttl_max {
            return Err(Error::Invalid(format!(
                "ttlSeconds must be between {} and {}",
                c.token_ttl_min, c.token_ttl_max
            )));
        }
        Ok(ttl)
    }

    /// Mint a playback token for `playback_id` (`lv_…` or `pb_…`) owned by `org`. The caller
    /// has checked ownership. Used by the REST endpoint and by the VOD path.
    pub async fn mint_playback(
        &self,
        org: &str,
        playback_id: &str,
        ttl: Option<u64>,
    ) -> Result<SignedUrl, Error> {
        let ttl = self.check_ttl(ttl)?;
        let signer = self.signer(org).await?;
        let now_s = u64::try_from(now_ms() / 1000).unwrap_or_default();
        let Minted { token, claims, kid } = signer.mint(PlaybackClaims {
            sub: playback_id.to_owned(),
            org: org.to_owned(),
            aud: self.inner.config.audience.clone(),
            iat: now_s,
            exp: now_s + ttl,
        })?;
        metrics::counter!("clutchcall_playback_tokens_minted_total").increment(1);
        let url = format!(
            "{}/watch/{}?token={}",
            self.inner.config.public_base_url.trim_end_matches('/'),
            playback_id,
            token
        );
        Ok(SignedUrl {
            url,
            token,
            expires_at_ms: i64::try_from(claims.exp)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
            playback_id: playback_id.to_owned(),
            kid,
        })
    }

    /// The audience of relay-to-relay tokens: the viewers' audience plus `:relay`, so a
    /// viewer's token is never taken for one, nor one for a viewer's.
    pub fn relay_audience(&self) -> String {
        format!("{}:relay", self.inner.config.audience)
    }

    /// Mint the token with which an edge relay subscribes to `stream/<org>/<lv>` at its origin:
    /// signed by the org's current key like a playback token, for that one stream only, valid
    /// for [`RELAY_TOKEN_TTL_SECS`], audience [`Api::relay_audience`]. Minted per upstream request.
    pub async fn mint_relay_token(&self, org: &str, lv: &str) -> Result<String, Error> {
        let signer = self.signer(org).await?;
        let now_s = u64::try_from(now_ms() / 1000).unwrap_or_default();
        let Minted { token, .. } = signer.mint(PlaybackClaims {
            sub: lv.to_owned(),
            org: org.to_owned(),
            aud: self.relay_audience(),
            iat: now_s,
            exp: now_s + RELAY_TOKEN_TTL_SECS,
        })?;
        metrics::counter!("clutchcall_relay_tokens_minted_total").increment(1);
        Ok(token)
    }

    async fn verifying_key(&self, kid: &str) -> Result<Option<Arc<VerifyingKey>>, Error> {
        let cached = self
            .inner
            .verifiers
            .read()
            .ok()
            .and_then(|v| v.get(kid).cloned());
        let key = match cached {
            Some(k) => k,
            None => {
                if !kid.starts_with(prefix::KID) || !secret::plausible_id(kid) {
                    return Ok(None);
                }
                let Some(row) = self.inner.db.get_signing_key(kid).await? else {
                    return Ok(None);
                };
                let k = Arc::new(VerifyingKey::from_row(&row)?);
                if let Ok(mut v) = self.inner.verifiers.write() {
                    v.insert(kid.to_owned(), k.clone());
                }
                k
            }
        };
        if key.verify_until.is_some_and(|t| t <= now_ms()) {
            return Ok(None);
        }
        Ok(Some(key))
    }

    /// Verify a playback token for `playback_id` (and `org`, when the caller knows it).
    /// The outer error is a store failure; the inner one the token's fault.
    pub async fn verify_playback(
        &self,
        token: &str,
        playback_id: &str,
        org: Option<&str>,
    ) -> Result<Result<PlaybackClaims, TokenError>, Error> {
        let audience = self.inner.config.audience.clone();
        self.verify_token_for(token, playback_id, org, &audience)
            .await
    }

    /// [`Api::verify_playback`] against another audience (relay-to-relay tokens).
    pub async fn verify_token_for(
        &self,
        token: &str,
        playback_id: &str,
        org: Option<&str>,
        audience: &str,
    ) -> Result<Result<PlaybackClaims, TokenError>, Error> {
        let head = match tokens::peek(token) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e)),
        };
        let Some(key) = self.verifying_key(&head.kid).await? else {
            return Ok(Err(TokenError::UnknownKey));
        };
        let expect = Expect {
            playback_id,
            org,
            audience,
        };
        Ok(tokens::verify_playback(token, &key, &expect))
    }

    /// How many live-input ids the in-memory live table holds (bounded by the inputs that
    /// exist: refused requests for made-up ids leave nothing behind).
    pub fn live_table_len(&self) -> usize {
        self.inner.live.len()
    }

    /// Relay URLs and current certificate hash to advertise.
    pub fn relay_info(&self) -> (Vec<String>, Option<String>) {
        match self.inner.relay.read() {
            Ok(r) => (
                r.urls.clone(),
                r.cert_hash.as_ref().map(|rx| rx.borrow().clone()),
            ),
            Err(_) => (Vec::new(), None),
        }
    }
}

/// Write `<dir>/credentials` (mode 0600) as shell lines for `set -a; . credentials`.
fn write_credentials(dir: &Path, creds: &Credentials, base_url: &str) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let path = dir.join("credentials");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    // An existing file keeps its mode on open; force 0600.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    let body = format!(
        "# ClutchCall Streams bootstrap credentials. Secret: keep this file private.\n\
         # Use: set -a; . {}\n\
         CLUTCHCALL_CREDENTIALS={}\nCLUTCHCALL_ORG_ID={}\nCLUTCHCALL_BASE_URL={}\n",
        path.display(),
        creds.api_key,
        creds.org_id,
        base_url
    );
    f.write_all(body.as_bytes())
        .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
    Ok(())
}
