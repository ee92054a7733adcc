//! SQL for assets, uploads and jobs (same text on SQLite and PostgreSQL: `$N` placeholders,
//! TEXT/BIGINT columns only).

use crate::store::{Cursor, Db};
use crate::Error;

use crate::store::on_pool as pool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssetRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub status: String,
    pub playback_id: Option<String>,
    pub playback_policy: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub duration_ms: Option<i64>,
    pub size_bytes: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub ready_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadRow {
    pub id: String,
    pub asset_id: String,
    pub org_id: String,
    pub token_hash: String,
    pub upload_offset: i64,
    pub upload_length: Option<i64>,
    pub metadata: String,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub asset_id: String,
    pub attempts: i64,
}

const ASSET_COLS: &str = "id, org_id, name, status, playback_id, playback_policy, error_code, \
    error_message, duration_ms, size_bytes, created_at, updated_at, ready_at";
const UPLOAD_COLS: &str = "id, asset_id, org_id, token_hash, upload_offset, upload_length, \
    metadata, expires_at, completed_at, created_at, updated_at";

pub async fn insert_asset_with_upload(db: &Db, a: &AssetRow, u: &UploadRow) -> Result<(), Error> {
    let ia = format!(
        "INSERT INTO assets ({ASSET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    let iu = format!(
        "INSERT INTO uploads ({UPLOAD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    pool!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query(&ia)
            .bind(&a.id)
            .bind(&a.org_id)
            .bind(&a.name)
            .bind(&a.status)
            .bind(&a.playback_id)
            .bind(&a.playback_policy)
            .bind(&a.error_code)
            .bind(&a.error_message)
            .bind(a.duration_ms)
            .bind(a.size_bytes)
            .bind(a.created_at)
            .bind(a.updated_at)
            .bind(a.ready_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&iu)
            .bind(&u.id)
            .bind(&u.asset_id)
            .bind(&u.org_id)
            .bind(&u.token_hash)
            .bind(u.upload_offset)
            .bind(u.upload_length)
            .bind(&u.metadata)
            .bind(u.expires_at)
            .bind(u.completed_at)
            .bind(u.created_at)
            .bind(u.updated_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })?;
    Ok(())
}

/// By `as_…` or `pb_…` id within `org`.
pub async fn get_asset(db: &Db, org: &str, id: &str) -> Result<Option<AssetRow>, Error> {
    let sql = format!(
        "SELECT {ASSET_COLS} FROM assets WHERE org_id = $1 AND (id = $2 OR playback_id = $2)"
    );
    Ok(pool!(db, |p| sqlx::query_as::<_, AssetRow>(&sql)
        .bind(org)
        .bind(id)
        .fetch_optional(p)
        .await)?)
}

