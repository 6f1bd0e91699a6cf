package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

type bookingWorld struct {
	db       *storage.DB
	doctorID int64
	slots    []storage.Slot
	resident func(i int) (residentID, contractID int64)
}

// world makes a doctor with four 10-minute slots of capacity 1 tomorrow and
// a way to sign residents.
func world(t *testing.T, db *storage.DB) bookingWorld {
	t.Helper()
	ctx := context.Background()
	seedOrganisation(t, db)
	docs, _ := db.Doctors(ctx)
	w := bookingWorld{db: db, doctorID: docs[0].ID}
	day := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Hour)
	var slots []storage.Slot
	for i := range 4 {
		start := day.Add(time.Duration(i*10) * time.Minute)
		slots = append(slots, storage.Slot{DoctorID: w.doctorID, Day: start.Format("2006-01-02"), StartsAt: start, EndsAt: start.Add(10 * time.Minute), Capacity: 1})
	}
	if err := db.EnsureSlots(ctx, slots); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureSlots(ctx, slots); err != nil { // twice: nothing doubles
		t.Fatal(err)
	}
	w.slots, _ = db.Slots(ctx, w.doctorID, day, day.Add(time.Hour))
	if len(w.slots) != 4 {
		t.Fatalf("%d slots", len(w.slots))
	}
	w.resident = func(i int) (int64, int64) {
		nc := newContract(t, db, fmt.Sprintf("sign:%d", i), fmt.Sprintf("id:%d", i))
		number, _, err := db.CreateContract(ctx, nc)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractPending,
			To: storage.ContractActive, Actor: "d", TermEnd: "2099-12-31"}); err != nil {
			t.Fatal(err)
		}
		c, err := db.ContractByNumber(ctx, number)
		if err != nil {
			t.Fatal(err)
		}
		return c.ResidentID, c.ID
	}
	return w
}

// booked books and fails the test if the booking is refused.
func (w bookingWorld) booked(t *testing.T, key string, resident, contract int64, slot storage.Slot) int64 {
	t.Helper()
	id, err := w.book(key, resident, contract, slot)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (w bookingWorld) book(key string, resident, contract int64, slot storage.Slot) (int64, error) {
	return w.db.Book(context.Background(), storage.NewAppointment{RequestKey: key, ResidentID: resident, ContractID: contract,
		DoctorID: slot.DoctorID, SlotID: slot.ID, Kind: "clinic", MaxUpcoming: 3, Now: time.Now(),
		Pushes: func(id int64) []storage.Push {
			return []storage.Push{
				{Key: fmt.Sprintf("appointment:%d:booked", id), Kind: "booking", Recipient: "doctor:1"},
				{Key: storage.ReminderKeyPrefix(id) + "day-before", Kind: "reminder", Recipient: "o_res", Due: slot.StartsAt.Add(-6 * time.Hour)},
			}
		}})
}

// 50 residents press 确认 on the same slot of capacity 1 at once.
func TestOneSlotOneBookingUnderConcurrency(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		w := world(t, db)
		type who struct{ r, c int64 }
		var people []who
		for i := range 50 {
			r, c := w.resident(i)
			people = append(people, who{r, c})
		}
		var ok, full atomic.Int32
		var wg sync.WaitGroup
		for i, p := range people {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := w.book(fmt.Sprintf("b:%d", i), p.r, p.c, w.slots[0])
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, storage.ErrSlotFull):
					full.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		slots, _ := db.Slots(context.Background(), w.doctorID, w.slots[0].StartsAt, w.slots[0].EndsAt)
		var n int
		storagetest.SQL(t, db).GetContext(context.Background(), &n, `SELECT COUNT(*) FROM appointments`)
		if ok.Load() != 1 || full.Load() != 49 || slots[0].Booked != 1 || n != 1 {
			t.Fatalf("booked %d, refused %d, slot count %d, rows %d", ok.Load(), full.Load(), slots[0].Booked, n)
		}
	})
}

