-- Compute: instances on peer clouds that ended here while the peer did not answer. The local instance is DONE; its
-- instance there is terminated when the peer answers again (attempts and the last error are kept for admins).
CREATE TABLE compute_remote_deletions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    host             TEXT NOT NULL,
    remote_id        TEXT NOT NULL,
    instance_id      INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NULL,
    created_at       TEXT NOT NULL,
    last_attempt_at  TEXT NULL,
    UNIQUE (host, remote_id)
);
