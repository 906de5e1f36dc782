-- Bridge networks that span SSH nodes: the VXLAN network identifier each network gets on first use across nodes,
-- and the node (host name) whose bridge carries a plumbed NIC (NULL: this machine).
ALTER TABLE net_networks ADD COLUMN vni INTEGER;
CREATE UNIQUE INDEX net_networks_vni ON net_networks (vni) WHERE vni IS NOT NULL;
ALTER TABLE net_leases ADD COLUMN node TEXT;
