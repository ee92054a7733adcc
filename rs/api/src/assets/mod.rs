//! VOD assets (recipe 3): REST (`/v1/orgs/{org}/assets…`), the resumable upload endpoint
//! (`/v1/uploads…`, tus 1.0.0 + the recipe's `Tus-Resumable: 2.0.0` flow), the durable
//! packaging job runner ([`crate::Api::run_vod_worker`]) and VOD serving (`/vod/{pb}/…`).
//!
//! Bytes: a PATCH appends to a staging file `<data_dir>/uploads/<up_…>` (fsync before the
//! offset is committed to the database, so an acknowledged offset survives a crash; bytes past
//! the committed offset are truncated on the next append). On completion the packaging job
//! moves the file into the object store (`uploads/<as_…>/source`; a rename on local disk, a
//! multipart upload on S3), packages it to `vod/<as_…>/…` and marks the asset ready.

mod db;
pub(crate) mod openapi;
mod serve;
mod tus;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub use db::AssetRow;
use db::UploadRow;
pub use serve::parse_range;

use crate::http::{check_name, page, paginate, signed_view, ApiError, Body, OrgKey, P};
use crate::store::Cursor;
use crate::tokens::TokenError;
use crate::{now_ms, rfc3339, secret, Api, Error};

pub(crate) const ASSET: &str = "as_";
pub(crate) const UPLOAD: &str = "up_";
pub(crate) const UPLOAD_TOKEN: &str = "ut_";
pub(crate) const JOB: &str = "job_";

/// VOD settings (part of [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct VodConfig {
    /// `s3://bucket/prefix` (S3-compatible; `AWS_*` env vars) or `file:///dir`; `None`:
    /// `<data_dir>/objects`.
    pub object_store_url: Option<String>,
    /// Largest upload, bytes (413 beyond).
    pub max_upload_bytes: u64,
    /// An incomplete upload expires this long after its creation.
    pub upload_expiry: Duration,
    /// An upload of unknown length whose bytes do not begin like an MP4/MOV file completes
    /// once no PATCH has moved it for this long (the recipe's length-less loop cannot say
    /// "done" otherwise). Zero: never (such uploads then need `Upload-Complete: ?1` or
    /// `Upload-Length`).
    pub upload_idle_complete: Duration,
    /// How long a running job's lease lasts (renewed while it runs).
    pub job_lease: Duration,
    /// Attempts before a job that keeps failing (transiently) errors the asset.
    pub job_max_attempts: u32,
    /// Packaging (ffmpeg paths, ladder, segment length). `work_dir` defaults under the data dir.
    pub packager: vod::Config,
    /// Whether this process runs packaging jobs (the binary's worker future).
    pub worker_poll: Duration,
}

impl VodConfig {
    pub fn new(data_dir: &std::path::Path) -> VodConfig {
        VodConfig {
            object_store_url: None,
            max_upload_bytes: 50 << 30,
            upload_expiry: Duration::from_secs(24 * 3600),
            upload_idle_complete: Duration::from_secs(60),
            job_lease: Duration::from_secs(60),
            job_max_attempts: 3,
            packager: vod::Config {
                work_dir: data_dir.join("work"),
                ..vod::Config::default()
            },
            worker_poll: Duration::from_secs(2),
        }
    }
}

/// Runtime state: storage, upload locks, the job doorbell.
pub(crate) struct VodState {
    pub(crate) storage: vod::Storage,
    pub(crate) staging: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) jobs: tokio::sync::Notify,
    /// This node's id for job leases (persisted in the data dir).
    pub(crate) node: String,
}

impl VodState {
    pub(crate) fn open(config: &crate::Config) -> Result<VodState, Error> {
        let storage = match &config.vod.object_store_url {
            Some(url) => vod::Storage::from_url(url),
            None => vod::Storage::local(&config.data_dir.join("objects")),
        }
        .map_err(|e| Error::Config(format!("object store: {e}")))?;
        let staging = config.data_dir.join("uploads");
        std::fs::create_dir_all(&staging)
            .map_err(|e| Error::io(format!("create {}", staging.display()), e))?;
        let node_file = config.data_dir.join("node_id");
        let node = match std::fs::read_to_string(&node_file) {
            Ok(s) if secret::plausible_id(s.trim()) => s.trim().to_owned(),
            _ => {
                let id = secret::new_id("node_")?;
                std::fs::write(&node_file, &id)
                    .map_err(|e| Error::io(format!("write {}", node_file.display()), e))?;
                id
            }
        };
        Ok(VodState {
            storage,
            staging,
            locks: Mutex::new(HashMap::new()),
            jobs: tokio::sync::Notify::new(),
            node,
        })
    }

