-- When a contract came into force (the doctor confirmed it, or staff
-- recorded one signed on paper, on its signing day) and when it ended
-- (cancelled, declined or expired). The indicators ask which contracts were
-- in force during a period; keeping the two moments on the contract, set in
-- the statement that changes its status, answers that without replaying
-- contract_events. Filled here from the events for contracts made before.
ALTER TABLE contracts ADD COLUMN confirmed_at {{timestamp}};
ALTER TABLE contracts ADD COLUMN ended_at {{timestamp}};
UPDATE contracts SET confirmed_at = (SELECT MIN(e.at) FROM contract_events e
    WHERE e.contract_id = contracts.id AND e.to_status = 'active');
UPDATE contracts SET confirmed_at = agreed_at WHERE id IN (SELECT contract_id FROM contract_events
    WHERE from_status = '' AND to_status = 'active');
UPDATE contracts SET ended_at = (SELECT MIN(e.at) FROM contract_events e
    WHERE e.contract_id = contracts.id AND e.from_status <> e.to_status
    AND e.to_status IN ('cancelled', 'declined', 'expired'));
CREATE INDEX contracts_in_force ON contracts (confirmed_at, ended_at);
