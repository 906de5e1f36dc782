-- Scheduling: how an SSH node gets its VMs' boot disks: 'cache' (copied to the node's cache, a CoW overlay per VM) or
-- 'iscsi' (the Pdisk volume opened over iSCSI from the front-end, nothing copied). NULL is 'cache'.
ALTER TABLE sched_hosts ADD COLUMN boot_disks TEXT NULL;
