package flows

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// Calendar is the seasonal calendar as this deployment keeps it: the
// region's entries from templates/seasonal.yaml, the entries admins added,
// and admins' edits (an entry switched off, a text rewritten), each for the
// whole deployment (city staff) or for one institution's residents.
type Calendar struct {
	Entries []SeasonalEntry  // the region's own entries, then the added ones
	added   map[string]int64 // an added entry's code: the institution it is for (0: all)
	edits   map[int64]map[string]storage.CalendarEdit
}

// LoadCalendar reads the calendar with the admins' changes.
func LoadCalendar(ctx context.Context, db *storage.DB) (Calendar, error) {
	all, err := SeasonalCalendar()
	if err != nil {
		return Calendar{}, err
	}
	region, err := db.ProfileCode(ctx)
	if err != nil {
		return Calendar{}, err
	}
	edits, err := db.CalendarEdits(ctx)
	if err != nil {
		return Calendar{}, err
	}
	c := Calendar{Entries: ForRegion(all, region), added: map[string]int64{}, edits: map[int64]map[string]storage.CalendarEdit{}}
	for _, ed := range edits {
		if c.edits[ed.Institution] == nil {
			c.edits[ed.Institution] = map[string]storage.CalendarEdit{}
		}
		c.edits[ed.Institution][ed.Code] = ed
		if ed.Entry == "" {
			continue
		}
		var e SeasonalEntry
		if err := json.Unmarshal([]byte(ed.Entry), &e); err != nil {
			return Calendar{}, fmt.Errorf("flows: calendar entry %s: %w", ed.Code, err)
		}
		e.Code = ed.Code
		c.Entries = append(c.Entries, e)
		c.added[ed.Code] = ed.Institution
	}
	return c, nil
}

// As is an entry as one institution's residents get it (0: as city staff
// see it): ok is false when it is switched off for them, or was added by
// another institution. City staff's edits come first, then the
// institution's own.
func (c Calendar) As(e SeasonalEntry, institution int64) (SeasonalEntry, bool) {
	if owner, added := c.added[e.Code]; added && owner != 0 && owner != institution {
		return e, false
	}
	on := true
	for _, at := range []int64{0, institution} {
		ed, ok := c.edits[at][e.Code]
		if !ok {
			continue
		}
		if ed.Text != "" {
			e.Text = ed.Text // shown even while off, so switching it back on keeps it
		}
		on = on && !ed.Off
	}
	return e, on
}

// offEverywhere: city staff switched the entry off for every institution.
func (c Calendar) offEverywhere(code string) bool {
	return c.edits[0][code].Off
}

// Live are the entries not switched off for the whole deployment.
func (c Calendar) Live() []SeasonalEntry {
	var out []SeasonalEntry
	for _, e := range c.Entries {
		if !c.offEverywhere(e.Code) {
			out = append(out, e)
		}
	}
	return out
}

// Entry finds an entry an institution's admins can see and change.
func (c Calendar) Entry(code string, institution int64) (SeasonalEntry, bool) {
	i := slices.IndexFunc(c.Entries, func(e SeasonalEntry) bool { return e.Code == code })
	if i < 0 {
		return SeasonalEntry{}, false
	}
	if owner, added := c.added[code]; added && owner != 0 && owner != institution {
		return SeasonalEntry{}, false
	}
	return c.Entries[i], true
}

// Year is the coming year of the calendar as an institution's admins see
// it (0: city staff), switched-off entries included and marked.
func (c Calendar) Year(institution int64, now time.Time) ([]CalendarDay, error) {
	var shown []SeasonalEntry
	for _, e := range c.Entries {
		if _, ok := c.Entry(e.Code, institution); ok {
			shown = append(shown, e)
		}
	}
	days, err := ComingYear(shown, now)
	if err != nil {
		return nil, err
	}
	for i, d := range days {
		e, on := c.As(d.Entry, institution)
		days[i].Entry, days[i].Off = e, !on
		_, days[i].Added = c.added[e.Code]
		days[i].Edited = !days[i].Added && (c.edits[institution][e.Code].Text != "" || c.edits[0][e.Code].Text != "")
		days[i].Mine = c.changedBy(e.Code, institution)
	}
	return days, nil
}

// changedBy: the institution (0: city staff) has its own change to the entry.
func (c Calendar) changedBy(code string, institution int64) bool {
	_, ok := c.edits[institution][code]
	return ok
}

// CalendarChange is what an admin changes in the calendar: an entry
// switched off or on and its text, or (Code "") an entry of their own.
type CalendarChange struct {
	Code string
	Off  bool
	Text string // "" keeps the entry's own
	// An entry of their own: its name, its day (a solar term, or a month
	// and day), the last day of its window (or a week), and the priority
	// groups it is for (none: every signed resident).
	Name                 string
	Term                 string
	Month, Day           int
	UntilMonth, UntilDay int
	Groups               []string
}

// A tip's text fits one template message field and is read on a phone.
const (
	tipTextMin = 10
	tipTextMax = 200
)

