package flows

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// bookingFlow is the 预约 conversation; its states are drawn in booking.md.
// 改约 runs its steps from the date on.
var bookingFlow = stepped{name: "booking", titleText: "预约", helpMessage: "book_help", keyPrefix: "book", steps: bookingSteps}

func bookingSteps() []step {
	return []step{
		{name: "who", ask: askBookWho, take: takeBookWho},
		{name: "kind", ask: askKind, take: takeKind},
		{name: "hospital", applies: hasReferralTargets, ask: askReferralTarget, take: takeReferralTarget},
		{name: "date", ask: askDate, take: takeFromList("days", "day", "book_date_reask")},
		{name: "time", ask: askTime, take: takeFromList("slots", "slot", "book_time_reask")},
		{name: "address", applies: kindIs("home"), ask: askAddress, take: takeAddress},
		{name: "reason", applies: kindIs("referral"), ask: askReason, take: takeReason},
		{name: "confirm", ask: askBookConfirm, take: takeBookConfirm},
	}
}

// appointmentKinds in the order they are offered, with the words residents read.
var appointmentKinds = []struct{ code, name string }{
	{"clinic", "门诊"}, {"home", "上门"}, {"checkup", "体检"}, {"followup", "随访"}, {"referral", "转诊"},
}

func kindName(code string) string {
	for _, k := range appointmentKinds {
		if k.code == code {
			return k.name
		}
	}
	return code
}

// rules are the programme's appointment rules.
func (t *turnCtx) rules() (profile.AppointmentRules, error) {
	s, err := t.settings()
	return s.Appointments, err
}

func (e *Engine) rules(ctx context.Context) (profile.AppointmentRules, error) {
	c, err := e.DB.Catalog(ctx)
	if err != nil {
		return profile.AppointmentRules{}, err
	}
	s, err := profile.SettingsOf(c)
	return s.Appointments, err
}

func kindIs(code string) func(t *turnCtx) (bool, error) {
	return func(t *turnCtx) (bool, error) { return t.st.Data["kind"] == code, nil }
}

// activeContracts are the contracts the user may book under.
func (t *turnCtx) activeContracts() ([]storage.ContractView, error) {
	all, err := t.e.DB.ContractsManagedBy(t, t.in.OpenID)
	if err != nil {
		return nil, err
	}
	var out []storage.ContractView
	for _, c := range all {
		if c.Status == storage.ContractActive {
			out = append(out, c)
		}
	}
	return out[:min(len(out), maxListed)], nil
}

func askBookWho(t *turnCtx) (string, error) {
	cs, err := t.activeContracts()
	if err != nil {
		return "", err
	}
	if len(cs) == 0 {
		return "", stopWith("book_not_signed", nil)
	}
	return templates.Message("book_who", cs)
}

func takeBookWho(t *turnCtx, said string) (string, error) {
	cs, err := t.activeContracts()
	if err != nil {
		return "", err
	}
	n, ok := choice(said, len(cs))
	if !ok {
		return "", reaskWith("book_who_reask", len(cs))
	}
	c := cs[n-1]
	d := t.st.Data
	d["contract"], d["contract_id"], d["resident"] = c.Number, strconv.FormatInt(c.ID, 10), strconv.FormatInt(c.ResidentID, 10)
	d["resident_name"], d["doctor"], d["doctor_name"] = c.ResidentName, strconv.FormatInt(c.DoctorID, 10), c.DoctorName
	return "", nil
}

func askKind(t *turnCtx) (string, error) { return templates.Message("book_kind", nil) }

func takeKind(t *turnCtx, said string) (string, error) {
	code := ""
	for i, k := range appointmentKinds {
		if said == strconv.Itoa(i+1) || said == k.name {
			code = k.code
		}
	}
	if code == "" {
		return "", reaskWith("book_kind_reask", nil)
	}
	if code == "home" {
		if ok, why, err := t.mayHaveHomeVisits(); err != nil {
			return "", err
		} else if !ok {
			return "", reaskWith("book_home_refused", why)
		}
	}
	t.st.Data["kind"] = code
	return "", nil
}

