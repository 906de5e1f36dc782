-- Compute: the networks and extra forwarded ports an instance asked for, and the NICs it got (for its view).
-- (Shipped inside the old global migration 0006_networking; it is Compute's table, so Compute owns the change.)
ALTER TABLE compute_instances ADD COLUMN networks_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE compute_instances ADD COLUMN forward_ports_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE compute_instances ADD COLUMN nics_json TEXT NOT NULL DEFAULT '[]';

-- Networking's leases own the forwarded ports now (net_ports).
DROP TABLE compute_ports;
