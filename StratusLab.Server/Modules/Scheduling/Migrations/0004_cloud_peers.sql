-- Scheduling: hosts that stand for another cloud (driver cloud): how to reach it, its credentials sealed with the
-- server key (Platform SecretBox, as access-key secrets), and whether it takes instances when local hosts are full.
ALTER TABLE sched_hosts ADD COLUMN cloud_url TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN cloud_kind TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN cloud_region TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN cloud_key_id TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN cloud_secret_sealed TEXT NULL;
ALTER TABLE sched_hosts ADD COLUMN burst INTEGER NOT NULL DEFAULT 0;
