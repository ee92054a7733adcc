//! The one store layer: the same SQL on SQLite (embedded default) and PostgreSQL.
//!
//! Why an enum over two pools rather than `sqlx::Any`: `Any` erases types to a lowest common
//! denominator and needs runtime driver installation; two concrete pools keep native type
//! checking, native pool tuning (WAL + busy timeout on SQLite) and per-driver migrations, at the
//! cost of one `match` per query, which [`on_pool!`] writes for us. Every statement uses `$N`
//! placeholders, which both drivers accept, and only `TEXT`/`BIGINT` columns, so the SQL text is
//! shared.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::Error;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A connection pool on one of the two supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run the same expression against whichever pool is active.
macro_rules! on_pool {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($p) => $body,
            $crate::store::Db::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InputRow {
    pub id: String,
    pub org_id: String,
    pub external_input_id: String,
    pub name: String,
    pub ingest: String,
    pub stream_key_hash: String,
    pub stream_key_rotated_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub org_id: String,
    pub alg: String,
    pub public_x: String,
    pub public_y: Option<String>,
    pub private_pkcs8: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub verify_until: Option<i64>,
}

/// Page position: rows after (created_at, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (ms, id) = s.split_once('.')?;
        let created_at = ms.parse().ok()?;
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return None;
        }
        Some(Cursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

const INPUT_COLS: &str = "id, org_id, external_input_id, name, ingest, stream_key_hash, \
     stream_key_rotated_at, created_at, updated_at";
const KEY_COLS: &str =
    "kid, org_id, alg, public_x, public_y, private_pkcs8, created_at, retired_at, verify_until";

impl Db {
    /// Connect and apply migrations. `url` is `sqlite://…` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Db, Error> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| Error::Config(format!("database url: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::Config(format!("database url: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            Ok(Db::Sqlite(pool))
        } else {
            Err(Error::Config(
                "database url must start with sqlite: or postgres://".into(),
            ))
        }
    }

    /// The embedded default: `<data_dir>/clutchcall.db`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("clutchcall.db").display())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }

    // ---- orgs ----

    pub async fn count_orgs(&self) -> Result<i64, Error> {
        let n: i64 = on_pool!(self, |p| sqlx::query_scalar("SELECT COUNT(*) FROM orgs")
            .fetch_one(p)
            .await)?;
        Ok(n)
    }

    pub async fn insert_org(&self, org: &OrgRow) -> Result<(), Error> {
        let sql = "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn get_org(&self, id: &str) -> Result<Option<OrgRow>, Error> {
        let sql = "SELECT id, name, created_at FROM orgs WHERE id = $1";
        Ok(on_pool!(self, |p| sqlx::query_as::<_, OrgRow>(sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn list_orgs(&self) -> Result<Vec<OrgRow>, Error> {
        let sql = "SELECT id, name, created_at FROM orgs ORDER BY created_at, id";
        Ok(on_pool!(self, |p| sqlx::query_as::<_, OrgRow>(sql)
            .fetch_all(p)
            .await)?)
    }

    // ---- API keys ----

    pub async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<(), Error> {
        let sql = "INSERT INTO api_keys (id, org_id, name, secret_hash, created_at, revoked_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(&key.id)
            .bind(&key.org_id)
            .bind(&key.name)
            .bind(&key.secret_hash)
            .bind(key.created_at)
            .bind(key.revoked_at)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, Error> {
        let sql = "SELECT id, org_id, name, secret_hash, created_at, revoked_at FROM api_keys WHERE id = $1";
        Ok(on_pool!(self, |p| sqlx::query_as::<_, ApiKeyRow>(sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn list_api_keys(
        &self,
        org: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<ApiKeyRow>, Error> {
        let (ms, id) = cursor_parts(after);
        let sql = "SELECT id, org_id, name, secret_hash, created_at, revoked_at FROM api_keys \
                   WHERE org_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
                   ORDER BY created_at, id LIMIT $4";
        Ok(on_pool!(self, |p| sqlx::query_as::<_, ApiKeyRow>(sql)
            .bind(org)
            .bind(ms)
            .bind(&id)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// Mark a key revoked; `false` if it does not exist in `org` (or was already revoked).
    pub async fn revoke_api_key(&self, org: &str, id: &str, now: i64) -> Result<bool, Error> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL";
        let r = on_pool!(self, |p| sqlx::query(sql)
            .bind(now)
            .bind(org)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(r > 0)
    }

    // ---- live inputs ----

    pub async fn insert_input(&self, i: &InputRow) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO live_inputs ({INPUT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        on_pool!(self, |p| sqlx::query(&sql)
            .bind(&i.id)
            .bind(&i.org_id)
            .bind(&i.external_input_id)
            .bind(&i.name)
            .bind(&i.ingest)
            .bind(&i.stream_key_hash)
            .bind(i.stream_key_rotated_at)
            .bind(i.created_at)
            .bind(i.updated_at)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// By `li_…` or `lv_…` id, within `org`.
    pub async fn get_input(&self, org: &str, id: &str) -> Result<Option<InputRow>, Error> {
        let sql = format!("SELECT {INPUT_COLS} FROM live_inputs WHERE org_id = $1 AND (id = $2 OR external_input_id = $2)");
        Ok(on_pool!(self, |p| sqlx::query_as::<_, InputRow>(&sql)
            .bind(org)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// By `lv_…` id alone, in any org (RTMP URLs carry only the external id; it is unique).
    pub async fn find_input_by_external_id(&self, lv: &str) -> Result<Option<InputRow>, Error> {
        let sql = format!("SELECT {INPUT_COLS} FROM live_inputs WHERE external_input_id = $1");
        Ok(on_pool!(self, |p| sqlx::query_as::<_, InputRow>(&sql)
            .bind(lv)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn list_inputs(
        &self,
        org: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<InputRow>, Error> {
        let (ms, id) = cursor_parts(after);
        let sql = format!(
            "SELECT {INPUT_COLS} FROM live_inputs WHERE org_id = $1 \
             AND (created_at > $2 OR (created_at = $2 AND id > $3)) ORDER BY created_at, id LIMIT $4"
        );
        Ok(on_pool!(self, |p| sqlx::query_as::<_, InputRow>(&sql)
            .bind(org)
            .bind(ms)
            .bind(&id)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    pub async fn rename_input(
        &self,
        org: &str,
        id: &str,
        name: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let sql = "UPDATE live_inputs SET name = $1, updated_at = $2 WHERE org_id = $3 AND id = $4";
        let r = on_pool!(self, |p| sqlx::query(sql)
            .bind(name)
            .bind(now)
            .bind(org)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(r > 0)
    }

    pub async fn set_stream_key(
        &self,
        org: &str,
        id: &str,
        hash: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let sql = "UPDATE live_inputs SET stream_key_hash = $1, stream_key_rotated_at = $2, updated_at = $2 \
                   WHERE org_id = $3 AND id = $4";
        let r = on_pool!(self, |p| sqlx::query(sql)
            .bind(hash)
            .bind(now)
            .bind(org)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(r > 0)
    }

    pub async fn delete_input(&self, org: &str, id: &str) -> Result<bool, Error> {
        let sql = "DELETE FROM live_inputs WHERE org_id = $1 AND id = $2";
        let r = on_pool!(self, |p| sqlx::query(sql)
            .bind(org)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(r > 0)
    }

    // ---- signing keys ----

    pub async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO signing_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        on_pool!(self, |p| sqlx::query(&sql)
            .bind(&k.kid)
            .bind(&k.org_id)
            .bind(&k.alg)
            .bind(&k.public_x)
            .bind(&k.public_y)
            .bind(&k.private_pkcs8)
            .bind(k.created_at)
            .bind(k.retired_at)
            .bind(k.verify_until)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Insert `new` as the org's active key and retire every other active key of the org:
    /// they keep verifying until `verify_until`. One transaction.
    pub async fn rotate_signing_key(
        &self,
        new: &SigningKeyRow,
        now: i64,
        verify_until: i64,
    ) -> Result<(), Error> {
        let retire = "UPDATE signing_keys SET retired_at = $1, verify_until = $2 WHERE org_id = $3 AND retired_at IS NULL";
        let insert = format!(
            "INSERT INTO signing_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(retire)
                .bind(now)
                .bind(verify_until)
                .bind(&new.org_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&insert)
                .bind(&new.kid)
                .bind(&new.org_id)
                .bind(&new.alg)
                .bind(&new.public_x)
                .bind(&new.public_y)
                .bind(&new.private_pkcs8)
                .bind(new.created_at)
                .bind(new.retired_at)
                .bind(new.verify_until)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn get_signing_key(&self, kid: &str) -> Result<Option<SigningKeyRow>, Error> {
        let sql = format!("SELECT {KEY_COLS} FROM signing_keys WHERE kid = $1");
        Ok(on_pool!(self, |p| sqlx::query_as::<_, SigningKeyRow>(
            &sql
        )
        .bind(kid)
        .fetch_optional(p)
        .await)?)
    }

    pub async fn active_signing_key(&self, org: &str) -> Result<Option<SigningKeyRow>, Error> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM signing_keys WHERE org_id = $1 AND retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1"
        );
        Ok(on_pool!(self, |p| sqlx::query_as::<_, SigningKeyRow>(
            &sql
        )
        .bind(org)
        .fetch_optional(p)
        .await)?)
    }

    /// Keys that still verify at `now` (active or retired-but-in-grace), of one org or all orgs.
    pub async fn verifying_keys(
        &self,
        org: Option<&str>,
        now: i64,
    ) -> Result<Vec<SigningKeyRow>, Error> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM signing_keys WHERE ($1 IS NULL OR org_id = $1) \
             AND (verify_until IS NULL OR verify_until > $2) ORDER BY org_id, created_at DESC, kid"
        );
        let org = org.map(str::to_owned);
        Ok(on_pool!(self, |p| sqlx::query_as::<_, SigningKeyRow>(
            &sql
        )
        .bind(&org)
        .bind(now)
        .fetch_all(p)
        .await)?)
    }

    pub async fn delete_signing_key(&self, org: &str, kid: &str) -> Result<bool, Error> {
        let sql = "DELETE FROM signing_keys WHERE org_id = $1 AND kid = $2";
        let r = on_pool!(self, |p| sqlx::query(sql)
            .bind(org)
            .bind(kid)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(r > 0)
    }

    /// Drop keys whose grace period ended; returns their kids.
    pub async fn purge_expired_signing_keys(&self, now: i64) -> Result<u64, Error> {
        let sql = "DELETE FROM signing_keys WHERE verify_until IS NOT NULL AND verify_until <= $1";
        Ok(on_pool!(self, |p| sqlx::query(sql)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?)
    }
}

fn cursor_parts(c: Option<&Cursor>) -> (i64, String) {
    match c {
        Some(c) => (c.created_at, c.id.clone()),
        None => (i64::MIN, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_junk() {
        let c = Cursor {
            created_at: 1_700_000_000_000,
            id: "li_abc".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("x.li_abc"), None);
        assert_eq!(Cursor::decode("12."), None);
        assert_eq!(Cursor::decode("12.a'b"), None);
        assert_eq!(Cursor::decode(""), None);
    }
}
