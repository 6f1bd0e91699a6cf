-- The daily jobs read every doctor's exceptions by day, and a contract's
-- end cancels its visits by contract.
CREATE INDEX schedule_exceptions_day ON schedule_exceptions (day);
CREATE INDEX appointments_contract ON appointments (contract_id, status, starts_at);
