package flows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/6tail/lunar-go/calendar"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/jiayi-health/jiayi/templates"
	yaml "go.yaml.in/yaml/v3"
)

// Published dates (Purple Mountain Observatory's almanac) of the 24 solar
// terms, in the order of solarTerms, as month*100+day.
var publishedTerms = map[int][24]int{
	2025: {105, 120, 203, 218, 305, 320, 404, 420, 505, 521, 605, 621, 707, 722, 807, 823, 907, 923, 1008, 1023, 1107, 1122, 1207, 1221},
	2026: {105, 120, 204, 218, 305, 320, 405, 420, 505, 521, 605, 621, 707, 723, 807, 823, 907, 923, 1008, 1023, 1107, 1122, 1207, 1222},
	2027: {105, 120, 204, 219, 306, 321, 405, 420, 506, 521, 606, 621, 707, 723, 808, 823, 908, 923, 1008, 1023, 1107, 1122, 1207, 1222},
	2028: {106, 120, 204, 219, 305, 320, 404, 419, 505, 520, 605, 621, 706, 722, 807, 822, 907, 922, 1008, 1023, 1107, 1122, 1206, 1221},
}

func TestSolarTermsMatchPublishedDates(t *testing.T) {
	for year, dates := range publishedTerms {
		for i, name := range solarTerms {
			day, err := SolarTerm(year, name)
			if err != nil {
				t.Fatal(err)
			}
			if got := int(day.Month())*100 + day.Day(); got != dates[i] || day.Year() != year {
				t.Errorf("%d %s = %s, published %d-%02d-%02d", year, name, day.Format("2006-01-02"), year, dates[i]/100, dates[i]%100)
			}
		}
	}
	if _, err := SolarTerm(2026, "春节"); err == nil {
		t.Error("春节 is no solar term")
	}
}

func TestSanfuIsTheThirdGengDayFromSummerSolstice(t *testing.T) {
	known := map[int]string{2024: "2024-07-15", 2025: "2025-07-20"} // announced 入伏 days
	for year := 2020; year <= 2030; year++ {
		day, err := Sanfu(year)
		if err != nil {
			t.Fatal(err)
		}
		fu := calendar.NewSolarFromYmd(day.Year(), int(day.Month()), day.Day()).GetLunar().GetFu()
		if fu == nil || fu.GetName() != "初伏" || fu.GetIndex() != 1 {
			t.Errorf("%d: %s is not the library's first day of 初伏", year, day.Format("2006-01-02"))
		}
		if want, ok := known[year]; ok && day.Format("2006-01-02") != want {
			t.Errorf("%d: 入伏 %s, announced %s", year, day.Format("2006-01-02"), want)
		}
	}
}

// The calendar a nurse would sign off: every month, every priority group
// of every profile, most solar terms, and every kind of date.
func TestSeasonalCalendarCoversTheYear(t *testing.T) {
	entries, err := SeasonalCalendar()
	if err != nil || len(entries) < 50 {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	months, groups, terms, kinds := map[time.Month]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		day, _ := e.Day(2026)
		months[day.Month()] = true
		for _, g := range e.Groups {
			groups[g] = true
		}
		terms[e.On.Term] = e.On.Term != ""
		switch {
		case e.On.Term != "" || e.On.Sanfu != "":
			kinds["solar"] = true
		case e.On.LunarMonth != 0:
			kinds["lunar"] = true
		case e.On.Weekday != nil:
			kinds["nth weekday"] = true
		default:
			kinds["fixed"] = true
		}
		if e.Until != nil {
			kinds["window"] = true
		}
		if len(e.Regions) > 0 {
			kinds["region"] = true
		}
		if utf8.RuneCountInString(e.Text) > 120 || e.Name == "" {
			t.Errorf("%s: a name and a short text, please (%d characters)", e.Code, utf8.RuneCountInString(e.Text))
		}
	}
	if len(months) != 12 || len(kinds) != 6 {
		t.Errorf("months %v, kinds of date %v", months, kinds)
	}
	distinct := 0
	for _, used := range terms {
		if used {
			distinct++
		}
	}
	if distinct < 15 {
		t.Errorf("%d distinct solar terms, want at least 15", distinct)
	}
	for _, code := range []string{"national", "township", "yaoguan", "harbin", "linzi", "kunming"} {
		raw, _, err := templates.Profile(code)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			PriorityGroups []string `yaml:"priority_groups"`
		}
		if err := yaml.Unmarshal(raw, &p); err != nil || len(p.PriorityGroups) == 0 {
			t.Fatalf("%s: %v", code, err)
		}
		for _, g := range p.PriorityGroups {
			if !groups[g] {
				t.Errorf("%s's priority group %s has no reminder", code, g)
			}
		}
	}
}

