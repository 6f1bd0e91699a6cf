package flows

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// BookingDays is how far ahead residents can book.
const BookingDays = 14

// SlotsFor lays out a doctor's slots on the days from a date (Asia/Shanghai):
// the clinic hours of that weekday, and each extra session, split into slots no
// shorter than the programme's minimum visit; slots touching leave are left
// out.
func SlotsFor(doctorID int64, hours []storage.WeeklyHours, exceptions []storage.Exception, from time.Time, days, minMinutes int) []storage.Slot {
	var out []storage.Slot
	first := StartOfDay(from)
	for d := range days {
		day := first.AddDate(0, 0, d)
		key := day.Format("2006-01-02")
		var runs []storage.WeeklyHours
		var leave [][2]int
		for _, s := range hours {
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
				runs = append(runs, storage.WeeklyHours{StartMinute: x.StartMinute, EndMinute: x.EndMinute,
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

// Settings reads the programme's rules stored with the catalog: the one way
// flows and the edges read a profile rule, so a rule an admin changes
// applies everywhere at once.
func Settings(ctx context.Context, db *storage.DB) (profile.Settings, error) {
	c, err := db.Catalog(ctx)
	if err != nil {
		return profile.Settings{}, err
	}
	return profile.SettingsOf(c)
}

// slotsAhead lays out one doctor's slots for the booking window from now.
func slotsAhead(ctx context.Context, db *storage.DB, doctorID int64, hours []storage.WeeklyHours, now time.Time) ([]storage.Slot, error) {
	today := now.In(Shanghai)
	exceptions, err := db.Exceptions(ctx, doctorID, today.Format("2006-01-02"), today.AddDate(0, 0, BookingDays).Format("2006-01-02"))
	if err != nil {
		return nil, err
	}
	s, err := Settings(ctx, db)
	if err != nil {
		return nil, err
	}
	return SlotsFor(doctorID, hours, exceptions, now, BookingDays, s.Appointments.MinVisitMinutes), nil
}

// MaterialiseSlots makes every doctor's slots for the booking window from
// now, keeping the slots that exist (their bookings, and leave that closed
// them). The daily job runs it; schedule changes make their own slots, so
// asking a resident for a date only reads. It returns how many slots the
// window holds.
func MaterialiseSlots(ctx context.Context, db *storage.DB, now time.Time) (int, error) {
	s, err := Settings(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("flows.MaterialiseSlots: %w", err)
	}
	hours, err := db.AllWeeklyHours(ctx)
	if err != nil {
		return 0, fmt.Errorf("flows.MaterialiseSlots: %w", err)
	}
	today := now.In(Shanghai)
	exceptions, err := db.ExceptionsBetween(ctx, today.Format("2006-01-02"), today.AddDate(0, 0, BookingDays).Format("2006-01-02"))
	if err != nil {
		return 0, fmt.Errorf("flows.MaterialiseSlots: %w", err)
	}
	type schedule struct {
		hours      []storage.WeeklyHours
		exceptions []storage.Exception
	}
	byDoctor := map[int64]*schedule{}
	var doctors []int64 // in the order first seen, so slots are made in a stable order
	of := func(id int64) *schedule {
		if byDoctor[id] == nil {
			byDoctor[id] = &schedule{}
			doctors = append(doctors, id)
		}
		return byDoctor[id]
	}
	for _, h := range hours {
		of(h.DoctorID).hours = append(of(h.DoctorID).hours, h)
	}
	for _, x := range exceptions {
		of(x.DoctorID).exceptions = append(of(x.DoctorID).exceptions, x)
	}
	var slots []storage.Slot
	for _, id := range doctors {
		d := byDoctor[id]
		slots = append(slots, SlotsFor(id, d.hours, d.exceptions, now, BookingDays, s.Appointments.MinVisitMinutes)...)
	}
	if err := db.EnsureSlots(ctx, slots); err != nil {
		return 0, fmt.Errorf("flows.MaterialiseSlots: %w", err)
	}
	// Leave closes what it covers even if its slots were made before it
	// could (recorded before this version): each resident is told once.
	for _, x := range exceptions {
		if x.Kind != "leave" {
			continue
		}
		day, err := time.ParseInLocation("2006-01-02", x.Day, Shanghai)
		if err != nil {
			return 0, fmt.Errorf("flows.MaterialiseSlots: leave day %q: %w", x.Day, err)
		}
		if err := db.CloseForLeave(ctx, x.DoctorID, leaveChange(x, day, now)); err != nil {
			return 0, fmt.Errorf("flows.MaterialiseSlots: %w", err)
		}
	}
	return len(slots), nil
}

// AddWeeklyHours adds weekly clinic hours to a doctor's schedule, with its slots in
// the booking window.
func AddWeeklyHours(ctx context.Context, db *storage.DB, s storage.WeeklyHours, now time.Time) error {
	if err := CheckSchedule(ctx, db, s.StartMinute, s.EndMinute, s.SlotMinutes, s.Capacity, true); err != nil {
		return err
	}
	existing, err := db.WeeklyHours(ctx, s.DoctorID)
	if err != nil {
		return fmt.Errorf("flows.AddWeeklyHours: %w", err)
	}
	for _, h := range existing {
		if h.Weekday == s.Weekday && s.StartMinute < h.EndMinute && s.EndMinute > h.StartMinute {
			return &ErrSchedule{fmt.Sprintf("overlaps the doctor's hours %s-%s on that weekday", hhmm(h.StartMinute), hhmm(h.EndMinute)),
				fmt.Sprintf("与这位医生当天已有的门诊时间 %s-%s 重叠", hhmm(h.StartMinute), hhmm(h.EndMinute))}
		}
	}
	slots, err := slotsAhead(ctx, db, s.DoctorID, []storage.WeeklyHours{s}, now)
	if err != nil {
		return fmt.Errorf("flows.AddWeeklyHours: %w", err)
	}
	return db.AddWeeklyHours(ctx, s, slots)
}

// AddException records leave or an extra session on a day. Leave closes the
// slots it covers at once, and each resident booked in them is told, with
// the doctor's apology, to choose another time with 改约; an extra session
// opens its slots.
func AddException(ctx context.Context, db *storage.DB, x storage.Exception, now time.Time) error {
	if err := CheckSchedule(ctx, db, x.StartMinute, x.EndMinute, x.SlotMinutes, x.Capacity, x.Kind == "extra"); err != nil {
		return err
	}
	day, err := time.ParseInLocation("2006-01-02", x.Day, Shanghai)
	if err != nil {
		return &ErrSchedule{"day must be YYYY-MM-DD", "日期格式不对"}
	}
	if day.Before(StartOfDay(now)) {
		return &ErrSchedule{"day is in the past", "日期已经过去"}
	}
	if !day.Add(time.Duration(x.EndMinute) * time.Minute).After(now) {
		return &ErrSchedule{"the time is already over", "这段时间已经过去"}
	}
	if x.Kind == "extra" {
		if err := extraFits(ctx, db, x, day); err != nil {
			return err
		}
	}
	change := leaveChange(x, day, now)
	if x.Kind == "extra" {
		s, err := Settings(ctx, db)
		if err != nil {
			return fmt.Errorf("flows.AddException: %w", err)
		}
		// Only the days in the booking window get slots now; the daily job
		// makes the rest when their day comes into it.
		days := int(day.Sub(StartOfDay(now)).Hours()/24) + 1
		change.Slots = SlotsFor(x.DoctorID, nil, []storage.Exception{x}, now, min(max(days, 0), BookingDays), s.Appointments.MinVisitMinutes)
	}
	return db.AddException(ctx, x, change)
}

// leaveChange closes the slots leave covers and tells the residents booked
// in them, with the doctor's apology, to move their visit with 改约.
func leaveChange(x storage.Exception, day, now time.Time) storage.ExceptionChange {
	return storage.ExceptionChange{
		From: day.Add(time.Duration(x.StartMinute) * time.Minute), To: day.Add(time.Duration(x.EndMinute) * time.Minute), Now: now,
		Notify: func(affected []storage.AppointmentView) []storage.Push {
			pushes := make([]storage.Push, 0, len(affected))
			for _, a := range affected {
				pushes = append(pushes, DoctorLeavePush(a))
			}
			return pushes
		},
	}
}

// extraFits refuses an extra session that overlaps the doctor's clinic
// hours or another extra session that day: their slots would overlap.
func extraFits(ctx context.Context, db *storage.DB, x storage.Exception, day time.Time) error {
	hours, err := db.WeeklyHours(ctx, x.DoctorID)
	if err != nil {
		return fmt.Errorf("flows.AddException: %w", err)
	}
	for _, h := range hours {
		if h.Weekday == int(day.Weekday()) && x.StartMinute < h.EndMinute && x.EndMinute > h.StartMinute {
			return &ErrSchedule{fmt.Sprintf("overlaps the doctor's hours %s-%s that day", hhmm(h.StartMinute), hhmm(h.EndMinute)),
				fmt.Sprintf("与这位医生当天的门诊时间 %s-%s 重叠", hhmm(h.StartMinute), hhmm(h.EndMinute))}
		}
	}
	others, err := db.Exceptions(ctx, x.DoctorID, x.Day, x.Day)
	if err != nil {
		return fmt.Errorf("flows.AddException: %w", err)
	}
	for _, o := range others {
		if o.Kind == "extra" && x.StartMinute < o.EndMinute && x.EndMinute > o.StartMinute {
			return &ErrSchedule{fmt.Sprintf("overlaps the extra session %s-%s that day", hhmm(o.StartMinute), hhmm(o.EndMinute)),
				fmt.Sprintf("与当天已登记的加诊 %s-%s 重叠", hhmm(o.StartMinute), hhmm(o.EndMinute))}
		}
	}
	return nil
}

func hhmm(minute int) string { return fmt.Sprintf("%02d:%02d", minute/60, minute%60) }

// ErrSchedule is a schedule that breaks the programme's rules; its message
// says which, in words an admin can act on.
type ErrSchedule struct {
	Reason string // for the API and the log
	Words  string // for staff, in Chinese
}

func (e *ErrSchedule) Error() string { return e.Reason }

// CheckSchedule applies the programme's rules to a session (or an extra
// session, slots true) or to leave (slots false): a window that ends after
// it starts, slots no shorter than the programme's shortest visit, and a
// capacity of 1 to 50.
func CheckSchedule(ctx context.Context, db *storage.DB, startMinute, endMinute, slotMinutes, capacity int, slots bool) error {
	if startMinute < 0 || endMinute > 24*60 || endMinute <= startMinute {
		return &ErrSchedule{"start and end must be HH:MM with end after start", "开始和结束时间须写成 08:00 这样，且结束晚于开始"}
	}
	if !slots {
		return nil
	}
	settings, err := Settings(ctx, db)
	if err != nil {
		return err
	}
	if shortest := settings.Appointments.MinVisitMinutes; slotMinutes < shortest {
		return &ErrSchedule{fmt.Sprintf("slot_minutes must be at least %d, the programme's shortest visit", shortest),
			fmt.Sprintf("每号至少 %d 分钟（本地区规定的最短就诊时间）", shortest)}
	}
	if capacity < 1 || capacity > 50 {
		return &ErrSchedule{"capacity must be 1 to 50", "每号人数须为 1 到 50"}
	}
	return nil
}

// CloseInstitution closes every doctor of an institution for a window of
// a day (a public holiday, a closure), as leave: their slots close and
// each resident booked in them is told and may move the visit at any time.
// All doctors or none, in one transaction; it returns how many doctors.
func CloseInstitution(ctx context.Context, db *storage.DB, institutionID int64, day string, from, to int, now time.Time) (int, error) {
	doctors, total, err := db.ListDoctors(ctx, storage.Scope{Institution: institutionID}, storage.Page{Limit: 500})
	if err != nil {
		return 0, err
	}
	if total > len(doctors) {
		return 0, fmt.Errorf("flows.CloseInstitution: %d doctors is more than one closure takes", total)
	}
	err = db.InTx(ctx, func(tx *storage.DB) error {
		for _, d := range doctors {
			if err := AddException(ctx, tx, storage.Exception{DoctorID: d.ID, Day: day, Kind: "leave", StartMinute: from, EndMinute: to}, now); err != nil {
				return err
			}
		}
		return nil
	})
	return len(doctors), err
}

// RemoveWeeklyHours takes a session off a doctor's week: its slots ahead
// that nobody booked go at once; booked visits stay as they are. It returns
// how many slots went and how many booked ones stay.
func RemoveWeeklyHours(ctx context.Context, db *storage.DB, doctorID int64, weekday, startMinute int, now time.Time) (int, int, error) {
	hours, err := db.WeeklyHours(ctx, doctorID)
	if err != nil {
		return 0, 0, err
	}
	i := slices.IndexFunc(hours, func(h storage.WeeklyHours) bool { return h.Weekday == weekday && h.StartMinute == startMinute })
	if i < 0 {
		return 0, 0, fmt.Errorf("flows.RemoveWeeklyHours: %w", storage.ErrNotFound)
	}
	h := hours[i]
	slots, err := db.Slots(ctx, doctorID, now, now.AddDate(0, 0, BookingDays+1))
	if err != nil {
		return 0, 0, err
	}
	var ids []int64
	booked := 0
	for _, s := range slots {
		at := s.StartsAt.In(Shanghai)
		minute := at.Hour()*60 + at.Minute()
		if int(at.Weekday()) != h.Weekday || minute < h.StartMinute || minute >= h.EndMinute {
			continue
		}
		if s.Booked > 0 {
			booked++
		}
		ids = append(ids, s.ID)
	}
	removed, err := db.RemoveWeeklyHours(ctx, doctorID, weekday, startMinute, ids)
	return int(removed), booked, err
}
