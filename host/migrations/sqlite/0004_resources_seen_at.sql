-- When the resources of a connection's last successful poll were seen. Every stored resource
-- of a connection was in that poll (others are deleted), so this one value moves all their
-- `lastSeenAt`s without rewriting any resource row; a row's own `last_seen_at` counts when
-- it is later (see SqliteStore::list_resources).
ALTER TABLE connections ADD COLUMN resources_seen_at TEXT;
