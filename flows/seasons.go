package flows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/6tail/lunar-go/calendar"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
	yaml "go.yaml.in/yaml/v3"
)

// The 24 solar terms in calendar order within a Gregorian year.
var solarTerms = []string{"小寒", "大寒", "立春", "雨水", "惊蛰", "春分", "清明", "谷雨", "立夏", "小满", "芒种", "夏至",
	"小暑", "大暑", "立秋", "处暑", "白露", "秋分", "寒露", "霜降", "立冬", "小雪", "大雪", "冬至"}

// SolarTerm is the day (Asia/Shanghai) a solar term begins in a Gregorian
// year, computed by lunar-go's astronomical model.
func SolarTerm(year int, name string) (time.Time, error) {
	if !slices.Contains(solarTerms, name) {
		return time.Time{}, fmt.Errorf("flows.SolarTerm: %q is not a solar term", name)
	}
	key := name
	if name == "冬至" {
		key = "DONG_ZHI" // the table of lunar year Y names Y's 冬至 so; "冬至" is Y-1's
	}
	s := calendar.NewSolarFromYmd(year, 6, 1).GetLunar().GetJieQiTable()[key]
	if s == nil {
		return time.Time{}, fmt.Errorf("flows.SolarTerm: no %s in %d", name, year)
	}
	return time.Date(s.GetYear(), time.Month(s.GetMonth()), s.GetDay(), 0, 0, 0, 0, Shanghai), nil
}

// Sanfu is 初伏: counting from 夏至 itself, the third day whose heavenly
// stem is 庚.
func Sanfu(year int) (time.Time, error) {
	day, err := SolarTerm(year, "夏至")
	if err != nil {
		return time.Time{}, err
	}
	for geng := 0; ; day = day.AddDate(0, 0, 1) {
		l := calendar.NewSolarFromYmd(day.Year(), int(day.Month()), day.Day()).GetLunar()
		if l.GetDayGan() == "庚" {
			if geng++; geng == 3 {
				return day, nil
			}
		}
	}
}

// SeasonalEntry is one reminder of the calendar. It starts on a day of
// the year, given one of these ways:
//   - term: a solar term by name; sanfu: 初伏
//   - lunar_month and lunar_day: a date of the Chinese calendar (春节 1-1,
//     重阳节 9-9), in the lunar year that begins in the Gregorian year;
//     months 1-11, days 1-29
//   - month, weekday (0 Sunday to 6 Saturday) and nth (1-5): the nth such
//     weekday of the month (世界肾脏日: the 2nd Thursday of March)
//   - month and day: a fixed date
//
// Its window runs from that day to until (month and day, inclusive; e.g.
// flu vaccination from September to the end of October), or for a week
// when until is not given: it goes out once a year, at the first run of
// the background job inside the window.
type SeasonalEntry struct {
	Code string `yaml:"code"`
	On   struct {
		Term       string `yaml:"term"`
		Sanfu      string `yaml:"sanfu"`
		LunarMonth int    `yaml:"lunar_month"`
		LunarDay   int    `yaml:"lunar_day"`
		Month      int    `yaml:"month"`
		Day        int    `yaml:"day"`
		Weekday    *int   `yaml:"weekday"`
		Nth        int    `yaml:"nth"`
	} `yaml:"on"`
	Until *struct {
		Month int `yaml:"month"`
		Day   int `yaml:"day"`
	} `yaml:"until"`
	Name        string   `yaml:"name"` // what the day is called, for the console and the simulator
	Groups      []string `yaml:"groups"`
	Communities []string `yaml:"communities"`
	Regions     []string `yaml:"regions"` // profiles it is for; empty: every region
	Text        string   `yaml:"text"`
	Article     string   `yaml:"article"`
}

