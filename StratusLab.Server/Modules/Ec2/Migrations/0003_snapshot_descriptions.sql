-- CreateSnapshot's Description: free text Pdisk's tag cannot hold (it allows no spaces), kept by the EC2 door.
CREATE TABLE ec2_descriptions (
    aws_id       TEXT PRIMARY KEY REFERENCES ec2_ids (aws_id) ON DELETE CASCADE,
    description  TEXT NOT NULL
);
