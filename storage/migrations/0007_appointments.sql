-- A doctor's weekly sessions (weekday 0 is Sunday), split into slots of
-- slot_minutes with a capacity each; exceptions take days off or add
-- sessions.
CREATE TABLE schedules (
    id           {{id}},
    doctor_id    BIGINT NOT NULL REFERENCES doctors (id),
    weekday      INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_minute INTEGER NOT NULL CHECK (start_minute BETWEEN 0 AND 1440),
    end_minute   INTEGER NOT NULL CHECK (end_minute BETWEEN 0 AND 1440),
    slot_minutes INTEGER NOT NULL CHECK (slot_minutes >= 5),
    capacity     INTEGER NOT NULL CHECK (capacity >= 1),
    CHECK (end_minute > start_minute)
);
CREATE INDEX schedules_doctor ON schedules (doctor_id);

CREATE TABLE schedule_exceptions (
    id           {{id}},
    doctor_id    BIGINT NOT NULL REFERENCES doctors (id),
    day          TEXT NOT NULL, -- YYYY-MM-DD, Asia/Shanghai
    kind         TEXT NOT NULL CHECK (kind IN ('leave', 'extra')),
    start_minute INTEGER NOT NULL,
    end_minute   INTEGER NOT NULL,
    slot_minutes INTEGER NOT NULL DEFAULT 0,
    capacity     INTEGER NOT NULL DEFAULT 0,
    CHECK (end_minute > start_minute)
);
CREATE INDEX schedule_exceptions_doctor_day ON schedule_exceptions (doctor_id, day);

-- Bookable slots, made from the schedules for the days ahead. The database
-- keeps booked within capacity, whatever the number of instances.
CREATE TABLE slots (
    id        {{id}},
    doctor_id BIGINT NOT NULL REFERENCES doctors (id),
    day       TEXT NOT NULL,
    starts_at {{timestamp}} NOT NULL,
    ends_at   {{timestamp}} NOT NULL,
    capacity  INTEGER NOT NULL CHECK (capacity >= 1),
    booked    INTEGER NOT NULL DEFAULT 0,
    CHECK (booked >= 0 AND booked <= capacity),
    UNIQUE (doctor_id, starts_at)
);
CREATE INDEX slots_doctor_day ON slots (doctor_id, day);

CREATE TABLE appointments (
    id             {{id}},
    request_key    TEXT NOT NULL UNIQUE,
    resident_id    BIGINT NOT NULL REFERENCES residents (id),
    contract_id    BIGINT NOT NULL REFERENCES contracts (id),
    doctor_id      BIGINT NOT NULL REFERENCES doctors (id),
    slot_id        BIGINT NOT NULL REFERENCES slots (id),
    kind           TEXT NOT NULL CHECK (kind IN ('clinic', 'home', 'checkup', 'followup', 'referral')),
    status         TEXT NOT NULL CHECK (status IN ('booked', 'cancelled', 'done', 'no_show')),
    starts_at      {{timestamp}} NOT NULL,
    ends_at        {{timestamp}} NOT NULL,
    address_sealed TEXT NOT NULL DEFAULT '', -- home visits; personal data
    reason         TEXT NOT NULL DEFAULT '', -- referrals
    created_at     {{timestamp}} NOT NULL,
    updated_at     {{timestamp}} NOT NULL
);
CREATE INDEX appointments_resident ON appointments (resident_id, status, starts_at);
CREATE INDEX appointments_doctor ON appointments (doctor_id, starts_at);
