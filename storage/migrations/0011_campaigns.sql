-- Campaigns (seasonal reminders, later broadcasts) expanded into outbox
-- rows: one row per campaign and year, claimed by the instance expanding it.
CREATE TABLE campaigns (
    code        TEXT NOT NULL,
    year        INTEGER NOT NULL,
    started_at  {{timestamp}} NOT NULL,
    finished_at {{timestamp}},
    pushes      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (code, year)
);
