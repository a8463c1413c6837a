-- Alerts: one row per occurrence of a condition a provider reported on a resource. At most
-- one open (unresolved) row per (connection, resource, condition key), so a condition that
-- holds across polls is one alert, and one that clears and returns is a new one. Rows go
-- with their connection.
CREATE TABLE alerts (
    id            TEXT    PRIMARY KEY NOT NULL,
    connection_id TEXT    NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    resource_id   TEXT    NOT NULL,
    condition_key TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    message       TEXT    NOT NULL,
    since         TEXT    NOT NULL,
    resolved_at   TEXT,
    acknowledged  INTEGER NOT NULL
);
CREATE UNIQUE INDEX alerts_open ON alerts (connection_id, resource_id, condition_key)
    WHERE resolved_at IS NULL;
CREATE INDEX alerts_connection ON alerts (connection_id, id);
CREATE INDEX alerts_resource ON alerts (resource_id, id);
