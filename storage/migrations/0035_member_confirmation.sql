-- Signing another adult is a request until they confirm it themselves
-- (杜绝“被签约”): from their own WeChat with a code, or in person at the
-- clinic. While member_code_hash is set the contract waits for them: the
-- doctor is not asked, it counts nowhere, and it lapses after 7 days.
ALTER TABLE contracts ADD COLUMN member_code_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE contracts ADD COLUMN member_code_expires {{timestamp}};
ALTER TABLE contracts ADD COLUMN member_confirmed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE contracts ADD COLUMN member_confirmed_at {{timestamp}};
CREATE INDEX contracts_member_code ON contracts (member_code_hash) WHERE member_code_hash <> '';

-- What the person signing for a family member declared they are to them
-- (parent, spouse, child, guardian …); '' for oneself.
ALTER TABLE residents ADD COLUMN family_relation TEXT NOT NULL DEFAULT '';
