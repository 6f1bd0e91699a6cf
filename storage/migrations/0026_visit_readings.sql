-- What a doctor measured at a visit (blood pressure, fasting glucose),
-- sealed like every health detail; "" when nothing was recorded. The
-- indicators open them to compute the control rates.
ALTER TABLE appointments ADD COLUMN readings_sealed TEXT NOT NULL DEFAULT '';
