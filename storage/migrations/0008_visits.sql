-- One satisfaction survey per completed visit, answered once.
CREATE TABLE surveys (
    appointment_id BIGINT PRIMARY KEY REFERENCES appointments (id),
    openid         TEXT NOT NULL, -- who is asked: the resident's manager
    requested_at   {{timestamp}} NOT NULL,
    score          INTEGER CHECK (score BETWEEN 1 AND 5),
    comment        TEXT NOT NULL DEFAULT '',
    answered_at    {{timestamp}}
);
CREATE INDEX surveys_open ON surveys (openid, answered_at);
