package flows

import (
	"cmp"
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

// bookingData is what the 预约 conversation has been told so far; 改约
// starts with the visit being moved (Moving) and what it already holds.
type bookingData struct {
	Contract      string   `json:"contract,omitempty"` // number
	ContractID    int64    `json:"contract_id,omitempty"`
	ResidentID    int64    `json:"resident,omitempty"`
	ResidentName  string   `json:"resident_name,omitempty"`
	DoctorID      int64    `json:"doctor,omitempty"`
	DoctorName    string   `json:"doctor_name,omitempty"`
	Kind          string   `json:"kind,omitempty"` // clinic, home, checkup, followup, referral
	Hospital      string   `json:"hospital,omitempty"`
	Green         bool     `json:"green,omitempty"` // the hospital is one the resident signed with (Harbin's 1+2+3)
	Days          []string `json:"days,omitempty"`  // offered, so numbers mean what was shown
	Day           string   `json:"day,omitempty"`
	Slots         []int64  `json:"slots,omitempty"` // offered
	Slot          int64    `json:"slot,omitempty"`
	AddressSealed string   `json:"address,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	Moving        int64    `json:"moving,omitempty"` // 改约: the appointment being moved
	Half          string   `json:"half,omitempty"`   // am or pm, when the day has both
	DayPage       int      `json:"day_page,omitempty"`
	TimePage      int      `json:"time_page,omitempty"`
	// Ahead holds what the sentence that started the booking already said
	// ("明天上午看病"), by step: taken when the step comes.
	Ahead map[string]string `json:"ahead,omitempty"`
}

type bookTurn = turn[bookingData]

// booking is the 预约 conversation; its states are drawn in booking.md. 改约
// runs its steps from the date on, and keeps the visit's address and reason.
var booking = declare(&conversation[bookingData]{
	about: about{name: "booking", title: "预约", keywords: []string{"预约"}, pauses: true, help: "book_help", version: 1},
	ahead: func(d *bookingData) map[string]string { return d.Ahead },
	steps: []step[bookingData]{
		{name: "who", applies: isNewBooking, ask: askBookWho, take: takeBookWho},
		{name: "kind", applies: isNewBooking, ask: askKind, take: takeKind},
		{name: "hospital", applies: hasReferralTargets, ask: askReferralTarget, take: takeReferralTarget},
		{name: "date", applies: takesASlot, ask: askDate, take: takeDate},
		{name: "half", applies: bookHasBothHalves, ask: askHalf, take: takeHalf},
		{name: "time", applies: takesASlot, ask: askTime, take: takeTime},
		{name: "address", applies: newVisitOf("home"), ask: askAddress, take: takeAddress},
		{name: "reason", applies: newVisitOf("referral"), ask: askReason, take: takeReason},
		{name: "confirm", ask: askBookConfirm, take: takeBookConfirm},
	},
})

// takesASlot says the visit is the family doctor's: a new referral is a
// request the doctor passes to the hospital, which arranges the
// specialist's time, so no slot of the doctor's is taken for it. (A
// referral booked as a visit before is moved like any visit.)
func takesASlot(t *bookTurn) (bool, error) { return t.d.Moving != 0 || t.d.Kind != "referral", nil }

// isNewBooking says a step belongs to a new booking, not to 改约.
func isNewBooking(t *bookTurn) (bool, error) { return t.d.Moving == 0, nil }

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
func bookRules(t *bookTurn) (profile.AppointmentRules, error) {
	s, err := t.settings()
	return s.Appointments, err
}

func (e *Engine) rules(ctx context.Context) (profile.AppointmentRules, error) {
	s, err := Settings(ctx, e.DB)
	return s.Appointments, err
}

// newVisitOf applies a step to new bookings of one kind: 改约 keeps what the
// visit holds.
func newVisitOf(code string) func(t *bookTurn) (bool, error) {
	return func(t *bookTurn) (bool, error) { return t.d.Moving == 0 && t.d.Kind == code, nil }
}

// activeContracts are the contracts the user may book under.
func bookActiveContracts(t *bookTurn) ([]storage.ContractView, error) {
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
	// Oldest first, so a family member signed later does not change the
	// numbers residents have learnt.
	slices.SortFunc(out, func(a, b storage.ContractView) int { return cmp.Compare(a.ID, b.ID) })
	return out[:min(len(out), maxListed)], nil
}

func askBookWho(t *bookTurn) (string, error) {
	cs, err := bookActiveContracts(t)
	if err != nil {
		return "", err
	}
	if len(cs) == 0 {
		return "", stopWith("book_not_signed", nil)
	}
	return templates.Message("book_who", cs)
}

func takeBookWho(t *bookTurn, said string) (string, error) {
	cs, err := bookActiveContracts(t)
	if err != nil {
		return "", err
	}
	c, err := pickNamed(cs, said, "book_who_reask", func(c storage.ContractView) []string { return itself(c.ResidentName) })
	if r := (reask{}); errors.As(err, &r) && len(cs) == 1 && !isQuestion(said) {
		// The one person listed; what the answer says of the visit
		// (给我自己约明天的门诊) answers the questions to come.
		c, err = cs[0], nil
		if d := bookingAsked(said, t.in); d != nil {
			for step, answer := range d.Ahead {
				bookAhead(t, step, answer)
			}
		}
	}
	if err != nil {
		return "", err
	}
	d := t.d
	d.Contract, d.ContractID, d.ResidentID, d.ResidentName = c.Number, c.ID, c.ResidentID, c.ResidentName
	d.DoctorID, d.DoctorName = c.DoctorID, c.DoctorName
	return "", nil
}

// bookKinds are the kinds of visit this resident may book, in order, and
// why home visits are not among them when they are not.
func bookKinds(t *bookTurn) (names []string, homeWhy string, err error) {
	ok, why, err := bookMayHaveHomeVisits(t)
	if err != nil {
		return nil, "", err
	}
	for _, k := range appointmentKinds {
		if k.code != "home" || ok {
			names = append(names, k.name)
		}
	}
	if !ok {
		homeWhy = why
	}
	return names, homeWhy, nil
}

func askKind(t *bookTurn) (string, error) {
	names, why, err := bookKinds(t)
	if err != nil {
		return "", err
	}
	return templates.Message("book_kind", map[string]any{"Kinds": names, "HomeWhy": why})
}

// takeKind takes a kind by its number in the list shown or by its name;
// 上门 asked by someone it is not for is answered with who it is for.
func takeKind(t *bookTurn, said string) (string, error) {
	names, why, err := bookKinds(t)
	if err != nil {
		return "", err
	}
	if said == kindName("home") && why != "" {
		q, err := askKind(t)
		if err != nil {
			return "", err
		}
		return "", reask{joinNonEmpty(mustMessage("book_home_refused", why), strings.Split(q, "\n（")[0])}
	}
	name, err := pickNamed(names, said, "book_kind_reask", itself)
	if err != nil {
		return "", err
	}
	for _, k := range appointmentKinds {
		if k.name == name {
			t.d.Kind = k.code
		}
	}
	return "", nil
}

// mayHaveHomeVisits applies the programme's rule: home visits for the
// priority groups it names, and for holders of a package that promises
// them (an item fulfilled by home visits, due for this resident).
func bookMayHaveHomeVisits(t *bookTurn) (bool, string, error) {
	s, err := t.settings()
	if err != nil {
		return false, "", err
	}
	c, err := t.e.DB.ContractByNumber(t, t.d.Contract)
	if err != nil {
		return false, "", err
	}
	groups, err := ResidentGroups(t.e.Sealer, c.Groups, c.BirthDate, t.in.At)
	if err != nil {
		return false, "", err
	}
	for _, g := range s.Appointments.HomeVisitGroups {
		if slices.Contains(groups, g) {
			return true, "", nil
		}
	}
	cat, err := t.catalog()
	if err != nil {
		return false, "", err
	}
	for _, held := range c.Packages {
		if p, ok := cat.Package(held.Code); ok && promisesHomeVisits(p, groups) {
			return true, "", nil
		}
	}
	var packages []string
	for _, p := range cat.Packages {
		if promisesHomeVisits(p, nil) {
			packages = append(packages, p.Name)
		}
	}
	why := groupNames(s.Appointments.HomeVisitGroups)
	if len(packages) > 0 {
		why = joinNonEmptyWith("，或", why, "签约了"+strings.Join(packages, "、")+"的居民")
	}
	return false, why, nil
}

// promisesHomeVisits reports whether a package has an item fulfilled by
// home visits that is due for a resident in these groups (nil: anyone the
// item is for).
func promisesHomeVisits(p storage.Package, groups []string) bool {
	for _, it := range p.Items {
		if it.VisitKind == "home" && (groups == nil || it.DueFor(groups)) {
			return true
		}
	}
	return false
}

func bookDoctorID(t *bookTurn) (int64, error) {
	if t.d.DoctorID == 0 {
		return 0, missing(t.st.Flow, "doctor")
	}
	return t.d.DoctorID, nil
}

// freeSlots lists the doctor's slots in the booking window that still take
// a booking and start after now.
func bookFreeSlots(t *bookTurn) ([]storage.Slot, error) {
	doctor, err := bookDoctorID(t)
	if err != nil {
		return nil, err
	}
	slots, err := t.e.DB.Slots(t, doctor, t.in.At, t.in.At.AddDate(0, 0, BookingDays+1))
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

// Lists of days and times show a page at a time; 更多 shows the next.
const (
	daysPerPage  = 7
	timesPerPage = 8
)

// bookFreeDays are the days with a free slot, in order.
func bookFreeDays(free []storage.Slot) []string {
	var days []string
	for _, s := range free {
		if len(days) == 0 || days[len(days)-1] != s.Day {
			days = append(days, s.Day)
		}
	}
	return days
}

// page is the page-th run of n items, and whether more follow it.
func page[T any](all []T, page, n int) ([]T, bool) {
	from := min(page*n, len(all))
	to := min(from+n, len(all))
	return all[from:to], to < len(all)
}

func askDate(t *bookTurn) (string, error) {
	free, err := bookFreeSlots(t)
	if err != nil {
		return "", err
	}
	all := bookFreeDays(free)
	if len(all) == 0 {
		return "", stopWith("book_no_slots", t.d.DoctorName)
	}
	if t.d.DayPage*daysPerPage >= len(all) {
		t.d.DayPage = 0
	}
	days, more := page(all, t.d.DayPage, daysPerPage)
	type line struct {
		Label string
		Free  int
	}
	lines := make([]line, len(days))
	for i, day := range days {
		lines[i].Label = dayLabel(day)
		for _, s := range free {
			if s.Day == day {
				lines[i].Free += s.Free()
			}
		}
	}
	t.d.Days = days
	moving := ""
	if t.d.Moving != 0 {
		a, err := t.e.DB.Appointment(t, t.d.Moving)
		if err != nil {
			return "", err
		}
		moving = dayLabel(a.StartsAt.In(Shanghai).Format("2006-01-02")) + " " + slotLabel(a.StartsAt, a.EndsAt)
	}
	return templates.Message("book_date", map[string]any{"Doctor": t.d.DoctorName, "Days": lines, "More": more,
		"Moving": moving, "Name": t.d.ResidentName, "Kind": kindName(t.d.Kind)})
}

// takeDate takes the day by its number in the list shown, or as people
// name a day (明天, 周三, 12月5号) when the doctor has time then; 更多 shows
// the next days.
func takeDate(t *bookTurn, said string) (string, error) {
	if said == "更多" {
		t.d.DayPage++
		free, err := bookFreeSlots(t)
		if err != nil {
			return "", err
		}
		again := ""
		if t.d.DayPage*daysPerPage >= len(bookFreeDays(free)) {
			t.d.DayPage, again = 0, mustMessage("book_list_again", nil)
		}
		q, err := askDate(t)
		if err != nil {
			return "", err
		}
		return "", reask{joinNonEmpty(again, q)}
	}
	day := ""
	if d, ok := parseDay(said, t.in.At); ok {
		free, err := bookFreeSlots(t)
		if err != nil {
			return "", err
		}
		day = d.Format("2006-01-02")
		if n, ok := choice(said, len(t.d.Days)); ok && !slices.Contains(bookFreeDays(free), day) {
			day = t.d.Days[n-1] // 1号: the first line, not the 1st of a month with no slots
		} else if !slices.Contains(bookFreeDays(free), day) {
			q, err := askDate(t)
			if err != nil {
				return "", err
			}
			return "", reask{joinNonEmpty(mustMessage("book_day_not_offered", dayLabel(day)), q)}
		}
	} else {
		var err error
		if day, err = pickOne(t.d.Days, said, "book_date_reask"); err != nil {
			return "", err
		}
	}
	t.d.Day, t.d.Half, t.d.TimePage = day, "", 0
	if half := parseHalf(said); half != "" { // 明天上午: the half is said too
		bookAhead(t, "half", halfWords[half])
	}
	return "", nil
}

// bookAhead keeps an answer given before its question.
func bookAhead(t *bookTurn, step, said string) {
	if t.d.Ahead == nil {
		t.d.Ahead = map[string]string{}
	}
	t.d.Ahead[step] = said
}

var halfWords = map[string]string{morning: "上午", afternoon: "下午"}

// halfOf says whether a slot starts in the morning or the afternoon.
func halfOf(s storage.Slot) string {
	if s.StartsAt.In(Shanghai).Hour() < 12 {
		return morning
	}
	return afternoon
}

// bookDaySlots are the chosen day's free slots, in the half chosen if any.
func bookDaySlots(t *bookTurn, half string) ([]storage.Slot, error) {
	free, err := bookFreeSlots(t)
	if err != nil {
		return nil, err
	}
	var out []storage.Slot
	for _, s := range free {
		if s.Day == t.d.Day && (half == "" || halfOf(s) == half) {
			out = append(out, s)
		}
	}
	return out, nil
}

// bookHasBothHalves says the chosen day has free times morning and
// afternoon: the resident picks the half first, then a time.
func bookHasBothHalves(t *bookTurn) (bool, error) {
	if ok, _ := takesASlot(t); !ok || t.d.Day == "" {
		return false, nil
	}
	slots, err := bookDaySlots(t, "")
	if err != nil {
		return false, err
	}
	halves := map[string]int{}
	for _, s := range slots {
		halves[halfOf(s)]++
	}
	return halves[morning] > 0 && halves[afternoon] > 0, nil
}

func askHalf(t *bookTurn) (string, error) {
	slots, err := bookDaySlots(t, "")
	if err != nil {
		return "", err
	}
	free := map[string]int{}
	for _, s := range slots {
		free[halfOf(s)] += s.Free()
	}
	return templates.Message("book_half", map[string]any{"Day": dayLabel(t.d.Day), "Morning": free[morning], "Afternoon": free[afternoon]})
}

// takeHalf takes 上午 or 下午, by number or by name; a time said here
// ("9点") picks its half and is the answer to the next question.
func takeHalf(t *bookTurn, said string) (string, error) {
	half := parseHalf(said)
	switch asNumber(said) {
	case "1":
		half = morning
	case "2":
		half = afternoon
	}
	if h, _, ok := parseClock(said); ok {
		half = map[bool]string{true: morning, false: afternoon}[h < 12]
		bookAhead(t, "time", said)
	}
	if half == "" {
		return "", reaskWith("book_half_reask", nil)
	}
	t.d.Half, t.d.TimePage = half, 0
	return "", nil
}

// takeTime takes a time by its number in the list shown, or as people say
// it ("9点", "九点半"); 更多 shows the next times.
func takeTime(t *bookTurn, said string) (string, error) {
	if said == "更多" {
		t.d.TimePage++
		slots, err := bookDaySlots(t, t.d.Half)
		if err != nil {
			return "", err
		}
		again := ""
		if t.d.TimePage*timesPerPage >= len(slots) {
			t.d.TimePage, again = 0, mustMessage("book_list_again", nil)
		}
		q, err := askTime(t)
		if err != nil {
			return "", err
		}
		return "", reask{joinNonEmpty(again, q)}
	}
	if half := parseHalf(said); half != "" {
		if _, _, clock := parseClock(said); !clock {
			return bookSwitchHalf(t, half)
		}
	}
	if h, m, ok := parseClock(said); ok {
		slots, err := bookDaySlots(t, t.d.Half)
		if err != nil {
			return "", err
		}
		for _, s := range slots {
			from, to := s.StartsAt.In(Shanghai), s.EndsAt.In(Shanghai)
			at := time.Date(from.Year(), from.Month(), from.Day(), h, m, 0, 0, Shanghai)
			if !at.Before(from) && at.Before(to) {
				t.d.Slot = s.ID
				return "", nil
			}
		}
		q, err := askTime(t)
		if err != nil {
			return "", err
		}
		return "", reask{joinNonEmpty(mustMessage("book_time_not_offered", fmt.Sprintf("%d:%02d", h, m)), q)}
	}
	slot, err := pickOne(t.d.Slots, said, "book_time_reask")
	if err == nil {
		t.d.Slot = slot
	}
	return "", err
}

// bookSwitchHalf answers 上午 or 下午 said at the times: that half's
// times, or why there are none.
func bookSwitchHalf(t *bookTurn, half string) (string, error) {
	slots, err := bookDaySlots(t, half)
	if err != nil {
		return "", err
	}
	note := ""
	if len(slots) == 0 {
		note = mustMessage("book_half_none", map[string]string{"Day": dayLabel(t.d.Day), "Half": halfWords[half]})
	} else {
		t.d.Half, t.d.TimePage = half, 0
	}
	q, err := askTime(t)
	if err != nil {
		return "", err
	}
	return "", reask{joinNonEmpty(note, q)}
}

// spokenTime is a time as people say it: 9点, 九点半 is 9点半, 14:00 is 下午2点.
func spokenTime(at time.Time) string {
	at = at.In(Shanghai)
	h, m := at.Hour(), at.Minute()
	s := ""
	if h > 12 {
		s, h = "下午", h-12
	}
	s += strconv.Itoa(h) + "点"
	switch {
	case m == 30:
		s += "半"
	case m != 0:
		s += strconv.Itoa(m) + "分"
	}
	return s
}

func askTime(t *bookTurn) (string, error) {
	all, err := bookDaySlots(t, t.d.Half)
	if err != nil {
		return "", err
	}
	if len(all) == 0 { // the day went meanwhile: choose another
		bookBackTo(t, "date")
		q, err := askDate(t)
		if err != nil {
			return "", err
		}
		return "", reask{joinNonEmpty(mustMessage("book_day_full", nil), q)}
	}
	if t.d.TimePage*timesPerPage >= len(all) {
		t.d.TimePage = 0
	}
	shown, more := page(all, t.d.TimePage, timesPerPage)
	var ids []int64
	var labels []string
	for _, s := range shown {
		ids = append(ids, s.ID)
		labels = append(labels, slotLabel(s.StartsAt, s.EndsAt))
	}
	t.d.Slots = ids
	return templates.Message("book_time", map[string]any{"Day": dayLabel(t.d.Day), "Times": labels, "More": more,
		"Half": halfWords[t.d.Half], "Example": spokenTime(shown[len(shown)-1].StartsAt)})
}

func slotLabel(from, to time.Time) string {
	return from.In(Shanghai).Format("15:04") + "-" + to.In(Shanghai).Format("15:04")
}

// referralTargets are where a referral can go: in Harbin the resident's own
// district and tertiary hospitals, by the green channel; elsewhere the
// profile's partner list, if it has one.
func bookReferralTargets(t *bookTurn) ([]string, bool, error) {
	if t.d.Kind != "referral" || t.d.Moving != 0 {
		return nil, false, nil
	}
	c, err := t.e.DB.ContractByNumber(t, t.d.Contract)
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

func hasReferralTargets(t *bookTurn) (bool, error) {
	targets, _, err := bookReferralTargets(t)
	return len(targets) > 0, err
}

func askReferralTarget(t *bookTurn) (string, error) {
	targets, green, err := bookReferralTargets(t)
	if err != nil {
		return "", err
	}
	return templates.Message("book_referral_target", map[string]any{"Hospitals": targets, "Green": green})
}

func takeReferralTarget(t *bookTurn, said string) (string, error) {
	targets, green, err := bookReferralTargets(t)
	if err != nil {
		return "", err
	}
	hospital, err := pickNamed(targets, said, "book_referral_target_reask", itself)
	if err != nil {
		return "", err
	}
	t.d.Hospital, t.d.Green = hospital, green
	return "", nil
}

func bookLastAddress(t *bookTurn) (string, error) {
	return t.e.DB.LastAddress(t, t.d.ResidentID)
}

func askAddress(t *bookTurn) (string, error) {
	sealed, err := bookLastAddress(t)
	if err != nil {
		return "", err
	}
	if sealed == "" {
		return templates.Message("book_address", "")
	}
	last, err := t.e.Sealer.Open("address", sealed)
	if err != nil {
		return "", err
	}
	return templates.Message("book_address", last)
}

func takeAddress(t *bookTurn, said string) (string, error) {
	if asNumber(said) == "1" {
		if sealed, err := bookLastAddress(t); err != nil {
			return "", err
		} else if sealed != "" {
			t.d.AddressSealed = sealed
			return "", nil
		}
	}
	if utf8.RuneCountInString(said) < 5 {
		return "", reaskWith("book_address_reask", nil)
	}
	if err := tooLong(said, maxAddressRunes); err != nil {
		return "", err
	}
	sealed, err := t.e.Sealer.Seal("address", said)
	if err != nil {
		return "", err
	}
	t.d.AddressSealed = sealed
	return "", nil
}

func askReason(t *bookTurn) (string, error) { return templates.Message("book_reason", nil) }

// A referral's reason is a health detail: sealed at rest like the address.
const reasonField = "referral_reason"

func sealReason(s *storage.Sealer, reason string) (string, error) {
	if reason == "" {
		return "", nil
	}
	return s.Seal(reasonField, reason)
}

// openReason reads a stored reason; one booked before reasons were sealed
// is in clear.
func openReason(s *storage.Sealer, stored string) (string, error) {
	if stored == "" || !strings.HasPrefix(stored, "v1:") {
		return stored, nil
	}
	return s.Open(reasonField, stored)
}

func takeReason(t *bookTurn, said string) (string, error) {
	if utf8.RuneCountInString(said) < 4 {
		return "", reaskWith("book_reason_reask", nil)
	}
	if err := tooLong(said, maxReasonRunes); err != nil {
		return "", err
	}
	t.d.Reason = said
	return "", nil
}

func bookChosenSlot(t *bookTurn) (storage.Slot, error) {
	id := t.d.Slot
	day, err := time.ParseInLocation("2006-01-02", t.d.Day, Shanghai)
	if err != nil || id == 0 {
		return storage.Slot{}, missing(t.st.Flow, "day or time")
	}
	doctor, err := bookDoctorID(t)
	if err != nil {
		return storage.Slot{}, err
	}
	slots, err := t.e.DB.Slots(t, doctor, day, day.AddDate(0, 0, 1))
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

func askBookConfirm(t *bookTurn) (string, error) {
	if ok, _ := takesASlot(t); !ok {
		return templates.Message("referral_confirm", map[string]any{"Name": t.d.ResidentName, "Doctor": t.d.DoctorName,
			"Hospital": t.d.Hospital, "Green": t.d.Green, "Reason": t.d.Reason})
	}
	s, err := bookChosenSlot(t)
	if err != nil {
		return "", err
	}
	address := ""
	if sealed := t.d.AddressSealed; sealed != "" {
		if address, err = t.e.Sealer.Open("address", sealed); err != nil {
			return "", err
		}
	}
	return templates.Message("book_confirm", map[string]any{
		"Name": t.d.ResidentName, "Kind": kindName(t.d.Kind), "Doctor": t.d.DoctorName,
		"When": dayLabel(s.Day) + " " + slotLabel(s.StartsAt, s.EndsAt), "Address": address, "Reason": t.d.Reason,
		"Hospital": t.d.Hospital, "Moving": t.d.Moving != 0})
}

// bookConfirmed reads the answer to 请确认预约: 确认, or a plain yes (好的,
// 就这样定了). A booking is undone as easily as it is made.
func bookConfirmed(said string) bool {
	return answerWith(said, "确认", []string{"好", "是", "对", "行", "可以", "定了", "定", "这样", "这样定", "没问题"}) == answeredYes
}

func takeBookConfirm(t *bookTurn, said string) (string, error) {
	if !bookConfirmed(said) {
		return "", reaskWith("book_confirm_reask", nil)
	}
	if ok, _ := takesASlot(t); !ok {
		return requestReferral(t)
	}
	s, err := bookChosenSlot(t)
	if err != nil {
		return "", err
	}
	if t.d.Moving != 0 {
		return bookReschedule(t, t.d.Moving, s)
	}
	settings, err := t.settings()
	if err != nil {
		return "", err
	}
	if t.d.ContractID == 0 || t.d.ResidentID == 0 {
		return "", missing(t.st.Flow, "contract")
	}
	reason, err := sealReason(t.e.Sealer, t.d.Reason)
	if err != nil {
		return "", err
	}
	reminders, err := bookReminderTimes(t, s, settings)
	if err != nil {
		return "", err
	}
	_, err = t.e.DB.Book(t, storage.NewAppointment{RequestKey: t.st.RunKey, ResidentID: t.d.ResidentID, ContractID: t.d.ContractID,
		DoctorID: s.DoctorID, SlotID: s.ID, Kind: t.d.Kind, AddressSealed: t.d.AddressSealed,
		ReasonSealed: reason, Hospital: t.d.Hospital, MaxUpcoming: settings.Appointments.Upcoming(), Now: t.in.At,
		Pushes: func(id int64) []storage.Push {
			return bookBookingPushes(t, reminders, id, s, PushBookingCreated, time.Time{})
		}})
	if err := bookSlotTaken(t, err); err != nil {
		return "", err
	}
	return "", stopWith("book_done", map[string]any{"When": dayLabel(s.Day) + " " + slotLabel(s.StartsAt, s.EndsAt),
		"Kind": kindName(t.d.Kind), "Doctor": t.d.DoctorName, "Remind": reminderWords(reminders)})
}

// requestReferral sends the referral to the family doctor, who passes it
// to the hospital; the resident is told that, and that the hospital calls
// to arrange the time: jiayi books no hospital's specialist.
func requestReferral(t *bookTurn) (string, error) {
	if t.d.ContractID == 0 || t.d.ResidentID == 0 || t.d.DoctorID == 0 {
		return "", missing(t.st.Flow, "contract")
	}
	reason, err := sealReason(t.e.Sealer, t.d.Reason)
	if err != nil {
		return "", err
	}
	_, err = t.e.DB.RequestReferral(t, storage.NewReferral{RequestKey: t.st.RunKey, ResidentID: t.d.ResidentID,
		ContractID: t.d.ContractID, DoctorID: t.d.DoctorID, Hospital: t.d.Hospital, GreenChannel: t.d.Green,
		ReasonSealed: reason, At: t.in.At,
		Pushes: func(id int64) []storage.Push {
			return []storage.Push{ReferralNotice{ID: id, DoctorID: t.d.DoctorID, Resident: t.d.ResidentName,
				Hospital: t.d.Hospital, At: t.in.At}.Push()}
		}})
	if errors.Is(err, storage.ErrContractChanged) {
		return "", stopWith("book_contract_changed", nil)
	}
	if err != nil {
		return "", err
	}
	return "", stopWith("referral_sent", map[string]any{"Doctor": t.d.DoctorName, "Hospital": t.d.Hospital, "Green": t.d.Green})
}

// ReferralView is a referral request as staff read it, reason opened.
type ReferralView struct {
	Hospital     string    `json:"hospital"`
	GreenChannel bool      `json:"green_channel"`
	Reason       string    `json:"reason"`
	At           time.Time `json:"requested_at"`
}

// ResidentReferrals lists a resident's referral requests for the console.
func ResidentReferrals(ctx context.Context, db *storage.DB, s *storage.Sealer, residentID int64) ([]ReferralView, error) {
	rs, err := db.ReferralsOf(ctx, residentID)
	if err != nil {
		return nil, err
	}
	out := []ReferralView{}
	for _, r := range rs {
		reason, err := openReason(s, r.ReasonSealed)
		if err != nil {
			return nil, err
		}
		out = append(out, ReferralView{Hospital: r.Hospital, GreenChannel: r.GreenChannel, Reason: reason, At: r.CreatedAt})
	}
	return out, nil
}

// bookReminderTimes are the reminders a visit gets: none for a user who
// turned personal reminders off in 提醒设置.
func bookReminderTimes(t *bookTurn, s storage.Slot, settings profile.Settings) (map[string]time.Time, error) {
	wants, err := t.e.DB.Reminders(t, t.in.OpenID)
	if err != nil || !wants.Personal {
		return nil, err
	}
	return reminderTimes(s.StartsAt, t.in.At, settings.Quiet()), nil
}

// reminderTimes are when a visit is reminded of: the day before at 18:00
// and two hours before, leaving out what has passed and a 2-hour reminder
// in quiet hours (the day-before one covers it).
func reminderTimes(start, now time.Time, quiet profile.QuietHours) map[string]time.Time {
	local := start.In(Shanghai)
	out := map[string]time.Time{}
	if dayBefore := time.Date(local.Year(), local.Month(), local.Day()-1, 18, 0, 0, 0, Shanghai); dayBefore.After(now) {
		out["day-before"] = dayBefore
	}
	if twoHours := start.Add(-2 * time.Hour); twoHours.After(now) && !quiet.Contains(twoHours, Shanghai) {
		out["2h"] = twoHours
	}
	return out
}

// reminderWords says when the resident will be reminded, "" for never.
func reminderWords(reminders map[string]time.Time) string {
	_, dayBefore := reminders["day-before"]
	_, twoHours := reminders["2h"]
	switch {
	case dayBefore && twoHours:
		return "前一天晚上和就诊前2小时"
	case dayBefore:
		return "前一天晚上"
	case twoHours:
		return "就诊前2小时"
	}
	return ""
}

// slotTaken turns a slot lost to someone faster into a fresh choice of time.
func bookSlotTaken(t *bookTurn, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrSlotFull), errors.Is(err, storage.ErrOverlap):
		why := "book_slot_gone"
		if errors.Is(err, storage.ErrOverlap) {
			why = "book_overlap"
		}
		bookBackTo(t, "time")
		q, err := askTime(t)
		var r reask
		if errors.As(err, &r) { // the whole day went meanwhile
			q, err = r.msg, nil
		}
		if err != nil {
			return err
		}
		return reask{joinNonEmpty(mustMessage(why, nil), q)}
	case errors.Is(err, storage.ErrContractChanged):
		return stopWith("book_contract_changed", nil)
	case errors.Is(err, storage.ErrTooMany):
		rules, err := bookRules(t)
		if err != nil {
			return err
		}
		return stopWith("book_too_many", rules.Upcoming())
	}
	return err
}

// bookBackTo goes back to an earlier step, as if the answers from it on
// had not been given.
func bookBackTo(t *bookTurn, step string) {
	t.st.Step = step
	if i := slices.Index(t.st.History, step); i >= 0 {
		t.st.History = t.st.History[:i]
	}
}

// bookingPushes are the doctor's notice and the resident's reminders.
func bookBookingPushes(t *bookTurn, reminders map[string]time.Time, id int64, s storage.Slot, kind string, was time.Time) []storage.Push {
	resident, visit := t.d.ResidentName, t.d.Kind
	at := s.StartsAt.Unix()
	pushes := []storage.Push{BookingNotice{Kind: kind, Key: fmt.Sprintf("appointment:%d:%s:%d", id, kind, at), DoctorID: s.DoctorID,
		Resident: resident, VisitKind: visit, At: s.StartsAt, Was: was}.Push()}
	for _, name := range []string{"day-before", "2h"} {
		if due, ok := reminders[name]; ok {
			pushes = append(pushes, AppointmentReminder{Key: fmt.Sprintf("%s%s:%d", storage.ReminderKeyPrefix(id), name, at),
				OpenID: t.in.OpenID, Resident: resident, VisitKind: visit, At: s.StartsAt, Due: due}.Push())
		}
	}
	return pushes
}

func bookReschedule(t *bookTurn, id int64, s storage.Slot) (string, error) {
	settings, err := t.settings()
	if err != nil {
		return "", err
	}
	reminders, err := bookReminderTimes(t, s, settings)
	if err != nil {
		return "", err
	}
	moving, err := t.e.DB.Appointment(t, id)
	if err != nil {
		return "", err
	}
	err = t.e.DB.Reschedule(t, id, s.ID, settings.Appointments.Upcoming(), t.in.At, func(slot storage.Slot) []storage.Push {
		return bookBookingPushes(t, reminders, id, slot, PushBookingChanged, moving.StartsAt)
	})
	if errors.Is(err, storage.ErrStatusChanged) {
		return "", stopWith("book_gone", nil)
	}
	if err := bookSlotTaken(t, err); err != nil {
		return "", err
	}
	return "", stopWith("book_moved", map[string]any{"When": dayLabel(s.Day) + " " + slotLabel(s.StartsAt, s.EndsAt),
		"Remind": reminderWords(reminders)})
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
	// Referrals sent in the last month are listed apart: the hospital,
	// not the family doctor, arranges their time.
	refs, err := e.DB.ReferralsManagedBy(ctx, in.OpenID, in.At.AddDate(0, -1, 0))
	if err != nil {
		return nil, err
	}
	type referral struct{ Name, Hospital, Day string }
	var sent []referral
	for _, r := range refs {
		sent = append(sent, referral{Name: r.ResidentName, Hospital: r.Hospital, Day: r.CreatedAt.In(Shanghai).Format("1月2日")})
	}
	return say("my_appointments", map[string]any{"Lines": lines, "Referrals": sent})
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
	replies, err := e.actOnAppointment(ctx, st, in, m[1], moving, nil)
	return replies, true, err
}

// actOnAppointment cancels (asking first) or moves the nth line of 我的预约;
// ahead holds the day or half a sentence already gave for the move.
func (e *Engine) actOnAppointment(ctx context.Context, st *State, in Inbound, nth string, moving bool, ahead map[string]string) ([]string, error) {
	a, ok, err := e.nthAppointment(ctx, in, nth)
	if err != nil {
		return nil, err
	}
	if !ok {
		return say("appointment_not_listed", nth)
	}
	rules, err := e.rules(ctx)
	if err != nil {
		return nil, err
	}
	if a.StartsAt.Sub(in.At) < rules.CancelBefore() && !a.SlotClosed { // leave covers it: move it at any time
		return say("appointment_too_late", int(rules.CancelBefore().Hours()))
	}
	if moving {
		reason, err := openReason(e.Sealer, a.ReasonSealed)
		if err != nil {
			return nil, err
		}
		return e.enter(ctx, st, booking.name, in, &bookingData{Moving: a.ID, Kind: a.Kind, DoctorID: a.DoctorID,
			DoctorName: a.DoctorName, ResidentID: a.ResidentID, ResidentName: a.ResidentName, AddressSealed: a.AddressSealed,
			Reason: reason, Hospital: a.Hospital, Ahead: ahead})
	}
	return e.enter(ctx, st, cancelBooking.name, in, &cancelData{Appointment: a.ID})
}
