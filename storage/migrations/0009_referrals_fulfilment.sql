-- Where a referral goes (Harbin: the resident's district or tertiary
-- partner hospital, by the green channel).
ALTER TABLE appointments ADD COLUMN hospital TEXT NOT NULL DEFAULT '';

-- Which kind of visit fulfils a package's service item (followup for
-- 面对面随访, checkup for 健康体检 …); '' for items no visit counts toward.
ALTER TABLE package_items ADD COLUMN visit_kind TEXT NOT NULL DEFAULT '';
