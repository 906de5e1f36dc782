-- Identity: users, groups, tokens (hashes only), quotas and quota usage.
CREATE TABLE id_groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at  TEXT NOT NULL
);

CREATE TABLE id_users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    primary_group  INTEGER NOT NULL REFERENCES id_groups (id),
    created_at     TEXT NOT NULL
);

CREATE TABLE id_user_groups (
    user_id   INTEGER NOT NULL REFERENCES id_users (id) ON DELETE CASCADE,
    group_id  INTEGER NOT NULL REFERENCES id_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);

CREATE TABLE id_tokens (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES id_users (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL UNIQUE,
    name        TEXT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NULL,
    revoked_at  TEXT NULL
);
CREATE INDEX id_tokens_user ON id_tokens (user_id);

-- NULL limit = the configured default for that resource; -1 = unlimited.
CREATE TABLE id_quotas (
    user_id      INTEGER PRIMARY KEY REFERENCES id_users (id) ON DELETE CASCADE,
    vms          INTEGER NULL,
    cpus         INTEGER NULL,
    memory_mib   INTEGER NULL,
    storage_gib  INTEGER NULL
);

CREATE TABLE id_quota_usage (
    user_id      INTEGER PRIMARY KEY REFERENCES id_users (id) ON DELETE CASCADE,
    vms          INTEGER NOT NULL DEFAULT 0 CHECK (vms >= 0),
    cpus         INTEGER NOT NULL DEFAULT 0 CHECK (cpus >= 0),
    memory_mib   INTEGER NOT NULL DEFAULT 0 CHECK (memory_mib >= 0),
    storage_gib  INTEGER NOT NULL DEFAULT 0 CHECK (storage_gib >= 0)
);

INSERT INTO id_groups (id, name, created_at) VALUES (0, 'admins', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
INSERT INTO id_groups (id, name, created_at) VALUES (1, 'users', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
