-- A push can lose its point: yesterday's agenda, a reminder of a visit that
-- has begun. stale_at says when; a pending push past it is cancelled rather
-- than sent late (after an outage, a quota pause, or a sandbox clock jump).
ALTER TABLE outbox ADD COLUMN stale_at {{timestamp}};
CREATE INDEX outbox_stale ON outbox (stale_at) WHERE state = 'pending' AND stale_at IS NOT NULL;
