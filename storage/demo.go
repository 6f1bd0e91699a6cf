package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DemoInstitutions lists the institutions marked as the sandbox's demo
// organisation, by code.
func (db *DB) DemoInstitutions(ctx context.Context) ([]Institution, error) {
	out := []Institution{}
	err := db.sel(ctx, "DemoInstitutions", &out, `SELECT id, code, name, kind, phone, demo FROM institutions
		WHERE demo = TRUE ORDER BY code`)
	return out, err
}

// What hangs off the demo institutions, as subqueries. A row that refers to
// any of it goes with it: whatever residents signed, booked and were sent
// while the sandbox was tried belongs to the demo, and the foreign keys
// allow nothing else.
const (
	demoInstitutions = `SELECT id FROM institutions WHERE demo = TRUE`
	demoDoctors      = `SELECT id FROM doctors WHERE institution_id IN (` + demoInstitutions + `)`
	demoCommunities  = `SELECT id FROM communities WHERE institution_id IN (` + demoInstitutions + `)`
	demoTeams        = `SELECT id FROM teams WHERE institution_id IN (` + demoInstitutions + `) OR doctor_id IN (` + demoDoctors + `)`
	demoResidents    = `SELECT id FROM residents WHERE community_id IN (` + demoCommunities + `)`
	demoContracts    = `SELECT id FROM contracts WHERE resident_id IN (` + demoResidents + `) OR team_id IN (` + demoTeams +
		`) OR doctor_id IN (` + demoDoctors + `)`
	demoSlots        = `SELECT id FROM slots WHERE doctor_id IN (` + demoDoctors + `)`
	demoAppointments = `SELECT id FROM appointments WHERE resident_id IN (` + demoResidents + `) OR contract_id IN (` +
		demoContracts + `) OR doctor_id IN (` + demoDoctors + `) OR slot_id IN (` + demoSlots + `)`
	// Pushes to the demo doctors, and to whoever manages demo residents and
	// no resident outside the demo.
	demoPushes = `SELECT id FROM outbox WHERE recipient IN (SELECT 'doctor:' || CAST(id AS TEXT) FROM doctors
		WHERE institution_id IN (` + demoInstitutions + `)) OR recipient IN (SELECT manager_openid FROM residents
		WHERE community_id IN (` + demoCommunities + `) AND manager_openid NOT IN (SELECT manager_openid FROM residents
		WHERE community_id NOT IN (` + demoCommunities + `))) OR idempotency_key IN (SELECT outbox_key FROM broadcast_batches
		WHERE broadcast_id IN (` + demoBroadcasts + `))`
	demoBroadcasts = `SELECT id FROM broadcasts WHERE institution_id IN (` + demoInstitutions + `)`
)

