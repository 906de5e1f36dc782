-- Compute: what a cloud-init guest needs from its request (context method, hostname, key name, ready port, the unique
-- instance-id it sees), and how the instance became ready (guest-api, phone-home, ssh, port).
ALTER TABLE compute_instances ADD COLUMN guest_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE compute_instances ADD COLUMN ready_source TEXT NULL;
