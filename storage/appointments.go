package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// WeeklyHours is one weekly schedule entry of a doctor.
type WeeklyHours struct {
	DoctorID    int64 `db:"doctor_id"`
	Weekday     int   `db:"weekday"` // 0 Sunday
	StartMinute int   `db:"start_minute"`
	EndMinute   int   `db:"end_minute"`
	SlotMinutes int   `db:"slot_minutes"`
	Capacity    int   `db:"capacity"`
}

// AddWeeklyHours adds weekly clinic hours to a doctor's schedule, with the slots it
// makes in the days ahead.
func (db *DB) AddWeeklyHours(ctx context.Context, s WeeklyHours, slots []Slot) error {
	const op = "AddWeeklyHours"
	return db.inTx(ctx, op, func(tx *DB) error {
		if _, err := tx.exec(ctx, op, `INSERT INTO schedules (doctor_id, weekday, start_minute, end_minute, slot_minutes, capacity)
		VALUES (?, ?, ?, ?, ?, ?)`, s.DoctorID, s.Weekday, s.StartMinute, s.EndMinute, s.SlotMinutes, s.Capacity); err != nil {
			return err
		}
		return tx.insertSlots(ctx, op, slots)
	})
}

// WeeklyHours lists a doctor's weekly clinic hours.
func (db *DB) WeeklyHours(ctx context.Context, doctorID int64) ([]WeeklyHours, error) {
	var out []WeeklyHours
	if err := db.sel(ctx, "WeeklyHours", &out, `SELECT doctor_id, weekday, start_minute, end_minute, slot_minutes, capacity
		FROM schedules WHERE doctor_id = ? ORDER BY weekday, start_minute`, doctorID); err != nil {
		return nil, err
	}
	return out, nil
}

// AllWeeklyHours lists every doctor's weekly clinic hours, by doctor.
func (db *DB) AllWeeklyHours(ctx context.Context) ([]WeeklyHours, error) {
	var out []WeeklyHours
	if err := db.sel(ctx, "AllWeeklyHours", &out, `SELECT doctor_id, weekday, start_minute, end_minute, slot_minutes, capacity
		FROM schedules ORDER BY doctor_id, weekday, start_minute`); err != nil {
		return nil, err
	}
	return out, nil
}

// ExceptionsBetween lists every doctor's exceptions between two days,
// inclusive, by doctor.
func (db *DB) ExceptionsBetween(ctx context.Context, from, to string) ([]Exception, error) {
	var out []Exception
	if err := db.sel(ctx, "ExceptionsBetween", &out, `SELECT doctor_id, day, kind, start_minute, end_minute, slot_minutes, capacity
		FROM schedule_exceptions WHERE day BETWEEN ? AND ? ORDER BY doctor_id, day, start_minute`, from, to); err != nil {
		return nil, err
	}
	return out, nil
}

// AgendaEntry is one visit on a bound doctor's agenda.
type AgendaEntry struct {
	DoctorID int64     `db:"doctor_id"`
	OpenID   string    `db:"openid"`
	StartsAt time.Time `db:"starts_at"`
}

// Agendas lists the visits starting in [from, to) of every doctor who bound
// their WeChat, by doctor and time: the day's agendas in one query.
func (db *DB) Agendas(ctx context.Context, from, to time.Time) ([]AgendaEntry, error) {
	var out []AgendaEntry
	if err := db.sel(ctx, "Agendas", &out, `SELECT a.doctor_id, d.openid, a.starts_at FROM appointments a
		JOIN doctors d ON d.id = a.doctor_id JOIN slots s ON s.id = a.slot_id WHERE d.openid IS NOT NULL
		AND a.status <> 'cancelled' AND NOT s.closed AND a.starts_at >= ? AND a.starts_at < ? ORDER BY a.doctor_id, a.starts_at`, from.UTC(), to.UTC()); err != nil {
		return nil, err
	}
	return out, nil
}

// Exception changes one day of a doctor's schedule.
type Exception struct {
	DoctorID    int64  `db:"doctor_id"`
	Day         string `db:"day"`
	Kind        string `db:"kind"` // leave, extra
	StartMinute int    `db:"start_minute"`
	EndMinute   int    `db:"end_minute"`
	SlotMinutes int    `db:"slot_minutes"`
	Capacity    int    `db:"capacity"`
}

