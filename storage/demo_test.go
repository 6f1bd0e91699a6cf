package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// The tables that hold rows of an institution's, each given one by
// fillInstitution.
var institutionTables = []string{"institutions", "communities", "doctors", "teams", "team_members", "team_communities",
	"staff", "schedules", "schedule_exceptions", "slots", "residents", "resident_groups", "data_requests", "contracts",
	"contract_packages", "contract_events", "contract_past_terms", "payments", "appointments", "surveys", "referrals",
	"indicator_rollups", "indicator_rollup_runs", "outbox", "broadcasts", "broadcast_batches", "broadcast_recipients",
	"articles", "calendar_edits"}

// fillInstitution makes an institution with a row in every table that can
// hang off one: what a sandbox tried out for a while leaves behind.
func fillInstitution(t *testing.T, db *storage.DB, code string, demo bool) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	ids, err := db.CreateInstitution(ctx, storage.Institution{Code: code, Name: code + "卫生院", Kind: "township_centre", Demo: demo},
		[]storage.Community{{Town: "镇", Name: code + "村"}}, []storage.NewTeam{{Name: code + "团队",
			Doctor: storage.Doctor{Name: code + "医生"}, Members: []storage.Member{{Role: "护士", Name: "护士"}}, Communities: []int{0}}})
	fatal(t, err)
	teams, err := db.TeamsServing(ctx, ids[0])
	fatal(t, err)
	team := teams[0]
	inst := sql.NullInt64{Int64: team.InstitutionID, Valid: true}
	_, err = db.CreateStaff(ctx, storage.Staff{Username: code + "-admin", Role: storage.RoleAdmin, InstitutionID: inst, PasswordHash: "x"}, "t")
	fatal(t, err)
	_, err = db.CreateStaff(ctx, storage.Staff{Username: code + "-doctor", Role: storage.RoleDoctor, InstitutionID: inst,
		DoctorID: sql.NullInt64{Int64: team.DoctorID, Valid: true}, PasswordHash: "x"}, "t")
	fatal(t, err)
	fatal(t, db.SetBindingCode(ctx, team.DoctorID, "code-"+code, at.Add(72*time.Hour)))
	slot := storage.Slot{DoctorID: team.DoctorID, Day: "2026-11-24", StartsAt: at.Add(24 * time.Hour),
		EndsAt: at.Add(24*time.Hour + 10*time.Minute), Capacity: 2}
	fatal(t, db.AddWeeklyHours(ctx, storage.WeeklyHours{DoctorID: team.DoctorID, Weekday: 2, StartMinute: 540, EndMinute: 600,
		SlotMinutes: 10, Capacity: 2}, []storage.Slot{slot}))
	nc := newContract(t, db, "sign:"+code, "id:"+code)
	nc.Resident.ManagerOpenID, nc.Resident.CommunityID, nc.TeamID, nc.DoctorID = "o_"+code, ids[0], team.ID, team.DoctorID
	nc.Notify = func(number string) storage.Push {
		return storage.Push{Key: "sign:" + number, Kind: "sign_request", Recipient: fmt.Sprintf("doctor:%d", team.DoctorID)}
	}
	number, _, err := db.CreateContract(ctx, nc)
	fatal(t, err)
	fatal(t, db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractPending, To: storage.ContractActive,
		Actor: "d", TermEnd: "2099-12-31"}))
	c, err := db.ContractByNumber(ctx, number)
	fatal(t, err)
	fillVisits(t, db, team, c, at)
	fatal(t, db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_" + code, Subscribed: true, EventTime: at}}))
	article, err := db.CreateArticle(ctx, storage.Article{Institution: team.InstitutionID, Title: "t", Body: "b", Cover: []byte("c")}, "t")
	fatal(t, err)
	_, _, err = db.CreateBroadcast(ctx, storage.Scope{Institution: team.InstitutionID}, storage.NewBroadcast{Title: "t", Body: "b",
		SegmentJSON: "{}", Month: "2026-11", Due: at, Priority: 3, Actor: "t", ArticleID: article})
	fatal(t, err)
	fatal(t, db.SaveCalendarEdit(ctx, storage.CalendarEdit{Institution: team.InstitutionID, Code: "flu-vaccine", Off: true, UpdatedBy: "t"}, "流感", 2026))
}

