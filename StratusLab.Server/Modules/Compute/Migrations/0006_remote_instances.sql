-- Compute: instances that run on a peer cloud (host driver cloud) carry the peer's id for them and their address there.
ALTER TABLE compute_instances ADD COLUMN remote_id TEXT NULL;
ALTER TABLE compute_instances ADD COLUMN remote_address TEXT NULL;