// AddException records leave or an extra session, in one transaction with
// what it changes: an extra session's slots are added; leave closes the
// slots it covers (From to To), withdraws the reminders of the
// appointments booked in them and enqueues what notify says to the
// residents affected.
func (db *DB) AddException(ctx context.Context, x Exception, c ExceptionChange) error {
	const op = "AddException"
	return db.inTx(ctx, op, func(tx *DB) error {
		if _, err := tx.exec(ctx, op, `INSERT INTO schedule_exceptions (doctor_id, day, kind, start_minute, end_minute,
		slot_minutes, capacity) VALUES (?, ?, ?, ?, ?, ?, ?)`, x.DoctorID, x.Day, x.Kind, x.StartMinute, x.EndMinute, x.SlotMinutes, x.Capacity); err != nil {
			return err
		}
		if err := tx.insertSlots(ctx, op, c.Slots); err != nil {
			return err
		}
		if x.Kind == "leave" {
			return tx.closeSlots(ctx, op, x.DoctorID, c)
		}
		return nil
	})
}

// ExceptionChange is what an exception does to the slots already made.
type ExceptionChange struct {
	Slots    []Slot    // an extra session's slots
	From, To time.Time // leave: the slots touching this time close
	Now      time.Time // leave: visits after this are told
	// Notify builds the pushes to the residents booked in slots that leave
	// closes.
	Notify func(affected []AppointmentView) []Push
}

func (db *DB) closeSlots(ctx context.Context, op string, doctorID int64, c ExceptionChange) error {
	// No slot is a day long: the lower bound lets (doctor_id, starts_at)'s
	// index find them.
	if _, err := db.exec(ctx, op, `UPDATE slots SET closed = TRUE WHERE doctor_id = ? AND starts_at < ? AND ends_at > ?
		AND starts_at >= ?`, doctorID, c.To.UTC(), c.From.UTC(), c.From.Add(-24*time.Hour).UTC()); err != nil {
		return err
	}
	var affected []AppointmentView
	if err := db.sel(ctx, op, &affected, appointmentViewSQL+` WHERE a.doctor_id = ? AND a.status = 'booked'
		AND a.starts_at < ? AND a.ends_at > ? AND a.starts_at > ? ORDER BY a.starts_at, a.id`,
		doctorID, c.To.UTC(), c.From.UTC(), c.Now.UTC()); err != nil {
		return err
	}
	ids := make([]int64, len(affected))
	for i, a := range affected {
		ids[i] = a.ID
	}
	if err := db.withdrawReminders(ctx, op, ids...); err != nil {
		return err
	}
	if c.Notify == nil || len(affected) == 0 {
		return nil
	}
	return db.enqueue(ctx, op, c.Notify(affected))
}

// CloseForLeave closes the slots leave recorded earlier covers, as
// AddException does, for slots made since and for leave recorded before
// slots could close; the pushes' keys make each resident told once.
func (db *DB) CloseForLeave(ctx context.Context, doctorID int64, c ExceptionChange) error {
	const op = "CloseForLeave"
	return db.inTx(ctx, op, func(tx *DB) error { return tx.closeSlots(ctx, op, doctorID, c) })
}

// Exceptions lists a doctor's exceptions between two days, inclusive.
func (db *DB) Exceptions(ctx context.Context, doctorID int64, from, to string) ([]Exception, error) {
	var out []Exception
	if err := db.sel(ctx, "Exceptions", &out, `SELECT doctor_id, day, kind, start_minute, end_minute, slot_minutes, capacity
		FROM schedule_exceptions WHERE doctor_id = ? AND day BETWEEN ? AND ? ORDER BY day, start_minute`, doctorID, from, to); err != nil {
		return nil, err
	}
	return out, nil
}

// Slot is a bookable time of a doctor.
type Slot struct {
	ID       int64     `db:"id"`
	DoctorID int64     `db:"doctor_id"`
	Day      string    `db:"day"`
	StartsAt time.Time `db:"starts_at"`
	EndsAt   time.Time `db:"ends_at"`
	Capacity int       `db:"capacity"`
	Booked   int       `db:"booked"`
	Closed   bool      `db:"closed"` // leave covers it
}