func TestBookingRules(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		r, c := w.resident(1)
		id := w.booked(t, "k1", r, c, w.slots[0])
		if again, err := w.book("k1", r, c, w.slots[0]); err != nil || again != id {
			t.Fatalf("replay: %d %v", again, err)
		}
		// An overlapping slot of another doctor's schedule is refused.
		other := w.slots[0]
		other.DoctorID = w.doctorID
		other.StartsAt = other.StartsAt.Add(5 * time.Minute)
		other.EndsAt = other.EndsAt.Add(5 * time.Minute)
		db.EnsureSlots(ctx, []storage.Slot{other})
		all, _ := db.Slots(ctx, w.doctorID, w.slots[0].StartsAt, w.slots[0].StartsAt.Add(time.Hour))
		var overlapping storage.Slot
		for _, s := range all {
			if s.StartsAt.Equal(other.StartsAt) {
				overlapping = s
			}
		}
		if _, err := w.book("k2", r, c, overlapping); !errors.Is(err, storage.ErrOverlap) {
			t.Fatalf("overlap: %v", err)
		}
		w.book("k3", r, c, w.slots[1])
		w.book("k4", r, c, w.slots[2])
		if _, err := w.book("k5", r, c, w.slots[3]); !errors.Is(err, storage.ErrTooMany) {
			t.Fatalf("a fourth upcoming: %v", err)
		}
		list, _ := db.UpcomingManagedBy(ctx, "o_res", time.Now())
		if len(list) != 3 || list[0].ID != id {
			t.Fatalf("upcoming = %+v", list)
		}
	})
}

func TestCancelWithdrawsRemindersAndFreesThePlace(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		r, c := w.resident(1)
		id, _ := w.book("k1", r, c, w.slots[0])
		if err := db.CancelAppointment(ctx, id, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		if err := db.CancelAppointment(ctx, id, time.Now(), nil); !errors.Is(err, storage.ErrStatusChanged) {
			t.Fatalf("cancel twice: %v", err)
		}
		rows, _ := db.OutboxFor(ctx, "o_res")
		if len(rows) != 1 || rows[0].State != "cancelled" {
			t.Fatalf("reminder after cancel: %+v", rows)
		}
		r2, c2 := w.resident(2)
		if _, err := w.book("k2", r2, c2, w.slots[0]); err != nil {
			t.Fatalf("the freed place: %v", err)
		}
	})
}

func TestRescheduleHoldsTheNewPlaceBeforeFreeingTheOld(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		r1, c1 := w.resident(1)
		r2, c2 := w.resident(2)
		mine, _ := w.book("k1", r1, c1, w.slots[0])
		w.book("k2", r2, c2, w.slots[1]) // the slot I want is taken
		err := db.Reschedule(ctx, mine, w.slots[1].ID, 3, time.Now(), nil)
		if !errors.Is(err, storage.ErrSlotFull) {
			t.Fatalf("move to a full slot: %v", err)
		}
		a, _ := db.Appointment(ctx, mine)
		slots, _ := db.Slots(ctx, w.doctorID, w.slots[0].StartsAt, w.slots[0].EndsAt)
		if a.SlotID != w.slots[0].ID || a.Status != "booked" || slots[0].Booked != 1 {
			t.Fatalf("the old place was lost: %+v, slot %+v", a, slots[0])
		}
		if err := db.Reschedule(ctx, mine, w.slots[2].ID, 3, time.Now(), func(s storage.Slot) []storage.Push {
			return []storage.Push{{Key: storage.ReminderKeyPrefix(mine) + "new", Kind: "reminder", Recipient: "o_res"}}
		}); err != nil {
			t.Fatal(err)
		}
		a, _ = db.Appointment(ctx, mine)
		all, _ := db.Slots(ctx, w.doctorID, w.slots[0].StartsAt, w.slots[3].EndsAt)
		if a.SlotID != w.slots[2].ID || all[0].Booked != 0 || all[2].Booked != 1 {
			t.Fatalf("after the move: %+v, slots %+v", a, all)
		}
		rows, _ := db.OutboxFor(ctx, "o_res")
		states := map[string]string{}
		for _, r := range rows {
			states[r.Key] = r.State
		}
		if states[storage.ReminderKeyPrefix(mine)+"day-before"] != "cancelled" || states[storage.ReminderKeyPrefix(mine)+"new"] != "pending" {
			t.Fatalf("reminders after the move: %v", states)
		}
	})
}

