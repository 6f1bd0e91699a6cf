-- The sandbox's demo organisation is marked where it is loaded, so a
-- production start can refuse a database that still holds it (its doctors'
-- binding codes were handed out at /sandbox/demo) and `jiayi demo remove`
-- knows what to delete. Databases loaded before the mark existed hold it as
-- the institution LoadDemo always wrote: code 'demo', named （演示）.
ALTER TABLE institutions ADD COLUMN demo BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE institutions SET demo = TRUE WHERE code = 'demo' AND name LIKE '%演示%';

-- Whether a production instance issued a doctor's binding code: only such
-- codes bind in production. A code issued before this was recorded may
-- have come from a sandbox, so it counts as not; the doctor asks for a new one.
ALTER TABLE doctors ADD COLUMN binding_production BOOLEAN NOT NULL DEFAULT FALSE;
