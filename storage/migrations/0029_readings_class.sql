-- Whether a visit's readings were controlled, for the control rates, kept
-- beside the sealed readings as a keyed hash of "controlled" or
-- "uncontrolled" (as priority groups are kept in resident_groups): the
-- database counts a city's patients without opening their readings, and
-- no one without the key can tell which value means which. '' is no
-- reading of that kind. Visits recorded before this are classed at start
-- (flows.ClassifyLegacyReadings).
ALTER TABLE appointments ADD COLUMN bp_class TEXT NOT NULL DEFAULT '';
ALTER TABLE appointments ADD COLUMN glucose_class TEXT NOT NULL DEFAULT '';
-- readings_classed stays 0 until a visit's readings are classed: a visit
-- marked with readings by an instance that does not class them yet is
-- classed at the next start.
ALTER TABLE appointments ADD COLUMN readings_classed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX appointments_readings_unclassed ON appointments (id) WHERE readings_classed = 0 AND readings_sealed <> '';
