-- A city's indicators are summed from each team's totals, kept here by a
-- background job (flows.RefreshRollups) for the periods staff open most,
-- so the city's page adds up a few thousand rows instead of counting
-- millions. period is 'FROM/TO', the days the period covers.
CREATE TABLE indicator_rollups (
    period         TEXT NOT NULL,
    team_id        BIGINT NOT NULL,
    institution_id BIGINT NOT NULL,
    community_id   BIGINT NOT NULL,
    doctor_id      BIGINT NOT NULL,
    code           TEXT NOT NULL,
    num            DOUBLE PRECISION NOT NULL,
    den            DOUBLE PRECISION NOT NULL
);
CREATE INDEX indicator_rollups_period ON indicator_rollups (period, team_id);

-- When each team's totals of a period were counted (as_of), and which
-- instance is counting them now (claimed_at), so instances share the work.
CREATE TABLE indicator_rollup_runs (
    period     TEXT NOT NULL,
    team_id    BIGINT NOT NULL,
    as_of      {{timestamp}},
    claimed_at {{timestamp}},
    PRIMARY KEY (period, team_id)
);

-- The pushes sent in a period, counted for the indicators' activity.
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE state = 'sent';
