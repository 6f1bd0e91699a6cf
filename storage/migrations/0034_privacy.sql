-- A resident (or their guardian) may withdraw the consent to process their
-- information: their live contracts end and nothing more is sent; what the
-- law keeps stays. A deletion request reaches the institution's admins,
-- who handle it under the retention rules and record the answer.
ALTER TABLE residents ADD COLUMN consent_withdrawn_at {{timestamp}};

CREATE TABLE data_requests (
    id           {{id}},
    resident_id  BIGINT NOT NULL REFERENCES residents (id),
    kind         TEXT NOT NULL CHECK (kind IN ('delete')),
    requested_by TEXT NOT NULL, -- the WeChat user who asked
    requested_at {{timestamp}} NOT NULL,
    handled_by   TEXT NOT NULL DEFAULT '',
    handled_at   {{timestamp}},
    answer       TEXT NOT NULL DEFAULT ''
);
-- One open request of a kind a resident: asking again finds it.
CREATE UNIQUE INDEX data_requests_open ON data_requests (resident_id, kind) WHERE handled_at IS NULL;
