-- The PostgreSQL schema: the same tables and columns as the SQLite migrations 0001-0005 (one
-- file, since PostgreSQL starts here), so the queries in `src/store/sql.rs` serve both.
-- Deliberate choices that keep both databases answering byte for byte alike:
-- - timestamps are RFC 3339 UTC text with milliseconds (they sort lexically in time order),
--   exactly as on SQLite, so API output and cursor comparisons are identical;
-- - every text column uses the "C" collation, so ORDER BY, cursors (`id > ?`) and lower()
--   behave as SQLite's binary collation does, whatever the database's default locale.

CREATE TABLE connections (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    platform              TEXT COLLATE "C" NOT NULL,
    name                  TEXT COLLATE "C" NOT NULL,
    name_key              TEXT COLLATE "C" NOT NULL,
    enabled               BOOLEAN NOT NULL,
    poll_interval_seconds BIGINT  NOT NULL,
    settings_json         TEXT COLLATE "C" NOT NULL,
    sealed_secrets        BYTEA   NOT NULL,
    health_json           TEXT COLLATE "C" NOT NULL,
    observed_json         TEXT COLLATE "C",
    revision              BIGINT  NOT NULL,
    created_at            TEXT COLLATE "C" NOT NULL,
    updated_at            TEXT COLLATE "C" NOT NULL,
    resources_seen_at     TEXT COLLATE "C"
);
CREATE UNIQUE INDEX connections_platform_name ON connections (platform, name_key);
CREATE INDEX connections_platform_created ON connections (platform, created_at, id);

CREATE TABLE api_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL,
    scopes_json  TEXT COLLATE "C" NOT NULL,
    token_hash   TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at   TEXT COLLATE "C" NOT NULL,
    last_used_at TEXT COLLATE "C"
);

CREATE TABLE resources (
    id            TEXT COLLATE "C" PRIMARY KEY,
    connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    platform      TEXT COLLATE "C" NOT NULL,
    type          TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    body_json     TEXT COLLATE "C" NOT NULL,
    body_hash     TEXT COLLATE "C",
    last_seen_at  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX resources_connection ON resources (connection_id, id);
CREATE INDEX resources_type ON resources (type, id);

CREATE TABLE alerts (
    id            TEXT COLLATE "C" PRIMARY KEY,
    connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    resource_id   TEXT COLLATE "C" NOT NULL,
    condition_key TEXT COLLATE "C" NOT NULL,
    source        TEXT COLLATE "C" NOT NULL,
    severity      TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    message       TEXT COLLATE "C" NOT NULL,
    since         TEXT COLLATE "C" NOT NULL,
    resolved_at   TEXT COLLATE "C",
    acknowledged  BOOLEAN NOT NULL
);
CREATE UNIQUE INDEX alerts_open ON alerts (connection_id, resource_id, condition_key)
    WHERE resolved_at IS NULL;
CREATE INDEX alerts_connection ON alerts (connection_id, id);
CREATE INDEX alerts_resource ON alerts (resource_id, id);