// A window goes out on any day inside it; a day without until, for a week.
func TestSeasonalWindowsAndRegions(t *testing.T) {
	entries, err := SeasonalCalendar()
	if err != nil {
		t.Fatal(err)
	}
	at := func(m, d int) time.Time { return time.Date(2026, time.Month(m), d, 9, 0, 0, 0, Shanghai) }
	due := func(code string, when time.Time) bool {
		for _, e := range DueSeasonal(entries, when) {
			if e.Code == code {
				return true
			}
		}
		return false
	}
	for when, want := range map[time.Time]bool{at(8, 31): false, at(9, 1): true, at(10, 15): true, at(10, 31): true, at(11, 1): false} {
		if due("flu-vaccine", when) != want {
			t.Errorf("flu vaccination on %s: due %v, want %v", when.Format("01-02"), !want, want)
		}
	}
	if !due("hypertension-day", at(10, 8)) || !due("hypertension-day", at(10, 14)) || due("hypertension-day", at(10, 15)) {
		t.Error("a day without until goes out for a week from its day")
	}
	has := func(es []SeasonalEntry, code string) bool {
		return slices.ContainsFunc(es, func(e SeasonalEntry) bool { return e.Code == code })
	}
	if !has(ForRegion(entries, "kunming"), "wild-mushroom") || has(ForRegion(entries, "national"), "wild-mushroom") ||
		!has(ForRegion(entries, "national"), "flu-vaccine") || !has(ForRegion(entries, "harbin"), "heating-co-harbin") {
		t.Error("region-only entries go to their regions alone")
	}
}

