-- Feeds, as SQLite's 0006_feeds.sql: event/task history and performance samples, and the
-- provider's cursor written in the same transaction as the records.
ALTER TABLE connections ADD COLUMN feed_cursor TEXT COLLATE "C";

CREATE TABLE history (
    connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    id            TEXT COLLATE "C" NOT NULL,
    at            TEXT COLLATE "C" NOT NULL,
    kind          TEXT COLLATE "C" NOT NULL,
    type          TEXT COLLATE "C" NOT NULL,
    message       TEXT COLLATE "C" NOT NULL,
    user_name     TEXT COLLATE "C",
    resource_id   TEXT COLLATE "C",
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX history_resource ON history (resource_id, at, id);
CREATE INDEX history_connection_at ON history (connection_id, at);

-- `at` in Unix seconds; the key makes a sample stored twice impossible.
CREATE TABLE metric_samples (
    resource_id   TEXT COLLATE "C" NOT NULL,
    metric        TEXT COLLATE "C" NOT NULL,
    at            BIGINT           NOT NULL,
    value         DOUBLE PRECISION NOT NULL,
    connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    PRIMARY KEY (resource_id, metric, at)
);
CREATE INDEX metric_samples_connection_at ON metric_samples (connection_id, at);
