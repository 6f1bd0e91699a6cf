-- Which personal-data key the data was sealed with, as a keyed fingerprint
-- that reveals nothing of the key: a server started with another key
-- refuses to start instead of failing every resident who asks.
CREATE TABLE key_fingerprints (
    name        TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created_at  {{timestamp}} NOT NULL
);
