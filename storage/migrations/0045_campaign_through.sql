-- How far a seasonal campaign has reached: residents whose contract became
-- active after this moment were not there when it last ran, and a later
-- run of its window catches them up. generation counts admins' changes to
-- the entry: a run that started before one must not move through on.
ALTER TABLE campaigns ADD COLUMN through {{timestamp}};
ALTER TABLE campaigns ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
UPDATE campaigns SET through = started_at WHERE finished_at IS NOT NULL;
