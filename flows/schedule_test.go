package flows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

func TestSlotsFollowSessionsLeaveAndTheMinimumVisit(t *testing.T) {
	monday := time.Date(2026, 11, 23, 6, 0, 0, 0, Shanghai) // a Monday
	sessions := []storage.WeeklyHours{{Weekday: 1, StartMinute: 8 * 60, EndMinute: 9 * 60, SlotMinutes: 5, Capacity: 2}}
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

// Leave recorded after slots exist closes them at once: nobody can book the
// doctor then, and a resident already booked is told, with the doctor's
// apology, and moves with 改约. Asking for dates makes no slots.
func TestLeaveAfterSlotsExistClosesThemAndTellsTheBooked(t *testing.T) {
	e, doc, c := signedResident(t, "o_l")
	ctx := context.Background()
	c.book("1", "2", "1", "11月24日 周二 08:00-08:10") // 门诊, the second day, the first time
	window := func() int {
		slots, err := e.DB.Slots(ctx, 1, c.clock.AddDate(0, 0, -30), c.clock.AddDate(0, 0, 60))
		if err != nil {
			t.Fatal(err)
		}
		return len(slots)
	}
	before := window()

	err := AddException(ctx, e.DB, storage.Exception{DoctorID: 1, Day: "2026-11-24", Kind: "leave",
		StartMinute: 8 * 60, EndMinute: 12 * 60}, c.clock)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := e.DB.OutboxFor(ctx, "o_l")
	var told []string
	for _, r := range rows {
		if r.Kind == PushBookingDoctorLeave && r.State == "pending" {
			f, _ := r.Fields()
			text, err := PushText(r.Kind, f)
			if err != nil {
				t.Fatal(err)
			}
			told = append(told, text)
		}
	}
	if len(told) != 1 || !strings.Contains(told[0], "很抱歉，林静医生2026-11-24 08:00临时不能出诊") || !strings.Contains(told[0], "改约") {
		t.Fatalf("the booked resident was told %q", told)
	}
	if countKind(t, e, "o_l", PushAppointmentReminder, "pending") != 0 {
		t.Fatalf("reminders of a visit the doctor cannot make are still due: %v", outboxStates(t, e, "o_l"))
	}

	// Another resident cannot book the morning any more.
	activeFor(t, e, doc, "o_m", synthID("110105", "19560303", "022"))
	m := talk(t, e, "o_m")
	m.say("预约")
	m.say("1")
	m.say("1", "可以预约的日期")
	times := m.say("2", "11月24日 周二可以预约的时间", "1. 14:00-14:10")
	if strings.Contains(times, "08:") || strings.Contains(times, "11:") {
		t.Fatalf("times on leave are offered:\n%s", times)
	}
	// The booked resident moves the visit to a time the doctor works.
	c.say("改约 1", "可以预约的日期")
	c.say("2", "1. 14:00-14:10")
	c.say("1", "请确认改约", "14:00-14:10")
	c.say("确认", "改约成功")
	if after := window(); after != before {
		t.Fatalf("asking for dates and times changed the slots: %d, then %d", before, after)
	}
}

// Asking a resident for a date or a time only reads the slots made: hours
// stored without their slots (as only the daily job would make them) are
// not offered until it runs.
func TestAskingForTimesMakesNoSlots(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	doc := bindFirstDoctor(t, e)
	activeFor(t, e, doc, "o_r", synthID("110105", "19550302", "021"))
	if err := e.DB.AddWeeklyHours(ctx, storage.WeeklyHours{DoctorID: 1, Weekday: 1, StartMinute: 19 * 60, EndMinute: 20 * 60,
		SlotMinutes: 15, Capacity: 1}, nil); err != nil {
		t.Fatal(err)
	}
	c := talk(t, e, "o_r")
	for _, s := range []string{"预约", "1", "1"} {
		c.say(s)
	}
	c.say("更多", "1. 11月30日 周一")
	if times := c.say("1", "11月30日 周一上午、下午都有号"); strings.Contains(times, "19:00") {
		t.Fatalf("a date question made slots:\n%s", times)
	}
	if _, err := MaterialiseSlots(ctx, e.DB, c.clock); err != nil {
		t.Fatal(err)
	}
	c.say("返回", "可以预约的日期")
	c.say("1", "上午、下午都有号")
	c.say("19点", "请确认预约", "19:00-19:15") // a time said for the half picks both
}

// An extra session opens its slots the moment it is recorded.
func TestExtraSessionOpensSlotsAtOnce(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)
	err := AddException(ctx, e.DB, storage.Exception{DoctorID: 1, Day: "2026-11-25", Kind: "extra",
		StartMinute: 19 * 60, EndMinute: 20 * 60, SlotMinutes: 15, Capacity: 2}, at)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 25, 19, 0, 0, 0, Shanghai)
	slots, err := e.DB.Slots(ctx, 1, day, day.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != 4 || slots[0].Capacity != 2 || slots[0].Free() != 2 {
		t.Fatalf("extra session slots = %+v", slots)
	}
	refused := map[string]error{
		"slots shorter than the shortest visit": AddException(ctx, e.DB, storage.Exception{DoctorID: 1, Day: "2026-11-26", Kind: "extra",
			StartMinute: 19 * 60, EndMinute: 20 * 60, SlotMinutes: 3, Capacity: 1}, at),
		"an extra session over another": AddException(ctx, e.DB, storage.Exception{DoctorID: 1, Day: "2026-11-25", Kind: "extra",
			StartMinute: 19*60 + 30, EndMinute: 21 * 60, SlotMinutes: 15, Capacity: 1}, at),
		"an extra session over clinic hours": AddException(ctx, e.DB, storage.Exception{DoctorID: 1, Day: "2026-11-25", Kind: "extra",
			StartMinute: 11 * 60, EndMinute: 12 * 60, SlotMinutes: 15, Capacity: 1}, at),
		"leave on a day gone": AddException(ctx, e.DB, storage.Exception{DoctorID: 1, Day: "2026-11-22", Kind: "leave",
			StartMinute: 8 * 60, EndMinute: 12 * 60}, at),
		"leave that is over already": AddException(ctx, e.DB, storage.Exception{DoctorID: 1, Day: "2026-11-23", Kind: "leave",
			StartMinute: 7 * 60, EndMinute: 8 * 60}, at),
		"weekly hours over others": AddWeeklyHours(ctx, e.DB, storage.WeeklyHours{DoctorID: 1, Weekday: 1,
			StartMinute: 8 * 60, EndMinute: 9 * 60, SlotMinutes: 15, Capacity: 2}, at),
	}
	for what, err := range refused {
		var bad *ErrSchedule
		if !errors.As(err, &bad) {
			t.Errorf("%s: %v, want a schedule error", what, err)
		}
	}
	if err := AddWeeklyHours(ctx, e.DB, storage.WeeklyHours{DoctorID: 1, Weekday: 1,
		StartMinute: 18 * 60, EndMinute: 19 * 60, SlotMinutes: 15, Capacity: 2}, at); err != nil {
		t.Fatalf("evening hours beside the day's: %v", err)
	}
}