// fillVisits books the contract's resident a visit and gives them what
// follows one, and the team its figures.
func fillVisits(t *testing.T, db *storage.DB, team storage.Team, c storage.ContractView, at time.Time) {
	t.Helper()
	ctx := context.Background()
	slots, err := db.Slots(ctx, team.DoctorID, at, at.Add(48*time.Hour))
	fatal(t, err)
	appointment, err := db.Book(ctx, storage.NewAppointment{RequestKey: "book:" + c.Number, ResidentID: c.ResidentID,
		ContractID: c.ID, DoctorID: team.DoctorID, SlotID: slots[0].ID, Kind: "clinic", MaxUpcoming: 3, Now: at,
		Pushes: func(id int64) []storage.Push {
			return []storage.Push{{Key: fmt.Sprintf("appointment:%d", id), Kind: "reminder", Recipient: c.ManagerOpenID}}
		}})
	fatal(t, err)
	_, err = db.RequestDeletion(ctx, c.ResidentID, c.ManagerOpenID, at)
	fatal(t, err)
	fatal(t, db.SetGroupTags(ctx, c.ResidentID, []string{"tag"}))
	raw := storagetest.SQL(t, db)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO schedule_exceptions (doctor_id, day, kind, start_minute, end_minute) VALUES (?, '2026-11-25', 'leave', 540, 600)`,
			[]any{team.DoctorID}},
		{`INSERT INTO surveys (appointment_id, openid, requested_at) VALUES (?, 'o_x', ?)`, []any{appointment, at}},
		{`INSERT INTO payments (contract_id, kind, fen, method, receipt, recorded_by, recorded_at)
			VALUES (?, 'payment', 100, 'cash', 'r1', 'x', ?)`, []any{c.ID, at}},
		{`INSERT INTO referrals (request_key, resident_id, contract_id, doctor_id, hospital, green_channel, reason_sealed, created_at)
			VALUES (?, ?, ?, ?, '', FALSE, 'x', ?)`, []any{"ref:" + c.Number, c.ResidentID, c.ID, team.DoctorID, at}},
		{`INSERT INTO contract_past_terms (contract_id, term_end, packages) VALUES (?, '2026-01-01', '[]')`, []any{c.ID}},
		{`INSERT INTO indicator_rollups (period, team_id, institution_id, community_id, doctor_id, code, num, den)
			VALUES ('2026', ?, ?, 0, ?, 'x', 1, 2)`, []any{team.ID, team.InstitutionID, team.DoctorID}},
		{`INSERT INTO indicator_rollup_runs (period, team_id) VALUES ('2026', ?)`, []any{team.ID}},
	} {
		if _, err := raw.Exec(raw.Rebind(q.sql), q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
}

func fatal(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rowCounts(t *testing.T, raw *sqlx.DB) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range institutionTables {
		var n int64
		if err := raw.Get(&n, `SELECT COUNT(*) FROM `+table); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// jiayi demo remove deletes the demo institution and every row that hangs
// off it, and nothing of a real institution's; run again it deletes nothing.
func TestRemoveDemo(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		raw := storagetest.SQL(t, db)
		fillInstitution(t, db, "hedong", false)
		real := rowCounts(t, raw)
		for table, n := range real {
			if n == 0 {
				t.Fatalf("the fill left %s empty", table)
			}
		}
		if demo, err := db.DemoInstitutions(ctx); err != nil || len(demo) != 0 {
			t.Fatalf("demo data before any: %+v %v", demo, err)
		}
		fillInstitution(t, db, "demo", true)
		if demo, err := db.DemoInstitutions(ctx); err != nil || len(demo) != 1 || demo[0].Code != "demo" || !demo[0].Demo {
			t.Fatalf("demo institutions: %+v %v", demo, err)
		}
		removed, err := db.RemoveDemo(ctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		if after := rowCounts(t, raw); !maps.Equal(after, real) {
			t.Fatalf("after removal %v, the real institution had %v", after, real)
		}
		for _, table := range institutionTables { // the demo was filled as the real one was
			if removed[table] != real[table] {
				t.Errorf("removed %d rows of %s, the demo had %d", removed[table], table, real[table])
			}
		}
		if removed["binding_codes"] != 1 {
			t.Errorf("removed %d binding codes", removed["binding_codes"])
		}
		if demo, _ := db.DemoInstitutions(ctx); len(demo) != 0 {
			t.Fatalf("demo institutions after removal: %+v", demo)
		}
		if _, err := db.StaffByUsername(ctx, "hedong-admin"); err != nil {
			t.Fatalf("the real institution's admin: %v", err)
		}
		checkRemovedAgain(t, db)
	})
}

// Someone who manages a real resident as well as a demo one keeps their
// pushes: they are a real WeChat user.
func TestRemoveDemoKeepsPushesOfRealUsers(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		fillInstitution(t, db, "hedong", false)
		fillInstitution(t, db, "demo", true)
		demo, _ := db.InstitutionByCode(ctx, "demo")
		raw := storagetest.SQL(t, db)
		var community int64
		if err := raw.Get(&community, raw.Rebind(`SELECT id FROM communities WHERE institution_id = ?`), demo.ID); err != nil {
			t.Fatal(err)
		}
		teams, _ := db.TeamsServing(ctx, community)
		nc := newContract(t, db, "sign:both", "id:both")
		nc.Resident.ManagerOpenID, nc.Resident.CommunityID, nc.TeamID, nc.DoctorID = "o_hedong", community, teams[0].ID, teams[0].DoctorID
		if _, _, err := db.CreateContract(ctx, nc); err != nil {
			t.Fatal(err)
		}
		before, _ := db.OutboxFor(ctx, "o_hedong")
		if _, err := db.RemoveDemo(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		if after, _ := db.OutboxFor(ctx, "o_hedong"); len(after) != len(before) || len(before) == 0 {
			t.Fatalf("pushes to a real user: %d before, %d after", len(before), len(after))
		}
	})
}

// checkRemovedAgain removes the demo a second time: nothing is deleted and
// the audit log has the first removal only.
func checkRemovedAgain(t *testing.T, db *storage.DB) {
	t.Helper()
	ctx := context.Background()
	again, err := db.RemoveDemo(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range again {
		if n != 0 {
			t.Errorf("a second removal deleted %d of %s", n, table)
		}
	}
	var entries int
	storagetest.SQL(t, db).Get(&entries, `SELECT COUNT(*) FROM audit_log WHERE action = 'demo.remove' AND institution_id IS NULL`)
	if entries != 1 {
		t.Fatalf("%d audit entries for the removals", entries)
	}
}

// Every table with a column naming an institution's rows is one the
// removal test fills, or the audit log, which keeps its entries: a new one
// must be thought about, and removed with the demo if it hangs off it.
func TestRemoveDemoKnowsEveryTable(t *testing.T) {
	raw := storagetest.SQL(t, storagetest.SQLite(t))
	var tables []string
	if err := raw.Select(&tables, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	refs := []string{"institution_id", "community_id", "team_id", "doctor_id", "resident_id", "contract_id", "appointment_id", "slot_id"}
	for _, table := range tables {
		var columns []string
		if err := raw.Select(&columns, `SELECT name FROM pragma_table_info(?)`, table); err != nil {
			t.Fatal(err)
		}
		for _, c := range columns {
			if slices.Contains(refs, c) && !slices.Contains(institutionTables, table) && table != "audit_log" {
				t.Errorf("table %s has %s but the demo removal test does not fill it", table, c)
			}
		}
	}
}

// A binding code issued in sandbox mode does not bind outside it, and is
// refused as an unknown code is; a code issued outside a sandbox binds
// anywhere.
func TestSandboxBindingCodes(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		docs, _ := db.Doctors(ctx)
		now := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
		db.SetSandbox(true)
		if err := db.SetBindingCode(ctx, docs[0].ID, "sandbox-code", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		db.SetSandbox(false)
		if err := db.SetBindingCode(ctx, docs[1].ID, "production-code", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		_, sandboxErr := db.BindDoctor(ctx, "sandbox-code", "o_stranger", now)
		_, unknownErr := db.BindDoctor(ctx, "no-such-code", "o_stranger", now)
		if !errors.Is(sandboxErr, storage.ErrCodeInvalid) || sandboxErr.Error() != unknownErr.Error() {
			t.Fatalf("a sandbox code in production: %v (an unknown one: %v)", sandboxErr, unknownErr)
		}
		if d, err := db.BindDoctor(ctx, "production-code", "o_doctor", now); err != nil || d.ID != docs[1].ID {
			t.Fatalf("a production code: %+v %v", d, err)
		}
		db.SetSandbox(true)
		if d, err := db.BindDoctor(ctx, "sandbox-code", "o_tester", now); err != nil || d.ID != docs[0].ID {
			t.Fatalf("a sandbox code in the sandbox: %+v %v", d, err)
		}
	})
}

// Migration 0037 marks the demo institution a sandbox loaded before the mark
// existed, and no other; a binding code it finds counts as a sandbox code.
func TestDemoLoadedBeforeTheMark(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		for _, in := range []storage.Institution{{Code: "demo", Name: "示范社区卫生服务中心（演示）", Kind: "community_centre"},
			{Code: "hedong", Name: "河东镇卫生院", Kind: "township_centre"}} {
			if _, err := db.CreateInstitution(ctx, in, nil, []storage.NewTeam{{Name: in.Code, Doctor: storage.Doctor{Name: in.Code}}}); err != nil {
				t.Fatal(err)
			}
		}
		raw := storagetest.SQL(t, db)
		raw.MustExec(raw.Rebind(`UPDATE doctors SET binding_code_hash = 'old-' || CAST(id AS TEXT), binding_expires_at = ?`),
			time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
		ran := false
		for _, m := range migration37(t) {
			if strings.Contains(m, "UPDATE institutions") {
				raw.MustExec(m[strings.Index(m, "UPDATE"):])
				ran = true
			}
		}
		if !ran {
			t.Fatal("migration 0037 marks no institution")
		}
		if demo, err := db.DemoInstitutions(ctx); err != nil || len(demo) != 1 || demo[0].Code != "demo" {
			t.Fatalf("demo institutions: %+v %v", demo, err)
		}
		docs, _ := db.Doctors(ctx)
		at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		if _, err := db.BindDoctor(ctx, fmt.Sprintf("old-%d", docs[1].ID), "o_doctor", at); !errors.Is(err, storage.ErrCodeInvalid) {
			t.Fatalf("a code issued before the mode was recorded binds in production: %v", err)
		}
	})
}

// migration37 is migration 0037's statements.
func migration37(t *testing.T) []string {
	t.Helper()
	all, err := storage.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.Version == 37 {
			return strings.Split(m.SQL, ";")
		}
	}
	t.Fatal("no migration 0037")
	return nil
}

// The sandbox clock's lead is kept in the database and only grows.
func TestSandboxClockLeadIsKept(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if lead, err := db.SandboxClockLead(ctx); err != nil || lead != 0 {
			t.Fatalf("a new database's lead: %v %v", lead, err)
		}
		for _, d := range []time.Duration{26 * time.Hour, 720 * time.Hour, time.Hour} { // the last a late write of an earlier move
			if err := db.KeepSandboxClockLead(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		if lead, err := db.SandboxClockLead(ctx); err != nil || lead != 720*time.Hour {
			t.Fatalf("lead %v %v, want 720h", lead, err)
		}
	})
}
