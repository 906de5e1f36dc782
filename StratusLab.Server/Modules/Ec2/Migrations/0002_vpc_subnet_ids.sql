-- Stored ids for the default VPC (vpc-, one per region) and subnets (subnet-, one per network). SQLite cannot change a
-- CHECK in place: both tables are rebuilt (tags first, so dropping ec2_ids cascades to nothing) and their rows copied.
CREATE TABLE ec2_ids_new (
    aws_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('instance', 'volume', 'snapshot', 'image', 'security-group', 'vpc', 'subnet')),
    native_id   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (kind, native_id)
);
INSERT INTO ec2_ids_new (aws_id, kind, native_id, created_at) SELECT aws_id, kind, native_id, created_at FROM ec2_ids;

CREATE TABLE ec2_tags_new (
    aws_id  TEXT NOT NULL REFERENCES ec2_ids_new (aws_id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (aws_id, key)
);
INSERT INTO ec2_tags_new (aws_id, key, value) SELECT aws_id, key, value FROM ec2_tags;

DROP TABLE ec2_tags;
DROP TABLE ec2_ids;
ALTER TABLE ec2_ids_new RENAME TO ec2_ids;
ALTER TABLE ec2_tags_new RENAME TO ec2_tags;
CREATE INDEX ec2_tags_key ON ec2_tags (key, value);