// Day is the entry's day in a year.
func (s SeasonalEntry) Day(year int) (time.Time, error) {
	on := s.On
	switch {
	case on.Term != "":
		return SolarTerm(year, on.Term)
	case on.Sanfu == "初伏":
		return Sanfu(year)
	case on.LunarMonth >= 1 && on.LunarMonth <= 11 && on.LunarDay >= 1 && on.LunarDay <= 29:
		// Months 1-11 of the lunar year that begins in this Gregorian year
		// fall inside it; the 12th month and day 30 (not in every month)
		// would need rules this calendar does not use yet.
		d := calendar.NewLunarFromYmd(year, on.LunarMonth, on.LunarDay).GetSolar()
		return time.Date(d.GetYear(), time.Month(d.GetMonth()), d.GetDay(), 0, 0, 0, 0, Shanghai), nil
	case on.Weekday != nil && *on.Weekday >= 0 && *on.Weekday <= 6 && on.Nth >= 1 && on.Nth <= 5 && on.Month >= 1 && on.Month <= 12:
		first := time.Date(year, time.Month(on.Month), 1, 0, 0, 0, 0, Shanghai)
		day := first.AddDate(0, 0, (*on.Weekday-int(first.Weekday())+7)%7+7*(on.Nth-1))
		if day.Month() != first.Month() {
			return time.Time{}, fmt.Errorf("seasonal entry %s: %d has no %s number %d in month %d", s.Code, year, time.Weekday(*on.Weekday), on.Nth, on.Month)
		}
		return day, nil
	case on.Month >= 1 && on.Month <= 12 && on.Day >= 1 && on.Day <= 31:
		day := time.Date(year, time.Month(on.Month), on.Day, 0, 0, 0, 0, Shanghai)
		if day.Day() != on.Day {
			return time.Time{}, fmt.Errorf("seasonal entry %s: %d-%d is no date", s.Code, on.Month, on.Day)
		}
		return day, nil
	}
	return time.Time{}, fmt.Errorf("seasonal entry %s: on needs a term, sanfu: 初伏, a lunar date, a month with weekday and nth, or month and day", s.Code)
}

// Window is when the entry goes out in a year: from its day to the end of
// until's day, or for a week.
func (s SeasonalEntry) Window(year int) (from, to time.Time, err error) {
	if from, err = s.Day(year); err != nil {
		return from, to, err
	}
	if s.Until == nil {
		return from, from.Add(seasonalGrace), nil
	}
	to = time.Date(year, time.Month(s.Until.Month), s.Until.Day, 0, 0, 0, 0, Shanghai).AddDate(0, 0, 1)
	if s.Until.Month < 1 || s.Until.Month > 12 || s.Until.Day < 1 || to.AddDate(0, 0, -1).Day() != s.Until.Day || !to.After(from) {
		return from, to, fmt.Errorf("seasonal entry %s: until %d-%d is no date after its day", s.Code, s.Until.Month, s.Until.Day)
	}
	return from, to, nil
}

// ForRegion keeps the entries for a region profile.
func ForRegion(entries []SeasonalEntry, region string) []SeasonalEntry {
	var out []SeasonalEntry
	for _, e := range entries {
		if len(e.Regions) == 0 || slices.Contains(e.Regions, region) {
			out = append(out, e)
		}
	}
	return out
}

// SeasonalCalendar reads and checks templates/seasonal.yaml, once: it is
// built into the binary. Callers get their own copy of the list.
func SeasonalCalendar() ([]SeasonalEntry, error) {
	entries, err := seasonalCalendar()
	return slices.Clone(entries), err
}

var seasonalCalendar = sync.OnceValues(readSeasonalCalendar)