// mayHaveHomeVisits applies the programme's rule: home visits for the
// priority groups it names or for holders of its home-visit packages.
func (t *turnCtx) mayHaveHomeVisits() (bool, string, error) {
	s, err := t.settings()
	if err != nil {
		return false, "", err
	}
	c, err := t.e.DB.ContractByNumber(t, t.st.Data["contract"])
	if err != nil {
		return false, "", err
	}
	groups := ResidentGroups(c.Groups, c.BirthDate, t.in.At)
	for _, g := range s.Appointments.HomeVisitGroups {
		if slices.Contains(groups, g) {
			return true, "", nil
		}
	}
	var packages []string
	for _, p := range c.Packages {
		if slices.Contains(s.Appointments.HomeVisitPackages, p.Code) {
			return true, "", nil
		}
	}
	cat, err := t.catalog()
	if err != nil {
		return false, "", err
	}
	for _, code := range s.Appointments.HomeVisitPackages {
		if p, ok := cat.Package(code); ok {
			packages = append(packages, p.Name)
		}
	}
	return false, fmt.Sprintf("%s，或签约了%s的居民", groupNames(s.Appointments.HomeVisitGroups), strings.Join(packages, "、")), nil
}

func (t *turnCtx) doctorID() int64 {
	id, _ := strconv.ParseInt(t.st.Data["doctor"], 10, 64)
	return id
}

// freeSlots lists the doctor's slots in the booking window that still take
// a booking and start after now.
func (t *turnCtx) freeSlots() ([]storage.Slot, error) {
	slots, err := t.e.DB.Slots(t, t.doctorID(), t.in.At, t.in.At.AddDate(0, 0, BookingDays+1))
	if err != nil {
		return nil, err
	}
	var free []storage.Slot
	for _, s := range slots {
		if s.Free() > 0 && s.StartsAt.After(t.in.At) {
			free = append(free, s)
		}
	}
	return free, nil
}

var weekdays = []string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

func dayLabel(day string) string {
	d, err := time.ParseInLocation("2006-01-02", day, Shanghai)
	if err != nil {
		return day
	}
	return fmt.Sprintf("%d月%d日 %s", d.Month(), d.Day(), weekdays[d.Weekday()])
}

func askDate(t *turnCtx) (string, error) {
	free, err := t.freeSlots()
	if err != nil {
		return "", err
	}
	type line struct {
		Label string
		Free  int
	}
	var days []string
	var lines []line
	for _, s := range free {
		if len(days) == 0 || days[len(days)-1] != s.Day {
			days = append(days, s.Day)
			lines = append(lines, line{Label: dayLabel(s.Day)})
		}
		lines[len(lines)-1].Free += s.Free()
	}
	if len(days) == 0 {
		return "", stopWith("book_no_slots", t.st.Data["doctor_name"])
	}
	t.st.Data["days"] = strings.Join(days, ",")
	return templates.Message("book_date", map[string]any{"Doctor": t.st.Data["doctor_name"], "Days": lines})
}

// takeFromList takes a number from the list a step offered (kept in the
// state under listKey when asked, so the numbers mean what was shown) and
// keeps the choice under key.
func takeFromList(listKey, key, reaskMessage string) func(t *turnCtx, said string) (string, error) {
	return func(t *turnCtx, said string) (string, error) {
		offered := strings.Split(t.st.Data[listKey], ",")
		n, ok := choice(said, len(offered))
		if !ok {
			return "", reaskWith(reaskMessage, len(offered))
		}
		t.st.Data[key] = offered[n-1]
		return "", nil
	}
}

func askTime(t *turnCtx) (string, error) {
	free, err := t.freeSlots()
	if err != nil {
		return "", err
	}
	var ids []string
	var labels []string
	for _, s := range free {
		if s.Day == t.st.Data["day"] {
			ids = append(ids, strconv.FormatInt(s.ID, 10))
			labels = append(labels, slotLabel(s.StartsAt, s.EndsAt))
		}
	}
	if len(ids) == 0 {
		return "", reaskWith("book_day_full", nil)
	}
	t.st.Data["slots"] = strings.Join(ids, ",")
	return templates.Message("book_time", map[string]any{"Day": dayLabel(t.st.Data["day"]), "Times": labels})
}

func slotLabel(from, to time.Time) string {
	return from.In(Shanghai).Format("15:04") + "-" + to.In(Shanghai).Format("15:04")
}

// referralTargets are where a referral can go: in Harbin the resident's own
// district and tertiary hospitals, by the green channel; elsewhere the
// profile's partner list, if it has one.
func (t *turnCtx) referralTargets() ([]string, bool, error) {
	if t.st.Data["kind"] != "referral" {
		return nil, false, nil
	}
	c, err := t.e.DB.ContractByNumber(t, t.st.Data["contract"])
	if err != nil {
		return nil, false, err
	}
	if c.District != "" && c.Tertiary != "" {
		return []string{c.District, c.Tertiary}, true, nil
	}
	s, err := t.settings()
	if err != nil || s.PartnerHospitals == nil {
		return nil, false, err
	}
	return append(slices.Clone(s.PartnerHospitals.District), s.PartnerHospitals.Tertiary...), false, nil
}

