package flows

import (
	"context"
	"fmt"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// BookingDays is how far ahead residents can book.
const BookingDays = 14

// SlotsFor lays out a doctor's slots on the days from a date (Asia/Shanghai):
// each session of that weekday, and each extra session, split into slots no
// shorter than the programme's minimum visit; slots touching leave are left
// out.
func SlotsFor(doctorID int64, sessions []storage.ClinicSession, exceptions []storage.Exception, from time.Time, days, minMinutes int) []storage.Slot {
	var out []storage.Slot
	first := StartOfDay(from)
	for d := range days {
		day := first.AddDate(0, 0, d)
		key := day.Format("2006-01-02")
		var runs []storage.ClinicSession
		var leave [][2]int
		for _, s := range sessions {
			if s.Weekday == int(day.Weekday()) {
				runs = append(runs, s)
			}
		}
		for _, x := range exceptions {
			if x.Day != key {
				continue
			}
			if x.Kind == "leave" {
				leave = append(leave, [2]int{x.StartMinute, x.EndMinute})
			} else {
				runs = append(runs, storage.ClinicSession{StartMinute: x.StartMinute, EndMinute: x.EndMinute,
					SlotMinutes: x.SlotMinutes, Capacity: max(x.Capacity, 1)})
			}
		}
		for _, s := range runs {
			length := max(s.SlotMinutes, minMinutes)
			for m := s.StartMinute; m+length <= s.EndMinute; m += length {
				if onLeave(leave, m, m+length) {
					continue
				}
				at := day.Add(time.Duration(m) * time.Minute)
				out = append(out, storage.Slot{DoctorID: doctorID, Day: key, StartsAt: at,
					EndsAt: at.Add(time.Duration(length) * time.Minute), Capacity: s.Capacity})
			}
		}
	}
	return out
}

func onLeave(leave [][2]int, from, to int) bool {
	for _, l := range leave {
		if from < l[1] && to > l[0] {
			return true
		}
	}
	return false
}

// ensureSlots makes sure the doctor's slots for the booking window exist.
func (e *Engine) ensureSlots(ctx context.Context, doctorID int64, now time.Time) error {
	sessions, err := e.DB.Sessions(ctx, doctorID)
	if err != nil {
		return err
	}
	today := now.In(Shanghai)
	exceptions, err := e.DB.Exceptions(ctx, doctorID, today.Format("2006-01-02"), today.AddDate(0, 0, BookingDays).Format("2006-01-02"))
	if err != nil {
		return err
	}
	c, err := e.DB.Catalog(ctx)
	if err != nil {
		return err
	}
	settings, err := profile.SettingsOf(c)
	if err != nil {
		return err
	}
	return e.DB.EnsureSlots(ctx, SlotsFor(doctorID, sessions, exceptions, now, BookingDays, settings.Appointments.MinVisitMinutes))
}

// CheckSchedule applies the programme's rules to a session (or an extra
// session, slots true) or to leave (slots false): a window that ends after
// it starts, slots no shorter than the programme's shortest visit, and a
// capacity of 1 to 50.
func CheckSchedule(ctx context.Context, db *storage.DB, startMinute, endMinute, slotMinutes, capacity int, slots bool) error {
	if startMinute < 0 || endMinute > 24*60 || endMinute <= startMinute {
		return fmt.Errorf("start and end must be HH:MM with end after start")
	}
	if !slots {
		return nil
	}
	c, err := db.Catalog(ctx)
	if err != nil {
		return err
	}
	settings, err := profile.SettingsOf(c)
	if err != nil {
		return err
	}
	if shortest := settings.Appointments.MinVisitMinutes; slotMinutes < shortest {
		return fmt.Errorf("slot_minutes must be at least %d, the programme's shortest visit", shortest)
	}
	if capacity < 1 || capacity > 50 {
		return fmt.Errorf("capacity must be 1 to 50")
	}
	return nil
}
