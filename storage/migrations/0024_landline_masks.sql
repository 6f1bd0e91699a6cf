-- Landlines were masked to their last two digits, so staff could not find
-- a resident by the last four. Clearing the masks makes the server mask
-- these residents again at start (flows.MaskLegacyResidents), now with four.
UPDATE residents SET id_masked = '' WHERE phone_masked LIKE '0%';