func hasReferralTargets(t *turnCtx) (bool, error) {
	targets, _, err := t.referralTargets()
	return len(targets) > 0, err
}

func askReferralTarget(t *turnCtx) (string, error) {
	targets, green, err := t.referralTargets()
	if err != nil {
		return "", err
	}
	return templates.Message("book_referral_target", map[string]any{"Hospitals": targets, "Green": green})
}

func takeReferralTarget(t *turnCtx, said string) (string, error) {
	targets, green, err := t.referralTargets()
	if err != nil {
		return "", err
	}
	n, ok := choice(said, len(targets))
	if !ok {
		return "", reaskWith("book_referral_target_reask", len(targets))
	}
	t.st.Data["hospital"] = targets[n-1]
	if green {
		t.st.Data["hospital"] += "（绿色通道）"
	}
	return "", nil
}

func (t *turnCtx) lastAddress() (string, error) {
	resident, _ := strconv.ParseInt(t.st.Data["resident"], 10, 64)
	return t.e.DB.LastAddress(t, resident)
}

func askAddress(t *turnCtx) (string, error) {
	sealed, err := t.lastAddress()
	if err != nil || sealed == "" {
		return templates.Message("book_address", "")
	}
	last, err := t.e.Sealer.Open("address", sealed)
	if err != nil {
		return "", err
	}
	return templates.Message("book_address", last)
}

func takeAddress(t *turnCtx, said string) (string, error) {
	if said == "1" {
		if sealed, err := t.lastAddress(); err != nil {
			return "", err
		} else if sealed != "" {
			t.st.Data["address"] = sealed
			return "", nil
		}
	}
	if utf8.RuneCountInString(said) < 5 {
		return "", reaskWith("book_address_reask", nil)
	}
	sealed, err := t.e.Sealer.Seal("address", said)
	if err != nil {
		return "", err
	}
	t.st.Data["address"] = sealed
	return "", nil
}

func askReason(t *turnCtx) (string, error) { return templates.Message("book_reason", nil) }

func takeReason(t *turnCtx, said string) (string, error) {
	if utf8.RuneCountInString(said) < 4 {
		return "", reaskWith("book_reason_reask", nil)
	}
	t.st.Data["reason"] = said
	return "", nil
}

func (t *turnCtx) chosenSlot() (storage.Slot, error) {
	id, _ := strconv.ParseInt(t.st.Data["slot"], 10, 64)
	day, err := time.ParseInLocation("2006-01-02", t.st.Data["day"], Shanghai)
	if err != nil {
		return storage.Slot{}, err
	}
	slots, err := t.e.DB.Slots(t, t.doctorID(), day, day.AddDate(0, 0, 1))
	if err != nil {
		return storage.Slot{}, err
	}
	for _, s := range slots {
		if s.ID == id {
			return s, nil
		}
	}
	return storage.Slot{}, fmt.Errorf("slot %d not found", id)
}

func askBookConfirm(t *turnCtx) (string, error) {
	s, err := t.chosenSlot()
	if err != nil {
		return "", err
	}
	address := ""
	if sealed := t.st.Data["address"]; sealed != "" {
		if address, err = t.e.Sealer.Open("address", sealed); err != nil {
			return "", err
		}
	}
	return templates.Message("book_confirm", map[string]any{
		"Name": t.st.Data["resident_name"], "Kind": kindName(t.st.Data["kind"]), "Doctor": t.st.Data["doctor_name"],
		"When": dayLabel(s.Day) + " " + slotLabel(s.StartsAt, s.EndsAt), "Address": address, "Reason": t.st.Data["reason"],
		"Hospital": t.st.Data["hospital"],
		"Moving":   t.st.Data["moving"] != ""})
}

func takeBookConfirm(t *turnCtx, said string) (string, error) {
	if said != "确认" {
		return "", reaskWith("book_confirm_reask", nil)
	}
	s, err := t.chosenSlot()
	if err != nil {
		return "", err
	}
	if moving := t.st.Data["moving"]; moving != "" {
		return t.reschedule(moving, s)
	}
	rules, err := t.rules()
	if err != nil {
		return "", err
	}
	contract, _ := strconv.ParseInt(t.st.Data["contract_id"], 10, 64)
	resident, _ := strconv.ParseInt(t.st.Data["resident"], 10, 64)
	_, err = t.e.DB.Book(t, storage.NewAppointment{RequestKey: t.st.Data["key"], ResidentID: resident, ContractID: contract,
		DoctorID: s.DoctorID, SlotID: s.ID, Kind: t.st.Data["kind"], AddressSealed: t.st.Data["address"],
		Reason: t.st.Data["reason"], Hospital: t.st.Data["hospital"], MaxUpcoming: rules.Upcoming(), Now: t.in.At,
		Pushes: func(id int64) []storage.Push { return t.bookingPushes(id, s, PushBookingCreated) }})
	if err := t.slotTaken(err); err != nil {
		return "", err
	}
	t.e.pushed()
	return "", stopWith("book_done", map[string]any{"When": dayLabel(s.Day) + " " + slotLabel(s.StartsAt, s.EndsAt),
		"Kind": kindName(t.st.Data["kind"]), "Doctor": t.st.Data["doctor_name"]})
}

