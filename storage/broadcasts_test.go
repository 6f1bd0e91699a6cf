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

// broadcastWorld signs residents in two communities: those in the east
// have hypertension (by tag), every third is over 65 by birth date.
type broadcastWorld struct {
	db         *storage.DB
	east, west int64
}

func signResident(t *testing.T, db *storage.DB, i int, openID string, community int64, tags []string, born string) {
	t.Helper()
	ctx := context.Background()
	nc := newContract(t, db, fmt.Sprintf("sign:b%d", i), fmt.Sprintf("bid:%d", i))
	nc.Resident.ManagerOpenID, nc.ConsentBy = openID, openID
	nc.Resident.CommunityID, nc.Resident.GroupTags, nc.Resident.BirthDate = community, tags, born
	number, _, err := db.CreateContract(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractPending,
		To: storage.ContractActive, Actor: "d", TermEnd: "2099-12-31"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, seen(openID, true, int64(1000+i))); err != nil {
		t.Fatal(err)
	}
}

func newBroadcastWorld(t *testing.T, db *storage.DB) broadcastWorld {
	ids := seedOrganisation(t, db)
	w := broadcastWorld{db: db, east: ids[0], west: ids[1]}
	for i := range 6 {
		born := "1980-05-05"
		if i%3 == 0 {
			born = "1950-05-05"
		}
		community, tags := w.west, []string(nil)
		if i < 4 {
			community, tags = w.east, []string{"tag-hypertension"}
		}
		signResident(t, db, i, fmt.Sprintf("o_b%d", i), community, tags, born)
	}
	return w
}

func (w broadcastWorld) send(t *testing.T, seg storage.Segment, month string) (int64, storage.MassUse, error) {
	return w.db.CreateBroadcast(context.Background(), storage.Scope{}, storage.NewBroadcast{Title: "高血压", Body: "少盐",
		Segment: seg, SegmentJSON: "{}", Month: month, Due: time.Now(), Priority: 3, Actor: "test"})
}

func TestBroadcastSegmentsAndTheMonthlyLimit(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := newBroadcastWorld(t, db)
		eastHypertension := storage.Segment{CommunityIDs: []int64{w.east}, AnyGroup: true, GroupTags: []string{"tag-hypertension"}}
		use, err := db.BroadcastAudience(ctx, storage.Scope{}, eastHypertension, "2026-12")
		if err != nil || use.Total != 4 || use.Used[0] != 4 {
			t.Fatalf("east hypertension audience = %+v, %v", use, err)
		}
		// A group that follows from age is a range of birth dates, ORed with the tags.
		elderly := storage.Segment{AnyGroup: true, GroupBorn: []storage.BirthRange{{Until: "1961-12-01"}}}
		if use, _ := db.BroadcastAudience(ctx, storage.Scope{}, elderly, "2026-12"); use.Total != 2 {
			t.Fatalf("elderly audience = %+v", use)
		}
		if use, _ := db.BroadcastAudience(ctx, storage.Scope{}, storage.Segment{AnyGroup: true}, "2026-12"); use.Total != 0 {
			t.Fatalf("a group no one can be in reached %+v", use)
		}
		if use, _ := db.BroadcastAudience(ctx, storage.Scope{}, storage.Segment{Packages: []string{"chronic"}, Statuses: []string{"pending"}}, "2026-12"); use.Total != 0 {
			t.Fatalf("pending contracts reached %+v", use)
		}
		// Turning tips off, or unfollowing, leaves the audience.
		if err := db.SetReminders(ctx, "o_b1", storage.ReminderSettings{Seasonal: false, Personal: true}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if use, _ := db.BroadcastAudience(ctx, storage.Scope{}, eastHypertension, "2026-12"); use.Total != 3 {
			t.Fatalf("after o_b1 turned tips off: %+v", use)
		}
		if use, _ := db.BroadcastAudience(ctx, storage.Scope{Institution: 999}, storage.Segment{}, "2026-12"); use.Total != 0 {
			t.Fatalf("another institution's admin reached %+v", use)
		}

		// Four broadcasts reach everyone; the fifth reaches no one and is refused.
		for i := range storage.MassPerMonth {
			id, use, err := w.send(t, eastHypertension, "2026-12")
			if err != nil || use.Total != 3 || use.OverLimit() != 0 {
				t.Fatalf("broadcast %d: %d %+v %v", i, id, use, err)
			}
		}
		if _, _, err := w.send(t, eastHypertension, "2026-12"); !errors.Is(err, storage.ErrOverLimit) {
			t.Fatalf("fifth broadcast this month: %v", err)
		}
		if _, _, err := w.send(t, eastHypertension, "2027-01"); err != nil {
			t.Fatalf("next month: %v", err)
		}
		// A wider segment goes to those with allowance left and reports the rest.
		id, use, err := w.send(t, storage.Segment{}, "2026-12")
		if err != nil || use.Total != 5 || use.OverLimit() != 3 {
			t.Fatalf("everyone: %+v %v", use, err)
		}
		over, total, err := db.BroadcastOverLimit(ctx, storage.Scope{}, id, storage.Page{Limit: 10})
		if err != nil || total != 3 || len(over) != 3 {
			t.Fatalf("over the limit: %d %+v %v", total, over, err)
		}
		if use, _ := db.BroadcastAudience(ctx, storage.Scope{}, storage.Segment{}, "2026-12"); use.Used[4] != 3 || use.Used[1] != 2 {
			t.Fatalf("allowance used = %+v", use)
		}
		b, err := db.BroadcastByID(ctx, storage.Scope{}, id, time.Now())
		if err != nil || b.Audience != 5 || b.OverLimit != 3 || b.Batches != 1 || b.State != "sending" {
			t.Fatalf("broadcast = %+v, %v", b, err)
		}
		if _, err := db.BroadcastByID(ctx, storage.Scope{Institution: 999}, id, time.Now()); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("another institution sees it: %v", err)
		}
	})
}

