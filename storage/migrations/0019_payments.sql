-- What residents paid at the counter for their share of a contract, and
-- what was refunded to them; nothing is charged online. A receipt number
-- is recorded once per contract and kind, so a form sent twice records once.
CREATE TABLE payments (
    id          {{id}},
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
    kind        TEXT NOT NULL CHECK (kind IN ('payment', 'refund')),
    fen         BIGINT NOT NULL CHECK (fen > 0),
    method      TEXT NOT NULL CHECK (method IN ('cash', 'card', 'wechat_pay', 'other')),
    receipt     TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at {{timestamp}} NOT NULL,
    UNIQUE (contract_id, kind, receipt)
);
CREATE INDEX payments_contract ON payments (contract_id);