// slotTaken turns a slot lost to someone faster into a fresh choice of time.
func (t *turnCtx) slotTaken(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrSlotFull), errors.Is(err, storage.ErrOverlap):
		why := "book_slot_gone"
		if errors.Is(err, storage.ErrOverlap) {
			why = "book_overlap"
		}
		t.st.Step = "time"
		h := t.history()
		if i := slices.Index(h, "time"); i >= 0 {
			t.st.Data["history"] = strings.Join(h[:i], ",")
		}
		q, qerr := askTime(t)
		var r reask
		if errors.As(qerr, &r) { // the whole day went meanwhile
			t.st.Step = "date"
			q, qerr = askDate(t)
		}
		if qerr != nil {
			return qerr
		}
		return reask{joinNonEmpty(mustMessage(why, nil), q)}
	case errors.Is(err, storage.ErrTooMany):
		rules, _ := t.rules()
		return stopWith("book_too_many", rules.Upcoming())
	}
	return err
}

// bookingPushes are the doctor's notice and the resident's reminders: the
// day before at 18:00 and two hours before, a reminder that would fall in
// quiet hours left out (the day-before one covers it).
func (t *turnCtx) bookingPushes(id int64, s storage.Slot, kind string) []storage.Push {
	resident, visit := t.st.Data["resident_name"], t.st.Data["kind"]
	at := s.StartsAt.Unix()
	pushes := []storage.Push{BookingNotice{Kind: kind, Key: fmt.Sprintf("appointment:%d:%s:%d", id, kind, at), DoctorID: s.DoctorID,
		Resident: resident, VisitKind: visit, At: s.StartsAt}.Push()}
	start := s.StartsAt.In(Shanghai)
	settings, _ := t.settings()
	quiet := settings.Quiet()
	dayBefore := time.Date(start.Year(), start.Month(), start.Day()-1, 18, 0, 0, 0, Shanghai)
	twoHours := start.Add(-2 * time.Hour)
	for name, due := range map[string]time.Time{"day-before": dayBefore, "2h": twoHours} {
		if !due.After(t.in.At) || (name == "2h" && quiet.Contains(due, Shanghai)) {
			continue
		}
		pushes = append(pushes, AppointmentReminder{Key: fmt.Sprintf("%s%s:%d", storage.ReminderKeyPrefix(id), name, at),
			OpenID: t.in.OpenID, Resident: resident, VisitKind: visit, At: s.StartsAt, Due: due}.Push())
	}
	return pushes
}

func (t *turnCtx) reschedule(moving string, s storage.Slot) (string, error) {
	id, _ := strconv.ParseInt(moving, 10, 64)
	rules, err := t.rules()
	if err != nil {
		return "", err
	}
	err = t.e.DB.Reschedule(t, id, s.ID, rules.Upcoming(), t.in.At, func(slot storage.Slot) []storage.Push {
		return t.bookingPushes(id, slot, PushBookingChanged)
	})
	if errors.Is(err, storage.ErrStatusChanged) {
		return "", stopWith("book_gone", nil)
	}
	if err := t.slotTaken(err); err != nil {
		return "", err
	}
	t.e.pushed()
	return "", stopWith("book_moved", dayLabel(s.Day)+" "+slotLabel(s.StartsAt, s.EndsAt))
}

// --- 我的预约, 取消 N, 改约 N ---

// myAppointments lists the upcoming appointments of everyone the user manages.
func (e *Engine) myAppointments(ctx context.Context, in Inbound) ([]string, error) {
	list, err := e.DB.UpcomingManagedBy(ctx, in.OpenID, in.At)
	if err != nil {
		return nil, err
	}
	type line struct{ When, Kind, Doctor, Name string }
	var lines []line
	for _, a := range list {
		lines = append(lines, line{When: dayLabel(a.StartsAt.In(Shanghai).Format("2006-01-02")) + " " + slotLabel(a.StartsAt, a.EndsAt),
			Kind: kindName(a.Kind), Doctor: a.DoctorName, Name: a.ResidentName})
	}
	return say("my_appointments", lines)
}

