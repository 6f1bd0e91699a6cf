-- How far a seasonal campaign has reached: residents whose contract became
-- active after this moment were not there when it last ran, and a later
-- run of its window catches them up.
ALTER TABLE campaigns ADD COLUMN through {{timestamp}};
UPDATE campaigns SET through = started_at WHERE finished_at IS NOT NULL;
