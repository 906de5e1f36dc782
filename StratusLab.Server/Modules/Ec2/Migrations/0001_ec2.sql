-- The EC2 door's own state. AWS-shaped ids are allocated once per resource and stored (never recomputed):
-- i- instances, vol- volumes, snap- snapshots, ami- images, sg- security groups.
CREATE TABLE ec2_ids (
    aws_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('instance', 'volume', 'snapshot', 'image', 'security-group')),
    native_id   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (kind, native_id)
);

-- Tags on any resource that has an EC2 id.
CREATE TABLE ec2_tags (
    aws_id  TEXT NOT NULL REFERENCES ec2_ids (aws_id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (aws_id, key)
);
CREATE INDEX ec2_tags_key ON ec2_tags (key, value);

-- RunInstances' ClientToken: the same token from the same user returns the first call's reservation.
CREATE TABLE ec2_client_tokens (
    owner_id        INTEGER NOT NULL,
    token           TEXT NOT NULL,
    reservation_id  TEXT NOT NULL,
    instance_ids    TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (owner_id, token)
);
