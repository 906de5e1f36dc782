-- Images: the image cache (one ORIGIN volume per image) and image names.
CREATE TABLE img_cache (
    key           TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('downloading', 'ready', 'failed')),
    identifier    TEXT NULL,
    origin_uuid   TEXT NULL,
    bytes_total   INTEGER NULL,
    bytes_done    INTEGER NOT NULL DEFAULT 0,
    size_bytes    INTEGER NULL,
    error         TEXT NULL,
    hits          INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    ready_at      TEXT NULL,
    last_used_at  TEXT NULL
);

-- Short names for images (the bundled appliance, admin-registered files), resolved to a Marketplace identifier.
CREATE TABLE img_names (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    identifier  TEXT NOT NULL,
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
