-- Scheduling: hosts reached over SSH (driver ssh), their probed state and what the last probe found.
ALTER TABLE sched_hosts ADD COLUMN state TEXT NOT NULL DEFAULT 'OK';
ALTER TABLE sched_hosts ADD COLUMN state_reason TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN ssh_user TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN ssh_address TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN ssh_port INTEGER NULL;
ALTER TABLE sched_hosts ADD COLUMN ssh_key_file TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN node_root TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN capacity_declared INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sched_hosts ADD COLUMN missed_probes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sched_hosts ADD COLUMN probe_json TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN probed_at TEXT NULL;
