-- VOD: assets, their resumable uploads, and durable packaging jobs.
-- Timestamps are Unix milliseconds; the upload token is stored as a hex SHA-256 digest.
CREATE TABLE assets (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    playback_id      TEXT UNIQUE,
    playback_policy  TEXT NOT NULL,
    error_code       TEXT,
    error_message    TEXT,
    duration_ms      BIGINT,
    size_bytes       BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    ready_at         BIGINT
);
CREATE INDEX assets_org ON assets (org_id, created_at, id);

CREATE TABLE uploads (
    id             TEXT PRIMARY KEY,
    asset_id       TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    org_id         TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    token_hash     TEXT NOT NULL,
    upload_offset  BIGINT NOT NULL,
    upload_length  BIGINT,
    metadata       TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    completed_at   BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX uploads_asset ON uploads (asset_id);
CREATE INDEX uploads_expiry ON uploads (completed_at, expires_at);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    asset_id     TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    run_after    BIGINT NOT NULL,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_after);