    pub(crate) fn lock_for(&self, upload: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.locks.lock() {
            Ok(mut m) => m.entry(upload.to_owned()).or_default().clone(),
            // A poisoned map still hands out a lock (never shared: no exclusion lost beyond
            // this process's own bug).
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub(crate) fn forget_lock(&self, upload: &str) {
        if let Ok(mut m) = self.locks.lock() {
            m.remove(upload);
        }
    }

    pub(crate) fn staging_file(&self, upload: &str) -> PathBuf {
        self.staging.join(upload)
    }
}

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/v1/orgs/{org}/assets/uploads", post(create_upload))
        .route("/v1/orgs/{org}/assets", get(list_assets))
        .route(
            "/v1/orgs/{org}/assets/{id}",
            get(get_asset).delete(delete_asset),
        )
        .route(
            "/v1/orgs/{org}/assets/{id}/playback_tokens",
            post(mint_asset_token),
        )
        .merge(tus::routes())
        .merge(serve::routes())
}

pub(crate) fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

fn asset_missing(e: Error) -> ApiError {
    match e {
        Error::NotFound => err(StatusCode::NOT_FOUND, "not_found", "asset not found"),
        e => e.into(),
    }
}

// ---- views ----

pub(crate) fn asset_view(api: &Api, a: &AssetRow, u: Option<&UploadRow>) -> Value {
    let base = api.config().public_base_url.trim_end_matches('/');
    json!({
        "id": a.id,
        "org_id": a.org_id,
        "name": a.name,
        "status": a.status,
        "playback_id": a.playback_id,
        "playback_policy": a.playback_policy,
        "error": a.error_code.as_ref().map(|c| json!({ "code": c, "message": a.error_message.clone().unwrap_or_default() })),
        "duration_ms": a.duration_ms,
        "size_bytes": a.size_bytes,
        "catalog_url": a.playback_id.as_ref().filter(|_| a.status == "ready").map(|pb| format!("{base}/vod/{pb}/catalog.json")),
        "upload": u.map(|u| json!({
            "id": u.id,
            "offset": u.upload_offset,
            "length": u.upload_length,
            "expires_at": rfc3339(u.expires_at),
            "completed_at": u.completed_at.map(rfc3339),
        })),
        "created_at": rfc3339(a.created_at),
        "updated_at": rfc3339(a.updated_at),
        "ready_at": a.ready_at.map(rfc3339),
    })
}

// ---- creating an asset + upload (shared by REST and tus creation) ----

pub(crate) struct NewUpload {
    pub(crate) asset: AssetRow,
    pub(crate) upload: UploadRow,
    /// One-time upload token (secret; only its hash is stored).
    pub(crate) token: String,
}

impl Api {
    pub(crate) fn vod(&self) -> &VodState {
        &self.inner.vod
    }

    pub(crate) async fn new_upload(
        &self,
        org: &str,
        name: &str,
        length: Option<u64>,
        policy: &str,
        metadata: &str,
    ) -> Result<NewUpload, Error> {
        let now = now_ms();
        let asset = AssetRow {
            id: secret::new_id(ASSET)?,
            org_id: org.to_owned(),
            name: name.to_owned(),
            status: "uploading".into(),
            playback_id: None,
            playback_policy: policy.to_owned(),
            error_code: None,
            error_message: None,
            duration_ms: None,
            size_bytes: length.and_then(|l| i64::try_from(l).ok()),
            created_at: now,
            updated_at: now,
            ready_at: None,
        };
        let token = secret::new_secret(UPLOAD_TOKEN)?;
        let expiry =
            i64::try_from(self.inner.config.vod.upload_expiry.as_millis()).unwrap_or(i64::MAX);
        let upload = UploadRow {
            id: secret::new_id(UPLOAD)?,
            asset_id: asset.id.clone(),
            org_id: org.to_owned(),
            token_hash: secret::hash(&token),
            upload_offset: 0,
            upload_length: length.and_then(|l| i64::try_from(l).ok()),
            metadata: metadata.to_owned(),
            expires_at: now.saturating_add(expiry),
            completed_at: None,
            created_at: now,
            updated_at: now,
        };
        db::insert_asset_with_upload(&self.inner.db, &asset, &upload).await?;
        metrics::counter!("clutchcall_vod_uploads_created_total").increment(1);
        Ok(NewUpload {
            asset,
            upload,
            token,
        })
    }

    pub(crate) fn upload_url(&self, upload: &str) -> String {
        format!(
            "{}/v1/uploads/{upload}",
            self.inner.config.public_base_url.trim_end_matches('/')
        )
    }