// nthAppointment finds the N-th line of 我的预约.
func (e *Engine) nthAppointment(ctx context.Context, in Inbound, n string) (storage.AppointmentView, bool, error) {
	list, err := e.DB.UpcomingManagedBy(ctx, in.OpenID, in.At)
	if err != nil {
		return storage.AppointmentView{}, false, err
	}
	i, ok := choice(n, len(list))
	if !ok {
		return storage.AppointmentView{}, false, nil
	}
	return list[i-1], true, nil
}

var (
	cancelNthCommand     = regexp.MustCompile(`^取消\s*(\d+)$`)
	rescheduleNthCommand = regexp.MustCompile(`^改约\s*(\d+)$`)
)

// appointmentCommand answers 我的预约, 取消 N and 改约 N; ok is false for
// anything else.
func (e *Engine) appointmentCommand(ctx context.Context, st *State, said string, in Inbound) ([]string, bool, error) {
	if said == "我的预约" {
		replies, err := e.myAppointments(ctx, in)
		return resumeHint(pausable(st), replies), true, err
	}
	m := cancelNthCommand.FindStringSubmatch(said)
	moving := false
	if m == nil {
		m, moving = rescheduleNthCommand.FindStringSubmatch(said), true
	}
	if m == nil {
		return nil, false, nil
	}
	a, ok, err := e.nthAppointment(ctx, in, m[1])
	if err != nil {
		return nil, true, err
	}
	if !ok {
		replies, err := say("appointment_not_listed", m[1])
		return replies, true, err
	}
	rules, err := e.rules(ctx)
	if err != nil {
		return nil, true, err
	}
	if a.StartsAt.Sub(in.At) < rules.CancelBefore() {
		replies, err := say("appointment_too_late", int(rules.CancelBefore().Hours()))
		return replies, true, err
	}
	st.Reset()
	if moving {
		replies, err := bookingFlow.startAt(ctx, e, st, in, "date", map[string]string{
			"moving": strconv.FormatInt(a.ID, 10), "kind": a.Kind, "doctor": strconv.FormatInt(a.DoctorID, 10),
			"doctor_name": a.DoctorName, "resident_name": a.ResidentName})
		return replies, true, err
	}
	st.Flow, st.Step = "cancel_booking", "confirm"
	st.Data = map[string]string{"appointment": strconv.FormatInt(a.ID, 10), "openid": in.OpenID}
	replies, err := say("appointment_cancel_confirm", map[string]any{
		"When": dayLabel(a.StartsAt.In(Shanghai).Format("2006-01-02")) + " " + slotLabel(a.StartsAt, a.EndsAt),
		"Kind": kindName(a.Kind), "Doctor": a.DoctorName, "Name": a.ResidentName})
	return replies, true, err
}

// cancelBooking confirms and makes a cancellation.
type cancelBooking struct{}

func (cancelBooking) title() string { return "取消预约" }

func (cancelBooking) help(*State) (string, error) {
	return templates.Message("appointment_cancel_help", nil)
}

func (cancelBooking) start(ctx context.Context, e *Engine, st *State, in Inbound) ([]string, error) {
	st.Reset()
	return e.myAppointments(ctx, in)
}

func (c cancelBooking) answer(ctx context.Context, e *Engine, st *State, said string, in Inbound) ([]string, error) {
	if said != "确认" {
		st.Reset()
		return say("appointment_kept", nil)
	}
	id, _ := strconv.ParseInt(st.Data["appointment"], 10, 64)
	st.Reset()
	a, err := e.DB.Appointment(ctx, id)
	if err != nil {
		return nil, err
	}
	rules, err := e.rules(ctx)
	if err != nil {
		return nil, err
	}
	if a.StartsAt.Sub(in.At) < rules.CancelBefore() {
		return say("appointment_too_late", int(rules.CancelBefore().Hours()))
	}
	err = e.DB.CancelAppointment(ctx, id, in.At, []storage.Push{BookingNotice{Kind: PushBookingCancelled,
		Key: fmt.Sprintf("appointment:%d:cancelled", id), DoctorID: a.DoctorID, Resident: a.ResidentName, VisitKind: a.Kind,
		At: a.StartsAt}.Push()})
	if errors.Is(err, storage.ErrStatusChanged) {
		return say("book_gone", nil)
	}
	if err != nil {
		return nil, err
	}
	e.pushed()
	return say("appointment_cancelled", nil)
}
