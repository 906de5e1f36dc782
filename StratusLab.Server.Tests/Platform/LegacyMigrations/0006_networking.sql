-- Networking: virtual networks and their address ranges, leases (an address + MAC used by an instance NIC, or held),
-- forwarded host ports (PAT) and security groups with their rules. Addresses are IPv4 numbers (0..2^32-1).
CREATE TABLE net_networks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    kind          TEXT NOT NULL CHECK (kind IN ('public', 'local', 'private')),
    driver        TEXT NOT NULL CHECK (driver IN ('user', 'bridge')),
    owner_id      INTEGER NOT NULL,
    group_id      INTEGER NOT NULL,
    permissions   INTEGER NOT NULL,
    network       INTEGER NOT NULL,             -- the subnet every range lies in
    prefix        INTEGER NOT NULL CHECK (prefix BETWEEN 0 AND 32),
    gateway       TEXT NULL,
    dns_json      TEXT NOT NULL DEFAULT '[]',
    mtu           INTEGER NULL,
    vlan_id       INTEGER NULL CHECK (vlan_id BETWEEN 1 AND 4094),
    uplink        TEXT NULL,
    next_address  INTEGER NOT NULL DEFAULT 0,   -- allocation cursor: a released address is not given out again at once
    created_at    TEXT NOT NULL
);

CREATE TABLE net_ranges (
    network_id  INTEGER NOT NULL REFERENCES net_networks (id) ON DELETE CASCADE,
    first       INTEGER NOT NULL,
    last        INTEGER NOT NULL CHECK (last >= first),
    PRIMARY KEY (network_id, first)
);

-- A lease exists only while an address is used or held, so a /16 costs nothing until it is used.
CREATE TABLE net_leases (
    network_id   INTEGER NOT NULL REFERENCES net_networks (id) ON DELETE CASCADE,
    address      INTEGER NOT NULL,
    mac          TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('used', 'held')),
    instance_id  INTEGER NULL,
    nic          INTEGER NULL,
    reason       TEXT NULL,                     -- why it is held: 'gateway', 'dns', or who held it
    plumbed      INTEGER NOT NULL DEFAULT 0,    -- 1 once the driver may have made host state for it (tap, rules, DHCP entry)
    created_at   TEXT NOT NULL,
    PRIMARY KEY (network_id, address),
    CHECK ((state = 'used') = (instance_id IS NOT NULL))
);
CREATE UNIQUE INDEX net_leases_nic ON net_leases (instance_id, nic) WHERE instance_id IS NOT NULL;

CREATE TABLE net_ports (
    port          INTEGER NOT NULL,
    protocol      TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    host_address  TEXT NOT NULL,
    network_id    INTEGER NOT NULL,
    address       INTEGER NOT NULL,
    guest_port    INTEGER NOT NULL,
    instance_id   INTEGER NOT NULL,
    PRIMARY KEY (port, protocol),
    FOREIGN KEY (network_id, address) REFERENCES net_leases (network_id, address) ON DELETE CASCADE
);
CREATE INDEX net_ports_instance ON net_ports (instance_id);

CREATE TABLE net_security_groups (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    owner_id     INTEGER NOT NULL,
    group_id     INTEGER NOT NULL,
    permissions  INTEGER NOT NULL,
    description  TEXT NULL,
    created_at   TEXT NOT NULL
);

CREATE TABLE net_security_rules (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    security_group_id  INTEGER NOT NULL REFERENCES net_security_groups (id) ON DELETE CASCADE,
    direction          TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    action             TEXT NOT NULL CHECK (action IN ('accept', 'drop')),
    protocol           TEXT NOT NULL CHECK (protocol IN ('all', 'tcp', 'udp', 'icmp')),
    port_first         INTEGER NULL,
    port_last          INTEGER NULL,
    cidr               TEXT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX net_security_rules_group ON net_security_rules (security_group_id);

-- A security group in use by a network cannot be deleted (no ON DELETE CASCADE on its side).
CREATE TABLE net_network_security_groups (
    network_id         INTEGER NOT NULL REFERENCES net_networks (id) ON DELETE CASCADE,
    security_group_id  INTEGER NOT NULL REFERENCES net_security_groups (id),
    position           INTEGER NOT NULL,
    PRIMARY KEY (network_id, security_group_id)
);

-- OpenNebula's security group 0: everything allowed both ways; every network has it unless told otherwise.
INSERT INTO net_security_groups (id, name, owner_id, group_id, permissions, description, created_at)
    VALUES (0, 'default', 0, 0, 420, 'allows all inbound and outbound traffic', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
INSERT INTO net_security_rules (security_group_id, direction, action, protocol, created_at) VALUES
    (0, 'inbound', 'accept', 'all', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    (0, 'outbound', 'accept', 'all', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- Compute: the networks and extra forwarded ports an instance asked for, and the NICs it got (for its view).
ALTER TABLE compute_instances ADD COLUMN networks_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE compute_instances ADD COLUMN forward_ports_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE compute_instances ADD COLUMN nics_json TEXT NOT NULL DEFAULT '[]';

-- Leases own the forwarded ports now (net_ports).
DROP TABLE compute_ports;