    /// Delete an asset: its objects, staging bytes and rows.
    pub async fn delete_asset(&self, org: &str, id: &str) -> Result<(), Error> {
        if !secret::plausible_id(id) {
            return Err(Error::NotFound);
        }
        let a = db::get_asset(&self.inner.db, org, id)
            .await?
            .ok_or(Error::NotFound)?;
        if let Some(u) = db::upload_of_asset(&self.inner.db, &a.id).await? {
            let _ = tokio::fs::remove_file(self.vod().staging_file(&u.id)).await;
            self.vod().forget_lock(&u.id);
        }
        let st = &self.vod().storage;
        for prefix in [format!("vod/{}", a.id), format!("uploads/{}", a.id)] {
            if let Err(e) = st.delete_prefix(&prefix).await {
                tracing::warn!(error = %e, asset = %a.id, "deleting asset objects failed");
            }
        }
        if db::delete_asset(&self.inner.db, org, &a.id).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}

// ---- REST ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateUpload {
    name: String,
    /// Total size in bytes, when known (else the upload completes when the file is whole: see
    /// the tus module).
    #[serde(alias = "uploadLength", alias = "upload_length")]
    size: Option<u64>,
    #[serde(alias = "playback_policy")]
    playback_policy: Option<String>,
}

fn check_policy(p: Option<&str>) -> Result<&'static str, ApiError> {
    match p.unwrap_or("public") {
        "public" => Ok("public"),
        "signed" => Ok("signed"),
        _ => Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "playbackPolicy must be \"public\" or \"signed\"",
        )),
    }
}

async fn create_upload(
    State(api): State<Api>,
    key: OrgKey,
    body: Body<CreateUpload>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body.required()?;
    let name = check_name(&req.name)?;
    let policy = check_policy(req.playback_policy.as_deref())?;
    if let Some(s) = req.size {
        if s > api.config().vod.max_upload_bytes {
            return Err(err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                format!(
                    "size exceeds the limit of {} bytes",
                    api.config().vod.max_upload_bytes
                ),
            ));
        }
    }
    let n = api
        .new_upload(&key.org, &name, req.size, policy, "")
        .await?;
    let url = format!("{}?token={}", api.upload_url(&n.upload.id), n.token);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "uploadUrl": url,
            "assetId": n.asset.id,
            "uploadId": n.upload.id,
            "expiresAt": rfc3339(n.upload.expires_at),
            "asset": asset_view(&api, &n.asset, Some(&n.upload)),
        })),
    ))
}

async fn get_asset(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if !secret::plausible_id(&id) {
        return Err(asset_missing(Error::NotFound));
    }
    let a = db::get_asset(&api.inner.db, &key.org, &id)
        .await?
        .ok_or_else(|| asset_missing(Error::NotFound))?;
    let u = db::upload_of_asset(&api.inner.db, &a.id).await?;
    Ok(Json(json!({ "asset": asset_view(&api, &a, u.as_ref()) })))
}

async fn list_assets(
    State(api): State<Api>,
    key: OrgKey,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = page(q)?;
    let rows = db::list_assets(&api.inner.db, &key.org, p.after.as_ref(), p.limit + 1).await?;
    let (rows, next) = paginate(rows, p.limit, |r| Cursor {
        created_at: r.created_at,
        id: r.id.clone(),
    });
    let data: Vec<_> = rows.iter().map(|a| asset_view(&api, a, None)).collect();
    Ok(Json(json!({ "data": data, "nextCursor": next })))
}

async fn delete_asset(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
) -> Result<StatusCode, ApiError> {
    api.delete_asset(&key.org, &id)
        .await
        .map_err(asset_missing)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
struct MintToken {
    #[serde(rename = "ttlSeconds", alias = "ttl_seconds")]
    ttl_seconds: Option<u64>,
}

async fn mint_asset_token(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
    body: Body<MintToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body.0.unwrap_or_default();
    let ttl = api.check_ttl(req.ttl_seconds)?;
    if !secret::plausible_id(&id) {
        return Err(asset_missing(Error::NotFound));
    }
    let a = db::get_asset(&api.inner.db, &key.org, &id)
        .await?
        .ok_or_else(|| asset_missing(Error::NotFound))?;
    let pb = a.playback_id.ok_or_else(|| {
        err(
            StatusCode::CONFLICT,
            "asset_not_ready",
            "the asset has no playback id until it is ready",
        )
    })?;
    let signed = api.mint_playback(&key.org, &pb, Some(ttl)).await?;
    Ok((StatusCode::CREATED, Json(signed_view(&signed))))
}

/// `GET /v1/playback/{pb_…}`: public assets need no token; signed ones a playback JWT.
pub(crate) async fn playback_info(
    api: &Api,
    pb: &str,
    token: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let token = token.filter(|t| !t.is_empty());
    let asset = serve::authorize(api, pb, token.as_deref()).await?;
    let base = api.config().public_base_url.trim_end_matches('/');
    let mut catalog = format!("{base}/vod/{pb}/catalog.json");
    let mut out = json!({
        "playbackId": pb,
        "kind": "vod",
        "orgId": asset.org_id,
        "playbackPolicy": asset.playback_policy,
        "durationMs": asset.duration_ms,
    });
    if let Some(t) = &token {
        if asset.playback_policy == "signed" {
            catalog.push_str("?token=");
            catalog.push_str(t);
        }
        out["token"] = json!(t);
    }
    out["catalogUrl"] = json!(catalog);
    Ok(Json(out))
}

pub(crate) fn token_error(e: &TokenError) -> ApiError {
    match e {
        TokenError::Expired => err(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "playback token expired",
        ),
        _ => err(
            StatusCode::UNAUTHORIZED,
            "token_invalid",
            "playback token is not valid for this id",
        ),
    }
}
