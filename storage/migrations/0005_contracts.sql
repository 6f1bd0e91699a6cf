-- People a WeChat user manages (themselves, an elderly parent, a child).
-- ID number and phone are sealed (AES-GCM) and found by keyed hash.
CREATE TABLE residents (
    id               {{id}},
    manager_openid   TEXT NOT NULL,
    relation         TEXT NOT NULL CHECK (relation IN ('self', 'family')),
    name             TEXT NOT NULL,
    id_number_sealed TEXT NOT NULL,
    id_number_hash   TEXT NOT NULL UNIQUE,
    phone_sealed     TEXT NOT NULL,
    phone_hash       TEXT NOT NULL,
    birth_date       TEXT NOT NULL, -- YYYY-MM-DD
    sex              TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    community_id     BIGINT NOT NULL REFERENCES communities (id),
    priority_groups  TEXT NOT NULL, -- JSON array of declared groups
    created_at       {{timestamp}} NOT NULL,
    updated_at       {{timestamp}} NOT NULL
);
CREATE INDEX residents_manager ON residents (manager_openid);
CREATE INDEX residents_community ON residents (community_id);

CREATE TABLE contracts (
    id                {{id}},
    number            TEXT NOT NULL UNIQUE,
    request_key       TEXT NOT NULL UNIQUE, -- the signing that made it; a replay finds it
    resident_id       BIGINT NOT NULL REFERENCES residents (id),
    team_id           BIGINT NOT NULL REFERENCES teams (id),
    doctor_id         BIGINT NOT NULL REFERENCES doctors (id),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'active', 'declined', 'cancelled', 'expired')),
    insured           TEXT NOT NULL,
    term_months       INTEGER NOT NULL,
    term_end          TEXT, -- YYYY-MM-DD, set when the doctor confirms
    partner_district  TEXT NOT NULL DEFAULT '',
    partner_tertiary  TEXT NOT NULL DEFAULT '',
    agreement_version TEXT NOT NULL,
    agreed_at         {{timestamp}} NOT NULL,
    consent_version   TEXT NOT NULL,
    consented_at      {{timestamp}} NOT NULL,
    consent_by        TEXT NOT NULL, -- openid of who consented: the resident, or the guardian
    created_at        {{timestamp}} NOT NULL
);
-- One live contract per resident, whatever races.
CREATE UNIQUE INDEX contracts_one_live ON contracts (resident_id) WHERE status IN ('pending', 'active');
CREATE INDEX contracts_doctor ON contracts (doctor_id, status);

-- The packages of a contract with the price split frozen at signing.
CREATE TABLE contract_packages (
    contract_id  BIGINT NOT NULL REFERENCES contracts (id),
    package_code TEXT NOT NULL,
    package_name TEXT NOT NULL,
    kind         TEXT NOT NULL,
    split        TEXT NOT NULL, -- JSON payer -> fen
    PRIMARY KEY (contract_id, package_code)
);

-- Every state change: who, when, why.
CREATE TABLE contract_events (
    id          {{id}},
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
    at          {{timestamp}} NOT NULL,
    actor       TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX contract_events_contract ON contract_events (contract_id);

CREATE TABLE contract_numbers (
    day  TEXT PRIMARY KEY, -- YYMMDD in Asia/Shanghai
    last INTEGER NOT NULL
);

-- ID numbers a WeChat user tried while signing, per day, to cap them.
CREATE TABLE id_attempts (
    openid  TEXT NOT NULL,
    day     TEXT NOT NULL,
    id_hash TEXT NOT NULL,
    PRIMARY KEY (openid, day, id_hash)
);
