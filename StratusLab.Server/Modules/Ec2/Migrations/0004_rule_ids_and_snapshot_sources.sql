-- sgr- ids of security group rules (AuthorizeSecurityGroupIngress/Egress return them; DescribeSecurityGroupRules and
-- Revoke... by SecurityGroupRuleIds use them). Allocated once per Networking rule id (AUTOINCREMENT: never reused).
CREATE TABLE ec2_rule_ids (
    aws_id      TEXT PRIMARY KEY,
    rule_id     INTEGER NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

-- A snapshot of a volume that is not an ORIGIN (a RAW data disk) is a copy made by Pdisk; its source volume is kept
-- here (Pdisk's origin link means copy-on-write backing, which a copy has not).
CREATE TABLE ec2_snapshot_sources (
    snapshot_id  TEXT PRIMARY KEY REFERENCES ec2_ids (aws_id) ON DELETE CASCADE,
    volume_id    TEXT NOT NULL
);
