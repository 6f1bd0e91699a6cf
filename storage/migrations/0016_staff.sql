-- Staff who sign in to the console. An institution is named by a short code
-- (the one operators type: jiayi admin create-user NAME --institution CODE).
ALTER TABLE institutions ADD COLUMN code TEXT;
UPDATE institutions SET code = 'inst' || id WHERE code IS NULL;
CREATE UNIQUE INDEX institutions_code ON institutions (code);

-- role: admin (their institution), doctor (their own teams), viewer
-- (read-only, their institution), city (every institution). Only city staff
-- have no institution; a doctor account is tied to its doctor record.
-- password_version grows on every password change, and a session made under
-- an older version ends.
CREATE TABLE staff (
    id               {{id}},
    username         TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'doctor', 'viewer', 'city')),
    institution_id   BIGINT REFERENCES institutions (id),
    doctor_id        BIGINT REFERENCES doctors (id),
    password_hash    TEXT NOT NULL,
    password_version INTEGER NOT NULL DEFAULT 1,
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       {{timestamp}} NOT NULL,
    CHECK ((role = 'city') = (institution_id IS NULL)),
    CHECK ((role = 'doctor') = (doctor_id IS NOT NULL))
);
CREATE INDEX staff_institution ON staff (institution_id);

-- Audit entries name the institution they concern, so each institution's
-- admins read their own; NULL is deployment-wide (city staff, operators).
ALTER TABLE audit_log ADD COLUMN institution_id BIGINT;
CREATE INDEX audit_log_institution ON audit_log (institution_id, id);
