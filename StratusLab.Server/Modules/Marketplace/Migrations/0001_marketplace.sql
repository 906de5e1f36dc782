-- Marketplace: endorsers (one row per e-mail and certificate), signed metadata entries with their search index,
-- the site's own image files; the site image policy (rules set through the API) and the launch audit.
CREATE TABLE mkt_endorsers (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL COLLATE NOCASE,
    cert_sha256   TEXT NOT NULL,
    subject       TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    certificate   TEXT NOT NULL,              -- base64 DER
    state         TEXT NOT NULL CHECK (state IN ('pending', 'confirmed')),
    whitelisted   INTEGER NOT NULL DEFAULT 0,
    token_hash    TEXT NULL UNIQUE,           -- SHA-256 of the confirmation token mailed to the endorser
    created_at    TEXT NOT NULL,
    confirmed_at  TEXT NULL,
    UNIQUE (email, cert_sha256)
);

CREATE TABLE mkt_entries (
    id                INTEGER PRIMARY KEY,
    identifier        TEXT NOT NULL,
    email             TEXT NOT NULL COLLATE NOCASE,
    created           TEXT NOT NULL,           -- dcterms:created of the endorsement, yyyy-MM-ddTHH:mm:ssZ
    endorser_id       INTEGER NOT NULL REFERENCES mkt_endorsers (id),
    state             TEXT NOT NULL CHECK (state IN ('pending', 'published')),
    latest            INTEGER NOT NULL DEFAULT 0,  -- 1 on the newest published entry of each identifier + e-mail
    valid_until       TEXT NULL,
    deprecated        TEXT NULL,               -- reason: the signed slterms:deprecated, or an admin override
    deprecated_by     TEXT NULL,               -- 'endorser' or 'admin:NAME'
    deprecated_at     TEXT NULL,
    sha1              TEXT NOT NULL,
    checksums         TEXT NOT NULL,           -- every checksum value, space separated, for the policy
    os                TEXT NULL COLLATE NOCASE,
    os_arch           TEXT NULL COLLATE NOCASE,
    entry_json        TEXT NOT NULL,           -- the parsed entry
    xml               BLOB NOT NULL,           -- the entry exactly as uploaded
    uploaded_at       TEXT NOT NULL,
    uploaded_by       TEXT NULL,
    UNIQUE (identifier, email, created)
);
CREATE INDEX mkt_entries_latest ON mkt_entries (latest, created);
CREATE INDEX mkt_entries_identifier ON mkt_entries (identifier, latest);
CREATE INDEX mkt_entries_email ON mkt_entries (email, created);
-- (filter, latest, created): the filter finds the rows already in the listing order, so no scan of every latest entry.
CREATE INDEX mkt_entries_os ON mkt_entries (os, latest, created);
CREATE INDEX mkt_entries_arch ON mkt_entries (os_arch, latest, created);
CREATE INDEX mkt_entries_endorser ON mkt_entries (endorser_id, state);

CREATE TABLE mkt_entry_tags (
    entry_id  INTEGER NOT NULL REFERENCES mkt_entries (id) ON DELETE CASCADE,
    tag       TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (tag, entry_id)
);

-- Free-text search over title, description, tags, OS, endorser and identifier; rowid = mkt_entries.id.
CREATE VIRTUAL TABLE mkt_search USING fts5 (body, tokenize = 'unicode61 remove_diacritics 2');

-- Image files the site registered, so an unchanged file is not hashed again.
CREATE TABLE mkt_site_files (
    path        TEXT PRIMARY KEY,
    length      INTEGER NOT NULL,
    mtime       TEXT NOT NULL,
    sha1        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    md5         TEXT NOT NULL
);

-- Policy rules administrators set through the API (the config file's rules are added to them).
CREATE TABLE policy_rules (
    list        TEXT NOT NULL CHECK (list IN ('whitelist', 'blacklist')),
    kind        TEXT NOT NULL CHECK (kind IN ('endorser', 'image', 'checksum')),
    value       TEXT NOT NULL COLLATE NOCASE,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (list, kind, value)
);

-- Every launch decision, accepted or refused, for forensics.
CREATE TABLE policy_audit (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    identifier   TEXT NOT NULL,
    sha1         TEXT NULL,
    endorser     TEXT NULL,
    user_id      INTEGER NULL,
    user_name    TEXT NOT NULL,
    instance_id  TEXT NULL,
    accepted     INTEGER NOT NULL,
    rule         TEXT NOT NULL,
    source       TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE INDEX policy_audit_at ON policy_audit (at);
CREATE INDEX policy_audit_identifier ON policy_audit (identifier, at);
CREATE INDEX policy_audit_user ON policy_audit (user_name, at);
