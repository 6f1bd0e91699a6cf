-- A share of a price the programme gives no amount for is stored unknown
-- (known = FALSE, fen 0): residents read "以签约机构公示为准" until an admin
-- sets it. Prices that were guessed and never confirmed by an admin become
-- unknown, every share of them.
ALTER TABLE package_prices ADD COLUMN known BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE package_prices SET known = FALSE, fen = 0
WHERE package_code IN (SELECT code FROM packages WHERE price_assumed AND price_confirmed_at IS NULL);

-- A package the programme document does not name (the profile marks it
-- assumed): the console shows it as such, so an institution checks it.
ALTER TABLE packages ADD COLUMN assumed BOOLEAN NOT NULL DEFAULT FALSE;
