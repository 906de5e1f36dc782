-- Monitoring: instance, KPI and host samples (raw: resolution 0; downsampled: resolution = bucket seconds), times in unix seconds.
CREATE TABLE mon_instance_samples (
    instance_id       INTEGER NOT NULL,
    resolution        INTEGER NOT NULL,
    at                INTEGER NOT NULL,
    cpu_seconds       REAL NOT NULL,
    rss_bytes         INTEGER NULL,
    disk_read_bytes   INTEGER NULL,
    disk_write_bytes  INTEGER NULL,
    disk_read_ops     INTEGER NULL,
    disk_write_ops    INTEGER NULL,
    net_rx_bytes      INTEGER NULL,
    net_tx_bytes      INTEGER NULL,
    simulated         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_id, resolution, at)
) WITHOUT ROWID;

CREATE TABLE mon_kpi_samples (
    instance_id  INTEGER NOT NULL,
    name         TEXT NOT NULL,
    resolution   INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    value        REAL NOT NULL,
    min          REAL NOT NULL,
    max          REAL NOT NULL,
    count        INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (instance_id, name, resolution, at)
) WITHOUT ROWID;

CREATE TABLE mon_host_samples (
    host                  TEXT NOT NULL,
    resolution            INTEGER NOT NULL,
    at                    INTEGER NOT NULL,
    cpus                  INTEGER NOT NULL,
    memory_mib            INTEGER NOT NULL,
    allocated_cpus        INTEGER NOT NULL,
    allocated_memory_mib  INTEGER NOT NULL,
    running_vms           INTEGER NOT NULL,
    cpu_usage_percent     REAL NOT NULL,
    memory_used_mib       INTEGER NOT NULL,
    load1                 REAL NULL,
    PRIMARY KEY (host, resolution, at)
) WITHOUT ROWID;

-- The last counters seen per instance, so accounting adds deltas across server restarts.
CREATE TABLE mon_last (
    instance_id       INTEGER PRIMARY KEY,
    at                INTEGER NOT NULL,
    state             TEXT NOT NULL,
    cpu_seconds       REAL NULL,
    net_rx_bytes      INTEGER NULL,
    net_tx_bytes      INTEGER NULL,
    disk_read_bytes   INTEGER NULL,
    disk_write_bytes  INTEGER NULL
);

-- Up to where raw samples have been rolled up (unix seconds, a bucket boundary).
CREATE TABLE mon_rollup_state (
    name   TEXT PRIMARY KEY,
    until  INTEGER NOT NULL
);

-- Accounting: one usage record per instance per period, self-contained (names copied) so it outlives the instance.
CREATE TABLE acct_usage (
    instance_id       INTEGER NOT NULL,
    period_start      INTEGER NOT NULL,
    period_end        INTEGER NOT NULL,
    instance_name     TEXT NOT NULL,
    owner_id          INTEGER NOT NULL,
    owner             TEXT NOT NULL,
    group_id          INTEGER NOT NULL,
    group_name        TEXT NOT NULL,
    image             TEXT NOT NULL,
    instance_type     TEXT NULL,
    cpu               INTEGER NOT NULL,
    memory_mib        INTEGER NOT NULL,
    host              TEXT NULL,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER NULL,
    ended_at          INTEGER NULL,
    state             TEXT NOT NULL,
    wall_seconds      REAL NOT NULL DEFAULT 0,
    cpu_seconds       REAL NOT NULL DEFAULT 0,
    net_rx_bytes      INTEGER NOT NULL DEFAULT 0,
    net_tx_bytes      INTEGER NOT NULL DEFAULT 0,
    disk_read_bytes   INTEGER NOT NULL DEFAULT 0,
    disk_write_bytes  INTEGER NOT NULL DEFAULT 0,
    state_changes     INTEGER NOT NULL DEFAULT 0,
    simulated         INTEGER NOT NULL DEFAULT 0,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (instance_id, period_start)
);
CREATE INDEX acct_usage_owner ON acct_usage (owner_id, period_start);
CREATE INDEX acct_usage_period ON acct_usage (period_start);