func readSeasonalCalendar() ([]SeasonalEntry, error) {
	var f struct {
		Entries []SeasonalEntry `yaml:"entries"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(templates.Seasonal()))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("templates/seasonal.yaml: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range f.Entries {
		if e.Code == "" || seen[e.Code] || e.Text == "" {
			return nil, fmt.Errorf("templates/seasonal.yaml: entry %q needs a unique code and a text", e.Code)
		}
		seen[e.Code] = true
		for year := 2026; year <= 2030; year++ {
			if _, _, err := e.Window(year); err != nil {
				return nil, fmt.Errorf("templates/seasonal.yaml: %w", err)
			}
		}
		for _, g := range e.Groups {
			if _, ok := findTerm(g); !ok {
				return nil, fmt.Errorf("templates/seasonal.yaml: entry %s: unknown priority group %q", e.Code, g)
			}
		}
		for _, r := range e.Regions {
			if _, _, err := templates.Profile(r); err != nil {
				return nil, fmt.Errorf("templates/seasonal.yaml: entry %s: unknown region %q", e.Code, r)
			}
		}
	}
	return f.Entries, nil
}

// seasonalGrace is how late an entry without until still goes out (an
// instance that was down on the day, a resident who signed that week);
// older entries wait for next year.
const seasonalGrace = 7 * 24 * time.Hour

// seasonalPage is how many residents a campaign reads at once.
const seasonalPage = 500

// DueSeasonal lists the entries whose window this year holds now.
func DueSeasonal(entries []SeasonalEntry, now time.Time) []SeasonalEntry {
	var due []SeasonalEntry
	for _, e := range entries {
		from, to, err := e.Window(now.In(Shanghai).Year())
		if err == nil && !now.Before(from) && now.Before(to) {
			due = append(due, e)
		}
	}
	return due
}

// ExpandSeasonal turns an entry into one push per resident it is for (to
// the WeChat user who manages them), paging through residents. Keys name
// the entry, the year and the resident, so expanding again (or on several
// instances at once) adds nothing. The pushes are due at 08:00 on the day, or now if later.
func ExpandSeasonal(ctx context.Context, db *storage.DB, s *storage.Sealer, e SeasonalEntry, now time.Time) (int, error) {
	asIs := func(context.Context) (func(int64) (SeasonalEntry, bool), error) {
		return func(int64) (SeasonalEntry, bool) { return e, true }, nil
	}
	everyone := func(ctx context.Context, after int64) ([]storage.Recipient, error) {
		return db.SeasonalRecipients(ctx, after, math.MaxInt64, seasonalPage)
	}
	return expandSeasonal(ctx, db, s, e, now, asIs, everyone)
}

// entryRules says, for each page of an expansion, how a community's
// institution has the entry then: admins' changes made while a campaign
// runs reach the pages after them.
type entryRules func(context.Context) (func(communityID int64) (SeasonalEntry, bool), error)

// expandSeasonal is ExpandSeasonal with the entry as each community's
// institution has it (switched off, or its text rewritten, by its admins),
// over the residents read gives.
func expandSeasonal(ctx context.Context, db *storage.DB, s *storage.Sealer, e SeasonalEntry, now time.Time,
	rules entryRules, read recipientsAfter) (int, error) {
	run, err := newSeasonalRun(ctx, db, e, now, rules)
	if err != nil {
		return 0, err
	}
	var after int64
	total := 0
	for {
		page, err := read(ctx, after)
		if err != nil || len(page) == 0 {
			return total, err
		}
		countRows(ctx, len(page))
		after = page[len(page)-1].ResidentID
		n, err := run.write(ctx, db, s, page, groupMemo{})
		total += n
		if err != nil {
			return total, err
		}
	}
}

// seasonalRun is one entry's expansion, set up once: its window, the
// communities it is for and the admins' rules.
type seasonalRun struct {
	e             SeasonalEntry
	now           time.Time
	year          int
	day, end, due time.Time
	communities   map[int64]bool
	rules         entryRules
}

func newSeasonalRun(ctx context.Context, db *storage.DB, e SeasonalEntry, now time.Time, rules entryRules) (seasonalRun, error) {
	run := seasonalRun{e: e, now: now, year: now.In(Shanghai).Year(), rules: rules}
	var err error
	if run.day, run.end, err = e.Window(run.year); err != nil {
		return run, err
	}
	run.due = run.day.Add(8 * time.Hour)
	if run.due.Before(now) {
		run.due = now
	}
	run.communities, err = communityIDs(ctx, db, e.Communities)
	return run, err
}

// write enqueues the entry's reminders for residents read together (a
// page, a chunk), with the admins' changes as they are then; groups opens
// each resident's sealed groups once for every entry written over them.
func (run seasonalRun) write(ctx context.Context, db *storage.DB, s *storage.Sealer, page []storage.Recipient, groups groupMemo) (int, error) {
	as, err := run.rules(ctx)
	if err != nil {
		return 0, err
	}
	var pushes []storage.Push
	for _, r := range page {
		theirs, on := as(r.CommunityID)
		if !on {
			continue
		}
		if ok, err := forSeasonal(s, run.e, r, run.communities, run.now, groups); err != nil {
			return 0, err
		} else if !ok {
			continue
		}
		p := SeasonalReminder{Key: fmt.Sprintf("seasonal:%s:%d:%d", run.e.Code, run.year, r.ResidentID), OpenID: r.ManagerOpenID,
			Resident: r.Name, Name: run.e.Name, Text: theirs.Text, Article: run.e.Article, Due: run.due, From: run.day, StaleAt: run.end}.Push()
		if !InServiceWindow(r.LastSeenAt, run.due) {
			p = HoldForDigest(p, run.due)
		}
		pushes = append(pushes, p)
	}
	n, err := db.EnqueueNew(ctx, pushes)
	if err != nil {
		return n, err
	}
	return n, withdrawSwitchedOff(ctx, db, run.rules, page, pushes, run.e, run.year)
}

// groupMemo keeps the residents' priority groups opened for one read, so
// the entries written over it open each resident's once.
type groupMemo map[int64][]string

// recipientsAfter reads the next residents a campaign is for, by ID after
// the one given, in ID order: a page of everyone, or a chunk whole.
type recipientsAfter func(ctx context.Context, after int64) ([]storage.Recipient, error)

// withdrawSwitchedOff reads the admins' changes again once a page is in:
// an entry switched off while the page was being written withdrew what was
// there, not the page, so the page's reminders for those it is now off for
// are withdrawn here.
func withdrawSwitchedOff(ctx context.Context, db *storage.DB, rules entryRules, page []storage.Recipient, pushes []storage.Push,
	e SeasonalEntry, year int) error {
	if len(pushes) == 0 {
		return nil
	}
	as, err := rules(ctx)
	if err != nil {
		return err
	}
	var off []string
	for _, r := range page {
		if _, on := as(r.CommunityID); !on {
			off = append(off, fmt.Sprintf("seasonal:%s:%d:%d", e.Code, year, r.ResidentID))
		}
	}
	return db.WithdrawSwitchedOff(ctx, off)
}

func communityIDs(ctx context.Context, db *storage.DB, names []string) (map[int64]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	all, err := db.Communities(ctx)
	if err != nil {
		return nil, err
	}
	ids := map[int64]bool{}
	for _, c := range all {
		if slices.Contains(names, c.Name) {
			ids[c.ID] = true
		}
	}
	return ids, nil
}

// forSeasonal says whether an entry is for a resident: their community, and
// a priority group declared or following from age.
func forSeasonal(s *storage.Sealer, e SeasonalEntry, r storage.Recipient, communities map[int64]bool, now time.Time, memo groupMemo) (bool, error) {
	if communities != nil && !communities[r.CommunityID] {
		return false, nil
	}
	if len(e.Groups) == 0 {
		return true, nil
	}
	groups, ok := memo[r.ResidentID]
	if !ok {
		var err error
		if groups, err = ResidentGroups(s, r.Groups, r.BirthDate, now); err != nil {
			return false, err
		}
		memo[r.ResidentID] = groups
	}
	return slices.ContainsFunc(e.Groups, func(g string) bool { return slices.Contains(groups, g) }), nil
}

// seasonalChunk is how many residents, by ID, one claim of a seasonal
// campaign takes: about a second's work, so several instances share a
// city's campaign and one that dies leaves little to take over. Tests
// split a small population with a smaller one.
var seasonalChunk int64 = 10000

// RunSeasonal expands every entry due now whose campaign this year is not
// finished, chunk by chunk, with any other instances doing the same;
// catches up finished ones with residents who signed since they last ran
// (or everyone, when admins changed the entry since); and reports how many
// pushes it enqueued.
func RunSeasonal(ctx context.Context, db *storage.DB, s *storage.Sealer, now time.Time) (int, error) {
	cal, err := LoadCalendar(ctx, db)
	if err != nil {
		return 0, err
	}
	all, err := db.Communities(ctx)
	if err != nil {
		return 0, err
	}
	institution := make(map[int64]int64, len(all))
	for _, c := range all {
		institution[c.ID] = c.InstitutionID
	}
	runs := map[string]seasonalRun{}
	var codes []string
	for _, e := range DueSeasonal(cal.Live(), now) {
		code := "seasonal:" + e.Code
		if runs[code], err = newSeasonalRun(ctx, db, e, now, rulesFor(db, e, institution)); err != nil {
			return 0, err
		}
		codes = append(codes, code)
	}
	// What is left unfinished (a chunk another instance holds) goes on at
	// the next pass.
	total, finished, _, err := runChunks(ctx, db, codes, now.In(Shanghai).Year(), realTime(now), seasonalChunk, storage.ByResident,
		expandChunk(db, s, runs))
	if err != nil {
		return total, err
	}
	for _, code := range codes {
		if finished[code] {
			run := runs[code]
			n, err := catchUpSeasonal(ctx, db, s, run.e, now, run.rules)
			total += n
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// rulesFor reads, each time it is asked, how each community's institution
// has an entry now (switched off, rewritten), finding each community's
// answer once a read.
func rulesFor(db *storage.DB, e SeasonalEntry, institution map[int64]int64) entryRules {
	return func(ctx context.Context) (func(int64) (SeasonalEntry, bool), error) {
		latest, err := LoadCalendar(ctx, db)
		type as struct {
			e  SeasonalEntry
			on bool
		}
		known := map[int64]as{}
		return func(community int64) (SeasonalEntry, bool) {
			if a, ok := known[community]; ok {
				return a.e, a.on
			}
			a := as{e: e}
			if _, ok := latest.Entry(e.Code, institution[community]); ok { // else an added entry since removed
				a.e, a.on = latest.As(e, institution[community])
			}
			known[community] = a
			return a.e, a.on
		}, err
	}
}

// expandChunk expands the entries due on a day over a chunk of residents
// read once.
func expandChunk(db *storage.DB, s *storage.Sealer, runs map[string]seasonalRun) chunkRun {
	return func(ctx context.Context, chunk storage.CampaignChunk, codes []string) (map[string]int, error) {
		counts := map[string]int{}
		after := chunk.FirstID
		for {
			// A chunk is read whole: PostgreSQL reads a bounded range
			// whole for each page of it, whatever the page's limit.
			page, err := db.SeasonalRecipients(ctx, after, chunk.LastID, int(seasonalChunk))
			if err != nil || len(page) == 0 {
				return counts, err
			}
			countRows(ctx, len(page))
			after = page[len(page)-1].ResidentID
			groups := groupMemo{}
			for _, code := range codes {
				n, err := runs[code].write(ctx, db, s, page, groups)
				counts[code] += n
				if err != nil {
					return counts, err
				}
			}
			if len(page) < int(seasonalChunk) {
				return counts, nil // a short read was the chunk's last
			}
		}
	}
}

// catchUpSeasonal runs a finished campaign again inside its window: for
// those whose contract became active since it last ran, or for everyone
// when admins changed the entry since (switched back on, say). Keys make a
// resident who had it get nothing more.
func catchUpSeasonal(ctx context.Context, db *storage.DB, s *storage.Sealer, e SeasonalEntry, now time.Time, rules entryRules) (int, error) {
	code, year := "seasonal:"+e.Code, now.In(Shanghai).Year()
	reach, ok, err := db.CampaignThrough(ctx, code, year)
	if err != nil || !ok || !now.After(reach.Through) {
		return 0, err // still running on another instance, or nothing since
	}
	through := reach.Through
	// Admins' changes to the entry set through back to the start, so
	// everyone is read again.
	page := func(ctx context.Context, after int64) ([]storage.Recipient, error) {
		return db.SeasonalRecipientsSince(ctx, through, after, seasonalPage)
	}
	n, err := expandSeasonal(ctx, db, s, e, now, rules, page)
	if err != nil {
		return n, err
	}
	return n, db.CatchUpCampaign(ctx, code, year, reach, now, n)
}

// NextSolarTerm is the first solar term to begin after now: its name and
// its day (midnight, Asia/Shanghai).
func NextSolarTerm(now time.Time) (string, time.Time, error) {
	year := now.In(Shanghai).Year()
	for _, y := range []int{year, year + 1} {
		for _, name := range solarTerms {
			day, err := SolarTerm(y, name)
			if err != nil {
				return "", time.Time{}, err
			}
			if day.After(now) {
				return name, day, nil
			}
		}
	}
	return "", time.Time{}, fmt.Errorf("flows.NextSolarTerm: none after %s", now)
}

// NextSeasonal is the calendar's next reminder day after now, 08:00 when
// its pushes fall due, and the entries that start that day.
func NextSeasonal(entries []SeasonalEntry, now time.Time) (time.Time, []SeasonalEntry, error) {
	var next time.Time
	var on []SeasonalEntry
	year := now.In(Shanghai).Year()
	for _, e := range entries {
		for _, y := range []int{year, year + 1} {
			day, err := e.Day(y)
			if err != nil {
				return time.Time{}, nil, err
			}
			due := day.Add(8 * time.Hour)
			if !due.After(now) {
				continue
			}
			switch {
			case next.IsZero() || due.Before(next):
				next, on = due, []SeasonalEntry{e}
			case due.Equal(next):
				on = append(on, e)
			}
			break
		}
	}
	if next.IsZero() {
		return time.Time{}, nil, errors.New("flows.NextSeasonal: the calendar is empty")
	}
	return next, on, nil
}

// CalendarDay is one entry's coming occurrence, for the console.
type CalendarDay struct {
	Entry    SeasonalEntry
	From, To time.Time // its window: To is the first moment after it
	For      string    // the priority groups as residents read them; "" for every signed resident
	// As the admins looking see it: switched off for their residents, its
	// text rewritten, added by admins, changed by these admins themselves.
	Off, Edited, Added, Mine bool
}

// ComingYear lists each entry's next window that has not ended by now,
// soonest first: what residents will be sent over the coming year.
func ComingYear(entries []SeasonalEntry, now time.Time) ([]CalendarDay, error) {
	var days []CalendarDay
	year := now.In(Shanghai).Year()
	for _, e := range entries {
		for _, y := range []int{year, year + 1} {
			from, to, err := e.Window(y)
			if err != nil {
				return nil, err
			}
			if to.After(now) {
				days = append(days, CalendarDay{Entry: e, From: from, To: to, For: groupNames(e.Groups)})
				break
			}
		}
	}
	slices.SortStableFunc(days, func(a, b CalendarDay) int { return a.From.Compare(b.From) })
	return days, nil
}

// SolarTerms are the 24 solar terms in the order of the year.
func SolarTerms() []string { return slices.Clone(solarTerms) }
