-- A referral is a request, not a visit: the family doctor passes it to the
-- hospital (by the green channel where the resident signed with one), and
-- the hospital arranges the specialist visit. No slot of the family
-- doctor's is taken. The reason is a health detail, sealed.
CREATE TABLE referrals (
    id            {{id}},
    request_key   TEXT NOT NULL UNIQUE,
    resident_id   BIGINT NOT NULL REFERENCES residents (id),
    contract_id   BIGINT NOT NULL REFERENCES contracts (id),
    doctor_id     BIGINT NOT NULL REFERENCES doctors (id),
    hospital      TEXT NOT NULL, -- '' where the programme names none: the doctor chooses
    green_channel BOOLEAN NOT NULL,
    reason_sealed TEXT NOT NULL,
    created_at    {{timestamp}} NOT NULL
);
CREATE INDEX referrals_resident ON referrals (resident_id, created_at);
CREATE INDEX referrals_doctor ON referrals (doctor_id, created_at);
