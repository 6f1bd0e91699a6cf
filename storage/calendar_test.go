package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// Calendar edits are one row per institution and entry; switching an entry
// off withdraws this year's reminders of it still waiting, to that
// institution's residents only (or, deployment-wide, to everyone), of this
// year and the year before (a December entry still going out in January),
// and nothing of another entry or an older year.
func TestCalendarEditsWithdrawWhatIsSwitchedOff(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		residents := twoInstitutions(t, db)
		here, there := residents["o_here"], residents["o_there"]
		inst, _ := db.InstitutionByCode(ctx, "shili")
		var pushes []storage.Push
		for _, r := range []struct {
			openID string
			id     int64
		}{{"o_here", here}, {"o_there", there}} {
			for _, key := range []string{"seasonal:flu:2026:%d", "seasonal:flu-child:2026:%d", "seasonal:flu:2025:%d", "seasonal:flu:2024:%d"} {
				pushes = append(pushes, storage.Push{Key: fmt.Sprintf(key, r.id), Kind: "seasonal", Recipient: r.openID,
					Due: time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC), Fields: map[string]string{"text": "t"}})
			}
		}
		if err := db.Enqueue(ctx, pushes); err != nil {
			t.Fatal(err)
		}
		states := func(openID string) map[string]string {
			rows, _ := db.OutboxFor(ctx, openID)
			out := map[string]string{}
			for _, r := range rows {
				out[r.Key] = r.State
			}
			return out
		}
		off := storage.CalendarEdit{Institution: inst.ID, Code: "flu", Off: true, UpdatedBy: "admin"}
		if err := db.SaveCalendarEdit(ctx, off, "流感疫苗", 2026); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{fmt.Sprintf("seasonal:flu:2026:%d", here): "cancelled", fmt.Sprintf("seasonal:flu-child:2026:%d", here): "pending",
			fmt.Sprintf("seasonal:flu:2025:%d", here): "cancelled", fmt.Sprintf("seasonal:flu:2024:%d", here): "pending"}
		if got := states("o_here"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("here after switching off for this institution: %v", got)
		}
		for key, state := range states("o_there") {
			if state != "pending" {
				t.Fatalf("another institution's resident lost %s", key)
			}
		}
		// Saved again: one row, the latest.
		if err := db.SaveCalendarEdit(ctx, storage.CalendarEdit{Institution: inst.ID, Code: "flu", Text: "新的话", UpdatedBy: "admin2"}, "流感疫苗", 2026); err != nil {
			t.Fatal(err)
		}
		edits, err := db.CalendarEdits(ctx)
		if err != nil || len(edits) != 1 || edits[0].Off || edits[0].Text != "新的话" || edits[0].UpdatedBy != "admin2" {
			t.Fatalf("edits = %+v, %v", edits, err)
		}
		// Deployment-wide: everyone's waiting reminder of the entry goes.
		if err := db.SaveCalendarEdit(ctx, storage.CalendarEdit{Code: "flu", Off: true, UpdatedBy: "city"}, "流感疫苗", 2026); err != nil {
			t.Fatal(err)
		}
		if got := states("o_there")[fmt.Sprintf("seasonal:flu:2026:%d", there)]; got != "cancelled" {
			t.Fatalf("there after switching off everywhere: %s", got)
		}
		if err := db.DeleteCalendarEdit(ctx, inst.ID, "flu", "流感疫苗", "admin", 2026); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteCalendarEdit(ctx, inst.ID, "flu", "流感疫苗", "admin", 2026); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		if edits, _ := db.CalendarEdits(ctx); len(edits) != 1 || edits[0].Institution != 0 {
			t.Fatalf("after reset: %+v", edits)
		}
		log, _, _ := db.AuditLog(ctx, storage.Scope{Institution: inst.ID}, storage.Page{Limit: 10})
		if len(log) != 3 || log[0].Action != "calendar.edit" || log[0].Detail != "恢复为日历原样" || log[2].Detail != "停发" {
			t.Fatalf("audit = %+v", log)
		}
	})
}

