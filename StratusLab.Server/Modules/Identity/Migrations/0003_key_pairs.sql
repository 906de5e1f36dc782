-- Identity: users' named SSH key pairs (public halves only). A server-generated pair keeps its public half here
-- too (origin 'generated'); its private half is returned once and never stored.
CREATE TABLE id_key_pairs (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES id_users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL COLLATE NOCASE,
    public_key   TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    origin       TEXT NOT NULL DEFAULT 'imported' CHECK (origin IN ('imported', 'generated')),
    is_default   INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    UNIQUE (user_id, name)
);
-- At most one default key per user.
CREATE UNIQUE INDEX id_key_pairs_default ON id_key_pairs (user_id) WHERE is_default = 1;