// Free is how many more bookings the slot takes.
func (s Slot) Free() int {
	if s.Closed {
		return 0
	}
	return s.Capacity - s.Booked
}

// EnsureSlots adds the slots that do not exist yet; existing ones, their
// bookings and whether leave closed them, are kept.
func (db *DB) EnsureSlots(ctx context.Context, slots []Slot) error {
	const op = "EnsureSlots"
	return db.inTx(ctx, op, func(tx *DB) error { return tx.insertSlots(ctx, op, slots) })
}

func (db *DB) insertSlots(ctx context.Context, op string, slots []Slot) error {
	rows := make([][]any, len(slots))
	for i, s := range slots {
		rows[i] = []any{s.DoctorID, s.Day, s.StartsAt.UTC(), s.EndsAt.UTC(), s.Capacity}
	}
	_, err := db.insertMany(ctx, op, `INSERT INTO slots (doctor_id, day, starts_at, ends_at, capacity) VALUES`,
		`ON CONFLICT (doctor_id, starts_at) DO NOTHING`, rows)
	return err
}

// Slots lists a doctor's slots starting in [from, to), in time order.
func (db *DB) Slots(ctx context.Context, doctorID int64, from, to time.Time) ([]Slot, error) {
	var out []Slot
	if err := db.sel(ctx, "Slots", &out, `SELECT id, doctor_id, day, starts_at, ends_at, capacity, booked, closed FROM slots
		WHERE doctor_id = ? AND starts_at >= ? AND starts_at < ? ORDER BY starts_at`, doctorID, from.UTC(), to.UTC()); err != nil {
		return nil, err
	}
	return out, nil
}

// Appointment errors.
var (
	ErrSlotFull = errors.New("the slot is full")
	ErrOverlap  = errors.New("the resident has an appointment at that time")
	ErrTooMany  = errors.New("the resident has too many upcoming appointments")
	// ErrContractChanged: the contract booked under ended or moved to
	// another doctor while the booking was being made.
	ErrContractChanged = errors.New("the contract is no longer active with that doctor")
)

// NewAppointment is a booking to record.
type NewAppointment struct {
	RequestKey    string
	ResidentID    int64
	ContractID    int64
	DoctorID      int64
	SlotID        int64
	Kind          string
	AddressSealed string
	ReasonSealed  string // referrals: why, a health detail
	Hospital      string // referrals: where to
	MaxUpcoming   int
	Now           time.Time
	// Pushes builds the doctor's notice and the reminders once the
	// appointment's ID is known.
	Pushes func(id int64) []Push
}

