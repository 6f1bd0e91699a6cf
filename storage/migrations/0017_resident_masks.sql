-- The masked forms of a resident's ID number and phone (3203**********1234,
-- 138****5678): what every screen shows, so staff can search by them
-- without the sealed values being opened for every row. The server fills
-- them for residents signed before this migration at start.
ALTER TABLE residents ADD COLUMN id_masked TEXT NOT NULL DEFAULT '';
ALTER TABLE residents ADD COLUMN phone_masked TEXT NOT NULL DEFAULT '';
CREATE INDEX residents_id_masked ON residents (id_masked);
