-- A service item may be due only for some holders of its package: the
-- basic package's chronic follow-ups for hypertension and diabetes
-- patients, its check-up for the 65+. JSON array of priority-group codes;
-- [] is every holder.
ALTER TABLE package_items ADD COLUMN for_groups TEXT NOT NULL DEFAULT '[]';