// demoRemoval deletes, child before parent, each table's rows of the demo.
var demoRemoval = []struct{ table, where string }{
	{"outbox", `id IN (` + demoPushes + `)`},
	{"surveys", `appointment_id IN (` + demoAppointments + `)`},
	{"appointments", `id IN (` + demoAppointments + `)`},
	{"referrals", `resident_id IN (` + demoResidents + `) OR contract_id IN (` + demoContracts + `) OR doctor_id IN (` + demoDoctors + `)`},
	{"payments", `contract_id IN (` + demoContracts + `)`},
	{"contract_packages", `contract_id IN (` + demoContracts + `)`},
	{"contract_events", `contract_id IN (` + demoContracts + `)`},
	{"contract_past_terms", `contract_id IN (` + demoContracts + `)`},
	{"data_requests", `resident_id IN (` + demoResidents + `)`},
	{"resident_groups", `resident_id IN (` + demoResidents + `)`},
	{"contracts", `id IN (` + demoContracts + `)`},
	{"residents", `id IN (` + demoResidents + `)`},
	{"broadcast_recipients", `broadcast_id IN (` + demoBroadcasts + `)`},
	{"broadcast_batches", `broadcast_id IN (` + demoBroadcasts + `)`},
	{"broadcasts", `id IN (` + demoBroadcasts + `)`},
	{"articles", `institution_id IN (` + demoInstitutions + `)`},
	{"calendar_edits", `institution_id IN (` + demoInstitutions + `)`},
	{"slots", `doctor_id IN (` + demoDoctors + `)`},
	{"schedules", `doctor_id IN (` + demoDoctors + `)`},
	{"schedule_exceptions", `doctor_id IN (` + demoDoctors + `)`},
	{"staff", `institution_id IN (` + demoInstitutions + `) OR doctor_id IN (` + demoDoctors + `)`},
	{"indicator_rollups", `institution_id IN (` + demoInstitutions + `) OR team_id IN (` + demoTeams + `) OR community_id IN (` +
		demoCommunities + `) OR doctor_id IN (` + demoDoctors + `)`},
	{"indicator_rollup_runs", `team_id IN (` + demoTeams + `)`},
	{"team_members", `team_id IN (` + demoTeams + `)`},
	{"team_communities", `team_id IN (` + demoTeams + `) OR community_id IN (` + demoCommunities + `)`},
	{"teams", `id IN (` + demoTeams + `)`},
	{"doctors", `id IN (` + demoDoctors + `)`},
	{"communities", `id IN (` + demoCommunities + `)`},
	{"institutions", `demo = TRUE`},
}

// RemoveDemo deletes the sandbox's demo organisation and everything that
// hangs off it, in one transaction: its institutions, communities, doctors
// (and their binding codes), teams, console accounts (the sandbox's
// "admin"), schedules and slots, and the residents, contracts,
// appointments, referrals and pushes made while the sandbox was tried. It
// returns how many rows it deleted from each table, and "binding_codes":
// how many unspent codes went with the doctors. The audit log keeps its
// entries and gains one saying what was removed. Run again, it removes
// nothing.
func (db *DB) RemoveDemo(ctx context.Context, actor string) (map[string]int64, error) {
	const op = "RemoveDemo"
	var removed map[string]int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		removed = map[string]int64{}
		var codes int64
		if err := tx.get(ctx, op, &codes, `SELECT COUNT(*) FROM doctors WHERE binding_code_hash IS NOT NULL
			AND institution_id IN (`+demoInstitutions+`)`); err != nil {
			return err
		}
		removed["binding_codes"] = codes
		var total int64
		for _, d := range demoRemoval {
			n, err := tx.exec(ctx, op+": "+d.table, `DELETE FROM `+d.table+` WHERE `+d.where)
			if err != nil {
				return err
			}
			removed[d.table], total = n, total+n
		}
		if total == 0 {
			return nil
		}
		return tx.audit(ctx, op, actor, "demo.remove", "sandbox demo data", fmt.Sprintf(
			"机构 %d，社区 %d，医生 %d，团队 %d，账号 %d，居民 %d，签约 %d，预约 %d，推送 %d",
			removed["institutions"], removed["communities"], removed["doctors"], removed["teams"], removed["staff"],
			removed["residents"], removed["contracts"], removed["appointments"], removed["outbox"]))
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// SandboxClockLead is how far ahead of the real time the sandbox clock was
// last moved; zero if never.
func (db *DB) SandboxClockLead(ctx context.Context) (time.Duration, error) {
	var us int64
	err := db.get(ctx, "SandboxClockLead", &us, `SELECT ahead_us FROM sandbox_clock WHERE id = 1`)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return time.Duration(us) * time.Microsecond, err
}

// KeepSandboxClockLead records the sandbox clock's lead. It only grows: a
// late write from an earlier move cannot take the clock back.
func (db *DB) KeepSandboxClockLead(ctx context.Context, lead time.Duration) error {
	_, err := db.exec(ctx, "KeepSandboxClockLead", `INSERT INTO sandbox_clock (id, ahead_us) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET ahead_us = CASE WHEN excluded.ahead_us > sandbox_clock.ahead_us
			THEN excluded.ahead_us ELSE sandbox_clock.ahead_us END`, lead.Microseconds())
	return err
}