func TestBroadcastBatchesSendAndRecordResults(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		newBroadcastWorld(t, db)
		id, _, err := db.CreateBroadcast(ctx, storage.Scope{}, storage.NewBroadcast{Title: "冬季", Body: "保暖",
			SegmentJSON: "{}", Month: "2026-12", Due: time.Now(), Priority: 3, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := claimBroadcasts(db, time.Now().Add(time.Second))
		if err != nil || len(rows) != 1 || rows[0].Kind != storage.KindBroadcast {
			t.Fatalf("claimed %+v, %v", rows, err)
		}
		// Someone who unfollowed since is left out, and counted.
		if err := db.Apply(ctx, seen("o_b5", false, 5000)); err != nil {
			t.Fatal(err)
		}
		batch, err := db.BroadcastBatch(ctx, id, 1)
		if err != nil || len(batch.OpenIDs) != 5 || batch.Withdrawn != 1 || batch.Title != "冬季" || batch.Body != "保暖" {
			t.Fatalf("batch = %+v, %v", batch, err)
		}
		if err := db.MarkBroadcastSubmitted(ctx, rows[0].ID, batch, "1000001", time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		if b, _ := db.BroadcastByID(ctx, storage.Scope{}, id, time.Now()); b.State != "submitted" || b.Withdrawn != 1 {
			t.Fatalf("after submitting: %+v", b)
		}
		found, err := db.RecordMassResult(ctx, storage.MassResult{MsgID: "1000001", Status: "send success", Total: 5, Filtered: 1, Sent: 3, Failed: 1})
		if err != nil || !found {
			t.Fatalf("result: %v %v", found, err)
		}
		if found, _ := db.RecordMassResult(ctx, storage.MassResult{MsgID: "999"}); found {
			t.Fatal("a job that is not ours was recorded")
		}
		b, _ := db.BroadcastByID(ctx, storage.Scope{}, id, time.Now())
		if b.State != "done" || b.Sent != 3 || b.Filtered != 1 || b.Failed != 1 {
			t.Fatalf("after the results: %+v", b)
		}
		list, total, err := db.Broadcasts(ctx, storage.Scope{}, storage.Page{Limit: 10}, time.Now())
		if err != nil || total != 1 || list[0].ID != id || list[0].State != "done" {
			t.Fatalf("list = %+v %d %v", list, total, err)
		}
	})
}

func TestBroadcastCancelledGivesTheAllowanceBack(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		newBroadcastWorld(t, db)
		later := time.Now().Add(48 * time.Hour)
		id, _, err := db.CreateBroadcast(ctx, storage.Scope{}, storage.NewBroadcast{Title: "t", Body: "b",
			SegmentJSON: "{}", Month: "2026-12", Due: later, Priority: 3, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := db.BroadcastByID(ctx, storage.Scope{}, id, time.Now()); b.State != "scheduled" {
			t.Fatalf("state = %q", b.State)
		}
		if _, err := db.CancelBroadcast(ctx, storage.Scope{Institution: 999}, id, "x"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("cancelled from another institution: %v", err)
		}
		n, err := db.CancelBroadcast(ctx, storage.Scope{}, id, "test")
		if err != nil || n != 6 {
			t.Fatalf("cancel: %d %v", n, err)
		}
		if use, _ := db.BroadcastAudience(ctx, storage.Scope{}, storage.Segment{}, "2026-12"); use.Used[0] != 6 {
			t.Fatalf("allowance after cancelling = %+v", use)
		}
		if rows, _ := claimBroadcasts(db, later.Add(time.Hour)); len(rows) != 0 {
			t.Fatalf("a cancelled broadcast was claimed: %+v", rows)
		}
		if b, _ := db.BroadcastByID(ctx, storage.Scope{}, id, time.Now()); b.State != "cancelled" {
			t.Fatalf("state = %q", b.State)
		}
		if _, err := db.CancelBroadcast(ctx, storage.Scope{}, id, "test"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("cancelled twice: %v", err)
		}
	})
}

// claimBroadcasts claims what is due and keeps the broadcasts' batches
// (the signing left doctors' notices waiting too).
func claimBroadcasts(db *storage.DB, now time.Time) ([]storage.OutboxRow, error) {
	rows, err := db.ClaimDue(context.Background(), 50, time.Minute, now, 3)
	var out []storage.OutboxRow
	for _, r := range rows {
		if r.Kind == storage.KindBroadcast {
			out = append(out, r)
		}
	}
	return out, err
}

// A community's tag follows its residents: those who move away or whose
// contract ends are to be untagged, newcomers tagged; no one is tagged past
// WeChat's 20 tags a user.
func TestTagDiffFollowsTheSegment(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := newBroadcastWorld(t, db)
		east := storage.Segment{CommunityIDs: []int64{w.east}}
		add, remove, err := db.TagDiff(ctx, 101, east)
		if err != nil || fmt.Sprint(add) != "[o_b0 o_b1 o_b2 o_b3]" || len(remove) != 0 {
			t.Fatalf("first sync: %v %v %v", add, remove, err)
		}
		if err := db.RecordTagged(ctx, 101, add, true); err != nil {
			t.Fatal(err)
		}
		if add, remove, _ := db.TagDiff(ctx, 101, east); len(add)+len(remove) != 0 {
			t.Fatalf("in sync, yet %v %v", add, remove)
		}
		// o_b0 moves west; o_b1's contract is cancelled; o_b4 moves east.
		rows, _, _ := db.ListResidents(ctx, storage.Scope{}, storage.ResidentFilter{}, storage.Page{Limit: 10})
		move := func(i int, to int64) {
			if err := db.UpdateResidentContact(ctx, rows[i].ID, storage.NewResident{CommunityID: to}, "test"); err != nil {
				t.Fatal(err)
			}
		}
		move(0, w.west)
		move(4, w.east)
		c, _, _ := db.ListContracts(ctx, storage.Scope{}, "active", storage.Page{Limit: 10})
		if err := db.ChangeStatus(ctx, storage.StatusChange{Number: c[1].Number, From: storage.ContractActive,
			To: storage.ContractCancelled, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		add, remove, _ = db.TagDiff(ctx, 101, east)
		if fmt.Sprint(add) != "[o_b4]" || fmt.Sprint(remove) != "[o_b0 o_b1]" {
			t.Fatalf("after moves and an ending: tag %v, untag %v", add, remove)
		}
		if err := db.RecordTagged(ctx, 101, remove, false); err != nil {
			t.Fatal(err)
		}
		for tag := int64(200); tag < 200+storage.TagsPerUser; tag++ {
			db.RecordTagged(ctx, tag, []string{"o_b4"}, true)
		}
		if add, _, _ := db.TagDiff(ctx, 101, east); len(add) != 0 {
			t.Fatalf("tagged past 20 tags: %v", add)
		}
	})
}

// A broadcast that would reach one user only is refused unless they wrote
// within WeChat's 48 hours (a mass message needs two openids), and takes
// no allowance when refused.
func TestBroadcastToOneNeedsTheirRecentMessage(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := newBroadcastWorld(t, db)
		signResident(t, db, 7, "o_alone", w.west, nil, "1930-01-01")
		seg := storage.Segment{Born: storage.BirthRange{Until: "1940-01-01"}}
		one := func(since time.Time) error {
			_, _, err := db.CreateBroadcast(ctx, storage.Scope{}, storage.NewBroadcast{Title: "t", Body: "b", Segment: seg, SegmentJSON: "{}",
				Month: "2026-12", Due: time.Now(), Priority: 3, Actor: "test", AloneSeenSince: since})
			return err
		}
		if err := one(time.Now().Add(time.Hour)); !errors.Is(err, storage.ErrAloneOutsideWindow) {
			t.Fatalf("to one who has not written since: %v", err)
		}
		if use, _ := db.BroadcastAudience(ctx, storage.Scope{}, seg, "2026-12"); use.Used[0] != 1 {
			t.Fatalf("the refused broadcast took the allowance: %+v", use)
		}
		if err := one(time.Now().Add(-time.Hour)); err != nil {
			t.Fatalf("to one who wrote lately: %v", err)
		}
	})
}
