-- Who serves whom: institutions (township health centres, community health
-- service centres) hold communities and family-doctor teams; a team is led
-- by a doctor and serves communities. One deployment may serve a whole city.
CREATE TABLE institutions (
    id   {{id}},
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('township_centre', 'community_centre'))
);

CREATE TABLE communities (
    id              {{id}},
    institution_id  BIGINT NOT NULL REFERENCES institutions (id),
    town            TEXT NOT NULL,
    name            TEXT NOT NULL,
    residents       INTEGER NOT NULL DEFAULT 0,
    priority_counts TEXT NOT NULL DEFAULT '{}' -- JSON: group -> residents; the indicators' denominators
);
CREATE INDEX communities_institution ON communities (institution_id);

-- A doctor binds their WeChat with a single-use code (kept only as a keyed
-- hash) to receive sign requests and bookings.
CREATE TABLE doctors (
    id                 {{id}},
    institution_id     BIGINT NOT NULL REFERENCES institutions (id),
    name               TEXT NOT NULL,
    title              TEXT NOT NULL DEFAULT '',
    openid             TEXT UNIQUE,
    bound_at           {{timestamp}},
    binding_code_hash  TEXT UNIQUE,
    binding_expires_at {{timestamp}}
);

CREATE TABLE teams (
    id             {{id}},
    institution_id BIGINT NOT NULL REFERENCES institutions (id),
    name           TEXT NOT NULL,
    doctor_id      BIGINT NOT NULL REFERENCES doctors (id)
);
CREATE INDEX teams_doctor ON teams (doctor_id);

CREATE TABLE team_members (
    team_id    BIGINT NOT NULL REFERENCES teams (id),
    sort_order INTEGER NOT NULL,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (team_id, sort_order)
);

CREATE TABLE team_communities (
    team_id      BIGINT NOT NULL REFERENCES teams (id),
    community_id BIGINT NOT NULL REFERENCES communities (id),
    PRIMARY KEY (team_id, community_id)
);
CREATE INDEX team_communities_community ON team_communities (community_id);
