package flows

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/6tail/lunar-go/calendar"
	"github.com/jiayi-health/jiayi/storage"
)

// Published dates (Purple Mountain Observatory's almanac) of the 24 solar
// terms, in the order of solarTerms, as month*100+day.
var publishedTerms = map[int][24]int{
	2025: {105, 120, 203, 218, 305, 320, 404, 420, 505, 521, 605, 621, 707, 722, 807, 823, 907, 923, 1008, 1023, 1107, 1122, 1207, 1221},
	2026: {105, 120, 204, 218, 305, 320, 405, 420, 505, 521, 605, 621, 707, 723, 807, 823, 907, 923, 1008, 1023, 1107, 1122, 1207, 1222},
	2027: {105, 120, 204, 219, 306, 321, 405, 420, 506, 521, 606, 621, 707, 723, 808, 823, 908, 923, 1008, 1023, 1107, 1122, 1207, 1222},
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

func TestSeasonalCalendarLoadsAndFallsDue(t *testing.T) {
	entries, err := SeasonalCalendar()
	if err != nil || len(entries) < 5 {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	byCode := map[string]SeasonalEntry{}
	for _, e := range entries {
		byCode[e.Code] = e
	}
	if d, _ := byCode["flu-vaccine"].Day(2026); d.Format("01-02") != "10-23" {
		t.Fatalf("flu reminder on %s, want 霜降 10-23", d.Format("01-02"))
	}
	if d, _ := byCode["heatstroke"].Day(2025); d.Format("01-02") != "07-20" {
		t.Fatalf("heatstroke on %s", d.Format("01-02"))
	}
	codes := func(es []SeasonalEntry) string {
		var s string
		for _, e := range es {
			s += e.Code + " "
		}
		return s
	}
	at := func(m, d int) time.Time { return time.Date(2026, time.Month(m), d, 9, 0, 0, 0, Shanghai) }
	if got := codes(DueSeasonal(entries, at(10, 22))); got != "" {
		t.Errorf("the day before 霜降: %q", got)
	}
	if got := codes(DueSeasonal(entries, at(10, 23))); got != "flu-vaccine " {
		t.Errorf("on 霜降: %q", got)
	}
	if got := codes(DueSeasonal(entries, at(11, 8))); got != "cold-heart " {
		t.Errorf("the day after 立冬 (霜降 is past the grace week): %q", got)
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
	entries, _ := SeasonalCalendar()
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
	// 65+: flu vaccine, heatstroke, spring allergy; everyone: spring allergy.
	if count("o_old1") != 3 || count("o_old2") != 3 || count("o_young") != 1 || count("o_off") != 0 || count("o_gone") != 0 {
		t.Fatalf("seasonal pushes: old1 %d old2 %d young %d off %d gone %d",
			count("o_old1"), count("o_old2"), count("o_young"), count("o_off"), count("o_gone"))
	}
}

func TestReminderSettingsInChat(t *testing.T) {
	e := engineFor(t, "national")
	e.DB.Apply(context.Background(), storage.Changes{Seen: &storage.UserSeen{OpenID: "o_set", Subscribed: true, EventTime: time.Now()}})
	c := talk(t, e, "o_set")
	c.say("提醒设置", "1. 季节健康提示：已开启", "2. 个人健康提醒（预约、随访、体检、续签）：已开启")
	c.say("1", "已关闭季节健康提示", "1. 季节健康提示：已关闭")
	c.say("取消")
	c.say("我的", "3. 提醒设置")
	c.say("3", "1. 季节健康提示：已关闭")
	c.say("1", "已开启季节健康提示")
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
	shuangjiang := time.Date(2026, 10, 23, 9, 0, 0, 0, Shanghai)
	if n, err := RunSeasonal(ctx, e.DB, e.Sealer, shuangjiang); err != nil || n != 1 {
		t.Fatalf("on 霜降: %d %v", n, err)
	}
	if n, _ := RunSeasonal(ctx, e.DB, e.Sealer, shuangjiang.Add(10*time.Minute)); n != 0 {
		t.Fatalf("ten minutes later: %d more", n)
	}
	if countKind(t, e, "o_run", PushSeasonal, "pending") != 1 {
		t.Fatal("not exactly one flu reminder")
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
