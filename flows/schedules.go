package flows

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Schedules are the personal health schedules of templates/schedules.yaml:
// vaccines and check-ups by a child's age in months, antenatal visits by
// week of pregnancy and postnatal ones by days after the due date.
type Schedules struct {
	Immunisation []struct {
		Months int      `yaml:"months"`
		What   []string `yaml:"what"`
	} `yaml:"immunisation"`
	ChildCheckups []int `yaml:"child_checkups"`
	Antenatal     []struct {
		Week int    `yaml:"week"`
		What string `yaml:"what"`
	} `yaml:"antenatal"`
	Postnatal []struct {
		Days int    `yaml:"days"`
		What string `yaml:"what"`
	} `yaml:"postnatal"`
}

// PersonalSchedules reads and checks templates/schedules.yaml, once.
var PersonalSchedules = sync.OnceValues(readSchedules)

func readSchedules() (Schedules, error) {
	var s Schedules
	dec := yaml.NewDecoder(bytes.NewReader(templates.Schedules()))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("templates/schedules.yaml: %w", err)
	}
	for _, v := range s.Immunisation {
		if v.Months < 1 || v.Months > 72 || len(v.What) == 0 {
			return s, fmt.Errorf("templates/schedules.yaml: immunisation at %d months needs what, between 1 and 72 months", v.Months)
		}
	}
	for _, a := range s.Antenatal {
		if a.Week < 4 || a.Week > 40 || a.What == "" {
			return s, fmt.Errorf("templates/schedules.yaml: antenatal week %d needs what, between 4 and 40", a.Week)
		}
	}
	for _, p := range s.Postnatal {
		if p.Days < 0 || p.Days > 60 || p.What == "" {
			return s, fmt.Errorf("templates/schedules.yaml: postnatal day %d needs what, between 0 and 60", p.Days)
		}
	}
	return s, nil
}

// childMonths are the ages in months at which a child has a check-up or a
// vaccine due, in order.
func (s Schedules) childMonths() []int {
	months := slices.Clone(s.ChildCheckups)
	for _, v := range s.Immunisation {
		months = append(months, v.Months)
	}
	slices.Sort(months)
	return slices.Compact(months)
}

// vaccinesAt lists the vaccines due at an age in months, "" for none.
func (s Schedules) vaccinesAt(months int) string {
	for _, v := range s.Immunisation {
		if v.Months == months {
			return strings.Join(v.What, "、")
		}
	}
	return ""
}

// ageWords says an age in months as parents do: 2个月, 1岁半, 3岁.
func ageWords(months int) string {
	switch {
	case months < 12:
		return fmt.Sprintf("%d个月", months)
	case months%12 == 0:
		return fmt.Sprintf("%d岁", months/12)
	case months%12 == 6:
		return fmt.Sprintf("%d岁半", months/12)
	}
	return fmt.Sprintf("%d岁%d个月", months/12, months%12)
}

// dueDatePast is how long after the expected due date a pregnancy's
// schedule still runs (the postnatal check at 42 days and its window).
const dueDatePast = 60 * 24 * time.Hour

// dueDateAhead is how far ahead an expected due date can be: 40 weeks from
// the last period, and nobody knows a due date before then.
const dueDateAhead = 280 * 24 * time.Hour

// CheckDueDate says whether an expected due date is plausible on a day:
// from 60 days past (the postnatal schedule) to 40 weeks ahead.
func CheckDueDate(due, now time.Time) bool {
	today := StartOfDay(now)
	return !due.Before(today.Add(-dueDatePast)) && !due.After(today.Add(dueDateAhead))
}

// An expected due date says a resident is pregnant: it is a health detail,
// sealed like the priority groups.
const dueDateField = "due_date"

// SealDueDate seals an expected due date (YYYY-MM-DD) for storage; "" stays "".
func SealDueDate(s *storage.Sealer, day string) (string, error) {
	return ResealDueDate(s, "", day)
}

// ResealDueDate seals a corrected expected due date. A correction of less
// than dueDateSame keeps the pregnancy's first date as the anchor its
// reminders are keyed by, so a visit already reminded of is not reminded
// of again on the corrected schedule; a date further off is a new pregnancy.
func ResealDueDate(s *storage.Sealer, was, day string) (string, error) {
	if day == "" {
		return "", nil
	}
	d, err := time.ParseInLocation("2006-01-02", day, Shanghai)
	if err != nil {
		return "", errors.New("flows: a due date that is no YYYY-MM-DD") // the date itself stays out of errors and logs
	}
	anchor := d
	if old, ok, err := openDue(s, was); err != nil {
		return "", err
	} else if ok && d.Sub(old.Day).Abs() < dueDateSame {
		anchor = old.Anchor
	}
	return s.Seal(dueDateField, d.Format("2006-01-02")+"/"+anchor.Format("2006-01-02"))
}

