-- Compute: persistent volumes an instance gets at boot as extra virtio disks (vdb, vdc, ...), as uuids.
ALTER TABLE compute_instances ADD COLUMN volumes_json TEXT NOT NULL DEFAULT '[]';
