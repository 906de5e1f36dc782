-- Ports by network (PortsOfNetworkAsync) and the foreign key lookup deleting a lease does on net_ports scanned the table.
CREATE INDEX net_ports_lease ON net_ports (network_id, address);

-- Deleting a security group checks the networks that use it (foreign key).
CREATE INDEX net_network_security_groups_group ON net_network_security_groups (security_group_id);
