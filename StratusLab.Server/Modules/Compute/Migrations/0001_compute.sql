-- Compute: instance types, images known to the server, instances, forwarded ports, simulated VMs.
CREATE TABLE compute_instance_types (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    cpu         INTEGER NOT NULL CHECK (cpu > 0),
    memory_mib  INTEGER NOT NULL CHECK (memory_mib > 0),
    builtin     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

INSERT INTO compute_instance_types (name, cpu, memory_mib, builtin, created_at) VALUES
    ('t1.tiny',    1,  128, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('t1.micro',   1,  512, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('m1.small',   1, 1536, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('m1.medium',  1, 3072, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('m1.large',   2, 6144, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('m1.xlarge',  4, 8192, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('c1.medium',  2, 1536, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('c1.xlarge',  4, 6144, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

CREATE TABLE compute_instances (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT NOT NULL,
    owner_id           INTEGER NOT NULL,
    group_id           INTEGER NOT NULL,
    permissions        INTEGER NOT NULL,
    state              TEXT NOT NULL,
    failed_step        TEXT NULL,
    failure_reason     TEXT NULL,
    ready              INTEGER NOT NULL DEFAULT 0,
    image              TEXT NOT NULL,
    image_ref          TEXT NULL,
    instance_type      TEXT NULL,
    cpu                INTEGER NOT NULL,
    memory_mib         INTEGER NOT NULL,
    host               TEXT NULL,
    driver             TEXT NOT NULL,
    accelerator        TEXT NULL,
    context_json       TEXT NOT NULL DEFAULT '{}',
    ssh_keys_json      TEXT NOT NULL DEFAULT '[]',
    user_data          TEXT NULL,
    admin_json         TEXT NOT NULL DEFAULT '{}',
    guest_token_hash   TEXT NULL UNIQUE,
    port_forwards_json TEXT NOT NULL DEFAULT '[]',
    vm_dir             TEXT NULL,
    boot_disk_json     TEXT NULL,
    save_image         INTEGER NOT NULL DEFAULT 0,
    saved_image        TEXT NULL,
    pid                INTEGER NULL,
    scheduling_message TEXT NULL,
    quota_held         INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    placed_at          TEXT NULL,
    started_at         TEXT NULL,
    ready_at           TEXT NULL,
    ended_at           TEXT NULL
);
CREATE INDEX compute_instances_state ON compute_instances (state);
CREATE INDEX compute_instances_owner ON compute_instances (owner_id);

-- One row per forwarded host port, so two instances can never get the same one.
CREATE TABLE compute_ports (
    port         INTEGER PRIMARY KEY,
    instance_id  INTEGER NOT NULL REFERENCES compute_instances (id) ON DELETE CASCADE,
    guest_port   INTEGER NOT NULL
);

-- The simulated driver's VMs, persisted so they "survive" a server restart like QEMU processes do.
CREATE TABLE compute_simulated_vms (
    instance_id  INTEGER PRIMARY KEY,
    state        TEXT NOT NULL
);
