-- The region profile the database was seeded from, and its settings (team
-- model, partner hospitals, priority groups, appointment rules, targets) as
-- JSON. One row: a deployment runs one programme.
CREATE TABLE region_profile (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    code      TEXT NOT NULL,
    name      TEXT NOT NULL,
    settings  TEXT NOT NULL,
    loaded_at {{timestamp}} NOT NULL
);

-- The package catalog. After the first load the database is the truth;
-- packages a reload drops are deactivated, not deleted, because contracts
-- refer to them.
CREATE TABLE packages (
    code               TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('basic', 'personalised', 'addon')),
    is_default         BOOLEAN NOT NULL,
    sort_order         INTEGER NOT NULL,
    summary            TEXT NOT NULL,
    term_months        INTEGER NOT NULL CHECK (term_months > 0),
    min_age            INTEGER,
    max_age            INTEGER,
    eligible_groups    TEXT NOT NULL, -- JSON array of priority-group codes, any of which qualifies
    requires           TEXT NOT NULL, -- JSON array of package codes, one of which must be held
    price_assumed      BOOLEAN NOT NULL,
    price_confirmed_at {{timestamp}},
    active             BOOLEAN NOT NULL
);

CREATE TABLE package_items (
    package_code TEXT NOT NULL REFERENCES packages (code),
    sort_order   INTEGER NOT NULL,
    name         TEXT NOT NULL,
    per_year     INTEGER NOT NULL CHECK (per_year >= 0), -- 0: as needed
    PRIMARY KEY (package_code, sort_order)
);

-- Price split by payer, in fen. insured: 'local' for residents insured in
-- the district, 'elsewhere' for those insured outside it (only where the
-- programme prices them differently).
CREATE TABLE package_prices (
    package_code TEXT NOT NULL REFERENCES packages (code),
    insured      TEXT NOT NULL CHECK (insured IN ('local', 'elsewhere')),
    payer        TEXT NOT NULL,
    fen          BIGINT NOT NULL CHECK (fen >= 0),
    PRIMARY KEY (package_code, insured, payer)
);

-- Append-only record of what admins and operators changed.
CREATE TABLE audit_log (
    id      {{id}},
    at      {{timestamp}} NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
