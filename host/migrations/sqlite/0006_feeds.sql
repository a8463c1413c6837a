-- Feeds: event/task history and performance samples, which only grow (pruned by retention),
-- and the provider's cursor saying where they stand, written in the same transaction as the
-- records so a restart resumes without a gap or a duplicate.
ALTER TABLE connections ADD COLUMN feed_cursor TEXT;

CREATE TABLE history (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    at            TEXT NOT NULL,
    kind          TEXT NOT NULL,
    type          TEXT NOT NULL,
    message       TEXT NOT NULL,
    user_name     TEXT,
    resource_id   TEXT,
    PRIMARY KEY (connection_id, id)
) WITHOUT ROWID;
CREATE INDEX history_resource ON history (resource_id, at, id);
CREATE INDEX history_connection_at ON history (connection_id, at);

-- One row per sample; `at` in Unix seconds and the metric by its canonical name. The key
-- makes a sample stored twice impossible; WITHOUT ROWID keeps the table the index.
CREATE TABLE metric_samples (
    resource_id   TEXT    NOT NULL,
    metric        TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    value         REAL    NOT NULL,
    connection_id TEXT    NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    PRIMARY KEY (resource_id, metric, at)
) WITHOUT ROWID;
CREATE INDEX metric_samples_connection_at ON metric_samples (connection_id, at);