// SaveCalendarChange checks and records a change for the admins' scope
// (an institution's residents, or every one for city staff) and answers
// the entry's code. A change that cannot be made is a *Refusal.
func SaveCalendarChange(ctx context.Context, db *storage.DB, scope storage.Scope, ch CalendarChange, actor string, now time.Time) (string, error) {
	cal, err := LoadCalendar(ctx, db)
	if err != nil {
		return "", err
	}
	ch.Text = strings.TrimSpace(ch.Text)
	if n := utf8.RuneCountInString(ch.Text); ch.Text != "" && (n < tipTextMin || n > tipTextMax) {
		return "", &Refusal{Reason: fmt.Sprintf("提示内容请写 %d 到 %d 个字", tipTextMin, tipTextMax)}
	}
	edit := storage.CalendarEdit{Institution: scope.Institution, Code: ch.Code, Off: ch.Off, Text: ch.Text, UpdatedBy: actor}
	var e SeasonalEntry
	switch {
	case ch.Code == "":
		if e, err = newCalendarEntry(ctx, db, ch, now); err != nil {
			return "", err
		}
		edit.Code, edit.Text = e.Code, ""
	default:
		var ok bool
		if e, ok = cal.Entry(ch.Code, scope.Institution); !ok {
			return "", storage.ErrNotFound
		}
		if owner, added := cal.added[ch.Code]; added && owner == scope.Institution {
			// Their own entry: the text is the entry's.
			if ch.Text != "" {
				e.Text = ch.Text
			}
			edit.Text = ""
		} else {
			// What the entry says before these admins' own change: the
			// calendar's words, or city staff's for an institution.
			inherited := e.Text
			if city := cal.edits[0][ch.Code]; scope.Institution != 0 && city.Text != "" {
				inherited = city.Text
			}
			switch ch.Text {
			case "": // kept as it was
				edit.Text = cal.edits[scope.Institution][ch.Code].Text
			case inherited: // theirs no more: later fixes to those words still reach it
				edit.Text = ""
			}
			if scope.Institution != 0 && !ch.Off && cal.offEverywhere(ch.Code) {
				return "", &Refusal{Reason: "这条提示已由市（区县）管理员停发，本机构不能单独开启；可以请他们恢复。"}
			}
			e = SeasonalEntry{}
		}
	}
	if e.Code != "" {
		raw, err := json.Marshal(e)
		if err != nil {
			return "", err
		}
		edit.Entry = string(raw)
	}
	name := ch.Name
	if found, ok := cal.Entry(edit.Code, scope.Institution); ok {
		name = found.Name
	}
	return edit.Code, db.SaveCalendarEdit(ctx, edit, name, now.In(Shanghai).Year())
}

// newCalendarEntry checks an entry of an admin's own and gives it a code.
func newCalendarEntry(ctx context.Context, db *storage.DB, ch CalendarChange, now time.Time) (SeasonalEntry, error) {
	var e SeasonalEntry
	e.Name = strings.TrimSpace(ch.Name)
	if n := utf8.RuneCountInString(e.Name); n < 2 || n > 20 {
		return e, &Refusal{Reason: "名称请写 2 到 20 个字"}
	}
	if ch.Text == "" {
		return e, &Refusal{Reason: fmt.Sprintf("提示内容请写 %d 到 %d 个字", tipTextMin, tipTextMax)}
	}
	e.Text = ch.Text
	switch {
	case ch.Term != "":
		if !slices.Contains(solarTerms, ch.Term) {
			return e, &Refusal{Reason: "请选择二十四节气中的一个"}
		}
		e.On.Term = ch.Term
	default:
		e.On.Month, e.On.Day = ch.Month, ch.Day
	}
	if ch.UntilMonth != 0 || ch.UntilDay != 0 {
		e.Until = &struct {
			Month int `yaml:"month"`
			Day   int `yaml:"day"`
		}{ch.UntilMonth, ch.UntilDay}
	}
	groups, err := PriorityGroups(ctx, db)
	if err != nil {
		return e, err
	}
	for _, g := range ch.Groups {
		if !slices.ContainsFunc(groups, func(t profile.Term) bool { return t.Code == g }) {
			return e, &Refusal{Reason: fmt.Sprintf("没有这个重点人群：%s", g)}
		}
	}
	e.Groups = slices.Clone(ch.Groups)
	year := now.In(Shanghai).Year()
	for y := year; y <= year+2; y++ {
		if _, _, err := e.Window(y); err != nil {
			return e, &Refusal{Reason: "日期不对：请写存在的月和日；截止日要在开始日之后、同一年内"}
		}
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return e, err
	}
	e.Code = "own-" + hex.EncodeToString(b[:])
	return e, nil
}

// DeleteCalendarChange puts an entry back as the calendar has it, or
// removes an entry of the admins' own.
func DeleteCalendarChange(ctx context.Context, db *storage.DB, scope storage.Scope, code, actor string, now time.Time) error {
	cal, err := LoadCalendar(ctx, db)
	if err != nil {
		return err
	}
	e, ok := cal.Entry(code, scope.Institution)
	if !ok || !cal.changedBy(code, scope.Institution) {
		return storage.ErrNotFound
	}
	return db.DeleteCalendarEdit(ctx, scope.Institution, code, e.Name, actor, now.In(Shanghai).Year())
}