// Every entry's day in 2026-2028 against the published calendars: solar
// terms (the table above), lunar festivals, nth weekdays and fixed health
// days. An entry this table does not know fails: add its published dates.
func TestSeasonalDatesArePublished(t *testing.T) {
	published := map[string][3]string{ // code -> 2026, 2027, 2028 (MM-DD)
		"spring-festival": {"02-17", "02-06", "01-26"}, "lantern-sugar": {"03-03", "02-20", "02-09"},
		"dragon-boat": {"06-19", "06-09", "05-28"}, "chongyang": {"10-18", "10-08", "10-26"},
		"kidney-day": {"03-12", "03-11", "03-09"}, "disability-day": {"05-17", "05-16", "05-21"},
		"copd-day": {"11-18", "11-17", "11-15"},
	}
	fixed := map[string]string{ // code -> the health day's date
		"cancer-screening": "02-04", "tb-day": "03-24", "vaccination-day": "04-25", "world-hypertension-day": "05-17",
		"family-doctor-day": "05-19", "no-tobacco-day": "05-31", "eye-day": "06-06", "breastfeeding-week": "08-01",
		"fitness-day": "08-08", "alzheimer-day": "09-21", "heart-day": "09-29", "hypertension-day": "10-08",
		"mental-health-day": "10-10", "poverty-relief": "10-17", "stroke-day": "10-29", "diabetes-day": "11-14",
		"disabled-day": "12-03", "family-planning-care": "05-29",
		// Seasons rather than days, set for this calendar:
		"winter-flu-child": "01-10", "spring-allergy": "03-15", "wild-mushroom": "06-01", "plum-rain": "06-15",
		"flu-vaccine": "09-01", "heating-co-harbin": "10-15", "heating-co-linzi": "11-15",
	}
	entries, _ := SeasonalCalendar()
	for _, e := range entries {
		for i, year := range []int{2026, 2027, 2028} {
			day, err := e.Day(year)
			if err != nil || day.Year() != year {
				t.Fatalf("%s in %d: %s %v", e.Code, year, day, err)
			}
			got := day.Format("01-02")
			switch {
			case e.On.Term != "":
				k := slices.Index(solarTerms, e.On.Term)
				if want := publishedTerms[year][k]; got != fmt.Sprintf("%02d-%02d", want/100, want%100) {
					t.Errorf("%s (%s) in %d: %s, published %04d", e.Code, e.On.Term, year, got, want)
				}
			case e.On.Sanfu != "": // TestSanfuIsTheThirdGengDayFromSummerSolstice
			case published[e.Code] != [3]string{}:
				if want := published[e.Code][i]; got != want {
					t.Errorf("%s in %d: %s, published %s", e.Code, year, got, want)
				}
			case fixed[e.Code] != "":
				if got != fixed[e.Code] {
					t.Errorf("%s in %d: %s, want %s", e.Code, year, got, fixed[e.Code])
				}
			default:
				t.Errorf("%s: no published date in this test", e.Code)
			}
		}
	}
}

