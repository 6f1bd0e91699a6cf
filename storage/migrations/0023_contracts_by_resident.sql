-- The console finds each resident's latest contract (MAX(id) by resident)
-- for every row it lists and counts; without this index SQLite scans all
-- contracts once per resident, which took 14 s a page at 20,000 residents.
CREATE INDEX contracts_resident ON contracts (resident_id, id);