// dueDateSame: due dates closer than this are the same pregnancy's.
const dueDateSame = 60 * 24 * time.Hour

// dueDate is an expected due date and the pregnancy's anchor (its first
// recorded due date), which its reminders' keys name.
type dueDate struct{ Day, Anchor time.Time }

// OpenDueDate reads a stored expected due date; ok is false when none is.
func OpenDueDate(s *storage.Sealer, sealed string) (time.Time, bool, error) {
	d, ok, err := openDue(s, sealed)
	return d.Day, ok, err
}

func openDue(s *storage.Sealer, sealed string) (dueDate, bool, error) {
	if sealed == "" {
		return dueDate{}, false, nil
	}
	plain, err := s.Open(dueDateField, sealed)
	if err != nil {
		return dueDate{}, false, fmt.Errorf("flows: due date: %w", err)
	}
	// A parse error would quote the date: it says only that it failed.
	day, anchor, found := strings.Cut(plain, "/")
	if !found {
		anchor = day
	}
	var d dueDate
	if d.Day, err = time.ParseInLocation("2006-01-02", day, Shanghai); err == nil {
		d.Anchor, err = time.ParseInLocation("2006-01-02", anchor, Shanghai)
	}
	if err != nil {
		return dueDate{}, false, errors.New("flows: a stored due date is unreadable")
	}
	return d, true, nil
}

// pregnancyReminders are the antenatal and postnatal reminders due today
// for an expected due date; keys name the resident, the pregnancy's anchor
// and the visit, so each visit is reminded of once however the date is
// corrected.
func (s Schedules) pregnancyReminders(residentID int64, d dueDate, today time.Time) []scheduled {
	var out []scheduled
	due, stamp := d.Day, d.Anchor.Format("20060102")
	for _, a := range s.Antenatal {
		if within(today, due.AddDate(0, 0, -7*(40-a.Week))) {
			out = append(out, scheduled{key: fmt.Sprintf("antenatal:%d:%s:%d", residentID, stamp, a.Week), message: "personal_antenatal",
				data: map[string]any{"Week": a.Week, "What": a.What, "Due": due.Format("1月2日")}})
		}
	}
	for _, p := range s.Postnatal {
		if within(today, due.AddDate(0, 0, p.Days)) {
			out = append(out, scheduled{key: fmt.Sprintf("postnatal:%d:%s:%d", residentID, stamp, p.Days), message: "personal_postnatal",
				data: map[string]any{"What": p.What}})
		}
	}
	return out
}

// childReminders are the check-up and vaccine reminders due today for a
// child born on birth: one message for each age with either or both.
func (s Schedules) childReminders(residentID int64, birth, today time.Time) []scheduled {
	var out []scheduled
	for _, months := range s.childMonths() {
		if within(today, birth.AddDate(0, months, 0)) {
			out = append(out, scheduled{key: fmt.Sprintf("child:%d:%d", residentID, months), message: "personal_child",
				data: map[string]any{"Age": ageWords(months), "Checkup": slices.Contains(s.ChildCheckups, months),
					"Vaccines": s.vaccinesAt(months)}})
		}
	}
	return out
}

// scheduled is one reminder a schedule makes: its key and message.
type scheduled struct {
	key, message string
	data         map[string]any
}

// fullDatePattern is a date with its year: 2027年5月20日, 2027-05-20,
// 2027.5.20, 2027/5/20.
var fullDatePattern = regexp.MustCompile(`(20[0-9]{2})[年./-]([0-9]{1,2})[月./-]([0-9]{1,2})[日号]?`)

// parseDueDate reads an expected due date: with its year, or as a day
// parseDay reads (5月20日, 5.20), taken in the year that makes it a
// plausible due date, since one a month ago is a birth just past.
func parseDueDate(said string, now time.Time) (time.Time, bool) {
	s := strings.ReplaceAll(Normalize(said), " ", "")
	if m := fullDatePattern.FindStringSubmatch(s); m != nil {
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		d, _ := strconv.Atoi(m[3])
		day := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, Shanghai)
		return day, mo >= 1 && mo <= 12 && day.Day() == d
	}
	day, ok := parseDay(s, now)
	if !ok {
		return day, false
	}
	if day.After(StartOfDay(now).Add(dueDateAhead)) {
		day = day.AddDate(-1, 0, 0)
	}
	return day, true
}
