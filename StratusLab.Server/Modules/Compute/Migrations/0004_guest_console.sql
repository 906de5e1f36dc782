-- Compute: the image's login user (from its entry, at admission), the per-request ready timeout and the flag set when
-- the guest did not become ready within it.
ALTER TABLE compute_instances ADD COLUMN login_user TEXT NULL;
ALTER TABLE compute_instances ADD COLUMN ready_timeout_seconds INTEGER NULL;
ALTER TABLE compute_instances ADD COLUMN not_ready INTEGER NOT NULL DEFAULT 0;
ALTER TABLE compute_instances ADD COLUMN not_ready_reason TEXT NULL;
CREATE INDEX compute_instances_ended ON compute_instances (state, ended_at);