// Leave closes the slots it covers in the transaction that records it: no
// booking gets into them afterwards, the booked keep their place and are
// told, and their reminders are withdrawn.
func TestLeaveClosesCoveredSlots(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		r, c := w.resident(1)
		id := w.booked(t, "k1", r, c, w.slots[0])
		var told []storage.AppointmentView
		leave := storage.Exception{DoctorID: w.doctorID, Day: w.slots[0].Day, Kind: "leave", StartMinute: 0, EndMinute: 1}
		err := db.AddException(ctx, leave, storage.ExceptionChange{From: w.slots[0].StartsAt, To: w.slots[2].StartsAt,
			Notify: func(affected []storage.AppointmentView) []storage.Push {
				told = affected
				return []storage.Push{{Key: "leave:1", Kind: "leave", Recipient: "o_res"}}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if len(told) != 1 || told[0].ID != id {
			t.Fatalf("told %+v, want appointment %d", told, id)
		}
		slots, _ := db.Slots(ctx, w.doctorID, w.slots[0].StartsAt, w.slots[3].EndsAt)
		if !slots[0].Closed || !slots[1].Closed || slots[2].Closed || slots[3].Closed || slots[1].Free() != 0 || slots[2].Free() != 1 {
			t.Fatalf("slots after leave: %+v", slots)
		}
		r2, c2 := w.resident(2)
		if _, err := w.book("k2", r2, c2, w.slots[1]); !errors.Is(err, storage.ErrSlotFull) {
			t.Fatalf("booking a closed slot: %v", err)
		}
		// Materialising again does not reopen what leave closed.
		if err := db.EnsureSlots(ctx, w.slots); err != nil {
			t.Fatal(err)
		}
		if again, _ := db.Slots(ctx, w.doctorID, w.slots[1].StartsAt, w.slots[1].EndsAt); !again[0].Closed {
			t.Fatal("materialising reopened a closed slot")
		}
		states := map[string]string{}
		rows, _ := db.OutboxFor(ctx, "o_res")
		for _, row := range rows {
			states[row.Key] = row.State
		}
		if states["leave:1"] != "pending" || states[storage.ReminderKeyPrefix(id)+"day-before"] != "cancelled" {
			t.Fatalf("outbox after leave: %v", states)
		}
	})
}

// The daily jobs read every doctor's hours, exceptions and agenda in one
// query each.
func TestScheduleAndAgendaForEveryDoctor(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		docs, _ := db.Doctors(ctx)
		other := docs[len(docs)-1].ID
		for _, h := range []storage.WeeklyHours{{DoctorID: other, Weekday: 2, StartMinute: 480, EndMinute: 600, SlotMinutes: 10, Capacity: 1},
			{DoctorID: w.doctorID, Weekday: 1, StartMinute: 480, EndMinute: 600, SlotMinutes: 10, Capacity: 1}} {
			if err := db.AddWeeklyHours(ctx, h, nil); err != nil {
				t.Fatal(err)
			}
		}
		hours, err := db.AllWeeklyHours(ctx)
		if err != nil || len(hours) != 2 || hours[0].DoctorID > hours[1].DoctorID {
			t.Fatalf("weekly hours %+v %v", hours, err)
		}
		for _, x := range []storage.Exception{{DoctorID: other, Day: "2026-12-02", Kind: "leave", StartMinute: 480, EndMinute: 540},
			{DoctorID: w.doctorID, Day: "2026-12-09", Kind: "leave", StartMinute: 480, EndMinute: 540}} {
			if err := db.AddException(ctx, x, storage.ExceptionChange{}); err != nil {
				t.Fatal(err)
			}
		}
		if xs, err := db.ExceptionsBetween(ctx, "2026-12-01", "2026-12-05"); err != nil || len(xs) != 1 || xs[0].DoctorID != other {
			t.Fatalf("exceptions %+v %v", xs, err)
		}
		// Only bound doctors have agendas.
		r, c := w.resident(1)
		if _, err := w.book("a1", r, c, w.slots[1]); err != nil {
			t.Fatal(err)
		}
		day := w.slots[0].StartsAt.Add(-time.Hour)
		if got, err := db.Agendas(ctx, day, day.Add(24*time.Hour)); err != nil || len(got) != 0 {
			t.Fatalf("agenda of an unbound doctor: %+v %v", got, err)
		}
		if err := db.SetBindingCode(ctx, w.doctorID, "h", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.BindDoctor(ctx, "h", "o_doc", time.Now()); err != nil {
			t.Fatal(err)
		}
		got, err := db.Agendas(ctx, day, day.Add(24*time.Hour))
		if err != nil || len(got) != 1 || got[0].OpenID != "o_doc" || !got[0].StartsAt.Equal(w.slots[1].StartsAt) {
			t.Fatalf("agenda %+v %v", got, err)
		}
	})
}

