-- Scheduling: hosts and the capacity placements hold on them.
CREATE TABLE sched_hosts (
    name             TEXT PRIMARY KEY COLLATE NOCASE,
    driver           TEXT NOT NULL,
    cpus             INTEGER NOT NULL CHECK (cpus > 0),
    memory_mib       INTEGER NOT NULL CHECK (memory_mib > 0),
    enabled          INTEGER NOT NULL DEFAULT 1,
    is_local         INTEGER NOT NULL DEFAULT 0,
    cpu_usage        REAL NOT NULL DEFAULT 0,
    memory_used_mib  INTEGER NOT NULL DEFAULT 0,
    accelerator      TEXT NULL,
    created_at       TEXT NOT NULL,
    monitored_at     TEXT NULL
);

CREATE TABLE sched_allocations (
    instance_id  INTEGER PRIMARY KEY,
    host         TEXT NOT NULL REFERENCES sched_hosts (name),
    cpus         INTEGER NOT NULL,
    memory_mib   INTEGER NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX sched_allocations_host ON sched_allocations (host);