pub async fn get_asset_any(db: &Db, id: &str) -> Result<Option<AssetRow>, Error> {
    let sql = format!("SELECT {ASSET_COLS} FROM assets WHERE id = $1");
    Ok(pool!(db, |p| sqlx::query_as::<_, AssetRow>(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)?)
}

pub async fn get_asset_by_playback(db: &Db, pb: &str) -> Result<Option<AssetRow>, Error> {
    let sql = format!("SELECT {ASSET_COLS} FROM assets WHERE playback_id = $1");
    Ok(pool!(db, |p| sqlx::query_as::<_, AssetRow>(&sql)
        .bind(pb)
        .fetch_optional(p)
        .await)?)
}

pub async fn list_assets(
    db: &Db,
    org: &str,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<AssetRow>, Error> {
    let (ms, id) = match after {
        Some(c) => (c.created_at, c.id.clone()),
        None => (i64::MIN, String::new()),
    };
    let sql = format!(
        "SELECT {ASSET_COLS} FROM assets WHERE org_id = $1 \
         AND (created_at > $2 OR (created_at = $2 AND id > $3)) ORDER BY created_at, id LIMIT $4"
    );
    Ok(pool!(db, |p| sqlx::query_as::<_, AssetRow>(&sql)
        .bind(org)
        .bind(ms)
        .bind(&id)
        .bind(limit)
        .fetch_all(p)
        .await)?)
}

pub async fn delete_asset(db: &Db, org: &str, id: &str) -> Result<bool, Error> {
    let sql = "DELETE FROM assets WHERE org_id = $1 AND id = $2";
    let n = pool!(db, |p| sqlx::query(sql)
        .bind(org)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

pub async fn get_upload(db: &Db, id: &str) -> Result<Option<UploadRow>, Error> {
    let sql = format!("SELECT {UPLOAD_COLS} FROM uploads WHERE id = $1");
    Ok(pool!(db, |p| sqlx::query_as::<_, UploadRow>(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)?)
}

pub async fn upload_of_asset(db: &Db, asset: &str) -> Result<Option<UploadRow>, Error> {
    let sql = format!("SELECT {UPLOAD_COLS} FROM uploads WHERE asset_id = $1");
    Ok(pool!(db, |p| sqlx::query_as::<_, UploadRow>(&sql)
        .bind(asset)
        .fetch_optional(p)
        .await)?)
}

/// Compare-and-set the offset (and a newly learnt length): `false` when the offset moved.
pub async fn advance_upload(
    db: &Db,
    id: &str,
    from: i64,
    to: i64,
    length: Option<i64>,
    now: i64,
) -> Result<bool, Error> {
    let sql =
        "UPDATE uploads SET upload_offset = $1, upload_length = COALESCE(upload_length, $2), \
               updated_at = $3 WHERE id = $4 AND upload_offset = $5 AND completed_at IS NULL";
    let n = pool!(db, |p| sqlx::query(sql)
        .bind(to)
        .bind(length)
        .bind(now)
        .bind(id)
        .bind(from)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Mark the upload complete, the asset `processing`, and queue its packaging job: one
/// transaction, so a crash leaves either an incomplete upload or a queued job.
pub async fn complete_upload(
    db: &Db,
    upload: &UploadRow,
    size: i64,
    job_id: &str,
    now: i64,
) -> Result<bool, Error> {
    let u = "UPDATE uploads SET completed_at = $1, upload_length = $2, updated_at = $1 \
             WHERE id = $3 AND completed_at IS NULL AND upload_offset = $2";
    let a =
        "UPDATE assets SET status = 'processing', size_bytes = $1, updated_at = $2 WHERE id = $3";
    let j = "INSERT INTO jobs (id, kind, asset_id, state, attempts, lease_owner, lease_until, run_after, \
             last_error, created_at, updated_at) VALUES ($1, 'package', $2, 'queued', 0, NULL, NULL, $3, NULL, $3, $3)";
    let done = pool!(db, |p| {
        let mut tx = p.begin().await?;
        let n = sqlx::query(u)
            .bind(now)
            .bind(size)
            .bind(&upload.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            Ok::<bool, sqlx::Error>(false)
        } else {
            sqlx::query(a)
                .bind(size)
                .bind(now)
                .bind(&upload.asset_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(j)
                .bind(job_id)
                .bind(&upload.asset_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }
    })?;
    Ok(done)
}

pub async fn delete_upload(db: &Db, id: &str) -> Result<(), Error> {
    pool!(db, |p| sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Incomplete uploads past their expiry.
pub async fn expired_uploads(db: &Db, now: i64) -> Result<Vec<UploadRow>, Error> {
    let sql = format!(
        "SELECT {UPLOAD_COLS} FROM uploads WHERE completed_at IS NULL AND expires_at < $1 LIMIT 100"
    );
    Ok(pool!(db, |p| sqlx::query_as::<_, UploadRow>(&sql)
        .bind(now)
        .fetch_all(p)
        .await)?)
}

/// Incomplete, unexpired uploads of unknown length that have bytes and have not moved since
/// `idle_before` (candidates for completion by idleness).
pub async fn idle_uploads(db: &Db, idle_before: i64, now: i64) -> Result<Vec<UploadRow>, Error> {
    let sql = format!(
        "SELECT {UPLOAD_COLS} FROM uploads WHERE completed_at IS NULL AND upload_length IS NULL \
         AND upload_offset > 0 AND updated_at < $1 AND expires_at > $2 ORDER BY updated_at LIMIT 100"
    );
    Ok(pool!(db, |p| sqlx::query_as::<_, UploadRow>(&sql)
        .bind(idle_before)
        .bind(now)
        .fetch_all(p)
        .await)?)
}

pub async fn set_asset_error(
    db: &Db,
    asset: &str,
    code: &str,
    message: &str,
    now: i64,
) -> Result<(), Error> {
    let sql = "UPDATE assets SET status = 'errored', error_code = $1, error_message = $2, updated_at = $3 WHERE id = $4";
    pool!(db, |p| sqlx::query(sql)
        .bind(code)
        .bind(message)
        .bind(now)
        .bind(asset)
        .execute(p)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Claim the next runnable job: queued and due, or running with an expired lease.
pub async fn claim_job(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
) -> Result<Option<JobRow>, Error> {
    let sql = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
               attempts = attempts + 1, updated_at = $3 \
               WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_after <= $3) \
                           OR (state = 'running' AND lease_until < $3) ORDER BY run_after, created_at, id LIMIT 1) \
               AND ((state = 'queued' AND run_after <= $3) OR (state = 'running' AND lease_until < $3)) \
               RETURNING id, asset_id, attempts";
    Ok(pool!(db, |p| sqlx::query_as::<_, JobRow>(sql)
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(p)
        .await)?)
}

pub async fn renew_lease(db: &Db, job: &str, owner: &str, until: i64) -> Result<bool, Error> {
    let sql =
        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'";
    let n = pool!(db, |p| sqlx::query(sql)
        .bind(until)
        .bind(job)
        .bind(owner)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Jobs this node held when it stopped: runnable again at once.
pub async fn release_leases(db: &Db, owner: &str) -> Result<u64, Error> {
    let sql = "UPDATE jobs SET lease_until = 0 WHERE lease_owner = $1 AND state = 'running'";
    Ok(pool!(db, |p| sqlx::query(sql)
        .bind(owner)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
}

pub async fn retry_job(
    db: &Db,
    job: &str,
    error: &str,
    run_after: i64,
    now: i64,
) -> Result<(), Error> {
    let sql = "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, run_after = $1, \
               last_error = $2, updated_at = $3 WHERE id = $4";
    pool!(db, |p| sqlx::query(sql)
        .bind(run_after)
        .bind(error)
        .bind(now)
        .bind(job)
        .execute(p)
        .await
        .map(|_| ()))?;
    Ok(())
}

pub async fn fail_job(
    db: &Db,
    job: &str,
    asset: &str,
    code: &str,
    message: &str,
    now: i64,
) -> Result<(), Error> {
    let j = "UPDATE jobs SET state = 'failed', lease_owner = NULL, last_error = $1, updated_at = $2 WHERE id = $3";
    let a = "UPDATE assets SET status = 'errored', error_code = $1, error_message = $2, updated_at = $3 WHERE id = $4";
    pool!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query(j)
            .bind(message)
            .bind(now)
            .bind(job)
            .execute(&mut *tx)
            .await?;
        sqlx::query(a)
            .bind(code)
            .bind(message)
            .bind(now)
            .bind(asset)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })?;
    Ok(())
}

/// The asset is ready: playback id (kept if it had one), duration; job done.
pub async fn finish_job(
    db: &Db,
    job: &str,
    asset: &str,
    playback_id: &str,
    duration_ms: i64,
    now: i64,
) -> Result<(), Error> {
    let j = "UPDATE jobs SET state = 'done', lease_owner = NULL, updated_at = $1 WHERE id = $2";
    let a = "UPDATE assets SET status = 'ready', playback_id = COALESCE(playback_id, $1), duration_ms = $2, \
             error_code = NULL, error_message = NULL, ready_at = $3, updated_at = $3 WHERE id = $4";
    pool!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query(j).bind(now).bind(job).execute(&mut *tx).await?;
        sqlx::query(a)
            .bind(playback_id)
            .bind(duration_ms)
            .bind(now)
            .bind(asset)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })?;
    Ok(())
}
