-- A blind index of the priority groups residents declared: one row per
-- resident and group, the group named by its keyed hash, so staff can list
-- a group's residents (and indicators count them) while the groups
-- themselves stay sealed in residents.priority_groups. groups_indexed says
-- the rows are written; the server writes them at start for residents
-- signed before this migration.
CREATE TABLE resident_groups (
    resident_id BIGINT NOT NULL REFERENCES residents (id),
    tag         TEXT NOT NULL,
    PRIMARY KEY (resident_id, tag)
);
CREATE INDEX resident_groups_tag ON resident_groups (tag, resident_id);
ALTER TABLE residents ADD COLUMN groups_indexed INTEGER NOT NULL DEFAULT 0;
