-- A seasonal tip taken into a digest names the digest's broadcast: it is
-- sent when the batch holding its recipient is, withdrawn when that batch
-- is, and taken again by the next digest if the batch fails.
ALTER TABLE outbox ADD COLUMN broadcast_id BIGINT;
CREATE INDEX outbox_broadcast ON outbox (broadcast_id) WHERE broadcast_id IS NOT NULL;
