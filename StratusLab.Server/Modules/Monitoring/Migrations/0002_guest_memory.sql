-- The guest's memory through the virtio balloon, next to the QEMU process's RSS: the balloon's size (query-balloon "actual")
-- and the guest's own total and available memory (virtio-balloon guest-stats); NULL where the hypervisor or guest cannot say.
ALTER TABLE mon_instance_samples ADD COLUMN balloon_bytes INTEGER NULL;
ALTER TABLE mon_instance_samples ADD COLUMN guest_memory_total_bytes INTEGER NULL;
ALTER TABLE mon_instance_samples ADD COLUMN guest_memory_available_bytes INTEGER NULL;

-- The largest disk capacity (bytes, every disk of the VM but its CD-ROMs) seen for an instance in a period: APEL's Disk.
ALTER TABLE acct_usage ADD COLUMN disk_bytes INTEGER NULL;
