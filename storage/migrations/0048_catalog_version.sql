-- The catalog's version, raised by every change to the profile, its
-- packages, their items or their prices, in the change's transaction:
-- instances keep the catalog in memory and read it whole again only when
-- its version moved. A later migration that changes any of those tables
-- raises it too.
ALTER TABLE region_profile ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
