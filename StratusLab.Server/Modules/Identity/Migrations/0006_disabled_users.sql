-- An administrator may disable a user: every credential of theirs (password, tokens, access keys, sessions) is refused
-- while disabled_at is set; nothing of theirs is deleted.
ALTER TABLE id_users ADD COLUMN disabled_at TEXT NULL;
