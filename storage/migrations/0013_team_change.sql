-- 改签 of an active contract is a request: the contract stays with its
-- team until the new team's doctor confirms, and a decline leaves it as it
-- was.
ALTER TABLE contracts ADD COLUMN change_team_id BIGINT;
ALTER TABLE contracts ADD COLUMN change_doctor_id BIGINT;