// Book holds a place in the slot and records the appointment with its
// pushes, in one transaction. The slot's count is raised only while below
// capacity, so concurrent bookings on any number of instances never exceed
// it. A replay of the same booking returns the first one.
func (db *DB) Book(ctx context.Context, a NewAppointment) (int64, error) {
	const op = "Book"
	var id int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		err := tx.get(ctx, op, &id, `SELECT id FROM appointments WHERE request_key = ?`, a.RequestKey)
		if err == nil {
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		slot, err := tx.holdSlot(ctx, op, a.SlotID)
		if err != nil {
			return err
		}
		var live int
		if err := tx.get(ctx, op, &live, `SELECT COUNT(*) FROM contracts WHERE id = ? AND resident_id = ? AND status = 'active'
		AND doctor_id = ?`, a.ContractID, a.ResidentID, slot.DoctorID); err != nil {
			return err
		}
		if live == 0 {
			return fail(op, ErrContractChanged)
		}
		if err := tx.checkResident(ctx, op, a.ResidentID, 0, slot, a.MaxUpcoming, a.Now); err != nil {
			return err
		}
		now := a.Now.UTC()
		if err := tx.get(ctx, op, &id, `INSERT INTO appointments (request_key, resident_id, contract_id, doctor_id, slot_id,
		kind, status, starts_at, ends_at, address_sealed, reason, hospital, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 'booked', ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			a.RequestKey, a.ResidentID, a.ContractID, slot.DoctorID, slot.ID, a.Kind, slot.StartsAt.UTC(), slot.EndsAt.UTC(),
			a.AddressSealed, a.ReasonSealed, a.Hospital, now, now); err != nil {
			return err
		}
		if a.Pushes != nil {
			return tx.enqueue(ctx, op, a.Pushes(id))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// holdSlot takes one place in a slot if it has one free.
func (db *DB) holdSlot(ctx context.Context, op string, slotID int64) (Slot, error) {
	n, err := db.exec(ctx, op, `UPDATE slots SET booked = booked + 1 WHERE id = ? AND booked < capacity AND NOT closed`, slotID)
	if err != nil {
		return Slot{}, err
	}
	if n == 0 {
		return Slot{}, fail(op, ErrSlotFull)
	}
	var s Slot
	err = db.get(ctx, op, &s, `SELECT id, doctor_id, day, starts_at, ends_at, capacity, booked, closed FROM slots WHERE id = ?`, slotID)
	return s, err
}

// checkResident refuses an appointment that overlaps another of the
// resident's (except the one being moved) or passes the upcoming limit.
func (db *DB) checkResident(ctx context.Context, op string, residentID, moving int64, s Slot, maxUpcoming int, now time.Time) error {
	var n int
	if err := db.get(ctx, op, &n, `SELECT COUNT(*) FROM appointments WHERE resident_id = ? AND status = 'booked'
		AND id <> ? AND starts_at < ? AND ends_at > ?`, residentID, moving, s.EndsAt.UTC(), s.StartsAt.UTC()); err != nil {
		return err
	}
	if n > 0 {
		return fail(op, ErrOverlap)
	}
	if maxUpcoming <= 0 {
		return nil
	}
	if err := db.get(ctx, op, &n, `SELECT COUNT(*) FROM appointments WHERE resident_id = ? AND status = 'booked'
		AND id <> ? AND starts_at > ?`, residentID, moving, now.UTC()); err != nil {
		return err
	}
	if n >= maxUpcoming {
		return fail(op, ErrTooMany)
	}
	return nil
}

// AppointmentView is an appointment as residents and doctors see it.
type AppointmentView struct {
	ID            int64     `db:"id"`
	ResidentID    int64     `db:"resident_id"`
	ResidentName  string    `db:"resident_name"`
	ManagerOpenID string    `db:"manager_openid"`
	DoctorID      int64     `db:"doctor_id"`
	DoctorName    string    `db:"doctor_name"`
	SlotID        int64     `db:"slot_id"`
	Kind          string    `db:"kind"`
	Status        string    `db:"status"`
	StartsAt      time.Time `db:"starts_at"`
	EndsAt        time.Time `db:"ends_at"`
	ReasonSealed  string    `db:"reason"` // referrals; clear if booked before reasons were sealed
	Hospital      string    `db:"hospital"`
	AddressSealed string    `db:"address_sealed"`
	SlotClosed    bool      `db:"slot_closed"` // leave covers it: the resident may move or cancel it at any time
}

const appointmentViewSQL = `SELECT a.id, a.resident_id, r.name AS resident_name, r.manager_openid, a.doctor_id,
	d.name AS doctor_name, a.slot_id, a.kind, a.status, a.starts_at, a.ends_at, a.reason, a.hospital, a.address_sealed,
	s.closed AS slot_closed
	FROM appointments a JOIN residents r ON r.id = a.resident_id JOIN doctors d ON d.id = a.doctor_id
	JOIN slots s ON s.id = a.slot_id`

// UpcomingManagedBy lists the booked appointments after now of everyone a
// WeChat user manages, soonest first.
func (db *DB) UpcomingManagedBy(ctx context.Context, openID string, now time.Time) ([]AppointmentView, error) {
	var out []AppointmentView
	if err := db.sel(ctx, "UpcomingManagedBy", &out, appointmentViewSQL+` WHERE r.manager_openid = ? AND a.status = 'booked'
		AND a.starts_at > ? ORDER BY a.starts_at, a.id`, openID, now.UTC()); err != nil {
		return nil, err
	}
	return out, nil
}

// Appointment finds one appointment.
func (db *DB) Appointment(ctx context.Context, id int64) (AppointmentView, error) {
	var v AppointmentView
	err := db.get(ctx, "Appointment", &v, appointmentViewSQL+` WHERE a.id = ?`, id)
	return v, err
}

// CancelAppointment cancels a booked appointment, frees its place, withdraws
// its pending reminders and enqueues the notice, in one transaction.
func (db *DB) CancelAppointment(ctx context.Context, id int64, now time.Time, notify []Push) error {
	const op = "CancelAppointment"
	return db.inTx(ctx, op, func(tx *DB) error {
		var slotID int64
		err := tx.get(ctx, op, &slotID, `UPDATE appointments SET status = 'cancelled', updated_at = ?
		WHERE id = ? AND status = 'booked' RETURNING slot_id`, now.UTC(), id)
		if errors.Is(err, ErrNotFound) {
			return fail(op, ErrStatusChanged)
		}
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE slots SET booked = booked - 1 WHERE id = ?`, slotID); err != nil {
			return err
		}
		if err := tx.withdrawReminders(ctx, op, id); err != nil {
			return err
		}
		return tx.enqueue(ctx, op, notify)
	})
}

