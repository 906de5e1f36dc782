-- Per-user access keys for signed requests (EC2 Signature V4). The secret is needed to verify a signature, so it is
-- kept sealed with the server key (<data-dir>/server.key), never in the clear.
CREATE TABLE id_access_keys (
    id             TEXT PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES id_users (id) ON DELETE CASCADE,
    secret_sealed  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    last_used_at   TEXT NULL
);
CREATE INDEX id_access_keys_user ON id_access_keys (user_id);
