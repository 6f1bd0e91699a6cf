package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// A doctor's waiting requests are the pending ones of their own; their
// panel counts active contracts only, by tag and by birth date.
func TestDoctorWaitingAndPanel(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		pending, _, err := db.CreateContract(ctx, newContract(t, db, "sign:1", "id:1"))
		if err != nil {
			t.Fatal(err)
		}
		active, _, err := db.CreateContract(ctx, newContract(t, db, "sign:2", "id:2"))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.ChangeStatus(ctx, storage.StatusChange{Number: active, From: storage.ContractPending, To: storage.ContractActive,
			Actor: "d", TermEnd: "2099-12-31"}); err != nil {
			t.Fatal(err)
		}
		c, _ := db.ContractByNumber(ctx, active)
		waiting, total, err := db.DoctorWaiting(ctx, c.DoctorID)
		if err != nil || len(waiting) != 1 || waiting[0].Number != pending || total != 1 {
			t.Fatalf("waiting = %+v (%d in all), %v", waiting, total, err)
		}
		if other, _, _ := db.DoctorWaiting(ctx, c.DoctorID+1000); len(other) != 0 {
			t.Fatalf("another doctor's waiting list: %+v", other)
		}
		if err := db.SetGroupTags(ctx, c.ResidentID, []string{"tag-hypertension"}); err != nil {
			t.Fatal(err)
		}
		p, _ := db.ContractByNumber(ctx, pending)
		if err := db.SetGroupTags(ctx, p.ResidentID, []string{"tag-hypertension"}); err != nil {
			t.Fatal(err)
		}
		panel, err := db.DoctorPanelOf(ctx, c.DoctorID, []storage.GroupRule{{Code: "hypertension", Tag: "tag-hypertension"},
			{Code: "diabetes", Tag: "tag-diabetes"}, {Code: "elderly", BornOnOrBefore: "1961-12-02"}, {Code: "child", BornAfter: "2019-12-02"}})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"hypertension": 1, "elderly": 1} // the pending one is not counted
		if panel.Active != 1 || len(panel.Groups) != len(want) || panel.Groups["hypertension"] != 1 || panel.Groups["elderly"] != 1 {
			t.Fatalf("panel = %+v, want 1 active and %v", panel, want)
		}
	})
}

// A long waiting list is cut at its oldest 20, and says how many wait in all.
func TestDoctorWaitingCountsBeyondTheList(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		var first string
		for i := range 23 {
			number, _, err := db.CreateContract(ctx, newContract(t, db, fmt.Sprintf("sign:%d", i), fmt.Sprintf("id:%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = number
			}
		}
		c, _ := db.ContractByNumber(ctx, first)
		list, total, err := db.DoctorWaiting(ctx, c.DoctorID)
		if err != nil || len(list) != 20 || total != 23 || list[0].Number != first {
			t.Fatalf("%d listed of %d, %+v; want 20 of 23 from %q (%v)", len(list), total, list, first, err)
		}
	})
}
