package flows

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// A seeded population is what the indicators expect of it: everyone
// signed against a population six in ten of which signed, a fifth with
// hypertension and a twelfth with diabetes on the chronic package, four
// follow-ups each this year, the last with readings, controlled but for
// one resident in seven; about a third with the next booked.
func TestSeedDemo(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := profile.Ensure(ctx, db, "kunming"); err != nil {
			t.Fatal(err)
		}
		sealer, _ := storage.NewSealer(bytes.Repeat([]byte{3}, 32))
		now := time.Date(2026, 11, 20, 10, 0, 0, 0, Shanghai)
		got, err := SeedDemo(ctx, db, sealer, 2100, now) // three teams (1,035 each at most), one institution
		if err != nil {
			t.Fatal(err)
		}
		// Residents 1..2100: hypertension when i%5 == 0 (420), diabetes when
		// i%12 == 1 (175), both when both (35): 560 chronic patients.
		if got.Residents != 2100 || got.Teams != 3 || got.Institutions != 1 || got.Visits != 4*560 {
			t.Fatalf("seeded %+v", got)
		}
		// About a third of them have their next follow-up booked a week on,
		// each in their doctor's slot of that day, counted in it.
		var booked struct {
			Appointments int `db:"appointments"`
			InSlots      int `db:"in_slots"`
		}
		raw := storagetest.SQL(t, db)
		if err := raw.Get(&booked, raw.Rebind(`SELECT (SELECT COUNT(*) FROM appointments WHERE status = 'booked' AND kind = 'followup'
			AND starts_at > ?) AS appointments, (SELECT COALESCE(SUM(booked), 0) FROM slots) AS in_slots`), now.AddDate(0, 0, 6)); err != nil {
			t.Fatal(err)
		}
		if got.Bookings < 150 || got.Bookings > 225 || booked.Appointments != got.Bookings || booked.InSlots != got.Bookings {
			t.Fatalf("%d bookings seeded, %d in the table, %d counted in slots; want about a third of 560, all in both", got.Bookings, booked.Appointments, booked.InSlots)
		}
		period, _ := ParsePeriod("2026-01-01", "2026-11-20", now)
		r, err := Indicators(ctx, db, sealer, IndicatorScope{}, period, now)
		if err != nil {
			t.Fatal(err)
		}
		ind := byCode(r.Indicators)
		if v := ind["coverage"].Value; v == nil || *v < 59 || *v > 61 {
			t.Errorf("coverage %v, want about 60 %%", ind["coverage"])
		}
		want(t, "seeded", ind, "chronic_managed", 560, 560, 100, false)
		// Uncontrolled: hypertension patients with i%35 == 0 (60 of 420);
		// diabetes patients with i%7 == 0, i%12 == 1, so i%84 == 49 (49,
		// 133, …, 2065: 25 of 175).
		want(t, "seeded", ind, "bp_control", 360, 420, 85.7, false)
		want(t, "seeded", ind, "glucose_control", 150, 175, 85.7, false)
		if r.Activity.Visits != 4*560 || len(r.Breakdown["team"]) != 3 {
			t.Errorf("activity %+v, %d teams", r.Activity, len(r.Breakdown["team"]))
		}
		// Unmasked, a seeded resident shows the placeholder, not a number.
		rows, _, _ := db.ListResidents(ctx, storage.Scope{}, storage.ResidentFilter{Query: "演示居民7"}, storage.Page{Limit: 1})
		secrets, err := db.ResidentSecrets(ctx, storage.Scope{}, rows[0].ID, "test", "核对演示数据")
		if err != nil {
			t.Fatal(err)
		}
		if id, err := sealer.Open("id_number", secrets.IDSealed); err != nil || id != "演示数据" {
			t.Errorf("a seeded ID number opens to %q, %v", id, err)
		}
	})
}
