-- Services (Claudia / OneFlow): a service, its roles' running state, members and scaling decisions. Times in unix seconds.
CREATE TABLE svc_services (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    owner_id    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT NULL,
    template    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE svc_roles (
    service_id      INTEGER NOT NULL REFERENCES svc_services(id),
    name            TEXT NOT NULL,
    position        INTEGER NOT NULL,
    cardinality     INTEGER NOT NULL,
    started         INTEGER NOT NULL DEFAULT 0,
    streaks         TEXT NOT NULL DEFAULT '[]',
    cooldown_secs   INTEGER NULL,
    cooldown_until  INTEGER NULL,
    last_evaluated  INTEGER NULL,
    PRIMARY KEY (service_id, name)
);

CREATE TABLE svc_members (
    instance_id  INTEGER PRIMARY KEY,
    service_id   INTEGER NOT NULL REFERENCES svc_services(id),
    role         TEXT NOT NULL,
    joined_at    INTEGER NOT NULL,
    leaving      INTEGER NOT NULL DEFAULT 0,
    ended        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX svc_members_service ON svc_members (service_id, ended);

CREATE TABLE svc_decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id  INTEGER NOT NULL REFERENCES svc_services(id),
    at          INTEGER NOT NULL,
    role        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    rule        TEXT NULL,
    from_count  INTEGER NOT NULL,
    to_count    INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    vals        TEXT NOT NULL
);
CREATE INDEX svc_decisions_service ON svc_decisions (service_id, id);
