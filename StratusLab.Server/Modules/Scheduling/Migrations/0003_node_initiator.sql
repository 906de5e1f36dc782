-- Scheduling: each SSH node's own iSCSI initiator name (Pdisk's target ACLs name the node that mounts a volume).
ALTER TABLE sched_hosts ADD COLUMN iscsi_initiator TEXT NULL;
UPDATE sched_hosts SET iscsi_initiator = 'iqn.2011-01.eu.stratuslab.node:' || lower(hex(randomblob(8))) WHERE ssh_address IS NOT NULL;