// A year of the calendar expanded twice at once, as two instances would,
// gives each resident's user each reminder once; those who turned seasonal
// reminders off or unfollowed get none.
func TestSeasonalExpansionIsOncePerYear(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	doc := bindFirstDoctor(t, e)
	people := map[string]string{ // openid -> birth date
		"o_old1": "19500101", "o_old2": "19510202", "o_young": "19900303", "o_off": "19520404", "o_gone": "19530505",
	}
	i := 0
	for openID, birth := range people {
		i++
		activeFor(t, e, doc, openID, synthID("110105", birth, fmt.Sprintf("%03d", i)))
		e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: openID, Subscribed: true, EventTime: time.Unix(1, 0)}})
	}
	if err := e.DB.SetReminders(ctx, "o_off", storage.ReminderSettings{Seasonal: false, Personal: true}, SeasonalKinds, PersonalKinds); err != nil {
		t.Fatal(err)
	}
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_gone", Subscribed: false, EventTime: time.Now()}})
	all, _ := SeasonalCalendar()
	entries := ForRegion(all, "national") // as RunSeasonal reads the database's region
	year := time.Date(2026, 1, 1, 0, 0, 0, 0, Shanghai)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := year; d.Year() == 2026; d = d.AddDate(0, 0, 1) {
				for _, entry := range DueSeasonal(entries, d.Add(9*time.Hour)) {
					if _, err := ExpandSeasonal(ctx, e.DB, e.Sealer, entry, d.Add(9*time.Hour)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	count := func(openID string) int { return countKind(t, e, openID, PushSeasonal, "pending") }
	// The 65-year-olds get every entry for everyone or for the elderly in
	// this region; the young one only those for everyone.
	old, young := 0, 0
	for _, entry := range entries {
		if len(entry.Groups) == 0 {
			young++
		}
		if len(entry.Groups) == 0 || slices.Contains(entry.Groups, "elderly") {
			old++
		}
	}
	if old < 10 || count("o_old1") != old || count("o_old2") != old || count("o_young") != young || count("o_off") != 0 || count("o_gone") != 0 {
		t.Fatalf("seasonal pushes: old1 %d old2 %d (want %d) young %d (want %d) off %d gone %d",
			count("o_old1"), count("o_old2"), old, count("o_young"), young, count("o_off"), count("o_gone"))
	}
}

func TestReminderSettingsInChat(t *testing.T) {
	e := engineFor(t, "national")
	e.DB.Apply(context.Background(), storage.Changes{Seen: &storage.UserSeen{OpenID: "o_set", Subscribed: true, EventTime: time.Now()}})
	c := talk(t, e, "o_set")
	c.say("提醒设置", "1. 健康知识提示（节气、季节和卫生院群发的）：已开启", "2. 个人健康提醒（预约、随访、体检、接种、产检、续签）：已开启")
	c.say("1", "已关闭健康知识提示", "1. 健康知识提示（节气、季节和卫生院群发的）：已关闭")
	c.say("取消")
	c.say("我的", "3. 提醒设置")
	c.say("3", "1. 健康知识提示（节气、季节和卫生院群发的）：已关闭")
	c.say("1", "已开启健康知识提示")
	if s, _ := e.DB.Reminders(context.Background(), "o_set"); !s.Seasonal || !s.Personal {
		t.Fatalf("settings = %+v", s)
	}
}

func TestRunSeasonalExpandsEachEntryOnce(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	doc := bindFirstDoctor(t, e)
	activeFor(t, e, doc, "o_run", synthID("110105", "19500101", "001"))
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_run", Subscribed: true, EventTime: time.Unix(1, 0)}})
	// On 霜降 2026: the flu vaccination window, 重阳节's week and 霜降's own
	// reminder are all open for a 76-year-old.
	shuangjiang := time.Date(2026, 10, 23, 9, 0, 0, 0, Shanghai)
	if n, err := RunSeasonal(ctx, e.DB, e.Sealer, shuangjiang); err != nil || n != 3 {
		t.Fatalf("on 霜降: %d %v", n, err)
	}
	if n, _ := RunSeasonal(ctx, e.DB, e.Sealer, shuangjiang.Add(10*time.Minute)); n != 0 {
		t.Fatalf("ten minutes later: %d more", n)
	}
	if countKind(t, e, "o_run", PushSeasonal, "pending") != 3 {
		t.Fatal("not exactly one push for each of the three")
	}
	// Held back (a quota pause, an outage) until every window has closed,
	// none goes out any more.
	if rows, err := e.DB.ClaimDue(ctx, 10, time.Minute, time.Date(2026, 11, 2, 9, 0, 0, 0, Shanghai), 99); err != nil || len(rows) != 0 {
		t.Fatalf("claimed after their windows: %+v %v", rows, err)
	}
	if countKind(t, e, "o_run", PushSeasonal, "cancelled") != 3 {
		t.Fatal("the stale reminders were not withdrawn")
	}
}

// The clock's jumps land on the next solar term and the next reminder day,
// across the turn of the year too.
func TestNextSolarTermAndNextSeasonal(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for now, want := range map[string]string{
		"2026-12-02 10:00": "大雪 2026-12-07",
		"2026-12-07 00:00": "冬至 2026-12-22", // the term's own midnight is not after it
		"2026-12-23 09:00": "小寒 2027-01-05",
	} {
		name, day, err := NextSolarTerm(at(now))
		if got := name + " " + day.Format("2006-01-02"); err != nil || got != want || day.Location() != Shanghai {
			t.Errorf("after %s: %s %v, want %s", now, got, err, want)
		}
	}
	var entries []SeasonalEntry
	for _, e := range []struct {
		code  string
		term  string
		month int
		day   int
	}{{"a", "立冬", 0, 0}, {"b", "", 3, 15}, {"c", "", 3, 15}} {
		var s SeasonalEntry
		s.Code, s.On.Term, s.On.Month, s.On.Day = e.code, e.term, e.month, e.day
		entries = append(entries, s)
	}
	for now, want := range map[string]string{
		"2026-12-02 10:00": "2027-03-15 08:00 b,c", // both of the day, next year
		"2026-11-07 07:59": "2026-11-07 08:00 a",   // 立冬 2026 is on the 7th: still to come at 07:59
		"2026-11-07 08:00": "2027-03-15 08:00 b,c",
	} {
		next, on, err := NextSeasonal(entries, at(now))
		got := next.In(Shanghai).Format("2006-01-02 15:04") + " "
		for i, e := range on {
			if i > 0 {
				got += ","
			}
			got += e.Code
		}
		if err != nil || got != want {
			t.Errorf("after %s: %q %v, want %q", now, got, err, want)
		}
	}
	if _, _, err := NextSeasonal(nil, at("2026-12-02 10:00")); err == nil {
		t.Error("an empty calendar has no next day")
	}
}

// The console's coming year: every entry once, soonest first, none ended.
func TestComingYear(t *testing.T) {
	entries, _ := SeasonalCalendar()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, Shanghai)
	days, err := ComingYear(entries, now)
	if err != nil || len(days) != len(entries) {
		t.Fatalf("%d days for %d entries, %v", len(days), len(entries), err)
	}
	for i, d := range days {
		if !d.To.After(now) || (i > 0 && d.From.Before(days[i-1].From)) || d.From.After(now.AddDate(1, 0, 0)) {
			t.Errorf("%s: %s to %s", d.Entry.Code, d.From, d.To)
		}
	}
	if days[0].From.Month() != time.December {
		t.Errorf("the first is %s on %s", days[0].Entry.Code, days[0].From)
	}
	for _, d := range days {
		if d.Entry.Code == "flu-vaccine" && (d.From.Year() != 2027 || !strings.Contains(d.For, "65岁以上老年人")) {
			t.Errorf("flu vaccination: %s for %q", d.From, d.For)
		}
	}
}

// Lunar dates the calendar cannot place yet are refused, not misplaced.
func TestLunarDatesOutsideTheRulesAreRefused(t *testing.T) {
	for _, md := range [][2]int{{12, 8}, {8, 30}, {0, 1}} {
		var e SeasonalEntry
		e.Code, e.On.LunarMonth, e.On.LunarDay = "x", md[0], md[1]
		if day, err := e.Day(2026); err == nil {
			t.Errorf("lunar %d-%d placed on %s", md[0], md[1], day)
		}
	}
}

// A resident who signs while an entry's window is open gets it at the next
// run, once; so do the residents of an institution that switches an entry
// back on inside its window. Those who had it get nothing more.
func TestSeasonalCatchesUpWhoSignedInTheWindow(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	clock := time.Date(2026, 10, 23, 8, 0, 0, 0, Shanghai)
	e.DB.SetClock(func() time.Time { return clock })
	here, _ := e.DB.InstitutionByCode(ctx, "demo")
	cs, _ := e.DB.Communities(ctx)
	activeIn(t, e, "o_first", cs[0].ID, "1950-01-01")
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_first", Subscribed: true, EventTime: clock}})
	run := func(at time.Time) int {
		t.Helper()
		clock = at
		n, err := RunSeasonal(ctx, e.DB, e.Sealer, at)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	keys := func(openID string) []string {
		var out []string
		for k := range outboxStates(t, e, openID) {
			if strings.HasPrefix(k, "seasonal:flu-vaccine:") || strings.HasPrefix(k, "seasonal:shuangjiang-falls:") {
				out = append(out, strings.Split(k, ":")[1])
			}
		}
		slices.Sort(out)
		return out
	}
	// Institution switches 霜降 off before its day.
	if _, err := SaveCalendarChange(ctx, e.DB, storage.Scope{Institution: here.ID}, CalendarChange{Code: "shuangjiang-falls", Off: true}, "admin", clock); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 10, 23, 9, 0, 0, 0, Shanghai)
	run(day)
	if got := keys("o_first"); !slices.Equal(got, []string{"flu-vaccine"}) {
		t.Fatalf("on the day: %v", got)
	}
	if n := run(day.Add(10 * time.Minute)); n != 0 {
		t.Fatalf("ten minutes later, no one new: %d more", n)
	}
	// Two days on, a new resident signs; the next run reaches them alone.
	clock = day.AddDate(0, 0, 2)
	activeIn(t, e, "o_late", cs[0].ID, "1950-01-01")
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_late", Subscribed: true, EventTime: clock}})
	if n := run(clock.Add(time.Hour)); n != 1 {
		t.Fatalf("after a resident signed in the window: %d pushes, want 1", n)
	}
	if got := keys("o_late"); !slices.Equal(got, []string{"flu-vaccine"}) {
		t.Fatalf("the late signer: %v", got)
	}
	// 霜降 switched back on inside its week: both get it, once.
	clock = day.AddDate(0, 0, 3)
	if err := DeleteCalendarChange(ctx, e.DB, storage.Scope{Institution: here.ID}, "shuangjiang-falls", "admin", clock); err != nil {
		t.Fatal(err)
	}
	if n := run(clock.Add(time.Hour)); n != 2 {
		t.Fatalf("after switching back on: %d pushes, want 2", n)
	}
	if n := run(clock.Add(2 * time.Hour)); n != 0 {
		t.Fatalf("and again: %d more", n)
	}
	for _, o := range []string{"o_first", "o_late"} {
		if got := keys(o); !slices.Equal(got, []string{"flu-vaccine", "shuangjiang-falls"}) {
			t.Fatalf("%s: %v", o, got)
		}
	}
}

// A city's campaign is split into chunks that several instances expand at
// once, and a chunk whose instance died is expanded by another after its
// lease: each reminder is enqueued once, the same as one instance alone
// would, and the campaign is finished when its last chunk is.
func TestSeasonalCampaignChunksAreSharedAndTakenOver(t *testing.T) {
	defer func(was int64) { seasonalChunk = was }(seasonalChunk)
	ctx := context.Background()
	seededAt, snow := time.Date(2026, 12, 1, 12, 0, 0, 0, Shanghai), time.Date(2026, 12, 8, 9, 5, 0, 0, Shanghai)
	seasonal := func(t *testing.T, db *storage.DB) int { return enqueued(t, db, PushSeasonal) }
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		sealer := seededCity(t, db, 600, seededAt)
		// What one instance alone enqueues, in one chunk.
		seasonalChunk = 1000
		want, err := RunSeasonal(ctx, db, sealer, snow)
		if err != nil || want == 0 || seasonal(t, db) != want {
			t.Fatalf("one instance, one chunk: %d pushes (%d in the outbox), %v", want, seasonal(t, db), err)
		}
		forgetRuns(t, db, PushSeasonal)
		seasonalChunk = 50
		// An instance claimed the first chunk of each entry, and the second
		// of one, and died: the others are expanded apart from it.
		var campaigns []string
		for _, e := range mustCalendar(t, db).Live() {
			if len(DueSeasonal([]SeasonalEntry{e}, snow)) == 1 {
				campaigns = append(campaigns, "seasonal:"+e.Code)
			}
		}
		if len(campaigns) == 0 {
			t.Fatal("no entry due on 12-08")
		}
		for _, code := range campaigns {
			if _, err := db.StartCampaign(ctx, code, 2026, snow, seasonalChunk, storage.ByResident); err != nil {
				t.Fatal(err)
			}
			if c, ok, err := db.ClaimChunk(ctx, code, 2026, snow, chunkLease); !ok || err != nil || c.Chunk != 0 {
				t.Fatalf("%s: %+v %v %v", code, c, ok, err)
			}
		}
		if c, ok, err := db.ClaimChunk(ctx, campaigns[0], 2026, snow, chunkLease); !ok || err != nil || c.Chunk != 1 {
			t.Fatalf("%s: %+v %v %v", campaigns[0], c, ok, err)
		}
		// Two instances share the rest.
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for range 2 {
			wg.Go(func() {
				n, err := RunSeasonal(ctx, db, sealer, snow)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, code := range campaigns {
			if _, ok, _ := db.CampaignThrough(ctx, code, 2026); ok {
				t.Fatalf("%s finished with its first chunk never expanded", code)
			}
		}
		if total >= want || seasonal(t, db) != total {
			t.Fatalf("before the dead instance's chunk was taken over: %d pushes (%d in the outbox), want fewer than %d", total, seasonal(t, db), want)
		}
		n, err := RunSeasonal(ctx, db, sealer, snow.Add(chunkLease+time.Minute))
		if err != nil || total+n != want || seasonal(t, db) != want {
			t.Fatalf("after the take-over: %d+%d pushes (%d in the outbox), want %d as one instance enqueues: %v", total, n, seasonal(t, db), want, err)
		}
		for _, code := range campaigns {
			if _, ok, _ := db.CampaignThrough(ctx, code, 2026); !ok {
				t.Fatalf("%s not finished after its last chunk", code)
			}
		}
	})
}

func mustCalendar(t *testing.T, db *storage.DB) Calendar {
	t.Helper()
	cal, err := LoadCalendar(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

// seededCity seeds n residents of the Kunming profile as jiayi demo seed
// does, as of at.
func seededCity(t *testing.T, db *storage.DB, n int, at time.Time) *storage.Sealer {
	t.Helper()
	ctx := context.Background()
	if err := profile.Ensure(ctx, db, "kunming"); err != nil {
		t.Fatal(err)
	}
	sealer, _ := storage.NewSealer(make([]byte, 32))
	if _, err := SeedDemo(ctx, db, sealer, n, at); err != nil {
		t.Fatal(err)
	}
	return sealer
}

// enqueued counts the outbox's pushes of a kind, in any state.
func enqueued(t *testing.T, db *storage.DB, kind string) int {
	t.Helper()
	var n int
	raw := storagetest.SQL(t, db)
	if err := raw.Get(&n, raw.Rebind(`SELECT COUNT(*) FROM outbox WHERE kind = ?`), kind); err != nil {
		t.Fatal(err)
	}
	return n
}

// A day's personal reminders are split into chunks of contracts that
// several instances run at once, each reminder enqueued once, the same as
// one instance alone would; the day's run is then finished, and running it
// again that day does nothing.
func TestPersonalRemindersAreSharedOnceADay(t *testing.T) {
	defer func(was int64) { personalChunk = was }(personalChunk)
	ctx := context.Background()
	// Contracts signed on 2025-12-31 end on 2026-12-30: their 30-day
	// renewal reminder is due on 11-30 and still goes on 12-02.
	seededAt, day := time.Date(2026, 12, 1, 12, 0, 0, 0, Shanghai), time.Date(2026, 12, 2, 9, 5, 0, 0, Shanghai)
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		sealer := seededCity(t, db, 600, seededAt)
		// What one instance alone enqueues, in one chunk.
		personalChunk = 10000
		want, err := RunPersonal(ctx, db, sealer, day)
		if err != nil || want == 0 || enqueued(t, db, PushPersonal) != want {
			t.Fatalf("one instance, one chunk: %d pushes (%d in the outbox), %v", want, enqueued(t, db, PushPersonal), err)
		}
		forgetRuns(t, db, PushPersonal)
		personalChunk = 40
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		finished := 0
		for range 2 {
			wg.Go(func() {
				n, err := RunPersonal(ctx, db, sealer, day)
				if err != nil && !errors.Is(err, ErrUnfinished) { // the first done, while the other works
					t.Error(err)
				}
				mu.Lock()
				if err == nil {
					finished++
				}
				mu.Unlock()
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		wg.Wait()
		if total != want || enqueued(t, db, PushPersonal) != want || finished == 0 {
			t.Fatalf("two instances: %d pushes (%d in the outbox), want %d as one instance enqueues; %d saw the day finished",
				total, enqueued(t, db, PushPersonal), want, finished)
		}
		if n, err := RunPersonal(ctx, db, sealer, day.Add(time.Hour)); n != 0 || err != nil {
			t.Fatalf("the same day again: %d pushes, %v", n, err)
		}
		// The next day runs again, and keys spare the renewals still inside
		// their 3 days.
		if n, err := RunPersonal(ctx, db, sealer, day.AddDate(0, 0, 1)); n != 0 || err != nil || enqueued(t, db, PushPersonal) != want {
			t.Fatalf("the next day: %d more pushes (%d in the outbox), %v", n, enqueued(t, db, PushPersonal), err)
		}
		if _, ran, _ := db.CampaignThrough(ctx, "personal:2026-12-03", 2026); !ran {
			t.Fatal("the next day's run did not finish")
		}
	})
}

// forgetRuns deletes every push of a kind and every record of chunked
// runs, so a test can run a job again on the same residents.
func forgetRuns(t *testing.T, db *storage.DB, kind string) {
	t.Helper()
	raw := storagetest.SQL(t, db)
	_, err := raw.Exec(raw.Rebind(`DELETE FROM outbox WHERE kind = ?`), kind)
	if err == nil {
		_, err = raw.Exec(`DELETE FROM campaign_chunks`)
	}
	if err == nil {
		_, err = raw.Exec(`DELETE FROM campaigns`)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A day's personal reminders with a chunk held by an instance that died
// are unfinished, and said to be, until the chunk's lease passes; a chunk
// an instance fails on is handed back at once.
func TestChunksLeftOrFailedAreTakenUp(t *testing.T) {
	defer func(was int64) { personalChunk = was }(personalChunk)
	personalChunk = 40
	ctx := context.Background()
	seededAt, day := time.Date(2026, 12, 1, 12, 0, 0, 0, Shanghai), time.Date(2026, 12, 2, 9, 5, 0, 0, Shanghai)
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		sealer := seededCity(t, db, 600, seededAt)
		code := "personal:2026-12-02"
		if _, err := db.StartCampaign(ctx, code, 2026, day, personalChunk, storage.ByContract); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := db.ClaimChunk(ctx, code, 2026, day, chunkLease); !ok || err != nil {
			t.Fatalf("the instance that dies claims: %v %v", ok, err)
		}
		n, err := RunPersonal(ctx, db, sealer, day)
		if !errors.Is(err, ErrUnfinished) || n == 0 {
			t.Fatalf("with a chunk held: %d pushes, %v; want some and ErrUnfinished", n, err)
		}
		if _, err := RunPersonal(ctx, db, sealer, day.Add(10*time.Minute)); !errors.Is(err, ErrUnfinished) {
			t.Fatalf("within the lease: %v, want ErrUnfinished", err)
		}
		if _, err := RunPersonal(ctx, db, sealer, day.Add(chunkLease+time.Hour)); err != nil {
			t.Fatalf("after the lease: %v", err)
		}
		if _, done, _ := db.CampaignThrough(ctx, code, 2026); !done {
			t.Fatal("the day's run did not finish after the take-over")
		}

		// A run that fails on its chunk hands it back.
		failing := func(context.Context, storage.CampaignChunk, []string) (map[string]int, error) {
			return nil, errors.New("the database went away")
		}
		at := func() time.Time { return day }
		if _, _, _, err := runChunks(ctx, db, []string{"personal:2026-12-03"}, 2026, at, personalChunk, storage.ByContract, failing); err == nil {
			t.Fatal("a failing chunk did not fail the run")
		}
		if c, ok, err := db.ClaimChunk(ctx, "personal:2026-12-03", 2026, day, chunkLease); !ok || err != nil || c.Chunk != 0 {
			t.Fatalf("the failed chunk was not handed back: %+v %v %v", c, ok, err)
		}
	})
}
