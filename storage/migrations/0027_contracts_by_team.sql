-- The indicators read a team's (or an institution's teams') contracts;
-- without this index a doctor's page scans every contract of the city.
CREATE INDEX contracts_team ON contracts (team_id, confirmed_at);
