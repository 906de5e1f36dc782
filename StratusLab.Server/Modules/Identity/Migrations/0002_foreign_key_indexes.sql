-- Deleting a group checks its users and memberships (foreign keys); without these it scans both tables.
CREATE INDEX id_users_primary_group ON id_users (primary_group);
CREATE INDEX id_user_groups_group ON id_user_groups (group_id);
