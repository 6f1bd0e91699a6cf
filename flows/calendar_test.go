package flows

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// Admins change the calendar for their own residents: one institution
// switches 霜降 off and the city rewrites 重阳节 for everyone, another adds
// its own entry; on 霜降 each resident gets the calendar as their
// institution has it. An entry switched off after it was expanded is
// withdrawn from that institution's residents alone.
func TestAdminsChangeTheCalendarForTheirResidents(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	doc := bindFirstDoctor(t, e)
	activeFor(t, e, doc, "o_here", synthID("110105", "19500101", "001"))
	ids, err := e.DB.CreateInstitution(ctx, storage.Institution{Code: "away", Name: "别处卫生院", Kind: "township_centre"},
		[]storage.Community{{Town: "别镇", Name: "别村"}}, []storage.NewTeam{{Name: "别处团队", Doctor: storage.Doctor{Name: "别医生"}, Communities: []int{0}}})
	if err != nil {
		t.Fatal(err)
	}
	activeIn(t, e, "o_there", ids[0], "1950-01-01")
	for _, o := range []string{"o_here", "o_there"} {
		e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: o, Subscribed: true, EventTime: time.Unix(1, 0)}})
	}
	here, _ := e.DB.InstitutionByCode(ctx, "demo")
	away, _ := e.DB.InstitutionByCode(ctx, "away")
	now := time.Date(2026, 10, 20, 9, 0, 0, 0, Shanghai)
	hereAdmin, awayAdmin, city := storage.Scope{Institution: here.ID}, storage.Scope{Institution: away.ID}, storage.Scope{}

	if _, err := SaveCalendarChange(ctx, e.DB, hereAdmin, CalendarChange{Code: "shuangjiang-falls", Off: true}, "admin", now); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveCalendarChange(ctx, e.DB, city, CalendarChange{Code: "chongyang", Text: "重阳节到了，祝老人们身体健康，记得做免费体检。"}, "city", now); err != nil {
		t.Fatal(err)
	}
	own, err := SaveCalendarChange(ctx, e.DB, awayAdmin, CalendarChange{Name: "别村义诊", Month: 10, Day: 23, UntilMonth: 10, UntilDay: 30,
		Groups: []string{"elderly"}, Text: "本周六上午别村卫生室有义诊，65岁以上老人可以免费量血压、测血糖。"}, "awayadmin", now)
	if err != nil || !strings.HasPrefix(own, "own-") {
		t.Fatalf("adding an entry: %q %v", own, err)
	}
	// Refused: words too short or too long, a day that is not one, an
	// unknown group, and another institution's own entry.
	for _, bad := range []struct {
		scope storage.Scope
		ch    CalendarChange
	}{
		{city, CalendarChange{Code: "chongyang", Text: "太短"}},
		{city, CalendarChange{Code: "chongyang", Text: strings.Repeat("长", 201)}},
		{awayAdmin, CalendarChange{Name: "二月三十", Month: 2, Day: 30, Text: "这一天并不存在，不能成为日历里的日子。"}},
		{awayAdmin, CalendarChange{Name: "倒过来", Month: 10, Day: 23, UntilMonth: 10, UntilDay: 1, Text: "截止日在开始日之前，不能成立。"}},
		{awayAdmin, CalendarChange{Name: "无名", Term: "立春", Groups: []string{"astronauts"}, Text: "没有这个重点人群，应当被拒绝。"}},
		{awayAdmin, CalendarChange{Name: "节气", Term: "春天", Text: "不是二十四节气里的名字，应当被拒绝。"}},
	} {
		var refusal *Refusal
		if _, err := SaveCalendarChange(ctx, e.DB, bad.scope, bad.ch, "x", now); !errors.As(err, &refusal) {
			t.Errorf("%+v: %v, want a refusal", bad.ch, err)
		}
	}
	if _, err := SaveCalendarChange(ctx, e.DB, hereAdmin, CalendarChange{Code: own, Off: true}, "admin", now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another institution's entry: %v", err)
	}

	shuangjiang := time.Date(2026, 10, 23, 9, 0, 0, 0, Shanghai)
	if _, err := RunSeasonal(ctx, e.DB, e.Sealer, shuangjiang); err != nil {
		t.Fatal(err)
	}
	texts := func(openID string) map[string]string {
		rows, _ := e.DB.OutboxFor(ctx, openID)
		out := map[string]string{}
		for _, r := range rows {
			if r.Kind == PushSeasonal && r.State == "pending" {
				f, _ := r.Fields()
				out[strings.Split(r.Key, ":")[1]] = f["text"]
			}
		}
		return out
	}
	gotHere, gotThere := texts("o_here"), texts("o_there")
	if _, ok := gotHere["shuangjiang-falls"]; ok || len(gotHere) != 2 || gotHere["chongyang"] != "重阳节到了，祝老人们身体健康，记得做免费体检。" || gotHere["flu-vaccine"] == "" {
		t.Fatalf("here: %v", gotHere)
	}
	if gotThere["shuangjiang-falls"] == "" || gotThere[own] == "" || gotThere["chongyang"] != gotHere["chongyang"] || len(gotThere) != 4 {
		t.Fatalf("there: %v", gotThere)
	}
	// Switched off once expanded: withdrawn here, not there.
	if _, err := SaveCalendarChange(ctx, e.DB, hereAdmin, CalendarChange{Code: "flu-vaccine", Off: true}, "admin", shuangjiang); err != nil {
		t.Fatal(err)
	}
	if _, ok := texts("o_here")["flu-vaccine"]; ok || texts("o_there")["flu-vaccine"] == "" {
		t.Fatalf("after switching flu off here: here %v, there %v", texts("o_here"), texts("o_there"))
	}
	// And on again: the withdrawn reminder waits to go again.
	if _, err := SaveCalendarChange(ctx, e.DB, hereAdmin, CalendarChange{Code: "flu-vaccine"}, "admin", shuangjiang); err != nil {
		t.Fatal(err)
	}
	if n, err := RunSeasonal(ctx, e.DB, e.Sealer, shuangjiang.Add(time.Hour)); err != nil || texts("o_here")["flu-vaccine"] == "" || n != 0 {
		t.Fatalf("after switching flu back on: %d new, %v, here %v", n, err, texts("o_here"))
	}
	if _, err := SaveCalendarChange(ctx, e.DB, hereAdmin, CalendarChange{Code: "flu-vaccine", Off: true}, "admin", shuangjiang); err != nil {
		t.Fatal(err)
	}
	// The year as each sees it: their own changes marked, others' entries hidden.
	cal, err := LoadCalendar(ctx, e.DB)
	if err != nil {
		t.Fatal(err)
	}
	days, err := cal.Year(here.ID, shuangjiang)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		switch d.Entry.Code {
		case own:
			t.Errorf("another institution's entry is shown here")
		case "flu-vaccine", "shuangjiang-falls":
			if !d.Off || !d.Mine {
				t.Errorf("%s: %+v", d.Entry.Code, d)
			}
		case "chongyang":
			if d.Off || !d.Edited || d.Mine {
				t.Errorf("chongyang: %+v", d)
			}
		}
	}
	// Put back: 霜降 goes to them again next year.
	if err := DeleteCalendarChange(ctx, e.DB, hereAdmin, "shuangjiang-falls", "admin", shuangjiang); err != nil {
		t.Fatal(err)
	}
	if err := DeleteCalendarChange(ctx, e.DB, hereAdmin, "chongyang", "admin", shuangjiang); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("resetting the city's change as an institution: %v", err)
	}
	if _, err := RunSeasonal(ctx, e.DB, e.Sealer, shuangjiang.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	rows, _ := e.DB.OutboxFor(ctx, "o_here")
	found := false
	for _, r := range rows {
		found = found || strings.HasPrefix(r.Key, "seasonal:shuangjiang-falls:2027:")
	}
	if !found {
		t.Fatal("the entry put back did not go out the next year")
	}
}

