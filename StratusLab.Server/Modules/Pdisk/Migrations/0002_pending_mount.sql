-- A copy-on-write clone made for an instance's boot disk (IVolumes.CreateSnapshotAsync) carries the id of the server
-- run that made it until it is first mounted; a clone still unmounted after that run ended (a crash in PROLOG) or
-- after Pdisk:UnmountedCloneMinutes is an orphan the reconciler quarantines.
ALTER TABLE pdisk_volumes ADD COLUMN pending_mount_run TEXT NULL;
CREATE INDEX pdisk_volumes_pending_mount ON pdisk_volumes (pending_mount_run) WHERE pending_mount_run IS NOT NULL;
