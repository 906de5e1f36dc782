-- Users whose password lives in an LDAP directory (Identity:Ldap): they have no local password; their groups are
-- refreshed from the directory at each (uncached) sign-in.
CREATE TABLE id_ldap_users (
    user_id    INTEGER PRIMARY KEY REFERENCES id_users (id) ON DELETE CASCADE,
    dn         TEXT NOT NULL,
    synced_at  TEXT NOT NULL
);