// cancelVisitsAfter cancels a contract's booked visits starting after a
// moment, frees their places and withdraws their reminders; it returns them
// as they were.
func (db *DB) cancelVisitsAfter(ctx context.Context, op string, contractID int64, at time.Time) ([]AppointmentView, error) {
	var visits []AppointmentView
	if err := db.sel(ctx, op, &visits, appointmentViewSQL+` WHERE a.contract_id = ? AND a.status = 'booked' AND a.starts_at > ?
		ORDER BY a.starts_at, a.id`, contractID, at.UTC()); err != nil || len(visits) == 0 {
		return nil, err
	}
	ids := make([]int64, 0, len(visits))
	slots := make([]int64, 0, len(visits))
	for _, v := range visits {
		ids, slots = append(ids, v.ID), append(slots, v.SlotID)
	}
	if _, err := db.execIn(ctx, op, `UPDATE appointments SET status = 'cancelled', updated_at = ? WHERE id IN (?)`, at.UTC(), ids); err != nil {
		return nil, err
	}
	for _, slot := range slots { // a slot of capacity >1 may hold two of them
		if _, err := db.exec(ctx, op, `UPDATE slots SET booked = booked - 1 WHERE id = ?`, slot); err != nil {
			return nil, err
		}
	}
	return visits, db.withdrawReminders(ctx, op, ids...)
}

// ReminderKeyPrefix is how every reminder of an appointment is keyed, so
// they can be withdrawn together.
func ReminderKeyPrefix(appointmentID int64) string {
	return fmt.Sprintf("appointment:%d:remind:", appointmentID)
}

