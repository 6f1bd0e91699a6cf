package flows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

func TestHandOverATeam(t *testing.T) {
	e, _, c := signedResident(t, "o_moving")
	ctx := context.Background()
	c.book("1", "2", "1")
	pendingNumber := signed(t, e, "o_new", synthID("110105", "19600101", "042"))
	communities, _ := e.DB.Communities(ctx)
	teams, _ := e.DB.TeamsServing(ctx, communities[1].ID) // the community both teams serve
	from, to := teams[0], teams[1]
	now := c.clock // the chat's clock: the visit lies ahead of it
	visitsBefore, _ := e.DB.UpcomingManagedBy(ctx, "o_moving", now)
	if len(visitsBefore) != 1 || visitsBefore[0].DoctorID != from.DoctorID {
		t.Fatalf("the visit before: %+v", visitsBefore)
	}

	if n := countKind(t, e, DoctorRecipient(from.DoctorID), PushSignRequest, "pending"); n != 1 {
		t.Fatalf("%d sign requests wait for the old team's doctor before the handover", n)
	}
	if _, err := HandOverTeam(ctx, e.DB, storage.Scope{Institution: from.InstitutionID + 5}, from.ID, to.ID, true, "wang", now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a handover from another institution: %v", err)
	}
	h, err := HandOverTeam(ctx, e.DB, storage.Scope{Institution: from.InstitutionID}, from.ID, to.ID, true, "wang", now)
	if err != nil || len(h.Contracts) != 2 || len(h.Appointments) != 1 {
		t.Fatalf("handover: %+v %v", h, err)
	}
	for _, openID := range []string{"o_moving", "o_new"} {
		cs := contractsOf(t, e, openID)
		if cs[0].TeamID != to.ID || cs[0].DoctorID != to.DoctorID {
			t.Fatalf("%s's contract after the handover: %+v", openID, cs[0])
		}
		if countKind(t, e, openID, PushTeamHandover, "pending") != 1 {
			t.Fatalf("%s was not told", openID)
		}
	}
	// The old team's doctor is no longer asked to answer a request now the
	// new team's.
	if n := countKind(t, e, DoctorRecipient(from.DoctorID), PushSignRequest, "pending"); n != 0 {
		t.Fatalf("%d sign requests still wait for the old team's doctor", n)
	}
	if got, _ := e.DB.ContractByNumber(ctx, pendingNumber); got.Status != storage.ContractPending {
		t.Fatalf("the pending request changed status: %s", got.Status)
	}
	visits, _ := e.DB.UpcomingManagedBy(ctx, "o_moving", now)
	if len(visits) != 1 || visits[0].DoctorID != to.DoctorID || !visits[0].StartsAt.Equal(visitsBefore[0].StartsAt) {
		t.Fatalf("the visit after the handover: %+v", visits)
	}
	oldSlots, _ := e.DB.Slots(ctx, from.DoctorID, visits[0].StartsAt, visits[0].StartsAt.Add(time.Minute))
	newSlots, _ := e.DB.Slots(ctx, to.DoctorID, visits[0].StartsAt, visits[0].StartsAt.Add(time.Minute))
	if len(oldSlots) == 1 && oldSlots[0].Booked != 0 || len(newSlots) != 1 || newSlots[0].Booked < 1 || newSlots[0].Booked > newSlots[0].Capacity {
		t.Fatalf("slots after the handover: old %+v new %+v", oldSlots, newSlots)
	}
	if countKind(t, e, DoctorRecipient(to.DoctorID), PushHandoverReceived, "pending") != 1 {
		t.Fatal("the new team's doctor was not told")
	}
	for _, m := range communities {
		serving, _ := e.DB.TeamsServing(ctx, m.ID)
		for _, team := range serving {
			if team.ID == from.ID {
				t.Fatalf("the retired team still serves %s", m.Name)
			}
		}
	}
}

func TestCloseTheWholeInstitutionForADay(t *testing.T) {
	e, _, c := signedResident(t, "o_holiday")
	ctx := context.Background()
	c.book("1", "2", "1")
	visits, _ := e.DB.UpcomingManagedBy(ctx, "o_holiday", c.clock)
	day := visits[0].StartsAt.In(Shanghai).Format("2006-01-02")
	doctors, _ := e.DB.Doctors(ctx)
	n, err := CloseInstitution(ctx, e.DB, doctors[0].InstitutionID, day, 0, 1440, c.clock)
	if err != nil || n != 2 {
		t.Fatalf("close: %d %v", n, err)
	}
	for _, d := range doctors {
		leave, _ := e.DB.Exceptions(ctx, d.ID, day, day)
		if len(leave) != 1 || leave[0].Kind != "leave" {
			t.Fatalf("doctor %d on %s: %+v", d.ID, day, leave)
		}
	}
	after, _ := e.DB.UpcomingManagedBy(ctx, "o_holiday", c.clock)
	if !after[0].SlotClosed || countKind(t, e, "o_holiday", PushBookingDoctorLeave, "pending") != 1 {
		t.Fatalf("the booked resident: %+v, told %d", after[0], countKind(t, e, "o_holiday", PushBookingDoctorLeave, "pending"))
	}
	if _, err := CloseInstitution(ctx, e.DB, doctors[0].InstitutionID, "2020-01-01", 0, 1440, c.clock); err == nil {
		t.Fatal("a closure in the past was accepted")
	}
}
