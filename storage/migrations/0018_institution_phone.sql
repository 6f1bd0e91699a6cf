-- The phone residents call at an institution: said when the service is not
-- open yet, and wherever the bot sends people to the centre.
ALTER TABLE institutions ADD COLUMN phone TEXT NOT NULL DEFAULT '';
