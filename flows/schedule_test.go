package flows

import (
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

func TestSlotsFollowSessionsLeaveAndTheMinimumVisit(t *testing.T) {
	monday := time.Date(2026, 11, 23, 6, 0, 0, 0, Shanghai) // a Monday
	sessions := []storage.ClinicSession{{Weekday: 1, StartMinute: 8 * 60, EndMinute: 9 * 60, SlotMinutes: 5, Capacity: 2}}
	exceptions := []storage.Exception{
		{Day: "2026-11-23", Kind: "leave", StartMinute: 8*60 + 20, EndMinute: 8*60 + 40},
		{Day: "2026-11-24", Kind: "extra", StartMinute: 14 * 60, EndMinute: 14*60 + 30, SlotMinutes: 10, Capacity: 1},
	}
	slots := SlotsFor(7, sessions, exceptions, monday, 8, 8)
	var got []string
	for _, s := range slots {
		got = append(got, s.StartsAt.In(Shanghai).Format("01-02 15:04")+"-"+s.EndsAt.In(Shanghai).Format("15:04"))
	}
	// Monday: 8-minute slots (the programme's minimum beats the session's 5),
	// minus those touching 08:20-08:40; Tuesday: the extra session; next
	// Monday: the full session.
	want := []string{"11-23 08:00-08:08", "11-23 08:08-08:16", "11-23 08:40-08:48", "11-23 08:48-08:56",
		"11-24 14:00-14:10", "11-24 14:10-14:20", "11-24 14:20-14:30",
		"11-30 08:00-08:08", "11-30 08:08-08:16", "11-30 08:16-08:24", "11-30 08:24-08:32", "11-30 08:32-08:40",
		"11-30 08:40-08:48", "11-30 08:48-08:56"}
	if len(got) != len(want) {
		t.Fatalf("slots:\n%v\nwant\n%v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slot %d = %s, want %s", i, got[i], want[i])
		}
	}
	if slots[0].Capacity != 2 || slots[0].DoctorID != 7 || slots[0].Day != "2026-11-23" {
		t.Fatalf("first slot = %+v", slots[0])
	}
}