// A booking under a contract that ended (or moved to another doctor) while
// it was being made is refused, and holds no place.
func TestBookingNeedsTheContractStillActiveWithTheDoctor(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		r, c := w.resident(1)
		cs, _ := db.ContractsManagedBy(ctx, "o_res")
		for _, v := range cs {
			if v.ID == c {
				db.ChangeStatus(ctx, storage.StatusChange{Number: v.Number, From: "active", To: "cancelled", Actor: "o_res"})
			}
		}
		if _, err := w.book("late", r, c, w.slots[0]); !errors.Is(err, storage.ErrContractChanged) {
			t.Fatalf("booked under a cancelled contract: %v", err)
		}
		if slots, _ := db.Slots(ctx, w.doctorID, w.slots[0].StartsAt, w.slots[0].EndsAt); slots[0].Booked != 0 {
			t.Fatal("the refused booking holds a place")
		}
	})
}

// The personal reminders read a chunk of contracts' visits in one query.
func TestVisitSummariesOfAChunk(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		r1, c1 := w.resident(1)
		_, c2 := w.resident(2)
		done, err := w.book("d1", r1, c1, w.slots[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.book("u1", r1, c1, w.slots[2]); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkVisit(ctx, done, "done", storage.SealedReadings{}, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		r3, c3 := w.resident(3) // after the chunk read
		if _, err := w.book("u3", r3, c3, w.slots[3]); err != nil {
			t.Fatal(err)
		}
		now := w.slots[1].StartsAt // between the done visit and the booked one
		got, err := db.VisitSummaries(ctx, min(c1, c2)-1, max(c1, c2), now.AddDate(-1, 0, 0), now)
		if err != nil {
			t.Fatal(err)
		}
		if s := got[c1]; !s.LastDone["clinic"].Equal(w.slots[0].StartsAt) || !s.Upcoming["clinic"] || s.Upcoming["followup"] {
			t.Fatalf("summary of the first contract: %+v", s)
		}
		if s, ok := got[c2]; ok && (len(s.LastDone) > 0 || len(s.Upcoming) > 0) {
			t.Fatalf("summary of a contract without visits: %+v", s)
		}
		if s, ok := got[c3]; ok || c3 <= max(c1, c2) {
			t.Fatalf("a contract after the range summed up: %+v (contracts %d %d %d)", s, c1, c2, c3)
		}
	})
}
