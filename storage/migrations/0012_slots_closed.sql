-- Leave recorded after slots exist closes the slots it covers: a closed slot
-- takes no booking, while the bookings it holds stay for their residents
-- to move.
ALTER TABLE slots ADD COLUMN closed BOOLEAN NOT NULL DEFAULT FALSE;