// withdrawReminders cancels the pending reminders of the appointments, with
// one statement.
func (db *DB) withdrawReminders(ctx context.Context, op string, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	match := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		match[i], args[i] = "idempotency_key LIKE ?", ReminderKeyPrefix(id)+"%"
	}
	_, err := db.exec(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'appointment changed'
		WHERE state = 'pending' AND (`+strings.Join(match, " OR ")+`)`, args...)
	return err
}

// Reschedule moves a booked appointment to another slot: the new place is
// held first, and only then is the old one freed, so a full new slot leaves
// the appointment as it was. Old reminders are withdrawn and new ones
// enqueued with the notice.
func (db *DB) Reschedule(ctx context.Context, id, newSlotID int64, maxUpcoming int, now time.Time, pushes func(Slot) []Push) error {
	const op = "Reschedule"
	return db.inTx(ctx, op, func(tx *DB) error {
		var cur struct {
			ResidentID int64 `db:"resident_id"`
			SlotID     int64 `db:"slot_id"`
		}
		err := tx.get(ctx, op, &cur, `SELECT resident_id, slot_id FROM appointments WHERE id = ? AND status = 'booked'`, id)
		if errors.Is(err, ErrNotFound) {
			return fail(op, ErrStatusChanged)
		}
		if err != nil {
			return err
		}
		slot, err := tx.holdSlot(ctx, op, newSlotID)
		if err != nil {
			return err
		}
		if err := tx.checkResident(ctx, op, cur.ResidentID, id, slot, maxUpcoming, now); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE slots SET booked = booked - 1 WHERE id = ?`, cur.SlotID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE appointments SET slot_id = ?, doctor_id = ?, starts_at = ?, ends_at = ?,
		updated_at = ? WHERE id = ?`, slot.ID, slot.DoctorID, slot.StartsAt.UTC(), slot.EndsAt.UTC(), now.UTC(), id); err != nil {
			return err
		}
		if err := tx.withdrawReminders(ctx, op, id); err != nil {
			return err
		}
		if pushes != nil {
			return tx.enqueue(ctx, op, pushes(slot))
		}
		return nil
	})
}

// DoctorAgenda lists a doctor's appointments starting in [from, to), booked
// or already marked, in time order.
func (db *DB) DoctorAgenda(ctx context.Context, doctorID int64, from, to time.Time) ([]AppointmentView, error) {
	var out []AppointmentView
	if err := db.sel(ctx, "DoctorAgenda", &out, appointmentViewSQL+` WHERE a.doctor_id = ? AND a.status <> 'cancelled'
		AND a.starts_at >= ? AND a.starts_at < ? ORDER BY a.starts_at, a.id`, doctorID, from.UTC(), to.UTC()); err != nil {
		return nil, err
	}
	return out, nil
}

// SealedReadings are a visit's readings as stored: sealed ("" for none),
// and classed for the control rates, each class a keyed hash of whether
// that reading was controlled ("" for no reading of that kind).
type SealedReadings struct {
	Sealed, BPClass, GlucoseClass string
}

// MarkVisit records a booked visit as done or missed, with the readings a
// doctor took. A done visit opens a satisfaction survey for the resident's
// manager; the pushes go with it.
func (db *DB) MarkVisit(ctx context.Context, id int64, status string, r SealedReadings, now time.Time, pushes []Push) error {
	const op = "MarkVisit"
	return db.inTx(ctx, op, func(tx *DB) error {
		var residentID int64
		err := tx.get(ctx, op, &residentID, `UPDATE appointments SET status = ?, readings_sealed = ?, bp_class = ?, glucose_class = ?,
			readings_classed = 1, updated_at = ? WHERE id = ? AND status = 'booked'
		RETURNING resident_id`, status, r.Sealed, r.BPClass, r.GlucoseClass, now.UTC(), id)
		if errors.Is(err, ErrNotFound) {
			return fail(op, ErrStatusChanged)
		}
		if err != nil {
			return err
		}
		if err := tx.withdrawReminders(ctx, op, id); err != nil { // a visit marked needs no reminding
			return err
		}
		var manager string
		if err := tx.get(ctx, op, &manager, `SELECT manager_openid FROM residents WHERE id = ?`, residentID); err != nil {
			return err
		}
		if status == "done" {
			if _, err := tx.exec(ctx, op+": survey", `INSERT INTO surveys (appointment_id, openid, requested_at) VALUES (?, ?, ?)`,
				id, manager, now.UTC()); err != nil {
				return err
			}
		}
		return tx.enqueue(ctx, op, pushes)
	})
}

// OpenSurvey finds the oldest unanswered survey of a WeChat user asked since
// a moment, if any.
func (db *DB) OpenSurvey(ctx context.Context, openID string, since time.Time) (int64, bool, error) {
	var id int64
	err := db.get(ctx, "OpenSurvey", &id, `SELECT appointment_id FROM surveys WHERE openid = ? AND answered_at IS NULL
		AND requested_at >= ? ORDER BY requested_at LIMIT 1`, openID, since.UTC())
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return id, true, nil
}

// AnswerSurvey records a score once; a second answer changes nothing and
// reports false.
func (db *DB) AnswerSurvey(ctx context.Context, appointmentID int64, score int, now time.Time) (bool, error) {
	n, err := db.exec(ctx, "AnswerSurvey", `UPDATE surveys SET score = ?, answered_at = ? WHERE appointment_id = ?
		AND answered_at IS NULL`, score, now.UTC(), appointmentID)
	return n == 1, err
}

// ClearComment is a survey comment stored before comments were sealed.
type ClearComment struct {
	AppointmentID int64  `db:"appointment_id"`
	Comment       string `db:"comment"`
}

// ClearComments lists the survey comments still in clear.
func (db *DB) ClearComments(ctx context.Context) ([]ClearComment, error) {
	var out []ClearComment
	err := db.sel(ctx, "ClearComments", &out, `SELECT appointment_id, comment FROM surveys WHERE comment <> '' AND comment NOT LIKE 'v1:%'`)
	return out, err
}

// SealComment replaces a clear comment with its sealed form, if it is
// still what was read.
func (db *DB) SealComment(ctx context.Context, appointmentID int64, clear, sealed string) error {
	_, err := db.exec(ctx, "SealComment", `UPDATE surveys SET comment = ? WHERE appointment_id = ? AND comment = ?`,
		sealed, appointmentID, clear)
	return err
}

// CommentSurvey adds the optional comment to an answered survey, once.
func (db *DB) CommentSurvey(ctx context.Context, appointmentID int64, comment string) error {
	_, err := db.exec(ctx, "CommentSurvey", `UPDATE surveys SET comment = ? WHERE appointment_id = ? AND comment = ''`,
		comment, appointmentID)
	return err
}

// SurveyScores lists the answered scores, for the indicators and tests.
func (db *DB) SurveyScores(ctx context.Context) ([]int, error) {
	var out []int
	if err := db.sel(ctx, "SurveyScores", &out, `SELECT score FROM surveys WHERE score IS NOT NULL ORDER BY appointment_id`); err != nil {
		return nil, err
	}
	return out, nil
}

// LastAddress is the sealed address of a resident's latest home visit, "" if none.
func (db *DB) LastAddress(ctx context.Context, residentID int64) (string, error) {
	var sealed string
	err := db.get(ctx, "LastAddress", &sealed, `SELECT address_sealed FROM appointments WHERE resident_id = ?
		AND address_sealed <> '' ORDER BY id DESC LIMIT 1`, residentID)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return sealed, err
}

// VisitCount is how many visits of a kind a contract has had done.
type VisitCount struct {
	Kind  string `db:"kind"`
	Count int    `db:"n"`
}

// DoneVisits counts a contract's completed visits by kind since a moment.
func (db *DB) DoneVisits(ctx context.Context, contractID int64, since time.Time) (map[string]int, error) {
	var rows []VisitCount
	if err := db.sel(ctx, "DoneVisits", &rows, `SELECT kind, COUNT(*) AS n FROM appointments WHERE contract_id = ?
		AND status = 'done' AND starts_at >= ? GROUP BY kind`, contractID, since.UTC()); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Kind] = r.Count
	}
	return out, nil
}

// RemoveWeeklyHours takes a session off a doctor's week, with the slots it
// made that nobody booked (slotIDs, the session's slots ahead); booked
// slots stay, with their bookings. It returns how many slots went.
func (db *DB) RemoveWeeklyHours(ctx context.Context, doctorID int64, weekday, startMinute int, slotIDs []int64) (int64, error) {
	const op = "RemoveWeeklyHours"
	var removed int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		n, err := tx.exec(ctx, op, `DELETE FROM schedules WHERE doctor_id = ? AND weekday = ? AND start_minute = ?`,
			doctorID, weekday, startMinute)
		if err != nil {
			return err
		}
		if n == 0 {
			return fail(op, ErrNotFound)
		}
		if len(slotIDs) == 0 {
			return nil
		}
		removed, err = tx.execIn(ctx, op, `DELETE FROM slots WHERE id IN (?) AND doctor_id = ? AND booked = 0`, slotIDs, doctorID)
		return err
	})
	return removed, err
}

// UnclassedReading is a visit's sealed readings recorded before they were
// classed for the control rates.
type UnclassedReading struct {
	ID     int64  `db:"id"`
	Sealed string `db:"readings_sealed"`
}

// UnclassedReadings lists up to limit visits whose readings are not
// classed yet.
func (db *DB) UnclassedReadings(ctx context.Context, limit int) ([]UnclassedReading, error) {
	out := []UnclassedReading{}
	err := db.sel(ctx, "UnclassedReadings", &out, `SELECT id, readings_sealed FROM appointments WHERE readings_classed = 0
		AND readings_sealed <> '' ORDER BY id LIMIT ?`, limit)
	return out, err
}

// ClassReadings records the classes of a visit's readings, as they were
// read: readings recorded again since (and classed with them) are kept.
func (db *DB) ClassReadings(ctx context.Context, r UnclassedReading, bp, glucose string) error {
	_, err := db.exec(ctx, "ClassReadings", `UPDATE appointments SET bp_class = ?, glucose_class = ?, readings_classed = 1
		WHERE id = ? AND readings_classed = 0 AND readings_sealed = ?`, bp, glucose, r.ID, r.Sealed)
	return err
}
