-- A seasonal campaign's residents split by id into chunks, each claimed
-- and expanded by one instance at a time, so several instances share a
-- city's expansion. A chunk whose instance died (its lease passed) is
-- claimed again; the campaign is finished when its last chunk is.
CREATE TABLE campaign_chunks (
    code        TEXT NOT NULL,
    year        INTEGER NOT NULL,
    chunk       INTEGER NOT NULL,
    first_id    BIGINT NOT NULL,
    last_id     BIGINT NOT NULL,
    started_at  {{timestamp}},
    finished_at {{timestamp}},
    pushes      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (code, year, chunk)
);