// A finished campaign remembers how far it reached; a catch-up moves that
// on only from what it read (two instances catching up at once: one
// counts), and a change to the entry sends it back to the start.
func TestCampaignsCatchUp(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		start := time.Date(2026, 10, 23, 1, 0, 0, 123456000, time.UTC)
		if _, ok, err := db.CampaignThrough(ctx, "seasonal:flu", 2026); ok || err != nil {
			t.Fatalf("before it ran: %v %v", ok, err)
		}
		if mine, err := db.ClaimCampaign(ctx, "seasonal:flu", 2026, start, time.Hour); !mine || err != nil {
			t.Fatalf("claim: %v %v", mine, err)
		}
		if _, ok, _ := db.CampaignThrough(ctx, "seasonal:flu", 2026); ok {
			t.Fatal("through while still running")
		}
		if err := db.FinishCampaign(ctx, "seasonal:flu", 2026, 5, start.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		reach, ok, err := db.CampaignThrough(ctx, "seasonal:flu", 2026)
		if !ok || err != nil || !reach.Through.Equal(start) {
			t.Fatalf("through = %v %v %v, want %v", reach, ok, err, start)
		}
		later := start.Add(48 * time.Hour)
		for range 2 { // the second finds it moved
			if err := db.CatchUpCampaign(ctx, "seasonal:flu", 2026, reach, later, 1); err != nil {
				t.Fatal(err)
			}
		}
		if got, _, _ := db.CampaignThrough(ctx, "seasonal:flu", 2026); !got.Through.Equal(later) {
			t.Fatalf("after catching up: %v", got)
		}
		campaigns, _ := db.Campaigns(ctx, 10)
		if len(campaigns) != 1 || campaigns[0].Pushes != 6 {
			t.Fatalf("campaigns = %+v", campaigns)
		}
		// A catch-up that read before a change cannot move through on.
		reach, _, _ = db.CampaignThrough(ctx, "seasonal:flu", 2026)
		if err := db.SaveCalendarEdit(ctx, storage.CalendarEdit{Code: "flu", Off: false, UpdatedBy: "city"}, "流感", 2026); err != nil {
			t.Fatal(err)
		}
		if err := db.CatchUpCampaign(ctx, "seasonal:flu", 2026, reach, later.Add(time.Hour), 0); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := db.CampaignThrough(ctx, "seasonal:flu", 2026); got.Through.After(start) || got.Generation != reach.Generation+1 {
			t.Fatalf("a change to the entry left through at %v", got)
		}
		// A change while a campaign runs: it finishes with through at the start.
		if mine, _ := db.ClaimCampaign(ctx, "seasonal:cold", 2026, start, time.Hour); !mine {
			t.Fatal("claim cold")
		}
		if err := db.SaveCalendarEdit(ctx, storage.CalendarEdit{Code: "cold", Text: "天冷了，注意保暖，老人出门戴帽子。", UpdatedBy: "city"}, "寒", 2026); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishCampaign(ctx, "seasonal:cold", 2026, 3, start.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, ok, _ := db.CampaignThrough(ctx, "seasonal:cold", 2026); !ok || got.Through.After(start) {
			t.Fatalf("changed while running, finished with through %v", got)
		}
	})
}

// Switched back on, an entry's reminders that switching it off withdrew
// wait to go again, except for those whose institution (or city staff)
// still has it off.
func TestCalendarSwitchedBackOnRevivesItsReminders(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		key := map[string]string{}
		for o, id := range twoInstitutions(t, db) {
			key[o] = fmt.Sprintf("seasonal:flu:2026:%d", id)
			if err := db.Enqueue(ctx, []storage.Push{{Key: key[o], Kind: "seasonal", Recipient: o,
				Due: time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC), Fields: map[string]string{"text": "t"}}}); err != nil {
				t.Fatal(err)
			}
		}
		here, _ := db.InstitutionByCode(ctx, "shili")
		away, _ := db.InstitutionByCode(ctx, "other")
		stateOf := func(o string) string {
			rows, _ := db.OutboxFor(ctx, o)
			return rows[0].State
		}
		off := func(inst int64, off bool) {
			t.Helper()
			if err := db.SaveCalendarEdit(ctx, storage.CalendarEdit{Institution: inst, Code: "flu", Off: off, UpdatedBy: "a"}, "流感", 2026); err != nil {
				t.Fatal(err)
			}
		}
		off(here.ID, true)
		off(away.ID, true)
		off(here.ID, false) // here switches it back on; away keeps it off
		if stateOf("o_here") != "pending" || stateOf("o_there") != "cancelled" {
			t.Fatalf("after here switched back on: here %s, there %s", stateOf("o_here"), stateOf("o_there"))
		}
		off(0, true) // city staff: off for everyone
		if err := db.DeleteCalendarEdit(ctx, away.ID, "flu", "流感", "a", 2026); err != nil {
			t.Fatal(err)
		}
		if stateOf("o_there") != "cancelled" || stateOf("o_here") != "cancelled" {
			t.Fatalf("while city staff have it off: here %s, there %s", stateOf("o_here"), stateOf("o_there"))
		}
		if err := db.DeleteCalendarEdit(ctx, 0, "flu", "流感", "city", 2026); err != nil {
			t.Fatal(err)
		}
		if stateOf("o_there") != "pending" || stateOf("o_here") != "pending" {
			t.Fatalf("after city staff put it back: here %s, there %s", stateOf("o_here"), stateOf("o_there"))
		}
	})
}

// twoInstitutions signs a resident in the seeded institution ("shili",
// managed by o_here) and one in another ("other", o_there), and returns
// their resident IDs by manager.
func twoInstitutions(t *testing.T, db *storage.DB) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	ids := seedOrganisation(t, db)
	other, err := db.CreateInstitution(ctx, storage.Institution{Code: "other", Name: "别处卫生院", Kind: "township_centre"},
		[]storage.Community{{Town: "别镇", Name: "别村"}}, []storage.NewTeam{{Name: "别处团队", Doctor: storage.Doctor{Name: "别医生"}, Communities: []int{0}}})
	if err != nil {
		t.Fatal(err)
	}
	signResident(t, db, 1, "o_here", ids[0], nil, "1950-01-01")
	signResident(t, db, 2, "o_there", other[0], nil, "1950-01-01")
	raw := storagetest.SQL(t, db)
	out := map[string]int64{}
	for _, o := range []string{"o_here", "o_there"} {
		var id int64
		if err := raw.GetContext(ctx, &id, raw.Rebind(`SELECT id FROM residents WHERE manager_openid = ?`), o); err != nil {
			t.Fatal(err)
		}
		out[o] = id
	}
	return out
}
