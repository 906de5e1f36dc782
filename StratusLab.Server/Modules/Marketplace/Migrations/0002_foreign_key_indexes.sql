-- Deleting an entry cascades to its tags (foreign key); the primary key (tag, entry_id) cannot find them by entry.
CREATE INDEX mkt_entry_tags_entry ON mkt_entry_tags (entry_id);
