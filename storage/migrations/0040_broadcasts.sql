-- Health tips admins broadcast (群发). A broadcast is cut into batches of
-- at most 10,000 WeChat users, WeChat's most for one mass-send call; each
-- batch is one outbox row, sent with the row's key as clientmsgid so WeChat
-- drops a repeat, and its results come back in a MASSSENDJOBFINISH event
-- named by the msg_id WeChat gave it.
CREATE TABLE broadcasts (
    id             {{id}},
    institution_id BIGINT REFERENCES institutions (id), -- NULL: the whole deployment
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    segment        TEXT NOT NULL, -- JSON, as the admin chose it
    month          TEXT NOT NULL, -- YYYY-MM in Asia/Shanghai, the month WeChat's limit counts it in
    due_at         {{timestamp}} NOT NULL,
    audience       INTEGER NOT NULL, -- WeChat users the segment reached
    over_limit     INTEGER NOT NULL, -- of them, those who had their 4 mass messages this month
    created_by     TEXT NOT NULL,
    created_at     {{timestamp}} NOT NULL,
    cancelled_at   {{timestamp}}
);

CREATE TABLE broadcast_batches (
    broadcast_id BIGINT NOT NULL REFERENCES broadcasts (id),
    batch        INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    outbox_key   TEXT NOT NULL UNIQUE,
    msg_id       TEXT NOT NULL DEFAULT '', -- WeChat's, once submitted
    withdrawn    INTEGER NOT NULL DEFAULT 0, -- left out at sending: unfollowed or turned tips off since
    status       TEXT NOT NULL DEFAULT '', -- WeChat's result: "send success", "err(30003)" …
    total        INTEGER,
    filtered     INTEGER,
    sent         INTEGER,
    failed       INTEGER,
    submitted_at {{timestamp}},
    finished_at  {{timestamp}},
    PRIMARY KEY (broadcast_id, batch)
);
CREATE INDEX broadcast_batches_msg ON broadcast_batches (msg_id);

-- Who each broadcast is for; batch 0 holds those over the monthly limit,
-- who are reported and not sent to.
CREATE TABLE broadcast_recipients (
    broadcast_id BIGINT NOT NULL REFERENCES broadcasts (id),
    openid       TEXT NOT NULL,
    batch        INTEGER NOT NULL,
    PRIMARY KEY (broadcast_id, openid)
);
CREATE INDEX broadcast_recipients_batch ON broadcast_recipients (broadcast_id, batch);

-- Mass messages each WeChat user has been given this month: a service
-- account's mass messages reach a user at most 4 times a month.
CREATE TABLE mass_allowance (
    openid TEXT NOT NULL,
    month  TEXT NOT NULL,
    used   INTEGER NOT NULL,
    PRIMARY KEY (openid, month)
);
