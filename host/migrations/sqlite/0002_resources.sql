-- Canonical resources projected by the last successful poll of each connection. A failed
-- poll leaves them in place (with their `last_seen_at`); deleting the connection removes them.
CREATE TABLE resources (
    id            TEXT PRIMARY KEY NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    platform      TEXT NOT NULL,
    type          TEXT NOT NULL,
    name          TEXT NOT NULL,
    body_json     TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);
CREATE INDEX resources_connection ON resources (connection_id, id);
CREATE INDEX resources_type ON resources (type, id);
