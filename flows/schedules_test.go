package flows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// A corrected due date moves the visits still to come, but a visit already
// reminded of is not reminded of again; a date months away is a new
// pregnancy with its own reminders. A desk re-signing without a due date
// keeps the one recorded.
func TestACorrectedDueDateRemindsEachVisitOnce(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	cs, _ := e.DB.Communities(ctx)
	activeIn(t, e, "o_mum", cs[0].ID, "1996-06-10")
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_mum", Subscribed: true, EventTime: time.Unix(1, 0)}})
	mum := contractsOf(t, e, "o_mum")[0].ResidentID
	set := func(day string, now time.Time) {
		t.Helper()
		if _, err := SetDueDate(ctx, e.DB, e.Sealer, storage.Scope{}, mum, day, "admin", now); err != nil {
			t.Fatal(err)
		}
	}
	runDays := func(from time.Time, days int) {
		t.Helper()
		for d := range days {
			if _, err := RunPersonal(ctx, e.DB, e.Sealer, from.AddDate(0, 0, d).Add(9*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	week16 := func() (n int) {
		for k := range outboxStates(t, e, "o_mum") {
			if strings.HasPrefix(k, "antenatal:") && strings.HasSuffix(k, ":16") {
				n++
			}
		}
		return n
	}
	day := time.Date(2026, 12, 3, 0, 0, 0, 0, Shanghai) // week 16 of a pregnancy due on 2027-05-20
	set("2027-05-20", day)
	runDays(day, 1)
	if n := week16(); n != 1 {
		t.Fatalf("week 16: %d reminders", n)
	}
	set("2027-05-25", day.AddDate(0, 0, 1)) // five days later: week 16 begins on 12-08
	runDays(day.AddDate(0, 0, 1), 10)
	if n := week16(); n != 1 {
		t.Fatalf("after the correction: %d week-16 reminders, want still 1", n)
	}
	set("2027-09-01", time.Date(2027, 3, 10, 0, 0, 0, 0, Shanghai)) // a new pregnancy: week 16 on 2027-03-17
	runDays(time.Date(2027, 3, 16, 0, 0, 0, 0, Shanghai), 3)
	if n := week16(); n != 2 {
		t.Fatalf("a new pregnancy: %d week-16 reminders in all, want 2", n)
	}
}
