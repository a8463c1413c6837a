-- Saved connections. Secrets live only in `sealed_secrets` (AEAD ciphertext); `name_key` is
-- the case-folded name that makes names unique per platform.
CREATE TABLE connections (
    id                    TEXT    PRIMARY KEY NOT NULL,
    platform              TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    name_key              TEXT    NOT NULL,
    enabled               INTEGER NOT NULL,
    poll_interval_seconds INTEGER NOT NULL,
    settings_json         TEXT    NOT NULL,
    sealed_secrets        BLOB    NOT NULL,
    health_json           TEXT    NOT NULL,
    observed_json         TEXT,
    revision              INTEGER NOT NULL,
    created_at            TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL
);
CREATE UNIQUE INDEX connections_platform_name ON connections (platform, name_key);
CREATE INDEX connections_platform_created ON connections (platform, created_at, id);

-- API tokens, stored only as SHA-256 hashes of the random token.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    scopes_json  TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
