-- One counter that every write to what the image policy reads moves (entries, endorsers, site policy rules), whatever code
-- path made it: the policy caches the list of launchable images and recomputes it only when the counter (or the clock,
-- for entries that expire) says it changed.
CREATE TABLE mkt_changes (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    counter  INTEGER NOT NULL
);
INSERT INTO mkt_changes (id, counter) VALUES (1, 0);

CREATE TRIGGER mkt_entries_insert_counts AFTER INSERT ON mkt_entries BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
CREATE TRIGGER mkt_entries_update_counts AFTER UPDATE ON mkt_entries BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
CREATE TRIGGER mkt_entries_delete_counts AFTER DELETE ON mkt_entries BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
CREATE TRIGGER mkt_endorsers_insert_counts AFTER INSERT ON mkt_endorsers BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
CREATE TRIGGER mkt_endorsers_update_counts AFTER UPDATE ON mkt_endorsers BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
CREATE TRIGGER mkt_endorsers_delete_counts AFTER DELETE ON mkt_endorsers BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
CREATE TRIGGER policy_rules_insert_counts AFTER INSERT ON policy_rules BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
CREATE TRIGGER policy_rules_update_counts AFTER UPDATE ON policy_rules BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
CREATE TRIGGER policy_rules_delete_counts AFTER DELETE ON policy_rules BEGIN UPDATE mkt_changes SET counter = counter + 1; END;
