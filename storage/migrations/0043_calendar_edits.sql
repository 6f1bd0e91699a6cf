-- Admins' changes to the seasonal calendar: an entry switched off or its
-- text rewritten, and entries they added (entry holds the whole added
-- entry as JSON; '' for an edit of the built-in calendar's). institution_id
-- 0 is the whole deployment (city staff); otherwise the change holds for
-- that institution's residents alone.
CREATE TABLE calendar_edits (
    institution_id BIGINT NOT NULL,
    code           TEXT NOT NULL,
    off            BOOLEAN NOT NULL,
    text           TEXT NOT NULL, -- '' keeps the entry's own
    entry          TEXT NOT NULL,
    updated_by     TEXT NOT NULL,
    updated_at     {{timestamp}} NOT NULL,
    PRIMARY KEY (institution_id, code)
);
