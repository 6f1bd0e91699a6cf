package flows

import (
	"context"
	"testing"
	"time"
)

// A sign request left unanswered reminds the doctor after two days and
// tells the resident after five, each once; an answer withdraws what is
// still unsent.
func TestUnansweredSignRequestsAreFollowedUp(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	number := signed(t, e, "o_wait", synthID("110105", "19550302", "021"))
	doctor := DoctorRecipient(1)
	start := time.Now()
	run := func(after time.Duration) {
		t.Helper()
		if _, err := FollowUpSignRequests(ctx, e.DB, start.Add(after)); err != nil {
			t.Fatal(err)
		}
	}
	run(47 * time.Hour)
	if n := countKind(t, e, doctor, PushSignReminder, "pending"); n != 0 {
		t.Fatalf("a reminder before two days: %d", n)
	}
	run(49 * time.Hour)
	run(50 * time.Hour)
	if n := countKind(t, e, doctor, PushSignReminder, "pending"); n != 1 {
		t.Fatalf("reminders after two days: %d, want 1", n)
	}
	if n := countKind(t, e, "o_wait", PushSignWaiting, "pending"); n != 0 {
		t.Fatalf("the resident told before five days: %d", n)
	}
	run(5*24*time.Hour + time.Hour)
	run(6 * 24 * time.Hour)
	if n := countKind(t, e, "o_wait", PushSignWaiting, "pending"); n != 1 {
		t.Fatalf("the resident told after five days: %d, want 1", n)
	}
	doc := bindFirstDoctor(t, e)
	doc.say("确认 "+number, "已确认")
	states := outboxStates(t, e, "o_wait")
	if states["contract:"+number+":sign-waiting"] != "cancelled" {
		t.Fatalf("the resident's waiting notice after the answer: %v", states)
	}
	if n := countKind(t, e, doctor, PushSignReminder, "cancelled"); n != 1 {
		t.Fatalf("the doctor's reminder after the answer is not withdrawn")
	}
	run(7 * 24 * time.Hour)
	if n := countKind(t, e, doctor, PushSignReminder, "pending"); n != 0 {
		t.Fatalf("an answered request reminds again: %d", n)
	}
}
