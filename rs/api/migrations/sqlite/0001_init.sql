-- ClutchCall Streams control plane, initial schema (SQLite).
-- Timestamps are Unix milliseconds; secrets are stored as hex SHA-256 digests.
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at, id);

CREATE TABLE live_inputs (
    id                     TEXT PRIMARY KEY,
    org_id                 TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    external_input_id      TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    ingest                 TEXT NOT NULL,
    stream_key_hash        TEXT NOT NULL,
    stream_key_rotated_at  BIGINT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX live_inputs_org ON live_inputs (org_id, created_at, id);

-- Private keys are PKCS#8 DER, base64. Acceptable for the embedded mode (the database file lives
-- in the data directory with the credentials); a KMS-backed signer is the path for scale.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    alg            TEXT NOT NULL,
    public_x       TEXT NOT NULL,
    public_y       TEXT,
    private_pkcs8  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT,
    verify_until   BIGINT
);
CREATE INDEX signing_keys_org ON signing_keys (org_id, created_at);
