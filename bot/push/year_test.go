package push

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// yearResident is one resident the year's test signs on its first day.
type yearResident struct {
	openID, name, birth, sex, due string
	groups, packages              []string
}

// A year of reminders on a fake clock, from 2026-11-23: a 71-year-old with
// hypertension on the chronic and elderly packages, a woman whose baby is
// due on 2027-05-20, a toddler of ten months and a neighbour of 50 with the
// basic package alone, each with two twins (the same in all but their
// WeChat) who never write to the account. The 71-year-old writes every Monday.
// The scheduler runs twice a day (two instances), the digest twice at
// 10:30, and the dispatcher after it. Each receives what the programme and
// the schedules promise them, each exactly once, and nothing meant for
// others; seasonal tips never as template messages, and at most two mass
// messages a month.
func TestAYearOfRemindersForAPregnantWomanAToddlerAndA70YearOld(t *testing.T) {
	ctx := context.Background()
	db, rdb := storagetest.SQLite(t), storagetest.Embedded(t)
	if err := profile.Ensure(ctx, db, "national"); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.LoadDemo(ctx, db, "national"); err != nil {
		t.Fatal(err)
	}
	sealer, err := storage.NewSealer(bytes.Repeat([]byte{4}, 32))
	if err != nil {
		t.Fatal(err)
	}
	var clock time.Time
	db.SetClock(func() time.Time { return clock })
	signedAt := time.Date(2026, 11, 23, 10, 0, 0, 0, flows.Shanghai)
	clock = signedAt
	for _, r := range []yearResident{
		{openID: "o_year", name: "王秀英", birth: "1955-03-02", sex: "female", groups: []string{"hypertension"}, packages: []string{"basic", "chronic", "elderly"}},
		{openID: "o_year_mother", name: "陈晓燕", birth: "1996-06-10", sex: "female", groups: []string{"maternal"}, due: "2027-05-20", packages: []string{"basic", "maternal_child"}},
		{openID: "o_year_child", name: "李小宝", birth: "2026-01-10", sex: "male", packages: []string{"basic", "maternal_child"}},
		{openID: "o_year_other", name: "李红", birth: "1976-05-02", sex: "female", packages: []string{"basic"}},
	} {
		signForAYear(t, db, sealer, r, signedAt)
		for _, twin := range []string{"_twin", "_twin2"} {
			r := r
			r.openID += twin
			signForAYear(t, db, sealer, r, signedAt)
		}
	}

	d, standIn := dispatcher(t, db, rdb)
	d.Templates = map[string]string{flows.PushPersonal: "tpl_personal"}
	for day := signedAt; !day.After(time.Date(2027, 11, 22, 23, 0, 0, 0, flows.Shanghai)); day = day.AddDate(0, 0, 1) {
		morning := time.Date(day.Year(), day.Month(), day.Day(), 8, 30, 0, 0, flows.Shanghai)
		if day.Weekday() == time.Monday {
			clock = morning.Add(-30 * time.Minute)
			if err := db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_year", Subscribed: true, EventTime: clock}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, at := range []time.Time{morning, morning.Add(time.Hour)} { // two instances
			clock = at
			if _, err := flows.RunPersonal(ctx, db, sealer, at); err != nil {
				t.Fatal(err)
			}
			if _, err := flows.RunSeasonal(ctx, db, sealer, at); err != nil {
				t.Fatal(err)
			}
		}
		clock = morning.Add(2 * time.Hour)
		for range 2 {
			if _, err := flows.RunDigest(ctx, db, clock); err != nil {
				t.Fatal(err)
			}
		}
		d.Now, standIn.Now = func() time.Time { return clock }, func() time.Time { return clock }
		for d.DispatchOnce(ctx) > 0 {
		}
	}
	entries, err := flows.SeasonalCalendar()
	if err != nil {
		t.Fatal(err)
	}
	// read sorts one resident's year into personal texts and seasonal
	// tips (by their words, from customer-service and mass messages), and
	// counts the personal texts holding each phrase.
	read := func(openID string, phrases ...string) (personal []string, seasonal map[string]int, got map[string]int) {
		seasonal, got = map[string]int{}, map[string]int{}
		massByMonth := map[string]int{}
		for _, m := range standIn.Outbox(openID) {
			var msg struct {
				TemplateID string                            `json:"template_id"`
				Data       map[string]struct{ Value string } `json:"data"`
			}
			json.Unmarshal(m.Data, &msg)
			switch {
			case m.Kind == "mass":
				massByMonth[m.At.In(flows.Shanghai).Format("2006-01")]++
				fallthrough
			case m.Kind == "customer-service":
				for _, e := range entries {
					if strings.Contains(m.Text, e.Text) {
						seasonal[e.Text]++
					}
				}
				continue
			case msg.TemplateID != "tpl_personal":
				t.Errorf("%s: a %s message that is no personal reminder: %s", openID, m.Kind, m.Data)
			}
			text := msg.Data["text"].Value
			personal = append(personal, text)
			for _, p := range phrases {
				if strings.Contains(text, p) {
					got[p]++
				}
			}
		}
		for text, n := range seasonal {
			if n != 1 {
				t.Errorf("%s: %d times: %s", openID, n, text)
			}
		}
		for month, n := range massByMonth {
			if n > 2 {
				t.Errorf("%s: %d mass messages in %s, want the two digests at most", openID, n, month)
			}
		}
		return personal, seasonal, got
	}
	expect := func(who string, got, want map[string]int) {
		for what, n := range want {
			if got[what] != n {
				t.Errorf("%s: %q in %d pushes, want %d", who, what, got[what], n)
			}
		}
	}
	// The twins get the same tips, all by digest.
	for _, who := range []string{"o_year", "o_year_mother", "o_year_child", "o_year_other"} {
		_, tips, _ := read(who)
		_, twins, _ := read(who + "_twin")
		if len(tips) == 0 || !maps.Equal(tips, twins) {
			t.Errorf("%s had %d tips, the twin %d: not the same", who, len(tips), len(twins))
		}
		for _, m := range standIn.Outbox(who + "_twin") {
			if m.Kind == "customer-service" {
				t.Errorf("%s: a customer-service message to someone who never wrote: %s", who+"_twin", m.Text)
			}
		}
	}
	byService := 0
	for _, m := range standIn.Outbox("o_year") {
		if m.Kind == "customer-service" {
			byService++
		}
	}
	if byService == 0 {
		t.Error("the 70-year-old wrote every Monday but had no tip as a customer-service message")
	}

	// The 70-year-old: renewal twice, a follow-up every 91 days with none
	// done, the yearly check-up, and the calendar's tips for the elderly
	// and for hypertension.
	personal, seasonal, got := read("o_year", "到期", "慢病随访", "每年有4次", "老年人健康体检", "怀孕", "接种")
	expect("the 70-year-old", got, map[string]int{"到期": 2, "慢病随访": 4, "每年有4次": 4, "老年人健康体检": 1, "怀孕": 0, "接种": 0})
	if len(personal) != 7 {
		t.Errorf("the 70-year-old: %d personal reminders, want 7: %q", len(personal), personal)
	}
	if len(seasonal) < 20 {
		t.Errorf("the 70-year-old: only %d seasonal reminders in a year", len(seasonal))
	}
	for _, what := range []string{"流感疫苗", "立冬", "入伏", "花粉", "全国高血压日", "重阳节", "世界肾脏日"} {
		if !anyContains(seasonal, what) {
			t.Errorf("the 70-year-old was not told of %s", what)
		}
	}

	// The mother: the antenatal visits from week 16 (week 10's came before
	// she signed), the postnatal visit and the 42-day check by the due
	// date, her renewal, and the tips for pregnant women.
	personal, seasonal, got = read("o_year_mother", "怀孕满10周", "怀孕满16周", "怀孕满21周", "怀孕满28周", "怀孕满37周", "按预产期5月20日算",
		"出院后一周内的产后访视", "产后42天健康检查", "到期", "慢病随访", "接种")
	expect("the mother", got, map[string]int{"怀孕满10周": 0, "怀孕满16周": 1, "怀孕满21周": 1, "怀孕满28周": 1, "怀孕满37周": 1,
		"按预产期5月20日算": 4, "出院后一周内的产后访视": 1, "产后42天健康检查": 1, "到期": 2, "慢病随访": 0, "接种": 0})
	if len(personal) != 8 {
		t.Errorf("the mother: %d personal reminders, want 8: %q", len(personal), personal)
	}
	if !anyContains(seasonal, "孕") {
		t.Errorf("the mother had no seasonal tip for pregnant women: %v", seasonal)
	}

	// The toddler (by the parent who manages him): the check-up at one year,
	// the check-up and the three vaccines at eighteen months, his renewal,
	// and the tips for children.
	personal, seasonal, got = read("o_year_child", "李小宝满1岁了", "李小宝满1岁半了", "儿童健康体检", "百白破疫苗第4剂、麻腮风疫苗第2剂、甲肝减毒活疫苗",
		"预防接种证", "到期", "怀孕")
	expect("the toddler", got, map[string]int{"李小宝满1岁了": 1, "李小宝满1岁半了": 1, "儿童健康体检": 2,
		"百白破疫苗第4剂、麻腮风疫苗第2剂、甲肝减毒活疫苗": 1, "预防接种证": 1, "到期": 2, "怀孕": 0})
	if len(personal) != 4 {
		t.Errorf("the toddler: %d personal reminders, want 4: %q", len(personal), personal)
	}
	if !anyContains(seasonal, "孩子") {
		t.Errorf("the toddler's parent had no seasonal tip for children: %v", seasonal)
	}

	// The neighbour of 50 with the basic package alone: its chronic
	// follow-up item is not for her, and no schedule is hers.
	personal, _, got = read("o_year_other", "慢病随访", "怀孕", "接种", "到期")
	expect("the neighbour", got, map[string]int{"慢病随访": 0, "怀孕": 0, "接种": 0, "到期": 2})
	if len(personal) != 2 {
		t.Errorf("the neighbour: %d personal reminders, want the 2 renewals: %q", len(personal), personal)
	}
}

