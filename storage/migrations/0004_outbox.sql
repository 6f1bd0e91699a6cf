-- Everything the bot says unprompted goes through this table: a push is
-- written in the same transaction as the change that causes it, under an
-- idempotency key that never yields two rows, and a dispatcher claims due
-- rows with a lease, sends them and marks them.
CREATE TABLE outbox (
    id              {{id}},
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    payload         TEXT NOT NULL, -- JSON: the template's fields; personal data only masked
    priority        INTEGER NOT NULL, -- 0 transactional, higher waits behind lower
    due_at          {{timestamp}} NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     {{timestamp}},
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      {{timestamp}} NOT NULL,
    sent_at         {{timestamp}}
);
CREATE INDEX outbox_pending ON outbox (state, priority, due_at);
CREATE INDEX outbox_recipient ON outbox (recipient, state);