// activeIn makes an active contract for a resident of a community, managed
// by openID.
func activeIn(t *testing.T, e *Engine, openID string, community int64, born string) {
	t.Helper()
	ctx := context.Background()
	teams, _ := e.DB.TeamsServing(ctx, community)
	at := time.Date(2026, 1, 5, 10, 0, 0, 0, Shanghai)
	number, _, err := e.DB.CreateContract(ctx, storage.NewContract{RequestKey: "in-" + openID, Day: "260105",
		Resident: storage.NewResident{ManagerOpenID: openID, Relation: "self", Name: "居民", IDSealed: "x", IDHash: "h-" + openID,
			PhoneSealed: "y", PhoneHash: "p-" + openID, BirthDate: born, Sex: "female", CommunityID: community},
		TeamID: teams[0].ID, DoctorID: teams[0].DoctorID, Insured: storage.InsuredLocal, TermMonths: 12,
		AgreementVersion: "v", AgreedAt: at, ConsentVersion: "v", ConsentedAt: at, ConsentBy: openID,
		Packages: []storage.ContractPackage{{Code: "basic", Kind: "basic"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DB.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "pending", To: "active", Actor: "d", TermEnd: "2099-12-31"}); err != nil {
		t.Fatal(err)
	}
}

// Saving an entry keeps what the form did not change: switched off and on
// again with no text given, a rewrite stays; an institution that only
// switches an entry off and on keeps following city staff's words; an
// institution cannot switch on what city staff switched off; an entry
// added by admins is theirs, not "rewritten".
func TestCalendarEditsKeepWhatWasNotChanged(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	here, _ := e.DB.InstitutionByCode(ctx, "demo")
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, Shanghai)
	inst, city := storage.Scope{Institution: here.ID}, storage.Scope{}
	text := func(code string) (string, bool) {
		cal, err := LoadCalendar(ctx, e.DB)
		if err != nil {
			t.Fatal(err)
		}
		entry, _ := cal.Entry(code, here.ID)
		got, on := cal.As(entry, here.ID)
		return got.Text, on
	}
	save := func(scope storage.Scope, ch CalendarChange) {
		t.Helper()
		if _, err := SaveCalendarChange(ctx, e.DB, scope, ch, "admin", now); err != nil {
			t.Fatalf("%+v: %v", ch, err)
		}
	}
	mine := "大雪节气天冷路滑，老人出门慢慢走，穿防滑鞋，按时吃药。"
	save(inst, CalendarChange{Code: "chongyang", Text: mine})
	save(inst, CalendarChange{Code: "chongyang", Off: true})
	if got, on := text("chongyang"); got != mine || on {
		t.Fatalf("switched off: %q %v", got, on)
	}
	save(inst, CalendarChange{Code: "chongyang"})
	if got, on := text("chongyang"); got != mine || !on {
		t.Fatalf("switched on again: %q %v", got, on)
	}
	// City staff's words, then the institution saves the form as shown.
	cityWords := "重阳节到了，祝老人们身体健康，65岁以上老人记得做免费体检。"
	save(city, CalendarChange{Code: "flu-vaccine", Text: cityWords})
	save(inst, CalendarChange{Code: "flu-vaccine", Off: true, Text: cityWords})
	save(inst, CalendarChange{Code: "flu-vaccine", Text: cityWords})
	later := "流感疫苗开始接种了，65岁以上老人和慢病患者请尽早到卫生院接种。"
	save(city, CalendarChange{Code: "flu-vaccine", Text: later})
	if got, _ := text("flu-vaccine"); got != later {
		t.Fatalf("the institution froze city staff's earlier words: %q", got)
	}
	save(city, CalendarChange{Code: "flu-vaccine", Off: true})
	var refusal *Refusal
	if _, err := SaveCalendarChange(ctx, e.DB, inst, CalendarChange{Code: "flu-vaccine"}, "admin", now); !errors.As(err, &refusal) {
		t.Fatalf("an institution switched on what city staff switched off: %v", err)
	}
	own, err := SaveCalendarChange(ctx, e.DB, inst, CalendarChange{Name: "义诊", Month: 12, Day: 20, Text: "本周六上午卫生院义诊，免费量血压、测血糖。"}, "admin", now)
	if err != nil {
		t.Fatal(err)
	}
	cal, _ := LoadCalendar(ctx, e.DB)
	days, _ := cal.Year(here.ID, now)
	for _, d := range days {
		if d.Entry.Code == own && (d.Edited || !d.Added || !d.Mine) {
			t.Fatalf("an added entry: %+v", d)
		}
	}
}

// An entry switched off while a page of its campaign is being written:
// the switch withdrew what was there before the page, and the page, read
// against the admins' changes again once it is in, withdraws its own.
func TestASwitchOffDuringAPageWithdrawsThePage(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	cs, _ := e.DB.Communities(ctx)
	activeIn(t, e, "o_page", cs[0].ID, "1950-01-01")
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_page", Subscribed: true, EventTime: time.Unix(1, 0)}})
	all, _ := SeasonalCalendar()
	var flu SeasonalEntry
	for _, entry := range all {
		if entry.Code == "flu-vaccine" {
			flu = entry
		}
	}
	reads := 0
	rules := func(context.Context) (func(int64) (SeasonalEntry, bool), error) {
		reads++
		on := reads == 1 // on when the page is written, off by the time it is in
		return func(int64) (SeasonalEntry, bool) { return flu, on }, nil
	}
	now := time.Date(2026, 10, 23, 9, 0, 0, 0, Shanghai)
	everyone := func(ctx context.Context, after int64) ([]storage.Recipient, error) {
		return e.DB.SeasonalRecipients(ctx, after, math.MaxInt64, seasonalPage)
	}
	if n, err := expandSeasonal(ctx, e.DB, e.Sealer, flu, now, rules, everyone); err != nil || n != 1 {
		t.Fatalf("expanded %d, %v", n, err)
	}
	if got := countKind(t, e, "o_page", PushSeasonal, "cancelled"); got != 1 {
		t.Fatalf("the page's reminder was not withdrawn: %v", outboxStates(t, e, "o_page"))
	}
}
