-- User-defined OCCI mixins (tags): each belongs to the user who made it, lives at /tags/<name>/.
CREATE TABLE occi_mixins (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER NOT NULL,
    term        TEXT NOT NULL,
    scheme      TEXT NOT NULL,
    title       TEXT,
    location    TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    UNIQUE (scheme, term)
);

-- The resources a mixin tags, by their OCCI location (/compute/1, /storage/<uuid>, /network/2).
CREATE TABLE occi_tagged (
    mixin_id    INTEGER NOT NULL REFERENCES occi_mixins (id) ON DELETE CASCADE,
    location    TEXT NOT NULL,
    PRIMARY KEY (mixin_id, location)
);
CREATE INDEX occi_tagged_location ON occi_tagged (location);
