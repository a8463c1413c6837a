-- Resource bodies are stored without `lastSeenAt` (kept in its own column) and with a hash,
-- so a poll rewrites only the resources that changed. Rows written before have no hash and
-- are rewritten by the next poll.
ALTER TABLE resources ADD COLUMN body_hash TEXT;
