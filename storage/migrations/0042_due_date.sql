-- A pregnant resident's expected due date (YYYY-MM-DD), sealed: it starts
-- her antenatal and postnatal reminders. '' when none was given.
ALTER TABLE residents ADD COLUMN due_date_sealed TEXT NOT NULL DEFAULT '';