// Leave recorded before leave could close slots (an older version) is
// caught by the daily job: the slots close and the booked resident is told,
// once however often the job runs. A visit leave covers can be moved even
// inside the usual 2 hours.
func TestDailyJobClosesSlotsForLeaveRecordedBefore(t *testing.T) {
	e, _, c := signedResident(t, "o_old")
	ctx := context.Background()
	// Today, the second time still free.
	if done := c.book("1", "1", "2", "11月23日 周一 09:20-09:30"); strings.Contains(done, "提醒您") {
		t.Fatalf("a visit minutes away promises reminders:\n%s", done)
	}
	// As the old version stored it: the leave only.
	if err := e.DB.AddException(ctx, storage.Exception{DoctorID: 1, Day: "2026-11-23", Kind: "leave", StartMinute: 7 * 60,
		EndMinute: 12 * 60}, storage.ExceptionChange{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := MaterialiseSlots(ctx, e.DB, c.clock); err != nil {
			t.Fatal(err)
		}
	}
	if n := countKind(t, e, "o_old", PushBookingDoctorLeave, "pending"); n != 1 {
		t.Fatalf("the resident was told %d times", n)
	}
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, Shanghai)
	if slots, _ := e.DB.Slots(ctx, 1, day.Add(9*time.Hour), day.Add(10*time.Hour)); len(slots) == 0 || !slots[0].Closed {
		t.Fatalf("slots under leave: %+v", slots)
	}
	// Minutes before the visit, and still it may move.
	c.say("改约 1", "可以预约的日期")
}
