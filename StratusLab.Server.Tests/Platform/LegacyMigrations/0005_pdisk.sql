-- Pdisk: persistent volumes and their mounts.
-- A volume row is written (state CREATING) before anything exists on the host, so a crash in the middle is
-- undone on the next start; READY, QUARANTINED and DELETING follow.
CREATE TABLE pdisk_volumes (
    uuid              TEXT PRIMARY KEY,
    owner_id          INTEGER NOT NULL,
    groups_json       TEXT NOT NULL DEFAULT '[]',
    visibility        TEXT NOT NULL CHECK (visibility IN ('private', 'public')),
    tag               TEXT NULL,
    size_bytes        INTEGER NOT NULL CHECK (size_bytes > 0),
    quota_gib         INTEGER NOT NULL DEFAULT 0,
    identifier        TEXT NULL,
    type              TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('CREATING', 'READY', 'QUARANTINED', 'DELETING')),
    backend           TEXT NOT NULL,
    format            TEXT NOT NULL,
    path              TEXT NOT NULL,
    origin_uuid       TEXT NULL REFERENCES pdisk_volumes (uuid),
    sharing           TEXT NOT NULL,
    sha1              TEXT NULL,
    quarantined_at    TEXT NULL,
    quarantine_until  TEXT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX pdisk_volumes_owner ON pdisk_volumes (owner_id);
CREATE INDEX pdisk_volumes_origin ON pdisk_volumes (origin_uuid);
CREATE INDEX pdisk_volumes_state ON pdisk_volumes (state);
-- One volume per Marketplace identifier (snapshots carry 'snapshot:<origin>' and are many).
CREATE UNIQUE INDEX pdisk_volumes_identifier ON pdisk_volumes (identifier)
    WHERE identifier IS NOT NULL AND identifier NOT LIKE 'snapshot:%';

-- Who uses a volume: hot-plugged into a running VM (device = QMP device id) or recorded by Compute (a boot disk).
CREATE TABLE pdisk_mounts (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    volume_uuid            TEXT NOT NULL REFERENCES pdisk_volumes (uuid),
    instance_id            INTEGER NOT NULL,
    host                   TEXT NOT NULL,
    device                 TEXT NOT NULL,
    read_only              INTEGER NOT NULL,
    hot_plugged            INTEGER NOT NULL,
    quarantine_on_release  INTEGER NOT NULL DEFAULT 0,
    created_at             TEXT NOT NULL,
    UNIQUE (volume_uuid, instance_id)
);
CREATE INDEX pdisk_mounts_instance ON pdisk_mounts (instance_id);
