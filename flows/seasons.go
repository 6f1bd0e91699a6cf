package flows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
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

// SeasonalEntry is one reminder of the calendar.
type SeasonalEntry struct {
	Code string `yaml:"code"`
	On   struct {
		Term  string `yaml:"term"`
		Sanfu string `yaml:"sanfu"`
		Month int    `yaml:"month"`
		Day   int    `yaml:"day"`
	} `yaml:"on"`
	Groups      []string `yaml:"groups"`
	Communities []string `yaml:"communities"`
	Text        string   `yaml:"text"`
	Article     string   `yaml:"article"`
}

// Day is the entry's day in a year.
func (s SeasonalEntry) Day(year int) (time.Time, error) {
	switch {
	case s.On.Term != "":
		return SolarTerm(year, s.On.Term)
	case s.On.Sanfu == "初伏":
		return Sanfu(year)
	case s.On.Month >= 1 && s.On.Month <= 12 && s.On.Day >= 1 && s.On.Day <= 31:
		return time.Date(year, time.Month(s.On.Month), s.On.Day, 0, 0, 0, 0, Shanghai), nil
	}
	return time.Time{}, fmt.Errorf("seasonal entry %s: on needs a term, sanfu: 初伏, or month and day", s.Code)
}

// SeasonalCalendar reads and checks templates/seasonal.yaml.
func SeasonalCalendar() ([]SeasonalEntry, error) {
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
		if _, err := e.Day(2026); err != nil {
			return nil, fmt.Errorf("templates/seasonal.yaml: %w", err)
		}
		for _, g := range e.Groups {
			if _, ok := findTerm(g); !ok {
				return nil, fmt.Errorf("templates/seasonal.yaml: entry %s: unknown priority group %q", e.Code, g)
			}
		}
	}
	return f.Entries, nil
}

// seasonalGrace is how late an entry still goes out (an instance that was
// down on the day); older entries wait for next year.
const seasonalGrace = 7 * 24 * time.Hour

// seasonalPage is how many residents a campaign reads at once.
const seasonalPage = 500

// DueSeasonal lists the entries whose day this year has come, within the
// grace period.
func DueSeasonal(entries []SeasonalEntry, now time.Time) []SeasonalEntry {
	var due []SeasonalEntry
	for _, e := range entries {
		day, err := e.Day(now.In(Shanghai).Year())
		if err == nil && !now.Before(day) && now.Sub(day) < seasonalGrace {
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
	year := now.In(Shanghai).Year()
	day, err := e.Day(year)
	if err != nil {
		return 0, err
	}
	due := day.Add(8 * time.Hour)
	if due.Before(now) {
		due = now
	}
	communities, err := communityIDs(ctx, db, e.Communities)
	if err != nil {
		return 0, err
	}
	var after int64
	total := 0
	for {
		page, err := db.SeasonalRecipients(ctx, after, seasonalPage)
		if err != nil || len(page) == 0 {
			return total, err
		}
		var pushes []storage.Push
		for _, r := range page {
			after = r.ResidentID
			if ok, err := forSeasonal(s, e, r, communities, now); err != nil {
				return total, err
			} else if !ok {
				continue
			}
			pushes = append(pushes, SeasonalReminder{Key: fmt.Sprintf("seasonal:%s:%d:%d", e.Code, year, r.ResidentID),
				OpenID: r.ManagerOpenID, Resident: r.Name, Text: e.Text, Article: e.Article, Due: due}.Push())
		}
		if err := db.Enqueue(ctx, pushes); err != nil {
			return total, err
		}
		total += len(pushes)
	}
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
func forSeasonal(s *storage.Sealer, e SeasonalEntry, r storage.Recipient, communities map[int64]bool, now time.Time) (bool, error) {
	if communities != nil && !communities[r.CommunityID] {
		return false, nil
	}
	if len(e.Groups) == 0 {
		return true, nil
	}
	groups, err := ResidentGroups(s, r.Groups, r.BirthDate, now)
	return slices.ContainsFunc(e.Groups, func(g string) bool { return slices.Contains(groups, g) }), err
}

// campaignLease is how long an expansion may run before another instance
// takes it over as dead.
const campaignLease = 30 * time.Minute

// RunSeasonal expands every entry due now that no instance has expanded
// this year, and reports how many pushes it enqueued.
func RunSeasonal(ctx context.Context, db *storage.DB, s *storage.Sealer, now time.Time) (int, error) {
	entries, err := SeasonalCalendar()
	if err != nil {
		return 0, err
	}
	year := now.In(Shanghai).Year()
	total := 0
	for _, e := range DueSeasonal(entries, now) {
		mine, err := db.ClaimCampaign(ctx, "seasonal:"+e.Code, year, now, campaignLease)
		if err != nil || !mine {
			if err != nil {
				return total, err
			}
			continue
		}
		n, err := ExpandSeasonal(ctx, db, s, e, now)
		if err != nil {
			return total, err
		}
		if err := db.FinishCampaign(ctx, "seasonal:"+e.Code, year, n, now); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
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
