-- Scale-out coordination (PostgreSQL only; see src/lease.rs and docs/scale-out.md). Times here
-- are the database's own clock (timestamptz, now()), never a replica's, so replicas with
-- skewed clocks still agree on who holds what.

-- Live replicas: each renews its row every tick; a row past `expires_at` is a dead replica.
CREATE TABLE replicas (
    id         TEXT COLLATE "C" PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Who polls each connection, until when. At most one row per connection; a row past
-- `expires_at` may be taken over. Rows go with their connection.
CREATE TABLE leases (
    connection_id TEXT COLLATE "C" PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    owner         TEXT COLLATE "C" NOT NULL,
    acquired_at   TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX leases_owner ON leases (owner);

-- One row per poll a replica ran, for audits ("who polled what, when") and the tests that
-- prove no connection is polled by two replicas at once. Pruned to a day.
CREATE TABLE poll_runs (
    id            BIGSERIAL PRIMARY KEY,
    connection_id TEXT COLLATE "C" NOT NULL,
    replica_id    TEXT COLLATE "C" NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX poll_runs_connection ON poll_runs (connection_id, started_at);
CREATE INDEX poll_runs_finished ON poll_runs (finished_at);