func anyContains(texts map[string]int, what string) bool {
	for text := range texts {
		if strings.Contains(text, what) {
			return true
		}
	}
	return false
}

// signForAYear makes a resident's contract, active for a year from at,
// managed by a WeChat user who follows the account.
func signForAYear(t *testing.T, db *storage.DB, sealer *storage.Sealer, r yearResident, at time.Time) {
	t.Helper()
	ctx := context.Background()
	cs, _ := db.Communities(ctx)
	teams, _ := db.TeamsServing(ctx, cs[0].ID)
	groups, err := flows.SealGroups(sealer, r.groups)
	if err != nil {
		t.Fatal(err)
	}
	due, err := flows.SealDueDate(sealer, r.due)
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []storage.ContractPackage
	for _, code := range r.packages {
		kind := "personalised"
		if code == "basic" {
			kind = "basic"
		}
		pkgs = append(pkgs, storage.ContractPackage{Code: code, Kind: kind})
	}
	number, _, err := db.CreateContract(ctx, storage.NewContract{RequestKey: "year-" + r.openID, Day: at.Format("060102"),
		Resident: storage.NewResident{ManagerOpenID: r.openID, Relation: "self", Name: r.name, IDSealed: "x-" + r.openID, IDHash: "h-" + r.openID,
			PhoneSealed: "y", PhoneHash: "p-" + r.openID, BirthDate: r.birth, Sex: r.sex, CommunityID: cs[0].ID, GroupsSealed: groups, DueDateSealed: due},
		TeamID: teams[0].ID, DoctorID: teams[0].DoctorID, Insured: storage.InsuredLocal, TermMonths: 12,
		AgreementVersion: "v", AgreedAt: at, ConsentVersion: "v", ConsentedAt: at, ConsentBy: r.openID, Packages: pkgs})
	if err != nil {
		t.Fatal(err)
	}
	end := at.AddDate(1, 0, -1).Format("2006-01-02")
	if err := db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "pending", To: "active", Actor: "d", TermEnd: end}); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: r.openID, Subscribed: true, EventTime: at}}); err != nil {
		t.Fatal(err)
	}
}
