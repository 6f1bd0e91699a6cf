-- A renewal re-checks the packages and agrees again: contract_packages
-- hold the current term's packages and prices, and each earlier term's are
-- kept here, so the account counts every term's share and nothing of what
-- a resident agreed to is overwritten.
CREATE TABLE contract_past_terms (
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
    term_end    TEXT NOT NULL, -- YYYY-MM-DD, the end of the term described
    packages    TEXT NOT NULL, -- JSON [{"Code", "Name", "Kind", "Split"}], as storage.ContractPackage
    PRIMARY KEY (contract_id, term_end)
);
